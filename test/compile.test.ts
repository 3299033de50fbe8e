// Compiling BPF C: objects keep BTF and lose DWARF, the same source gives the
// same bytes, failures are one line, and the iterator object holds what the
// runner relies on (its three programs, the marker in .rodata) and loads on
// this kernel.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CompileError, compileBpf, targetArch } from '../build/compile.js';
import { BpfObject, kernelHasFunction } from '../src/libbpf/index.js';
import { MARKER, OBJECT_NAME } from '../src/preload/names.js';
import { ELEM_COUNT_KFUNC } from '../src/preload/iterators.js';

const ITERATORS = 'bpf/iterators.bpf.c';

function scratch(t: Test): string {
  const dir = mkdtempSync('/tmp/bpfpcompile');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function sections(object: string): string[] {
  const r = spawnSync('llvm-objdump', ['-h', object], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`llvm-objdump -h ${object}: ${r.stderr}`);
  return [...r.stdout.matchAll(/^\s*\d+ (\S+)/gm)].map((m) => m[1]);
}

t.test('architecture names follow libbpf', async (t) => {
  t.equal(targetArch('x86_64'), 'x86');
  t.equal(targetArch('aarch64'), 'arm64');
  t.equal(targetArch('s390x'), 's390');
  t.equal(targetArch('ppc64le'), 'powerpc');
  t.equal(targetArch('riscv64'), 'riscv');
});

t.test('objects keep BTF, lose DWARF, and do not depend on where they are built', async (t) => {
  const dir = scratch(t);
  await compileBpf(ITERATORS, join(dir, 'a.bpf.o'));
  await compileBpf(ITERATORS, join(dir, 'b.bpf.o'));
  const a = readFileSync(join(dir, 'a.bpf.o'));
  t.ok(a.equals(readFileSync(join(dir, 'b.bpf.o'))), 'same source, same bytes');

  // A copy of the source (and the header it includes) elsewhere: no path of
  // ours may end up in the object.
  const copy = join(dir, 'iterators.bpf.c');
  writeFileSync(copy, readFileSync(ITERATORS));
  writeFileSync(join(dir, 'kernel_objects.h'), readFileSync(join(dirname(ITERATORS), 'kernel_objects.h')));
  await compileBpf(copy, join(dir, 'c.bpf.o'));
  t.ok(a.equals(readFileSync(join(dir, 'c.bpf.o'))), 'same bytes from another directory');
  t.notOk(a.includes(process.cwd()), 'the checkout path is not recorded');

  const names = sections(join(dir, 'a.bpf.o'));
  t.ok(names.includes('.BTF') && names.includes('.BTF.ext'), `.BTF and .BTF.ext kept: ${names.join(' ')}`);
  t.same(
    names.filter((n) => n.startsWith('.debug')),
    [],
    'no DWARF',
  );
});

t.test('the iterator object: programs, sections and the marker in .rodata', async (t) => {
  const dir = scratch(t);
  const file = join(dir, 'iterators.bpf.o');
  await compileBpf(ITERATORS, file);
  const obj = BpfObject.openMem(readFileSync(file), { name: OBJECT_NAME });
  t.teardown(() => obj.close());
  const progs = Object.fromEntries([...obj.programs.values()].map((p) => [p.name, p.sectionName]));
  t.same(progs, { dump_bpf_map: 'iter/bpf_map', dump_bpf_map_compat: 'iter/bpf_map', dump_bpf_prog: 'iter/bpf_prog' });

  const btf = spawnSync('bpftool', ['btf', 'dump', 'file', file], { encoding: 'utf8' });
  t.equal(btf.status, 0, btf.stderr);
  const rodata = /DATASEC '\.rodata'[^\n]*\n((?:\t[^\n]*\n)*)/.exec(btf.stdout)?.[1] ?? '';
  t.match(rodata, /VAR 'bpf_preload_marker'/, 'the marker is a .rodata variable');
  const dump = spawnSync('llvm-objdump', ['-s', '-j', '.rodata', file], { encoding: 'utf8' }).stdout;
  const bytes = Buffer.from([...dump.matchAll(/^ [0-9a-f]{4} ((?:[0-9a-f]{2,8} ?){1,4})/gm)].map((m) => m[1].replace(/ /g, '')).join(''), 'hex');
  t.ok(bytes.includes(Buffer.from(`${MARKER}\0`)), 'the marker string is in .rodata');
});

t.test('each map program loads on the kernel it is meant for', async (t) => {
  const dir = scratch(t);
  const file = join(dir, 'iterators.bpf.o');
  await compileBpf(ITERATORS, file);
  const variants = [['dump_bpf_map_compat', 'dump_bpf_prog']];
  if (kernelHasFunction(ELEM_COUNT_KFUNC)) variants.push(['dump_bpf_map']);
  else t.comment(`no ${ELEM_COUNT_KFUNC} on this kernel: dump_bpf_map not tried`);
  for (const wanted of variants) {
    const obj = BpfObject.openMem(readFileSync(file), { name: OBJECT_NAME });
    try {
      for (const p of obj.programs.values()) p.autoload = wanted.includes(p.name);
      obj.load();
      for (const name of wanted) t.ok(obj.program(name).fd >= 0, `${name} loaded`);
    } finally {
      obj.close();
    }
  }
});

t.test('failures are one line', async (t) => {
  const dir = scratch(t);
  const bad = join(dir, 'broken.bpf.c');
  writeFileSync(bad, '#include <linux/bpf.h>\nint f(void) { return missing + other; }\n');
  const err = await compileBpf(bad, join(dir, 'broken.bpf.o')).catch((e: unknown) => e);
  t.type(err, CompileError);
  const { message, detail } = err as CompileError;
  t.notMatch(message, /\n/, 'one line');
  t.match(message, `clang: ${bad}:2:`, 'names the file and line as given');
  t.match(message, /error: use of undeclared identifier 'missing' \(and 1 more\)$/);
  t.match(detail, /2 errors generated/, 'the full diagnostics are kept');
  t.same(readdirSync(dir), ['broken.bpf.c'], 'no object left behind');

  const saved = process.env.CLANG;
  process.env.CLANG = 'clang-that-does-not-exist';
  t.teardown(() => {
    if (saved === undefined) delete process.env.CLANG;
    else process.env.CLANG = saved;
  });
  await t.rejects(compileBpf(ITERATORS, join(dir, 'x.bpf.o')), {
    message: 'clang-that-does-not-exist not found: run `apt-get install clang llvm`',
  });
  await t.rejects(compileBpf(join(dir, 'nothing.bpf.c'), join(dir, 'x.bpf.o')), { message: /nothing\.bpf\.c: no such file$/ });
});
