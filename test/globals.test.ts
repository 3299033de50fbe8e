// Typed globals through a generated skeleton, on the real kernel: values set
// in .rodata before load reach the program, which writes .bss, .data and a
// custom .data.NAME section; TypeScript reads them back, and writes .bss.
// Maps with plain keys and values come typed (skel.typed), through the
// kernel and the program both ways; the others stay bytes.
import t from 'tap';
import type { Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateSkeleton } from '../src/gen/skeleton.js';
import { possibleCpus, readIterator } from '../src/libbpf/index.js';

const bytes = readFileSync('dist/fixtures/globals.bpf.o');
const text = generateSkeleton({ bytes, name: 'globals', libbpfImport: resolve('src/libbpf/index.js') });

t.test('the generated skeleton types every kind of global', async (t) => {
  for (const line of [
    'export interface GlobalsRodata {',
    '  step: number;',
    '  big: bigint;',
    '  verbose: boolean;',
    '  greeting: string;',
    '  ports: ReadonlyArray<number>;',
    '  ratio: number;',
    '    readonly at: ReadonlyArray<{',
    'export interface GlobalsBss {',
    '  packed: Uint8Array;',
    '  either: Uint8Array;',
    '  pointer: Uint8Array;',
    'export interface GlobalsRodataLimits {',
    'export interface GlobalsDataStats {',
    "export type GlobalsMap = 'points' | 'totals' | 'per_cpu' | 'events' | 'configs' | 'unions' | 'rodata' | 'data' | 'rodata.limits' | 'data.stats' | 'bss';",
    'export type GlobalsPointsKey = number;',
    'export type GlobalsTotalsValue = bigint;',
    'export type GlobalsConfigsKey = {',
    '  readonly label: string;',
    'export interface GlobalsTypedMaps {',
    '  readonly points: TypedMap<GlobalsPointsKey, GlobalsPointsValue>;',
    '  readonly per_cpu: TypedMap<GlobalsPerCpuKey, GlobalsPerCpuValue>;',
    '  readonly configs: TypedMap<GlobalsConfigsKey, GlobalsConfigsValue>;',
    '  readonly typed: GlobalsTypedMaps;',
    '  MODE_LOUD: 7,',
    '  readonly rodata_limits: GlobalsRodataLimits;',
  ]) {
    t.ok(text.includes(`${line}\n`), line.trim());
  }
  for (const bytesOnly of ['events', 'unions']) {
    t.notMatch(text, `GlobalsTypedMaps {[^}]*readonly ${bytesOnly}:`, `${bytesOnly} has no typed view`);
  }
});

/** The generated module, written to a directory the test removes, imported. */
async function importSkeleton(t: Test) {
  const dir = mkdtempSync(resolve('.globals-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'globals.skel.ts');
  writeFileSync(file, text);
  return await import(file);
}

t.test('globals round-trip between TypeScript and the program', async (t) => {
  const { GlobalsSkeleton, Mode } = await importSkeleton(t);
  const skel = GlobalsSkeleton.open();
  t.teardown(() => skel.destroy());

  // initial values, as the C gives them
  t.equal(skel.rodata.step, 1);
  t.equal(skel.rodata.tiny, -3);
  t.equal(skel.rodata.big, 0x123456789abcdefn);
  t.equal(skel.rodata.verbose, false);
  t.equal(skel.rodata.mode, Mode.MODE_ON);
  t.equal(skel.rodata.greeting, 'hello');
  t.same(skel.rodata.cfg, {
    level: 2,
    port: 8080,
    flags: 0,
    offset: 0n,
    on: false,
    label: 'cfg',
    at: [
      { x: 1, y: 2 },
      { x: 3, y: 4 },
    ],
  });
  t.same(skel.rodata.ports, [22, 80, 443]);
  t.equal(skel.rodata.ratio, 0.5);
  t.equal(skel.rodata_limits.limit, 42);
  t.equal(skel.data.total, 100n);
  t.equal(skel.data.negative, -5);
  t.equal(skel.data.name, 'data');
  t.equal(skel.data_stats.hits, 7n);
  t.equal(skel.bss.seen, 0n);
  t.same(skel.bss.packed, new Uint8Array(4));

  // wrong values are refused, naming the variable
  t.throws(() => (skel.rodata.step = -1), { message: /^\.rodata step: expected an integer from 0 to 4294967295, got -1$/ });
  t.throws(() => (skel.rodata.big = 1), { message: /^\.rodata big: expected a bigint/ });
  t.throws(() => (skel.rodata.greeting = 'far too long for sixteen'), { message: /at most 15 bytes/ });
  t.throws(() => (skel.rodata.ports = [1, 2]), { message: /an array of 3/ });
  t.throws(() => (skel.rodata.cfg.level = 1), TypeError, 'struct values are copies, frozen: set the whole struct');
  t.throws(() => skel.links.record, { message: /program record has no link \(attach\(\) not called/ });

  const cfg = {
    level: 9,
    port: 65535,
    flags: 0xdeadbeef,
    offset: -9n,
    on: true,
    label: 'set from ts',
    at: [
      { x: -1, y: 2 },
      { x: 3, y: -4 },
    ],
  };
  skel.rodata.step = 5;
  skel.rodata.tiny = -4;
  skel.rodata.big = 2n ** 63n;
  skel.rodata.verbose = true;
  skel.rodata.cfg = cfg;
  skel.rodata.greeting = 'hi there';
  skel.rodata.ports = [1, 2, 3];
  skel.rodata_limits.limit = 10;
  skel.data.total = 1000n;
  skel.data_stats.hits = 1n;
  t.equal(skel.rodata.step, 5, 'read back before load');
  t.same(skel.rodata.cfg, cfg);

  skel.load();
  t.throws(() => (skel.rodata.step = 2), { message: '.rodata of globals is read-only once loaded: set it between open() and load()' });
  t.equal(skel.rodata.step, 5, '.rodata after load: the kernel map, as set');
  const links = skel.attach();
  const listing = readIterator(links.record.fd);
  t.equal(listing.length, 0, 'the program prints nothing');

  t.ok(skel.bss.seen > 0n, `the program counted ${skel.bss.seen} maps`);
  t.equal(skel.bss.fired, true, 'verbose reached the program');
  t.same(skel.bss.counts, [0, 5, 0, -4], 'step by mode, tiny * delta');
  t.same(skel.bss.echo, cfg, 'the struct came back whole');
  t.equal(skel.bss.greeting_echo, 'hi there');
  t.equal(skel.bss.big_echo, 2n ** 63n + 3n, '64-bit values stay exact');
  t.equal(skel.data.total, 1005n, '.data: written by both sides');
  t.equal(skel.data_stats.hits, 11n, 'a custom .data.NAME section, with a custom .rodata.NAME input');

  skel.bss.seen = 0n;
  skel.data.total = 0n;
  t.equal(skel.bss.seen, 0n, '.bss written from TypeScript after load');
  readIterator(links.record.fd);
  t.ok(skel.bss.seen > 0n, 'and the program counts again from there');
  t.equal(skel.data.total, 5n);
});

t.test('typed maps: keys and values as JS values, through the kernel and the program', async (t) => {
  const { GlobalsSkeleton } = await importSkeleton(t);
  const skel = GlobalsSkeleton.open();
  t.teardown(() => skel.destroy());
  t.same(
    Object.keys(skel.typed),
    ['points', 'totals', 'per_cpu', 'configs'],
    'the maps with plain keys and values; not the ring buffer, not the map of unions',
  );
  t.equal(skel.maps.unions.valueSize, 4, 'the map of unions is there, as bytes');
  skel.load();

  const { points, totals, per_cpu: perCpu, configs } = skel.typed;
  points.set(1, { x: -7, y: 8 });
  points.set(2, { x: 1, y: 2 });
  t.same(points.get(1), { x: -7, y: 8 }, 'a struct value read back');
  t.equal(points.get(3), undefined, 'no such key');
  t.same([...points.keys()].sort(), [1, 2]);
  t.equal(points.delete(2), true);
  t.equal(points.delete(2), false, 'deleted once');
  t.same([...(skel.maps.points.lookup(Buffer.from([1, 0, 0, 0])) ?? [])], [0xf9, 0xff, 0xff, 0xff, 8, 0, 0, 0], 'skel.maps keeps the bytes');

  const at = { x: 3, y: -4 };
  const cfg = {
    level: 1,
    port: 443,
    flags: 7,
    offset: -(2n ** 40n),
    on: true,
    label: 'in a map',
    at: [
      { x: 5, y: 6 },
      { x: -7, y: -8 },
    ],
  };
  configs.set(at, cfg);
  t.same(configs.get(at), cfg, 'a struct key, a nested struct value');
  t.same(configs.entries(), [[at, cfg]]);

  t.throws(() => points.set(1, { x: 1.5, y: 0 }), { message: 'map points value.x: expected an integer from -2147483648 to 2147483647, got 1.5' });
  t.throws(() => totals.set(0, 1), { message: /^map totals value: expected a bigint/ });
  t.throws(() => configs.set({ x: 1 }, cfg), { message: 'map configs key: expected an object with field y, got [object Object]' });
  t.throws(() => perCpu.get(0), { message: /per_cpu is per-CPU: use getPerCpu$/ });

  totals.set(0, 2n ** 64n - 10n);
  const cpus = possibleCpus();
  perCpu.setPerCpu(
    0,
    Array.from({ length: cpus }, (_, i) => ({ x: 100, y: i })),
  );
  t.same(
    perCpu.getPerCpu(0),
    Array.from({ length: cpus }, (_, i) => ({ x: 100, y: i })),
    `one value per possible CPU (${cpus})`,
  );

  readIterator(skel.attach().record.fd);
  t.same(skel.bss.point_echo, { x: -7, y: 8 }, 'the program read the struct TypeScript set');
  t.equal(totals.get(0), 2n ** 64n - 9n, 'and added to the u64 TypeScript set, which reads it back exact');
  const after = perCpu.getPerCpu(0);
  t.equal(
    after.reduce((sum: number, v: { x: number }) => sum + v.x, 0),
    100 * cpus + 1,
    'the CPU it ran on added one to its own value',
  );
  t.same(
    after.map((v: { y: number }) => v.y),
    Array.from({ length: cpus }, (_, i) => i),
    'the other fields untouched',
  );
});
