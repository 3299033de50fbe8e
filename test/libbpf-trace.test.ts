// What a tracer needs beyond the basics, against the real kernel: uprobes and
// uretprobes on a function of a small binary this test builds (by path and
// symbol, as bpf_program__attach_uprobe_opts finds it), a perf_event program
// sampling the CPU clock, a cgroup program on a cgroup this test makes, pins
// and unpins of programs and maps, map freeze, lookup-and-delete (including
// a queue's pop) and batch update and delete.
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_QUEUE,
  BpfObject,
  FdMap,
  KeyNotFoundError,
  LibbpfError,
  PerfSoftware,
  PerfType,
  SysError,
  codecs,
  openPerfEvent,
  mapInfo,
  objGet,
  progInfo,
  withFd,
} from '../src/libbpf/index.js';
import { privateBpffs } from './lib/bpffs.js';
import { fixture } from './lib/fixtures.js';

const u32 = (n: number) => Buffer.from(codecs.u32.encode(n));
const u64 = (n: bigint) => Buffer.from(codecs.u64.encode(n));

// target(i) returns i * 10; main calls it once per argument, after a line
// on stdin if the first argument is "wait".
const TARGET_C = `
#include <stdio.h>
#include <string.h>
__attribute__((noinline)) int target(int i) { __asm__ volatile(""); return i * 10; }
int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "wait")) getchar();
  for (int i = 1; i < argc; i++) target(i);
  return 0;
}
`;

/** `source` compiled with gcc into a temporary directory the test removes; returns the binary's path. */
function compile(t: Test, name: string, source: string): string {
  const dir = mkdtempSync('/tmp/libbpftrace');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, `${name}.c`), source);
  const binary = join(dir, name);
  const cc = spawnSync('gcc', ['-O1', '-o', binary, join(dir, `${name}.c`)], { encoding: 'utf8' });
  t.equal(cc.status, 0, cc.stderr);
  return binary;
}

/** The tracer fixture, loaded, and its `seen` counters; closed when the test ends. */
function tracer(t: Test) {
  const obj = BpfObject.openFile(fixture('tracer'));
  t.teardown(() => obj.close());
  obj.load();
  return { obj, seen: obj.map('seen').typed(codecs.u32, codecs.u64) };
}

// Kernels built without CONFIG_UPROBES have no uprobe PMU.
const uprobes = existsSync('/sys/bus/event_source/devices/uprobe');

t.test(
  'uprobe and uretprobe on a function of a binary, by path and symbol',
  { skip: uprobes ? false : 'the kernel has no uprobes (no /sys/bus/event_source/devices/uprobe)' },
  async (t) => {
    const binary = compile(t, 'target', TARGET_C);
    const { obj, seen } = tracer(t);
    {
      using call = obj.program('on_call').attachUprobe(binary, 'target');
      using ret = obj.program('on_return').attachUprobe(binary, 'target', { retprobe: true });
      t.equal(spawnSync(binary, ['a', 'b', 'c', 'd']).status, 0);
      t.equal(seen.get(0), 4n, 'the uprobe ran once per call');
      t.equal(seen.get(1), 100n, 'the uretprobe saw each return value (10 + 20 + 30 + 40)');
      t.ok(call.info().id > 0 && ret.info().id > 0);
    }
    t.equal(spawnSync(binary, ['a']).status, 0);
    t.equal(seen.get(0), 4n, 'destroyed links see no more calls');

    // Only one process: another one's calls are not counted.
    const waiting = spawn(binary, ['wait', 'x', 'y'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = new Promise((resolve) => waiting.on('close', resolve));
    {
      using _ = obj.program('on_call').attachUprobe(binary, 'target', { pid: waiting.pid });
      t.equal(spawnSync(binary, ['a', 'b']).status, 0);
      waiting.stdin.end('\n');
      t.equal(await exited, 0);
    }
    t.equal(seen.get(0), 4n + 3n, "with pid: only that process's three calls");
    const err = t.throws(() => obj.program('on_call').attachUprobe(binary, 'no_such_function')) as LibbpfError;
    t.type(err, LibbpfError);
    t.match(err.message, new RegExp(`^attach on_call as uprobe on no_such_function in ${binary}: E`));
    t.equal((t.throws(() => obj.program('on_call').attachUprobe(`${binary}-missing`, 'target')) as LibbpfError).code, 'ENOENT');
  },
);

// A USDT probe as <sys/sdt.h>'s STAP_PROBE makes one (without arguments): a
// nop, and a .note.stapsdt entry naming it, written out here so the test
// needs no systemtap headers.
const USDT_C = `
#define PROBE(provider, name) __asm__ __volatile__ ( \\
  "990: nop\\n" \\
  ".pushsection .note.stapsdt,\\"?\\",\\"note\\"\\n" \\
  ".balign 4\\n" \\
  ".4byte 992f-991f, 994f-993f, 3\\n" \\
  "991: .asciz \\"stapsdt\\"\\n" \\
  "992: .balign 4\\n" \\
  "993: .8byte 990b\\n" \\
  ".8byte _.stapsdt.base\\n" \\
  ".8byte 0\\n" \\
  ".asciz \\"" #provider "\\"\\n" \\
  ".asciz \\"" #name "\\"\\n" \\
  ".asciz \\"\\"\\n" \\
  "994: .balign 4\\n" \\
  ".popsection\\n" \\
  ".ifndef _.stapsdt.base\\n" \\
  ".pushsection .stapsdt.base,\\"aG\\",\\"progbits\\",.stapsdt.base,comdat\\n" \\
  ".weak _.stapsdt.base\\n" \\
  ".hidden _.stapsdt.base\\n" \\
  "_.stapsdt.base: .space 1\\n" \\
  ".size _.stapsdt.base, 1\\n" \\
  ".popsection\\n" \\
  ".endif\\n")
int main(int argc, char **argv) { for (int i = 1; i < argc; i++) PROBE(libbpftest, tick); return 0; }
`;

t.test(
  'a USDT program on a probe of a binary, by provider and name',
  { skip: uprobes ? false : 'the kernel has no uprobes (USDT probes are uprobes)' },
  async (t) => {
    const binary = compile(t, 'probed', USDT_C);
    const { obj, seen } = tracer(t);
    {
      using _ = obj.program('on_tick').attachUsdt(binary, 'libbpftest', 'tick');
      t.equal(spawnSync(binary, ['a', 'b', 'c']).status, 0);
    }
    t.equal(seen.get(5), 3n, 'the program ran at each hit of the probe');
    const err = t.throws(() => obj.program('on_tick').attachUsdt(binary, 'libbpftest', 'no_such_probe')) as LibbpfError;
    t.type(err, LibbpfError);
    t.match(err.message, new RegExp(`^attach on_tick to USDT libbpftest:no_such_probe in ${binary}: E`));
  },
);

t.test('a perf_event program samples the CPU clock of this thread', async (t) => {
  using obj = BpfObject.openFile(fixture('tracer'));
  obj.load();
  const seen = obj.map('seen').typed(codecs.u32, codecs.u64);
  const perfFd = openPerfEvent({ type: PerfType.Software, config: PerfSoftware.CpuClock, frequency: 1000, pid: 0 });
  {
    using _ = obj.program('on_sample').attachPerfEvent(perfFd);
    closeSync(perfFd); // the link holds its own
    const until = performance.now() + 300;
    while (performance.now() < until); // 300 ms on the CPU, sampled at 1 kHz
  }
  const samples = seen.get(2) ?? 0n;
  t.ok(samples >= 30n, `the program ran on samples (${samples} in 300 ms at 1 kHz)`);
  const err = t.throws(() => openPerfEvent({ pid: -1, cpu: -1 })) as SysError;
  t.type(err, SysError);
  t.equal(err.code, 'EINVAL', 'every process on every CPU is not a perf event');
});

t.test('a cgroup program refuses sockets to the processes of its cgroup, and only those', async (t) => {
  const root = '/sys/fs/cgroup/unified';
  const dir = mkdtempSync(join(root, 'libbpftest'));
  t.teardown(() => rmdirSync(dir));
  using obj = BpfObject.openFile(fixture('tracer'));
  obj.load();
  const seen = obj.map('seen').typed(codecs.u32, codecs.u64);
  const cgroupFd = openSync(dir, 'r');
  // bash opens a TCP socket for a redirection from /dev/tcp: here, to a closed port.
  const connect = (inCgroup: boolean) =>
    spawnSync('bash', ['-c', `${inCgroup ? `echo $$ > ${dir}/cgroup.procs && ` : ''}exec 3<>/dev/tcp/127.0.0.1/9`], { encoding: 'utf8' });
  {
    using _ = obj.program('refuse_socket').attachCgroup(cgroupFd);
    closeSync(cgroupFd);
    const inside = connect(true);
    t.not(inside.status, 0);
    t.match(inside.stderr, /Operation not permitted/, 'inside the cgroup: no socket');
    t.equal(seen.get(3), 1n, 'the program refused one');
    const outside = connect(false);
    t.match(outside.stderr, /Connection refused/, 'outside it: a socket, and the port is closed');
    t.equal(seen.get(3), 1n);
  }
  t.match(connect(true).stderr, /Connection refused/, 'once the link is gone, sockets again');
});

t.test('a tracepoint program, by category and name and as its section says', async (t) => {
  // libbpf reads tracepoint ids from tracefs, which this machine does not
  // mount: the attaching runs in a private mount namespace that mounts it
  // (gone with the namespace).
  const r = spawnSync(
    'unshare',
    [
      '-m',
      'sh',
      '-c',
      `mount -t tracefs nodev /sys/kernel/tracing && exec ${process.execPath} build/run.mjs test/lib/tracepoint-child.ts ${fixture('tracer')}`,
    ],
    { encoding: 'utf8' },
  );
  t.equal(r.status, 0, r.stderr);
  const { counts, section } = JSON.parse(r.stdout || '{}') as { counts: number[]; section: string };
  t.equal(section, 'tracepoint/task/task_newtask');
  t.ok(counts[0] >= 3, `attachTracepoint('task', 'task_newtask'): ${counts[0]} new tasks seen for 3 forks`);
  t.ok(counts[1] >= 3, `attach(): ${counts[1]} new tasks seen for 3 forks`);
});

t.test('programs and maps pin and unpin; the pins hold the same objects', async (t) => {
  const { dir } = privateBpffs(t);
  using obj = BpfObject.openFile(fixture('tracer'));
  obj.load();
  const prog = obj.program('on_call');
  const map = obj.map('seen');
  const progPin = join(dir, 'prog');
  const mapPin = join(dir, 'map');
  prog.pin(progPin);
  map.pin(mapPin);
  t.equal(
    withFd(objGet(progPin), (fd) => progInfo(fd).id),
    progInfo(prog.fd).id,
    'the program pin holds the program',
  );
  using pinned = FdMap.fromPin(mapPin);
  t.equal(mapInfo(pinned.fd).id, mapInfo(map.fd).id, 'the map pin holds the map');
  prog.unpin(progPin);
  map.unpin(mapPin);
  t.notOk(existsSync(progPin) || existsSync(mapPin), 'unpin removes both');
  const err = t.throws(() => map.unpin(mapPin)) as LibbpfError;
  t.equal(err.code, 'ENOENT', 'unpinning what is not there says so');
});

t.test('freeze: user space can no longer write the map, and still reads it', async (t) => {
  using map = FdMap.create(BPF_MAP_TYPE_ARRAY, 'tracetest_frz', 4, 8, 2);
  map.update(u32(1), u64(7n));
  map.freeze();
  const err = t.throws(() => map.update(u32(1), u64(8n))) as SysError;
  t.type(err, SysError);
  t.equal(err.code, 'EPERM');
  t.same(map.lookup(u32(1)), u64(7n));
});

t.test('lookupAndDelete: the value, gone in the same step; a queue pops in order', async (t) => {
  using hash = FdMap.create(BPF_MAP_TYPE_HASH, 'tracetest_lad', 4, 8, 4);
  hash.update(u32(1), u64(11n));
  t.same(hash.lookupAndDelete(u32(1)), u64(11n));
  t.equal(hash.lookup(u32(1)), null, 'deleted');
  t.equal(hash.lookupAndDelete(u32(1)), null, 'a missing key: null');
  using queue = FdMap.create(BPF_MAP_TYPE_QUEUE, 'tracetest_q', 0, 8, 4);
  const none = Buffer.alloc(0);
  for (const v of [1n, 2n, 3n]) queue.update(none, u64(v));
  t.same([queue.lookupAndDelete(none), queue.lookupAndDelete(none)], [u64(1n), u64(2n)], 'first in, first out');
});

t.test('updateBatch and deleteBatch', async (t) => {
  using map = FdMap.create(BPF_MAP_TYPE_HASH, 'tracetest_bat', 4, 8, 32);
  const keys = Array.from({ length: 10 }, (_, i) => u32(i));
  map.updateBatch(
    keys,
    keys.map((_, i) => u64(BigInt(i * 100))),
  );
  const all = () => new Map(map.lookupBatch().map(([k, v]) => [k.readUInt32LE(0), v.readBigUInt64LE(0)]));
  t.equal(all().size, 10);
  t.equal(all().get(7), 700n);
  map.deleteBatch(keys.slice(0, 6));
  t.same([...all().keys()].sort(), [6, 7, 8, 9]);
  const err = t.throws(() => map.deleteBatch([u32(0)])) as SysError;
  t.type(err, KeyNotFoundError, 'deleting a missing key fails the batch');
  t.equal(err.code, 'ENOENT');
  t.throws(() => map.updateBatch(keys, []), RangeError, 'keys and values must pair up');
});
