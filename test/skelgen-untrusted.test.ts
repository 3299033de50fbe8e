// gen skeleton on objects nobody vouches for: names that are code when
// pasted into TypeScript come out as strings, names that cannot be
// TypeScript names are refused, and malformed objects (BTF that loops, an
// object that crashes libbpf itself) end in one line and exit code 1.
// The objects are made here: compiled from C in the test, or a compiled
// fixture patched at a place found by name, never a committed binary.
import t from 'tap';
import type { Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { transformSync } from 'esbuild';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { compileBpf } from '../build/compile.js';
import { BTF_KIND_ARRAY as ARRAY, BTF_KIND_INT as INT, BTF_KIND_VAR as VAR } from '../src/libbpf/sys/uapi.js';
import { CLI, nodeCommand, runCli, runScript, spawnScript, userEnv } from './lib/cli.js';
import { btfType, btfTypes } from './lib/elf.js';
import { fixture } from './lib/fixtures.js';

// the built library (npm test builds it), which the compiled skeleton runs with
const LIBBPF = resolve('dist/libbpf/index.js');

function tempDir(t: Test): string {
  const dir = mkdtempSync(resolve('node_modules/.cache/skeluntrusted'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const PROGRAM = `
SEC("socket")
int prog(void *ctx)
{
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
`;

/** Compiles `globals` (C declarations) with a program beside them into `dir`/NAME.bpf.o. */
async function compile(dir: string, name: string, globals: string): Promise<string> {
  writeFileSync(join(dir, `${name}.bpf.c`), `#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n${globals}\n${PROGRAM}`);
  await compileBpf(join(dir, `${name}.bpf.c`), join(dir, `${name}.bpf.o`));
  return join(dir, `${name}.bpf.o`);
}

/**
 * Compiles a generated skeleton to JavaScript as a project's build would,
 * and runs `body` in a script of its own that has imported it as `m`.
 */
function runImporter(dir: string, skeleton: string, body: string) {
  const compiled = join(dir, 'skel.mjs');
  writeFileSync(compiled, transformSync(skeleton, { loader: 'ts', format: 'esm' }).code);
  const importer = join(dir, 'importer.mjs');
  writeFileSync(importer, `const m = await import(${JSON.stringify(compiled)});\n${body}\n`);
  return runScript(importer, []);
}

const INJECTION = ".data.x */ console.log('INJECTED: runs on import, uid ' + process.getuid()); /*";
// A newline ends a // comment, a quote or backslash a string, ` and ${ a template.
const QUOTES = '.data.q\'"\\\n`${process.exit(3)}`';
const cString = (s: string) => JSON.stringify(s);

t.test('section names that are code stay strings: nothing runs on import', async (t) => {
  const dir = tempDir(t);
  const obj = await compile(
    dir,
    'injection',
    `int injected SEC(${cString(INJECTION)}) = 1;
int quoted SEC(${cString(QUOTES)}) = 2;`,
  );
  const gen = runCli(['gen', 'skeleton', obj, '--import', LIBBPF]);
  t.equal(gen.code, 0, 'gen skeleton exits 0');
  t.equal(gen.stderr, '', 'and prints nothing on stderr');
  // written out by hand, not by the generator's own quoting
  t.ok(
    gen.stdout.includes(`    section: '.data.x */ console.log(\\'INJECTED: runs on import, uid \\' + process.getuid()); /*',\n`),
    'the section name is a string literal',
  );
  t.ok(gen.stdout.includes(`    section: '.data.q\\'"\\\\\\u000a\`\${process.exit(3)}\`',\n`), 'quotes, backslash and newline escaped');
  t.ok(
    gen.stdout.includes(`/** '.data.x *\\/ console.log(\\'INJECTED: runs on import, uid \\' + process.getuid()); /*': read and written`),
    'in a comment it cannot end the comment',
  );

  const skeleton = join(dir, 'injection.skel.ts');
  writeFileSync(skeleton, gen.stdout);
  const imported = runImporter(
    dir,
    gen.stdout,
    `const skel = m.InjectionSkeleton.open();
console.log(JSON.stringify({ sections: Object.values(m.InjectionLayouts).map((l) => l.section), maps: Object.keys(skel.maps) }));
skel.destroy();`,
  );
  t.equal(imported.stderr, '', 'importing it prints nothing on stderr');
  t.equal(imported.code, 0, 'importing it exits 0 (no process.exit(3) ran)');
  t.same(
    JSON.parse(imported.stdout),
    { sections: [INJECTION, QUOTES], maps: [INJECTION.slice(1), QUOTES.slice(1)] },
    'the one line it prints is ours: the names, unchanged',
  );
  t.notMatch(imported.stdout, /INJECTED: runs on import, uid \d/, 'the injected console.log never ran');

  const tsconfig = join(dir, 'tsconfig.json');
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: resolve('tsconfig.json'),
      include: [skeleton],
      compilerOptions: { types: ['node'], typeRoots: [resolve('node_modules/@types')] },
    }),
  );
  const tsc = spawnSync(process.execPath, [resolve('node_modules/typescript/bin/tsc'), '-p', tsconfig], { encoding: 'utf8' });
  t.equal(tsc.status, 0, `the skeleton type-checks: ${tsc.stdout}${tsc.stderr}`);
});

t.test('names that would clash as TypeScript names are refused, one line', async (t) => {
  const dir = tempDir(t);
  const sections = await compile(
    dir,
    'sections',
    `int a SEC(".data.a-b") = 1;
int b SEC(".data.a_b") = 2;`,
  );
  const r = runCli(['gen', 'skeleton', sections]);
  t.same(r, {
    code: 1,
    stdout: '',
    stderr:
      "bpf-preload: sections: section '.data.a_b' gives the TypeScript name 'SectionsDataAB', which is already taken by section '.data.a-b': rename it in the BPF source\n",
  });

  const enums = await compile(
    dir,
    'enums',
    `enum buffer { B_ONE = 1 };
enum buffer used = B_ONE;`,
  );
  t.same(
    runCli(['gen', 'skeleton', enums]),
    {
      code: 1,
      stdout: '',
      stderr:
        "bpf-preload: enums: enum 'buffer' gives the TypeScript name 'Buffer', which is already taken by the generated code: rename it in the BPF source\n",
    },
    'an enum that would hide the Buffer the skeleton uses',
  );
});

t.test('record structs: a name that would clash is refused, and fields named like Object.prototype members stay plain fields', async (t) => {
  const dir = tempDir(t);
  const clash = await compile(dir, 'clash', `struct records { int a; };\nstruct records g;`);
  t.same(
    runCli(['gen', 'skeleton', clash]),
    {
      code: 1,
      stdout: '',
      stderr:
        "bpf-preload: clash: struct 'records' gives the TypeScript name 'ClashRecords', which is already taken by skeleton name 'clash': rename it in the BPF source\n",
    },
    "struct records would take the decoders' name",
  );

  const obj = await compile(dir, 'protos', `struct evil { int __proto__; char toString[4]; int constructor; };\nstruct evil ev;`);
  const gen = runCli(['gen', 'skeleton', obj, '--import', LIBBPF]);
  t.equal(gen.code, 0, gen.stderr);
  const r = runImporter(
    dir,
    gen.stdout,
    `const bytes = Buffer.from([7, 0, 0, 0, 0x61, 0x62, 0, 0, 9, 0, 0, 0]);
const ev = m.ProtosRecords.evil.decode(bytes, new DataView(bytes.buffer, bytes.byteOffset), 0);
console.log(JSON.stringify({ own: Object.getOwnPropertyNames(ev), proto: Object.getPrototypeOf(ev) === Object.prototype, values: [ev['__proto__'], ev.toString, ev.constructor] }));`,
  );
  t.equal(r.code, 0, r.stderr);
  t.same(
    JSON.parse(r.stdout),
    { own: ['__proto__', 'toString', 'constructor'], proto: true, values: [7, 'ab', 9] },
    'own fields with the C values; the prototype untouched',
  );
});

/** The compiled fixture `from` (globals.bpf.o unless said) with `patch` applied to a copy, written to `dir`. */
function patched(dir: string, name: string, patch: (elf: Buffer) => void, from = 'globals'): string {
  const elf = Buffer.from(readFileSync(fixture(from)));
  patch(elf);
  const file = join(dir, `${name}.bpf.o`);
  writeFileSync(file, elf);
  return file;
}

/** Runs gen skeleton on `file` and returns what it printed, and how long it took. */
function gen(file: string) {
  const start = process.hrtime.bigint();
  const r = runCli(['gen', 'skeleton', file]);
  return { ...r, ms: Number(process.hrtime.bigint() - start) / 1e6 };
}

t.test('BTF that loops: one line, exit 1, at once', async (t) => {
  const dir = tempDir(t);
  // .rodata's `step` is a VAR of CONST of VOLATILE of __u32: point the VOLATILE back at the CONST
  const cycle = patched(dir, 'cycle', (elf) => {
    const types = btfTypes(elf);
    const qualifier = types[btfType(types, VAR, 'step').sizeOrType];
    const inner = types[qualifier.sizeOrType];
    t.not(inner.kind, qualifier.kind, 'a CONST and a VOLATILE: a cycle of two');
    elf.writeUInt32LE(qualifier.id, inner.at + 8);
  });
  const { ms, ...c } = gen(cycle);
  const constId = btfType(btfTypes(readFileSync(cycle)), VAR, 'step').sizeOrType;
  t.same(c, {
    code: 1,
    stdout: '',
    stderr: `bpf-preload: cycle: malformed BTF: BTF type ${constId} goes through more than 32 typedefs and qualifiers (a cycle?): rebuild the object from its source\n`,
  });
  t.ok(ms < 10_000, `ends in ${Math.round(ms)} ms`);

  // .bss's `counts` is an array of __s32: make it an array of itself
  const array = patched(dir, 'selfarray', (elf) => {
    const types = btfTypes(elf);
    const counts = types[btfType(types, VAR, 'counts').sizeOrType];
    t.equal(counts.kind, ARRAY, 'counts is an array');
    elf.writeUInt32LE(counts.id, counts.at + 12);
  });
  const a = gen(array);
  t.equal(a.code, 1, 'an array of itself: exit 1');
  t.equal(a.stdout, '');
  t.match(
    a.stderr,
    /^bpf-preload: selfarray: malformed BTF: the size of BTF type \d+ cannot be resolved \(a cycle, or a chain deeper than libbpf's 32\): rebuild the object from its source\n$/,
  );
  t.ok(a.ms < 10_000, `ends in ${Math.round(a.ms)} ms`);
});

t.test('types that expand without end: refused at a bound, one line', async (t) => {
  const dir = tempDir(t);
  // each struct holds two of the one before: 2^17 ints in `big`, all expanded
  const levels = Array.from({ length: 16 }, (_, i) => `struct s${i + 1} { struct s${i} a, b; };`);
  const obj = await compile(dir, 'nested', `struct s0 { int a, b; };\n${levels.join('\n')}\nstruct s16 big;`);
  const { ms, ...r } = gen(obj);
  t.same(r, {
    code: 1,
    stdout: '',
    stderr: "bpf-preload: nested: malformed BTF: the globals' and maps' types expand to more than 65536 types: rebuild the object from its source\n",
  });
  t.ok(ms < 10_000, `ends in ${Math.round(ms)} ms`);
});

t.test('an object that crashes libbpf: one line, exit 1', async (t) => {
  const dir = tempDir(t);
  // Every bit of the first BTF map's type id flipped (found by flipping each
  // byte of the fixture in turn): libbpf 1.1.2 follows the id out of the BTF.
  const crash = patched(dir, 'crash', (elf) => {
    const points = btfType(btfTypes(elf), VAR, 'points');
    elf[points.at + 8] ^= 0xff;
  });
  const bpftool = spawnSync('bpftool', ['gen', 'skeleton', crash], { encoding: 'utf8' });
  const crashes = bpftool.signal === 'SIGSEGV';
  if (!crashes) t.comment(`bpftool gen skeleton does not crash on it (${bpftool.signal ?? `exit ${bpftool.status}`}): a libbpf newer than 1.1.2`);
  const r = gen(crash);
  t.equal(r.code, 1, 'exit 1');
  t.equal(r.stdout, '', 'nothing on stdout');
  // The library checks an object's BTF before libbpf 1.1 parses it
  // (src/libbpf/btf/check.ts), so the object bpftool dies on is refused
  // before libbpf sees it; a crash in libbpf all the same would still cost
  // only the generator's child process.
  t.match(
    r.stderr,
    /^bpf-preload: crash: not a BPF object libbpf can open \(EINVAL\): malformed BTF: \.BTF type \d+[^\n]*: rebuild it from its source \(clang -target bpf -g\)\n$/,
    `one line: what happened, what to do${crashes ? ' (where bpftool gen skeleton dies of SIGSEGV)' : ''}`,
  );
});

t.test('an object that passes the BTF check and still crashes libbpf 1.1: the child dies, one line, exit 1, no core', async (t) => {
  const dir = tempDir(t);
  // The kconfig extern's type (an unsigned int) given a size of 2^31; found by
  // changing each byte and word of the compiled fixtures in turn: the BTF
  // check takes it, libbpf 1.1.2 fails to size the extern with that size as
  // its "error" (-2147483648, no errno), and bpf_object__open_mem returns
  // that as an object pointer, which faults at its first use.
  const crash = patched(
    dir,
    'kcfgsize',
    (elf) => {
      const types = btfTypes(elf);
      const int = types[btfType(types, VAR, 'CONFIG_BPF_PRELOAD_LIBRARY_TEST').sizeOrType];
      t.equal(int.kind, INT, "the extern's type is an int");
      elf.writeUInt32LE(0x80000000, int.at + 8);
    },
    'library',
  );
  const bpftool = spawnSync('bpftool', ['gen', 'skeleton', crash], { encoding: 'utf8' });
  const crashes = bpftool.signal === 'SIGSEGV';
  if (!crashes) t.comment(`bpftool gen skeleton does not crash on it (${bpftool.signal ?? `exit ${bpftool.status}`}): a libbpf newer than 1.1.2`);
  // Run as a user whose shell allows core files, in a directory of its own:
  // a crash must not leave one there (the kernel writes it to the cwd when
  // core_pattern is a plain name, as here).
  const cwd = join(dir, 'cwd');
  mkdirSync(cwd);
  const r = spawnSync('sh', ['-c', 'ulimit -c unlimited && exec "$@"', 'sh', ...nodeCommand(CLI, 'gen', 'skeleton', crash)], {
    cwd,
    encoding: 'utf8',
    env: userEnv(),
  });
  t.equal(r.status, 1, 'exit 1');
  t.equal(r.stdout, '', 'nothing on stdout');
  t.equal(
    r.stderr,
    `bpf-preload: ${crash}: libbpf crashed (SIGSEGV) opening it, so the object is malformed: rebuild it from its source\n`,
    `one line: what happened, what to do, no stack trace${crashes ? ' (where bpftool gen skeleton dies of SIGSEGV too)' : ''}`,
  );
  const pattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
  if (/^[|/]/.test(pattern)) t.comment(`core_pattern ${pattern} writes no core into the cwd: the check below cannot fail here`);
  t.same(readdirSync(cwd), [], 'no core file left in the cwd');
});

/** The pid of the generator's child process of the run marked `mark`, once it has started. */
async function generatorChild(mark: string): Promise<number> {
  for (let tries = 0; tries < 1000; tries++) {
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      let environ: string;
      try {
        environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
      } catch {
        continue; // gone, or not ours to read
      }
      const vars = environ.split('\0');
      if (vars.includes(`TEST_GEN_MARK=${mark}`) && vars.includes('BPF_PRELOAD_GEN_CHILD=1')) return Number(pid);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the generator child never started');
}

t.test('a generator that never finishes: killed at BPF_PRELOAD_GEN_TIMEOUT, one line, exit 1', async (t) => {
  // A stopped child stands in for libbpf looping on a malformed object: the
  // CLI must not wait for it longer than the timeout, nor leave it behind.
  const mark = `${process.pid}-${Date.now()}`;
  const started = Date.now();
  const cli = spawnScript(CLI, ['gen', 'skeleton', fixture('globals')], { BPF_PRELOAD_GEN_TIMEOUT: '2', TEST_GEN_MARK: mark });
  let stdout = '';
  let stderr = '';
  cli.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  cli.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => cli.on('close', (code) => r(code)));
  const child = await generatorChild(mark);
  process.kill(child, 'SIGSTOP');
  const code = await exited;
  const ms = Date.now() - started;
  t.equal(code, 1, 'exit 1');
  t.equal(stdout, '', 'nothing on stdout');
  t.match(
    stderr,
    /^bpf-preload: gen skeleton \S+globals\.bpf\.o: the generator did not finish in 2 s \(libbpf may loop on a malformed object\): rebuild it from its source, or raise BPF_PRELOAD_GEN_TIMEOUT\n$/,
    'one line: what happened, what to do',
  );
  t.ok(ms >= 2000 && ms < 30_000, `ends after the timeout (${ms} ms)`);
  t.notOk(existsSync(`/proc/${child}`) && !readFileSync(`/proc/${child}/stat`, 'latin1').includes(') Z '), 'the generator process is gone');
});

t.test('BPF_PRELOAD_GEN_TIMEOUT that is not a number of seconds: one line, exit 1', async (t) => {
  const r = runCli(['gen', 'skeleton', fixture('globals')], { BPF_PRELOAD_GEN_TIMEOUT: 'soon' });
  t.same(r, { code: 1, stdout: '', stderr: 'bpf-preload: BPF_PRELOAD_GEN_TIMEOUT=soon: expected a number of seconds\n' });
});
