// `npm run package`: builds dist/bpf-preload_<version>_<arch>.deb with
// dpkg-deb from the bundle (dist/bpf-preload.js, built first by the npm
// script): the CLI, koffi's native module for that architecture only, the
// units rendered by src/cli/unit.ts (the exporter's not enabled), the man page rendered from src/cli/help.ts, and
// the README and copyright.
// Usage: build/package.ts [--arch ARCH] [--version VERSION] [--out DIR]
//   --arch     Debian architecture (default: this machine's)
//   --version  package version (default: package.json's)
//   --out      directory for the .deb (default: dist)
import { spawnSync } from 'node:child_process';
import {
  type Stats,
  chmodSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { OLDEST_NODE } from './bundle-options.js';
import {
  DEB_BIN,
  DEB_CLI,
  DEB_CODE_DIR,
  DEB_DOC_DIR,
  DEB_EXPORTER_UNIT,
  DEB_MAN,
  DEB_NODE,
  DEB_UNIT,
  KOFFI_DIR_OF_ARCH,
  PACKAGE,
  VERSION,
  debFileName,
  koffiModulePath,
} from './deb-layout.js';
import { POSTINST, POSTRM, PRERM } from './deb-scripts.js';
import { libraryDepends } from './shlibdeps.js';
import { DESCRIPTION as HELP_DESCRIPTION, SUMMARY, manPage } from '../src/cli/help.js';
import { EXPORTER_UNIT_NAME, UNIT_NAME, renderExporterUnit, renderUnit } from '../src/cli/unit.js';

const BUNDLE = 'dist/bpf-preload.js';
const KOFFI = 'node_modules/koffi';
// Debian's usual variables name whoever builds it; otherwise a generic address.
const MAINTAINER = process.env.DEBEMAIL
  ? `${process.env.DEBFULLNAME ?? 'bpf-preload maintainers'} <${process.env.DEBEMAIL}>`
  : 'bpf-preload maintainers <bpf-preload@users.noreply.github.com>';

function fail(message: string): never {
  console.error(`package: ${message}`);
  process.exit(1);
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout.trim();
}

function options(argv: string[]): { arch: string; version: string; out: string } {
  const o = { arch: '', version: VERSION, out: 'dist' };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (!value) fail(`${flag} needs a value`);
    if (flag === '--arch') o.arch = value;
    else if (flag === '--version') o.version = value;
    else if (flag === '--out') o.out = value;
    else fail(`unknown option ${flag} (--arch, --version, --out)`);
  }
  o.arch ||= run('dpkg', ['--print-architecture']);
  if (!KOFFI_DIR_OF_ARCH[o.arch]) fail(`no koffi module for ${o.arch}: one of ${Object.keys(KOFFI_DIR_OF_ARCH).join(', ')}`);
  if (!/^[0-9][A-Za-z0-9.+~]*$/.test(o.version)) fail(`${o.version} is not a native Debian version (digits first; letters, digits, . + ~)`);
  return o;
}

/** When the sources last changed (the commit's time), so rebuilding gives the same package. */
function sourceDateEpoch(): number {
  const fromEnv = Number(process.env.SOURCE_DATE_EPOCH);
  if (fromEnv > 0) return fromEnv;
  const r = spawnSync('git', ['log', '-1', '--format=%ct'], { encoding: 'utf8' });
  return Number(r.stdout?.trim()) || Math.floor(Date.now() / 1000);
}

function write(stage: string, path: string, content: string | Buffer, mode = 0o644): void {
  const file = join(stage, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
  chmodSync(file, mode);
}

function copyright(): string {
  const koffiPkg = JSON.parse(readFileSync(join(KOFFI, 'package.json'), 'utf8')) as { author: { name: string; email: string } };
  const mit = readFileSync(join(KOFFI, 'LICENSE.txt'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (l.trim() ? ` ${l}` : ' .'))
    .join('\n');
  return `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ${PACKAGE}

Files: *
Copyright: the ${PACKAGE} authors
License: GPL-2
 This program is free software; you can redistribute it and/or modify it
 under the terms of the GNU General Public License version 2 as published by
 the Free Software Foundation.
 .
 On Debian systems, the complete text of the GNU General Public License
 version 2 can be found in /usr/share/common-licenses/GPL-2.

Files: ${DEB_CODE_DIR.slice(1)}/node_modules/koffi/*
Copyright: ${koffiPkg.author.name} <${koffiPkg.author.email}>
License: MIT
${mit}
`;
}

function changelog(version: string, epoch: number): string {
  const date = new Date(epoch * 1000).toUTCString().replace('GMT', '+0000');
  return `${PACKAGE} (${version}) unstable; urgency=medium

  * Built from the ${PACKAGE} sources by \`npm run package\`.

 -- ${MAINTAINER}  ${date}
`;
}

/** The package's Description: help's one-line summary, then a paragraph. */
function description(): string {
  const body = `${HELP_DESCRIPTION.replaceAll('`', '')} The unit ${UNIT_NAME} does this at boot. ${EXPORTER_UNIT_NAME} (not enabled) serves every BPF program, map and link as Prometheus metrics. For kernels with BTF (5.10 or later) built without CONFIG_BPF_PRELOAD, as most distribution kernels are.`;
  const lines: string[] = [];
  let line = '';
  for (const word of body.split(' ')) {
    if (line && line.length + word.length + 1 > 72) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return `${SUMMARY}\n${lines.map((l) => ` ${l}`).join('\n')}`;
}

/** Every path under `dir` (recursively, relative to it), with its lstat. */
function tree(dir: string, under = ''): { path: string; stat: Stats }[] {
  return readdirSync(join(dir, under)).flatMap((name) => {
    const path = join(under, name);
    const stat = lstatSync(join(dir, path));
    return [{ path, stat }, ...(stat.isDirectory() ? tree(dir, path) : [])];
  });
}

function installedSizeKiB(stage: string): number {
  return tree(stage).reduce((kib, e) => kib + (e.stat.isDirectory() ? 0 : Math.ceil(e.stat.size / 1024)), 0);
}

function md5sums(stage: string): string {
  const files = tree(stage).filter((e) => e.stat.isFile() && !e.path.startsWith('DEBIAN/'));
  return run('md5sum', files.map((e) => e.path).sort(), { cwd: stage }) + '\n';
}

const opts = options(process.argv.slice(2));
const epoch = sourceDateEpoch();
mkdirSync(opts.out, { recursive: true });
const stage = mkdtempSync(join(resolve(opts.out), '.deb-stage-'));
try {
  const bundle = readFileSync(BUNDLE, 'utf8');
  if (!bundle.startsWith('#!/usr/bin/env node\n')) fail(`${BUNDLE} does not start with #!/usr/bin/env node: rebuild it (npm run build)`);
  write(stage, DEB_CLI, bundle.replace('#!/usr/bin/env node', `#!${DEB_NODE}`), 0o755);
  mkdirSync(join(stage, dirname(DEB_BIN)), { recursive: true });
  symlinkSync(relative(dirname(DEB_BIN), DEB_CLI), join(stage, DEB_BIN));

  const koffiRel = koffiModulePath(opts.arch);
  const koffiSrc = join(KOFFI, 'build/koffi', KOFFI_DIR_OF_ARCH[opts.arch], 'koffi.node');
  write(stage, koffiRel, readFileSync(koffiSrc));
  // As dh_strip does: debugging symbols and the .comment/.note sections go.
  run('llvm-strip', ['--strip-unneeded', '--remove-section=.comment', '--remove-section=.note', join(stage, koffiRel)]);
  const koffiVersion = (JSON.parse(readFileSync(join(KOFFI, 'package.json'), 'utf8')) as { version: string }).version;
  // Only what resolving koffi/build/... needs: its package.json, trimmed.
  write(stage, join(dirname(koffiRel), '../../../package.json'), `${JSON.stringify({ name: 'koffi', version: koffiVersion, license: 'MIT' }, null, 2)}\n`);

  write(stage, DEB_UNIT, renderUnit(DEB_CLI, DEB_NODE, 'package'));
  write(stage, DEB_EXPORTER_UNIT, renderExporterUnit(DEB_CLI, DEB_NODE));
  const date = new Date(epoch * 1000).toISOString().slice(0, 10);
  write(stage, DEB_MAN, gzipSync(manPage(opts.version, date), { level: 9 }));
  write(stage, join(DEB_DOC_DIR, 'README.md.gz'), gzipSync(readFileSync('README.md'), { level: 9 }));
  write(stage, join(DEB_DOC_DIR, 'copyright'), copyright());
  write(stage, join(DEB_DOC_DIR, 'changelog.gz'), gzipSync(changelog(opts.version, epoch), { level: 9 }));

  // The libraries koffi's module needs, for its architecture, whatever is installed here.
  let libraries: string[];
  try {
    libraries = libraryDepends(join(stage, koffiRel));
  } catch (err) {
    fail((err as Error).message);
  }
  const depends = [`nodejs (>= ${OLDEST_NODE})`, 'libbpf1', ...libraries];
  const control = `Package: ${PACKAGE}
Version: ${opts.version}
Architecture: ${opts.arch}
Maintainer: ${MAINTAINER}
Installed-Size: ${installedSizeKiB(stage)}
Depends: ${depends.join(', ')}
Section: admin
Priority: optional
Description: ${description()}
`;
  write(stage, 'DEBIAN/control', control);
  write(stage, 'DEBIAN/md5sums', md5sums(stage));
  write(stage, 'DEBIAN/postinst', POSTINST, 0o755);
  write(stage, 'DEBIAN/prerm', PRERM, 0o755);
  write(stage, 'DEBIAN/postrm', POSTRM, 0o755);
  chmodSync(stage, 0o755);
  for (const e of tree(stage)) lutimesSync(join(stage, e.path), epoch, epoch);
  lutimesSync(stage, epoch, epoch);

  const deb = join(opts.out, debFileName(opts.version, opts.arch));
  run('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', stage, deb], { env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) } });
  console.log(`built ${deb} (${Math.round(statSync(deb).size / 1024)} KiB)`);
} finally {
  rmSync(stage, { recursive: true, force: true });
}
