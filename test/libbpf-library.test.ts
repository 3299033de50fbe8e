// The library's public surface against the real kernel and libbpf.so.1:
// objects (from memory and file, open options), maps (byte API, flags, keys,
// batches, per-CPU values, codecs), links (iterators read with and without a
// pin, tp_btf, raw tracepoint, kprobe), a ring buffer fed by forks, info by fd
// and by id, and release. xdp and tc on an interface: libbpf-net.test.ts; the
// ring buffer API itself: libbpf-ringbuf.test.ts.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BPF_LINK_TYPE_ITER,
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY,
  BpfObject,
  ErrnoError,
  FdLink,
  FdMap,
  IteratorReader,
  KeyExistsError,
  KeyNotFoundError,
  LibbpfError,
  RingBuffer,
  SysError,
  UpdateFlags,
  codecs,
  linkIds,
  linkInfoById,
  mapIds,
  mapInfo,
  mapInfoById,
  possibleCpus,
  progIds,
  progInfo,
  progInfoById,
} from '../src/libbpf/index.js';
import { privateBpffs } from './lib/bpffs.js';
import { fixture } from './lib/fixtures.js';
import { eventually, readAgreeing } from './lib/kernel.js';

const LIBRARY = fixture('library');
// Keys of the fixture's `counts` map.
const KEY = { tpBtf: 1, rawTp: 2, kprobe: 3, xdp: 4, tc: 5 } as const;

const u32 = (n: number) => Buffer.from(codecs.u32.encode(n));
const u64 = (n: bigint) => Buffer.from(codecs.u64.encode(n));
const forkSome = (n = 3) => {
  for (let i = 0; i < n; i++) spawnSync('true');
};

/** The fixture opened and loaded; closed when the test ends. */
function loaded(t: Test, options: Parameters<typeof BpfObject.openFile>[1] = {}): BpfObject {
  const obj = BpfObject.openFile(LIBRARY, options);
  t.teardown(() => obj.close());
  obj.load();
  return obj;
}

t.test('objects open from a file or from memory alike; options name the object', async (t) => {
  using fromFile = BpfObject.openFile(LIBRARY);
  using fromMem = BpfObject.openMem(readFileSync(LIBRARY), { name: 'libtest' });
  t.equal(fromFile.name, 'library', 'a file names the object after itself');
  t.equal(fromMem.name, 'libtest');
  t.same([...fromFile.programs.keys()], ['on_newtask', 'on_raw_tp', 'on_kprobe', 'on_xdp', 'on_tc', 'list_maps']);
  t.same([...fromMem.programs.keys()], [...fromFile.programs.keys()]);
  // Internal maps are named after the object.
  const sorted = (o: BpfObject) => [...o.maps.keys()].sort();
  t.same(sorted(fromMem), ['counts', 'events', 'libtest.kconfig', 'libtest.rodata', 'percpu_hits']);
  t.same(sorted(fromFile), ['counts', 'events', 'library.kconfig', 'library.rodata', 'percpu_hits']);
  const counts = fromFile.map('counts');
  t.same([counts.type, counts.keySize, counts.valueSize, counts.maxEntries], [BPF_MAP_TYPE_HASH, 4, 8, 64]);
  t.equal(fromFile.program('on_xdp').sectionName, 'xdp');
  t.throws(() => fromFile.program('nope'), /has no program nope/);
  const missing = t.throws(() => BpfObject.openFile('/no/such/object.bpf.o')) as LibbpfError;
  t.type(missing, LibbpfError);
  t.equal(missing.code, 'ENOENT');
  t.equal(missing.op, 'open BPF object /no/such/object.bpf.o');
});

t.test('kconfig sets a __kconfig extern; the ring buffer delivers a record per fork', async (t) => {
  for (const [kconfig, expected] of [
    [undefined, 0],
    ['CONFIG_BPF_PRELOAD_LIBRARY_TEST=42', 42],
  ] as const) {
    const obj = loaded(t, { kconfig });
    const link = obj.program('on_newtask').attach();
    t.teardown(() => link.destroy());
    using rb = new RingBuffer(obj.map('events').fd, 'events');
    forkSome();
    const records: Buffer[] = [];
    for await (const r of rb.records({ signal: AbortSignal.timeout(5000) })) {
      records.push(r);
      if (records.filter((r) => r.readUInt32LE(0) === process.pid).length >= 3) break;
    }
    t.ok(
      records.every((r) => r.length === 8),
      'records are as long as the struct sent',
    );
    t.same(new Set(records.map((r) => r.readUInt32LE(4))), new Set([expected]), `the extern reads ${expected}`);
  }
});

t.test('btf_custom_path: the kernel BTF given by path loads; a missing file fails the load', async (t) => {
  const obj = loaded(t, { btfCustomPath: '/sys/kernel/btf/vmlinux' });
  t.ok(obj.program('list_maps').fd > 0);
  using bad = BpfObject.openFile(LIBRARY, { btfCustomPath: '/no/such/vmlinux' });
  const err = t.throws(() => bad.load()) as LibbpfError;
  t.type(err, LibbpfError);
  t.equal(err.code, 'ENOENT');
  t.ok(err.log.includes('libbpf: failed to parse target BTF: -2'), "libbpf's own line says which BTF failed");
});

t.test('maps: lookup, update with flags, delete, keys, batch lookup, codecs', async (t) => {
  using map = FdMap.create(BPF_MAP_TYPE_HASH, 'libtest_hash', 4, 8, 16);
  t.same([map.name, map.keySize, map.valueSize, map.maxEntries, map.perCpu], ['libtest_hash', 4, 8, 16, false]);
  t.equal(map.lookup(u32(1)), null, 'no element: null');
  map.update(u32(1), u64(10n));
  t.same(map.lookup(u32(1)), u64(10n));
  const exists = t.throws(() => map.update(u32(1), u64(11n), UpdateFlags.NoExist)) as SysError;
  t.type(exists, KeyExistsError, 'a present key is its own error');
  t.type(exists, SysError);
  t.type(exists, ErrnoError);
  t.equal(exists.code, 'EEXIST');
  t.match(exists.message, /^update element in map fd \d+: EEXIST \(file already exists\)$/);
  const missing = t.throws(() => map.update(u32(2), u64(2n), UpdateFlags.Exist)) as SysError;
  t.type(missing, KeyNotFoundError, 'so is a missing one');
  t.equal(missing.code, 'ENOENT');
  map.update(u32(1), u64(11n), UpdateFlags.Exist);
  for (let k = 2; k <= 12; k++) map.update(u32(k), u64(BigInt(k * 100)), UpdateFlags.NoExist);
  t.throws(() => map.update(u32(1), Buffer.alloc(4)), RangeError, 'a value of the wrong size is refused before the kernel');
  t.throws(() => map.lookupPerCpu(u32(1)), TypeError, 'per-CPU access on a plain map is refused');

  const keys = [...map.keys()].map((k) => k.readUInt32LE(0)).sort((a, b) => a - b);
  t.same(keys, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  // A batch of 5 takes three rounds for 12 elements.
  const batch = map.lookupBatch(5).map(([k, v]) => [k.readUInt32LE(0), v.readBigUInt64LE(0)] as const);
  t.equal(batch.length, 12);
  t.same(new Map(batch).get(1), 11n);
  t.same(new Map(batch).get(7), 700n);

  t.equal(map.delete(u32(7)), true);
  t.equal(map.delete(u32(7)), false, 'deleting a missing key says so');
  t.equal(map.lookup(u32(7)), null);

  const typed = map.typed(codecs.u32, codecs.u64);
  t.equal(typed.get(2), 200n);
  t.equal(typed.get(7), undefined);
  typed.set(7, 7n);
  t.same(
    typed
      .entries()
      .sort(([a], [b]) => a - b)
      .slice(0, 3),
    [
      [1, 11n],
      [2, 200n],
      [3, 300n],
    ],
  );
  t.throws(() => map.typed(codecs.u64, codecs.u64), /codecs for 8-byte keys/);

  using array = FdMap.create(BPF_MAP_TYPE_ARRAY, 'libtest_array', 4, 4, 3);
  array.update(u32(2), u32(99));
  t.same(
    array.lookupBatch().map(([k, v]) => [k.readUInt32LE(0), v.readUInt32LE(0)]),
    [
      [0, 0],
      [1, 0],
      [2, 99],
    ],
    'arrays batch in key order',
  );
});

t.test('per-CPU maps: one value per possible CPU', async (t) => {
  const cpus = possibleCpus();
  t.equal(cpus, Number(readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim().split('-').pop()) + 1);
  // 12-byte values: each CPU's copy is padded to 16 in the kernel's buffer.
  using map = FdMap.create(BPF_MAP_TYPE_PERCPU_ARRAY, 'libtest_percpu', 4, 12, 2);
  t.ok(map.perCpu);
  const values = Array.from({ length: cpus }, (_, i) => Buffer.alloc(12, i + 1));
  map.updatePerCpu(u32(1), values);
  t.same(map.lookupPerCpu(u32(1)), values);
  t.same(
    map.lookupPerCpu(u32(0)),
    Array.from({ length: cpus }, () => Buffer.alloc(12)),
  );
  t.throws(() => map.lookup(u32(1)), /is per-CPU: use lookupPerCpu/);
  t.throws(() => map.updatePerCpu(u32(1), values.slice(1)), RangeError, 'one value per possible CPU is required');
  const batch = map.lookupBatchPerCpu();
  t.equal(batch.length, 2);
  t.same(batch[1][1], values);
});

t.test('iterator links: read without pinning (BPF_ITER_CREATE) and pinned', async (t) => {
  const obj = loaded(t);
  using link = obj.program('list_maps').attachIter();
  const countsId = mapInfo(obj.map('counts').fd).id;
  const text = link.read().toString();
  t.match(text, new RegExp(`^${countsId} counts$`, 'm'), 'the iterator lists our map');
  const listed = text.trimEnd().split('\n');
  t.ok(
    listed.every((l) => /^\d+ [\w.]*$/.test(l)),
    'each line is "id name"',
  );
  const ours = [...obj.maps.values()].map((m) => `${mapInfo(m.fd).id} ${mapInfo(m.fd).name}`);
  t.same(listed.filter((l) => ours.includes(l)).sort(), ours.sort(), 'every map of the object is listed');
  const ids = listed.map((l) => Number(l.split(' ')[0]));
  t.same(
    ids,
    [...ids].sort((a, b) => a - b),
    'in id order, as the kernel walks them',
  );
  t.ok(mapIds().includes(countsId), 'the map ids the kernel lists include it');
  t.equal(link.info().type, BPF_LINK_TYPE_ITER);

  const { dir } = privateBpffs(t);
  const pin = join(dir, 'maps');
  link.pin(pin);
  t.match(spawnSync('cat', [pin], { encoding: 'utf8' }).stdout, new RegExp(`^${countsId} counts$`, 'm'), 'the pinned file reads the same');
  using pinned = FdLink.fromPin(pin);
  t.equal(pinned.info().id, link.info().id, 'the pin holds the same link');
  t.match(pinned.read().toString(), new RegExp(`^${countsId} counts$`, 'm'));
});

t.test('an IteratorReader reads what read() does, grows past its buffers, and keeps the last two reads', async (t) => {
  const obj = loaded(t);
  using link = obj.program('list_maps').attachIter();
  using more = obj.program('list_maps').attachIter();
  const countsId = mapInfo(obj.map('counts').fd).id;
  // The listing is of every map on the machine, so a map freed or made between
  // two reads changes it: the kernel frees a closed object's maps a little
  // after the close (the last subtest's, here), and other processes load
  // objects. An attempt whose listings differ is made again, with a new
  // reader, up to 5 times; a reader that lost or changed bytes differs every time.
  const { result, attempts } = await readAgreeing(
    () => {
      // 16 bytes to start with: every read of the listing outgrows it.
      const reader = new IteratorReader(16);
      const first = reader.read(link.fd);
      const firstCopy = Buffer.from(first);
      const viaRead = link.read();
      const second = reader.read(more.fd);
      return { first, firstCopy, viaRead, second };
    },
    (r) => r.firstCopy.equals(r.viaRead) && r.second.equals(r.firstCopy),
  );
  const { first, firstCopy, viaRead, second } = result;
  t.equal(firstCopy.toString(), viaRead.toString(), `the same bytes as read() (attempt ${attempts} of at most 5)`);
  t.match(firstCopy.toString(), new RegExp(`^${countsId} counts$`, 'm'));
  t.equal(second.toString(), firstCopy.toString(), 'a second read, of another link of the same program, is the same listing');
  t.same(first, firstCopy, "the first read's bytes are intact after the second");
  t.not(second.buffer, first.buffer, 'the two reads are in different buffers');
});

t.test('tp_btf, raw tracepoint and kprobe links count forks; info by fd and by id', async (t) => {
  const obj = loaded(t);
  const counts = obj.map('counts').typed(codecs.u32, codecs.u64);
  const links = [obj.program('on_newtask').attach(), obj.program('on_raw_tp').attachRawTracepoint('task_newtask')];
  // Kernels built without CONFIG_KPROBES (this test host's) have no kprobe PMU.
  const kprobes = existsSync('/sys/bus/event_source/devices/kprobe');
  if (kprobes) links.push(obj.program('on_kprobe').attachKprobe('kernel_clone'));
  else t.comment('kprobe: skipped, the kernel has no kprobes (no /sys/bus/event_source/devices/kprobe)');
  t.teardown(() => links.forEach((l) => l.destroy()));
  forkSome();
  const kinds: [string, number][] = [
    ['tp_btf', KEY.tpBtf],
    ['raw tracepoint', KEY.rawTp],
  ];
  if (kprobes) kinds.push(['kprobe', KEY.kprobe]);
  for (const [what, key] of kinds) {
    t.ok((counts.get(key) ?? 0n) >= 3n, `${what} program ran for each fork (${counts.get(key)})`);
  }
  const perCpu = obj.map('percpu_hits').typed(codecs.u32, codecs.u64).getPerCpu(0) ?? [];
  t.equal(perCpu.length, possibleCpus());
  t.ok(perCpu.reduce((a, b) => a + b, 0n) >= 3n, 'per-CPU counts add up to the forks');

  for (const link of links) {
    const info = link.info();
    t.ok(linkIds().includes(info.id), `link ${link.name} listed by id`);
    t.same(linkInfoById(info.id), info, `link ${link.name}: same info by id as by fd`);
    const prog = progInfo(obj.program(link.name).fd);
    t.equal(info.progId, prog.id, `link ${link.name} holds its program`);
    t.same(progInfoById(prog.id), prog, `program ${link.name}: same info by id as by fd`);
    t.equal(prog.name, link.name.slice(0, 15));
  }
  const countsInfo = mapInfo(obj.map('counts').fd);
  t.same(mapInfoById(countsInfo.id), countsInfo);
  t.same([countsInfo.name, countsInfo.keySize, countsInfo.valueSize, countsInfo.maxEntries], ['counts', 4, 8, 64]);
  t.ok(progInfo(obj.program('on_newtask').fd).mapIds.includes(countsInfo.id), "the program's map ids name the map");

  const err = t.throws(() => obj.program('on_kprobe').attachKprobe('no_such_kernel_function_xyz')) as LibbpfError;
  t.type(err, LibbpfError);
  t.match(err.message, /^attach on_kprobe as kprobe on no_such_kernel_function_xyz: E/);
});

t.test('release: using, destroy and close leave nothing loaded', async (t) => {
  let progId: number;
  let linkId: number;
  {
    using obj = BpfObject.openFile(LIBRARY);
    obj.load();
    using link = obj.program('on_newtask').attach();
    progId = progInfo(obj.program('on_newtask').fd).id;
    linkId = link.info().id;
  }
  t.ok(await eventually(() => !progIds().includes(progId)), 'program unloaded at the end of the block');
  t.notOk(linkIds().includes(linkId), 'link gone');
  const obj = BpfObject.openFile(LIBRARY);
  obj.load();
  const link = obj.program('on_newtask').attach();
  link.destroy();
  link.destroy();
  t.throws(() => link.fd, /used after destroy/);
  obj.close();
  obj.close();
  t.throws(() => obj.program('on_newtask').attach(), /used after close/);
});
