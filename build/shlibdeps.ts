// The Depends a prebuilt native module (koffi's) needs, for any Debian
// architecture, without asking which packages happen to be installed here.
//
// dpkg-shlibdeps answers this for the build machine's own architecture only:
// for another it would look for that architecture's libraries, which are not
// here. Asking `dpkg -S` which package holds a soname is worse: it answers
// with whatever is installed (libc6-i386's /lib32/libm.so.6 once clang has
// pulled the 32-bit libraries in). So instead:
// - each soname maps to its package by a fixed table: Debian names these
//   packages the same on every architecture we build for;
// - each package's minimum version is the highest that the package's symbols
//   file gives to a symbol-version node the module needs (GLIBC_2.17,
//   GLIBCXX_3.4.22, …: a node is introduced in the same upstream release on
//   every architecture), or, where the module needs no versioned symbol of
//   that package, the oldest version the file gives any node. The symbols
//   file is named by package, never found by searching, so the answer is the
//   same whatever else is installed. For the build machine's own
//   architecture this gives what dpkg-shlibdeps gives (test/package.test.ts).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The Debian package that ships each soname a native module may need. */
export const SONAME_PACKAGE: Readonly<Record<string, string>> = {
  'libc.so.6': 'libc6',
  'libm.so.6': 'libc6',
  'libdl.so.2': 'libc6',
  'libpthread.so.0': 'libc6',
  'librt.so.1': 'libc6',
  'ld-linux-x86-64.so.2': 'libc6',
  'ld-linux-aarch64.so.1': 'libc6',
  'ld-linux.so.2': 'libc6',
  'ld-linux-loongarch-lp64d.so.1': 'libc6',
  'libstdc++.so.6': 'libstdc++6',
  'libgcc_s.so.1': 'libgcc-s1',
};

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** What a shared object needs: its NEEDED sonames, and the version nodes it needs of each. */
export function neededVersions(elf: string): Map<string, string[]> {
  const needed = new Map<string, string[]>();
  for (const m of run('llvm-readelf', ['-d', elf]).matchAll(/\(NEEDED\)\s+Shared library: \[(.+?)\]/g)) needed.set(m[1], []);
  // "Version needs" lists "File: libc.so.6  Cnt: 4" followed by its "Name: GLIBC_2.17" lines.
  let file: string | undefined;
  for (const line of run('llvm-readelf', ['-V', elf]).split('\n')) {
    const f = /\bFile: (\S+)/.exec(line);
    if (f) file = f[1];
    const n = /^\s+0x[0-9a-f]+:\s+Name: (\S+)/.exec(line);
    if (n && file) needed.get(file)?.push(n[1]);
  }
  return needed;
}

/** `dpkg --compare-versions a gt b`: Debian's own ordering of versions. */
function newer(a: string, b: string): boolean {
  return spawnSync('dpkg', ['--compare-versions', a, 'gt', b]).status === 0;
}

/**
 * The version a symbols file gives each version node: its "NODE@NODE VERSION"
 * lines (the node's own symbol, which the file lists for every node).
 */
function nodeVersions(symbolsFile: string): Map<string, string> {
  const nodes = new Map<string, string>();
  for (const m of readFileSync(symbolsFile, 'utf8').matchAll(/^ ([A-Za-z0-9_.]+)@\1 (\S+)/gm)) nodes.set(m[1], m[2]);
  return nodes;
}

/** "GLIBC_2.2" -> ["GLIBC", [2, 2]] */
function splitNode(node: string): [string, number[]] {
  const m = /^(.*?)_([\d.]+)$/.exec(node);
  return m ? [m[1], m[2].split('.').map(Number)] : [node, []];
}

function numericLess(a: number[], b: number[]): boolean {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0);
  return false;
}

/** Whether `node` is older than every node of its kind (GLIBC_, GLIBCXX_, …) in `known`, or its kind is not there. */
function predatesAll(node: string, known: Map<string, string>): boolean {
  const [kind, version] = splitNode(node);
  const same = [...known.keys()].map(splitNode).filter(([k]) => k === kind);
  return version.length > 0 && same.every(([, v]) => numericLess(version, v));
}

export interface SymbolsSource {
  /** A dpkg database (default: DPKG_ADMINDIR or /var/lib/dpkg): its info/PACKAGE:ARCH.symbols files. */
  admindir?: string;
  /** The architecture whose symbols files to read (default: the dpkg database's own). */
  arch?: string;
}

/**
 * Depends for the shared object `elf`, e.g. ["libc6 (>= 2.17)",
 * "libgcc-s1 (>= 3.0)", "libstdc++6 (>= 6)"], sorted by package. Throws for a
 * soname the table does not know, or a package whose symbols file is missing.
 */
export function libraryDepends(elf: string, source: SymbolsSource = {}): string[] {
  const admindir = source.admindir ?? process.env.DPKG_ADMINDIR ?? '/var/lib/dpkg';
  const arch = source.arch ?? run('dpkg', [`--admindir=${admindir}`, '--print-architecture']).trim();
  const nodesOf = new Map<string, string[]>();
  for (const [soname, nodes] of neededVersions(elf)) {
    const pkg = SONAME_PACKAGE[soname];
    if (!pkg) throw new Error(`${elf} needs ${soname}, which build/shlibdeps.ts does not know: add its Debian package to SONAME_PACKAGE`);
    nodesOf.set(pkg, [...(nodesOf.get(pkg) ?? []), ...nodes]);
  }
  return [...nodesOf]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([pkg, nodes]) => {
      const file = join(admindir, 'info', `${pkg}:${arch}.symbols`);
      let known: Map<string, string>;
      try {
        known = nodeVersions(file);
      } catch {
        throw new Error(`${file} is missing: install ${pkg} (the versions of its symbols come from there)`);
      }
      const wanted = nodes.length ? nodes : [...known.keys()];
      let version: string | undefined;
      for (const node of wanted) {
        const v = known.get(node);
        if (v === undefined) {
          // Older than the oldest node of its kind here (i386's GLIBC_2.0 beside
          // amd64's GLIBC_2.2.5), or of a kind only other architectures have
          // (i386's libgcc_s defines GLIBC_2.0): every version has it.
          if (predatesAll(node, known)) continue;
          throw new Error(`${file} has no version node ${node}, which ${elf} needs: build on a newer Debian`);
        }
        if (version === undefined || (nodes.length ? newer(v, version) : newer(version, v))) version = v;
      }
      return version === undefined ? pkg : `${pkg} (>= ${version})`;
    });
}
