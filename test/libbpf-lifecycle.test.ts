// Open and loaded objects are different types (lifecycle.ts), and so are open
// and loaded skeletons (skeleton.ts, as generated): what is allowed only
// before load or only after is a compile-time error in the wrong state.
// tsc (strict) compiles a small program that does each wrong thing under an
// expect-error directive (an unneeded one is itself an error), then the same
// program without them, which must fail at exactly those lines; and at run
// time the typed object is BpfObject's own, the loaded skeleton the open one.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { BpfObject, type LoadedObject } from '../src/libbpf/index.js';
import { generateSkeleton } from '../src/gen/skeleton.js';
import { fixture } from './lib/fixtures.js';

// Each line after a @ts-expect-error is one wrong thing; the others are right.
const PROGRAM = `import { BpfObject, codecs } from '../src/libbpf/index.js';
const key = Buffer.alloc(4);
const open = BpfObject.open('x.bpf.o');
open.program('p').autoload = false;
open.map('m').maxEntries = 16;
open.map('m').setInitialValue(Buffer.alloc(8));
open.program('p').setAttachTarget(0, 'f');
// @ts-expect-error: no fd before load
open.map('m').fd;
// @ts-expect-error: no elements before load
open.map('m').lookup(key);
// @ts-expect-error: no typed view before load
open.map('m').typed(codecs.u32, codecs.u64);
// @ts-expect-error: no program fd before load
open.program('p').fd;
// @ts-expect-error: nothing to attach before load
open.program('p').attach();
// @ts-expect-error: nothing to run before load
open.program('p').testRun(Buffer.alloc(64));
const loaded = open.load();
loaded.map('m').lookup(key);
loaded.program('p').attach().destroy();
loaded.map('m').fd;
loaded.program('p').autoload;
loaded.map('m').maxEntries;
// @ts-expect-error: the size is the kernel's once loaded
loaded.map('m').maxEntries = 32;
// @ts-expect-error: so is the initial value
loaded.map('m').setInitialValue(Buffer.alloc(8));
// @ts-expect-error: autoload is settled
loaded.program('p').autoload = true;
// @ts-expect-error: and so is the attach target
loaded.program('p').setAttachTarget(0, 'f');
// @ts-expect-error: an object loads once
loaded.load();
loaded.close();
`;

function tsc(dir: string, source: string) {
  const file = join(dir, 'check.ts');
  writeFileSync(file, source);
  const bin = createRequire(resolve('package.json')).resolve('typescript/bin/tsc');
  const args = ['--noEmit', '--strict', '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext'];
  args.push('--lib', 'ES2022,ESNext.Disposable', '--types', 'node', '--skipLibCheck', file);
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
}

// The same for a generated skeleton (of test/fixtures/records.bpf.c: .rodata,
// .bss, a typed map, a record struct), written beside the program.
const SKELETON_PROGRAM = `import { RecordsSkeleton, type RecordsSample } from './records.skel.js';
const open = RecordsSkeleton.open();
open.rodata.first_seq = 5n;
open.progs.send_perf.autoload = false;
open.maps.samples.maxEntries = 1 << 17;
// @ts-expect-error: no .bss before load
open.bss.sent;
// @ts-expect-error: no typed maps before load
open.typed.sent_by_parity.get(0);
// @ts-expect-error: no map fd before load
open.maps.samples.fd;
// @ts-expect-error: no elements before load
open.maps.sent_by_parity.lookup(Buffer.alloc(4));
// @ts-expect-error: no program fd before load
open.progs.send_ring.fd;
// @ts-expect-error: nothing to attach before load
open.attach();
// @ts-expect-error: no links before load
open.links;
// @ts-expect-error: no records before load
open.ringbuf('samples', 'sample');
const skel = open.load();
const sent: bigint = skel.bss.sent;
skel.typed.sent_by_parity.get(0);
skel.maps.samples.fd;
const first: bigint = skel.rodata.first_seq;
skel.ringbuf('samples', 'sample').consume((s: RecordsSample) => s.seq + s.neg);
skel.perfbuf('perf_samples', 'sample').close();
// @ts-expect-error: .rodata is read-only once loaded
skel.rodata.first_seq = 1n;
// @ts-expect-error: autoload is settled
skel.progs.send_ring.autoload = true;
// @ts-expect-error: and so are map sizes
skel.maps.samples.maxEntries = 1;
// @ts-expect-error: a skeleton loads once
skel.load();
// @ts-expect-error: a record has its struct's fields only
skel.ringbuf('samples', 'sample').consume((s) => s.nope);
// @ts-expect-error: and its fields their types
skel.ringbuf('samples', 'sample').consume((s) => s.name.toFixed());
// @ts-expect-error: only the object's record structs
skel.ringbuf('samples', 'pair');
// @ts-expect-error: only the skeleton's maps
skel.ringbuf('nope', 'sample');
// @ts-expect-error: only its ring buffers
skel.ringbuf('perf_samples', 'sample');
// @ts-expect-error: only its perf event arrays
skel.perfbuf('samples', 'sample');
skel.destroy();
console.log(sent, first);
`;

/** tsc with each directive, then without: returns [marked lines, failing lines] after checking the first passes. */
function checkDirectives(t: Test, dir: string, program: string): [number[], number[]] {
  const marked = program.split('\n').flatMap((line, i) => (line.startsWith('// @ts-expect-error') ? [i + 1] : []));
  const ok = tsc(dir, program);
  t.equal(ok.status, 0, `with the directives, tsc is content (an unneeded one would fail): ${ok.stdout}`);
  // Without them (each replaced by an empty line, so line numbers stay), each marked line fails.
  const bare = tsc(dir, program.replace(/^\/\/ @ts-expect-error.*$/gm, ''));
  const failed = [...bare.stdout.matchAll(/check\.ts\((\d+),\d+\): error TS\d+/g)].map((m) => Number(m[1]) - 1);
  return [marked, [...new Set(failed)]];
}

/** A directory the test removes; with `libbpfImport`, records.skel.ts in it, importing the library so. */
function workDir(t: Test, libbpfImport?: string): string {
  const dir = mkdtempSync(resolve('.lifecycle-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  if (libbpfImport !== undefined) {
    writeFileSync(join(dir, 'records.skel.ts'), generateSkeleton({ bytes: readFileSync(fixture('records')), name: 'records', libbpfImport }));
  }
  return dir;
}

t.test('each wrong-state use is a compile-time error, and only those', async (t) => {
  const [marked, failed] = checkDirectives(t, workDir(t), PROGRAM);
  t.equal(marked.length, 11);
  t.same(failed, marked, 'without them, tsc fails at exactly the lines after each');
});

t.test("a generated skeleton's wrong-state uses are compile-time errors, and only those", async (t) => {
  const [marked, failed] = checkDirectives(t, workDir(t, '../src/libbpf/index.js'), SKELETON_PROGRAM);
  t.equal(marked.length, 18);
  t.same(failed, marked, 'without them, tsc fails at exactly the lines after each');
});

t.test("at run time: a skeleton's load() gives the open skeleton itself", async (t) => {
  const { RecordsSkeleton } = await import(join(workDir(t, resolve('src/libbpf/index.js')), 'records.skel.ts'));
  using open = RecordsSkeleton.open();
  open.rodata.first_seq = 7n;
  const loaded = open.load();
  t.equal(loaded, open, 'the same skeleton');
  t.equal(loaded.rodata.first_seq, 7n);
  t.ok(loaded.maps.samples.fd > 0);
});

t.test('at run time: open() and load() give BpfObject itself', async (t) => {
  const open = BpfObject.open(fixture('tracer'));
  t.type(open, BpfObject);
  open.map('seen').maxEntries = 8;
  const loaded: LoadedObject = open.load();
  t.equal(loaded, open, 'the same object');
  t.equal(loaded.map('seen').maxEntries, 8);
  t.ok(loaded.program('on_call').fd > 0);
  loaded.close();
  using fromMemory = BpfObject.open(await import('node:fs').then((fs) => fs.readFileSync(fixture('tracer'))), { name: 'mem' });
  t.equal(fromMemory.name, 'mem');
});
