// Compiling BPF C into objects libbpf loads: clang -target bpf with BTF (-g),
// then the DWARF stripped. .BTF and .BTF.ext stay (libbpf needs them for
// CO-RE, function names and line info); DWARF only adds size. The same source
// gives the same bytes wherever the checkout lives: clang runs in the source's
// directory with the debug compilation directory set to ".", so the only path
// recorded (in BTF line info) is "./<name>.bpf.c".
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { machine } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';

export type ObjectKind = 'bpf' | 'fixture' | 'example';

export interface CompiledObject {
  /** bpf: the iterators shipped in skeletons; fixture: objects only tests load; example: an example tool's object. */
  kind: ObjectKind;
  /** Source path relative to the project root, e.g. "bpf/iterators.bpf.c". */
  source: string;
  /** Object path relative to the project root, e.g. "dist/bpf/iterators.bpf.o". */
  output: string;
}

/** A failed compile; `message` is one line, `detail` the tool's full output. */
export class CompileError extends Error {
  readonly detail: string;
  constructor(message: string, detail = '') {
    super(message);
    this.name = 'CompileError';
    this.detail = detail;
  }
}

interface Tree {
  kind: ObjectKind;
  from: string;
  to: string;
}

/** Where examples live: one directory each, examples/NAME/, built into dist/examples/NAME/. */
export const EXAMPLES_DIR = 'examples';

// Where sources go: bpf/ ships in skeletons, test/fixtures/ only serves
// tests, each examples/NAME/ is a tool of its own.
function trees(root: string): Tree[] {
  const examples = existsSync(join(root, EXAMPLES_DIR))
    ? readdirSync(join(root, EXAMPLES_DIR), { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort()
    : [];
  return [
    { kind: 'bpf', from: 'bpf', to: 'dist/bpf' },
    { kind: 'fixture', from: 'test/fixtures', to: 'dist/fixtures' },
    ...examples.map((name): Tree => ({ kind: 'example', from: `${EXAMPLES_DIR}/${name}`, to: `dist/${EXAMPLES_DIR}/${name}` })),
  ];
}

/** libbpf's __TARGET_ARCH_<x> name for a `uname -m` machine (bpf_tracing.h needs it for PT_REGS). */
export function targetArch(m: string = machine()): string {
  if (m === 'x86_64' || /^i[3-6]86$/.test(m)) return 'x86';
  if (m === 'aarch64' || m === 'arm64') return 'arm64';
  if (m.startsWith('arm')) return 'arm';
  if (m.startsWith('ppc') || m.startsWith('powerpc')) return 'powerpc';
  if (m.startsWith('s390')) return 's390';
  if (m.startsWith('riscv')) return 'riscv';
  if (m.startsWith('loongarch')) return 'loongarch';
  if (m.startsWith('mips')) return 'mips';
  return m;
}

// <linux/bpf.h> pulls in <asm/types.h>, which Debian keeps under this
// machine's multiarch directory, e.g. /usr/include/x86_64-linux-gnu. Only
// that one: another architecture's (i386-linux-gnu, brought in with the
// 32-bit libraries) would compile against whatever happens to be installed.
export function multiarchDir(): string {
  const m = machine();
  return `/usr/include/${/^i[3-6]86$/.test(m) ? 'i386' : m}-linux-gnu`;
}

function multiarchInclude(): string | null {
  const dir = multiarchDir();
  return existsSync(join(dir, 'asm/types.h')) ? dir : null;
}

interface RunResult {
  stdout: string;
  stderr: string;
}

/** clang from PATH, unless CLANG names another. */
export const clangTool = (): string => process.env.CLANG || 'clang';

function run(tool: string, args: string[], cwd: string, install: string): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(tool, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      if (!err) return resolvePromise({ stdout, stderr });
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new CompileError(`${tool} not found: run \`apt-get install ${install}\``));
        return;
      }
      const failed: Error & { stdout: string; stderr: string } = Object.assign(err, { stdout, stderr });
      reject(failed);
    });
  });
}

// One line out of a compiler's diagnostics: the first error, with the file
// named as the caller named it, and how many more there were.
function firstError(stderr: string, file: string, shownAs: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  const error = lines.find((l) => /\b(fatal )?error:/.test(l)) ?? lines[0] ?? 'no diagnostics';
  const count = /^(\d+) errors? generated\.$/m.exec(stderr);
  const more = count && Number(count[1]) > 1 ? ` (and ${Number(count[1]) - 1} more)` : '';
  const named = error.startsWith(`${file}:`) ? shownAs + error.slice(file.length) : error;
  return named + more;
}

/**
 * Compiles one BPF C file into `output` (a stripped ELF object with BTF).
 * The tools are `clang` and `llvm-strip` from PATH unless the CLANG or
 * LLVM_STRIP environment variables name others. Throws a CompileError
 * with a one-line message when the tools are missing or the source does not
 * compile. `output` is replaced only on success.
 */
export async function compileBpf(source: string, output: string): Promise<void> {
  const src = resolve(source);
  const out = resolve(output);
  if (!existsSync(src)) throw new CompileError(`${source}: no such file`);
  const include = multiarchInclude();
  if (!include) throw new CompileError(`asm/types.h not found under ${multiarchDir()}: run \`apt-get install linux-libc-dev\``);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp${process.pid}`;
  const file = basename(src);
  const clangArgs = [
    '-target',
    'bpf',
    '-O2',
    '-g',
    '-Wall',
    `-D__TARGET_ARCH_${targetArch()}`,
    '-I',
    include,
    '-fdebug-compilation-dir=.',
    '-c',
    file,
    '-o',
    tmp,
  ];
  try {
    try {
      const { stderr } = await run(clangTool(), clangArgs, dirname(src), 'clang llvm');
      // Warnings do not stop the build but should not go unseen.
      if (stderr.trim()) process.stderr.write(stderr.split(`${file}:`).join(`${source}:`));
    } catch (err) {
      if (err instanceof CompileError) throw err;
      const stderr = String((err as { stderr?: string }).stderr ?? '');
      throw new CompileError(`clang: ${firstError(stderr, file, source)}`, stderr);
    }
    try {
      await run(process.env.LLVM_STRIP || 'llvm-strip', ['-g', tmp], dirname(src), 'llvm');
    } catch (err) {
      if (err instanceof CompileError) throw err;
      const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
      throw new CompileError(`llvm-strip ${output}: ${stderr.split('\n')[0] || 'failed'}`, stderr);
    }
    renameSync(tmp, out);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Compiles bpf/*.bpf.c into dist/bpf/, test/fixtures/*.bpf.c into
 * dist/fixtures/ and examples/NAME/*.bpf.c into dist/examples/NAME/ (paths
 * from `root`, the project root), and removes objects
 * there whose source is gone. Returns what was built, sorted by output path.
 */
export async function compileAll(root: string = process.cwd()): Promise<CompiledObject[]> {
  const objects: CompiledObject[] = [];
  for (const { kind, from, to } of trees(root)) {
    const sources = existsSync(join(root, from))
      ? readdirSync(join(root, from))
          .filter((f) => f.endsWith('.bpf.c'))
          .sort()
      : [];
    const wanted = new Set(sources.map((f) => f.replace(/\.c$/, '.o')));
    if (existsSync(join(root, to))) {
      for (const f of readdirSync(join(root, to))) {
        if (f.endsWith('.bpf.o') && !wanted.has(f)) rmSync(join(root, to, f), { force: true });
      }
    }
    for (const f of sources) {
      objects.push({ kind, source: `${from}/${f}`, output: `${to}/${f.replace(/\.c$/, '.o')}` });
    }
  }
  // Paths relative to the working directory keep messages short.
  const here = (p: string) => relative(process.cwd(), join(root, p)) || '.';
  await Promise.all(objects.map((o) => compileBpf(here(o.source), here(o.output))));
  return objects.sort((a, b) => (a.output < b.output ? -1 : a.output > b.output ? 1 : 0));
}
