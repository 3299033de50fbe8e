// Open and loaded objects are different types (lifecycle.ts): what is allowed
// only before load or only after is a compile-time error in the wrong state.
// tsc (strict) compiles a small program that does each wrong thing under an
// expect-error directive (an unneeded one is itself an error), then the same
// program without them, which must fail at exactly those lines; and at run
// time the typed object is BpfObject's own.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { BpfObject, type LoadedObject } from '../src/libbpf/index.js';
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

t.test('each wrong-state use is a compile-time error, and only those', async (t) => {
  const dir = mkdtempSync(resolve('.lifecycle-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const marked = PROGRAM.split('\n').flatMap((line, i) => (line.startsWith('// @ts-expect-error') ? [i + 1] : []));
  t.equal(marked.length, 11);
  const ok = tsc(dir, PROGRAM);
  t.equal(ok.status, 0, `with the directives, tsc is content (an unneeded one would fail): ${ok.stdout}`);
  // Without them (each replaced by an empty line, so line numbers stay), each marked line fails.
  const bare = tsc(dir, PROGRAM.replace(/^\/\/ @ts-expect-error.*$/gm, ''));
  const failed = [...bare.stdout.matchAll(/check\.ts\((\d+),\d+\): error TS\d+/g)].map((m) => Number(m[1]) - 1);
  t.same([...new Set(failed)], marked, 'without them, tsc fails at exactly the lines after each');
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
