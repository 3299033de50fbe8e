// The Debian package (`npm run package`): what is in it, lintian's verdict,
// and apt installing, upgrading, removing and purging it in a scratch root:
// an overlay of this machine's / in a private mount namespace, so this
// machine's own files and dpkg database stay as they are. Without systemd
// running there, the package enables its unit and starts nothing, as in a
// chroot or an image build; the boot test covers a running systemd.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { OLDEST_NODE } from '../build/bundle-options.js';
import {
  DEB_BIN,
  DEB_CLI,
  DEB_DOC_DIR,
  DEB_EXPORTER_UNIT,
  DEB_MAN,
  DEB_NODE,
  DEB_UNIT,
  PACKAGE,
  UPGRADE_VERSION as UPGRADE,
  VERSION,
  debFileName,
  koffiModulePath,
} from '../build/deb-layout.js';
import { COMMAND_ITEMS, OPTION_ITEMS, helpText, manPage } from '../src/cli/help.js';
import { EXPORTER_UNIT_NAME, UNIT_NAME, WANTED_BY, renderExporterUnit, renderUnit } from '../src/cli/unit.js';
import { run } from '../harness/command.mjs';

/**
 * lintian's remarks we keep (all info or pedantic; none is an error or a
 * warning), and why:
 * - hardening-no-bindnow, hardening-no-fortify-functions, spelling-error-in-binary:
 *   koffi.node is koffi's own prebuilt module from npm, shipped as built upstream.
 * - package-supports-alternative-init-but-no-init.d-script: the unit runs in
 *   early boot under systemd's sandboxing; there is no sysvinit equivalent.
 * - repeated-path-segment: node_modules/koffi/build/koffi/ is koffi's own
 *   layout, where src/libbpf/sys/native.ts loads the module from.
 */
const LINTIAN_KEPT = [
  'I: hardening-no-bindnow',
  'I: hardening-no-fortify-functions',
  'I: package-supports-alternative-init-but-no-init.d-script',
  'I: spelling-error-in-binary',
  'P: repeated-path-segment',
];

const arch = spawnSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).stdout.trim();
const work = mkdtempSync(join(tmpdir(), 'bpf-preload-deb-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

function buildDeb(version: string, forArch = arch, env: Record<string, string> = {}, out = work): string {
  // Without tap's loaders in NODE_OPTIONS: the builder runs as `npm run package` runs it.
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const r = run('env', [
    '-u',
    'NODE_OPTIONS',
    ...vars,
    process.execPath,
    'build/run.mjs',
    'build/package.ts',
    '--out',
    out,
    '--version',
    version,
    '--arch',
    forArch,
  ]);
  if (r.code !== 0) throw new Error(`npm run package failed: ${r.stderr}`);
  return join(out, debFileName(version, forArch));
}

const deb = buildDeb(VERSION);

function fileInDeb(path: string): Buffer {
  const r = spawnSync('sh', ['-c', `dpkg-deb --fsys-tarfile "$1" | tar -xOf - ".$2"`, 'sh', deb, path], { maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${path} not in ${deb}: ${r.stderr.toString()}`);
  return r.stdout;
}

t.test(`control: ${PACKAGE} ${VERSION} for ${arch}, depending on nodejs (>= ${OLDEST_NODE}) and libbpf1`, async (t) => {
  const field = (name: string) => run('dpkg-deb', ['-f', deb, name]).stdout.trim();
  t.equal(field('Package'), PACKAGE);
  t.equal(field('Version'), VERSION);
  t.equal(field('Architecture'), arch);
  const depends = field('Depends').split(', ');
  t.equal(depends[0], `nodejs (>= ${OLDEST_NODE})`);
  t.equal(depends[1], 'libbpf1');
  // koffi's libraries, as dpkg-shlibdeps finds them for the module the package ships.
  const shlibs = mkdtempSync(join(work, 'shlibdeps-'));
  mkdirSync(join(shlibs, 'debian'));
  writeFileSync(join(shlibs, 'debian/control'), '');
  writeFileSync(join(shlibs, 'koffi.node'), fileInDeb(koffiModulePath(arch)));
  const r = spawnSync('dpkg-shlibdeps', ['-O', '--warnings=0', '-e', 'koffi.node'], { cwd: shlibs, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const expected = r.stdout
    .trim()
    .replace(/^shlibs:Depends=/, '')
    .split(', ')
    .sort();
  t.same(depends.slice(2), expected, `the rest is what dpkg-shlibdeps gives: ${expected.join(', ')}`);
  const info = run('dpkg-deb', ['-I', deb]).stdout;
  for (const script of ['postinst', 'prerm', 'postrm'])
    t.match(info, new RegExp(`\\d+ lines\\s+\\*\\s+${script}\\s+#!/bin/sh`), `${script}: an executable shell script`);
});

/**
 * A dpkg database holding just the packages koffi's modules need (copied from
 * this machine's), and, with `i386`, libc6-i386 too, as `apt-get install
 * clang` can bring in: its /lib32/libm.so.6 is what `dpkg -S '*\/libm.so.6'`
 * then names first.
 */
function fakeDpkgDatabase(i386: boolean): string {
  const admindir = mkdtempSync(join(work, `dpkg-${i386 ? 'with' : 'without'}-i386-`));
  mkdirSync(join(admindir, 'info'));
  mkdirSync(join(admindir, 'updates'));
  const pkgs = ['libc6', 'libstdc++6', 'libgcc-s1'];
  writeFileSync(join(admindir, 'status'), pkgs.map((p) => run('dpkg-query', ['-s', `${p}:${arch}`]).stdout.trim() + '\n\n').join(''));
  for (const p of pkgs) {
    for (const ext of ['list', 'symbols', 'shlibs']) copyFileSync(`/var/lib/dpkg/info/${p}:${arch}.${ext}`, join(admindir, 'info', `${p}:${arch}.${ext}`));
  }
  if (i386) {
    const version = run('dpkg-query', ['-W', '-f=${Version}', `libc6:${arch}`]).stdout;
    appendFileSync(
      join(admindir, 'status'),
      `Package: libc6-i386\nStatus: install ok installed\nPriority: optional\nSection: libs\nArchitecture: ${arch}\nSource: glibc\nVersion: ${version}\nDescription: GNU C Library: 32-bit shared libraries for AMD64\n\n`,
    );
    writeFileSync(
      join(admindir, 'info/libc6-i386.list'),
      ['/lib32', '/lib32/libc.so.6', '/lib32/libm.so.6', '/lib32/libdl.so.2', '/lib32/libpthread.so.0', ''].join('\n'),
    );
    writeFileSync(join(admindir, 'info/libc6-i386.symbols'), 'libc.so.6 libc6-i386 #MINVER#\n GLIBC_2.0@GLIBC_2.0 2.0\n');
    const owner = run('env', [`DPKG_ADMINDIR=${admindir}`, 'dpkg', '-S', '*/libm.so.6']).stdout.split('\n')[0];
    if (!owner.startsWith('libc6-i386:')) throw new Error(`the fake database should make dpkg -S name libc6-i386 first, not ${owner}`);
  }
  return admindir;
}

t.test("another architecture's package depends on the same packages, whatever this machine has installed", async (t) => {
  const other = arch === 'arm64' ? 'amd64' : 'arm64';
  const depends = (deb: string) => run('dpkg-deb', ['-f', deb, 'Depends']).stdout.trim();
  const names = (field: string) => field.split(', ').map((d) => d.split(' ')[0]);
  const results = [false, true].map((i386) => {
    const out = mkdtempSync(join(work, 'foreign-'));
    return depends(buildDeb(VERSION, other, { DPKG_ADMINDIR: fakeDpkgDatabase(i386) }, out));
  });
  t.equal(results[1], results[0], `the same with libc6-i386 installed as without: ${results[0]}`);
  t.same(names(results[0]), names(depends(deb)), `the same package names as the ${arch} package's`);
  t.notMatch(results[0], /i386|lib32/, 'no 32-bit package');
  t.match(results[0], /libc6 \(>= 2\.\d+\), libgcc-s1 \(>= [\d.]+\), libstdc\+\+6 \(>= \d+\)$/, 'each library versioned');
});

t.test('contents: the CLI, koffi for this architecture only, both units, the man page, the docs; all root-owned', async (t) => {
  const listing = run('dpkg-deb', ['-c', deb]).stdout.trim().split('\n');
  const entries = listing.map((line) => {
    const [mode, owner, , , , ...rest] = line.split(/\s+/);
    return { mode, owner, path: rest.join(' ').replace(/^\./, '') };
  });
  t.ok(
    entries.every((e) => e.owner === 'root/root'),
    'every entry is owned by root/root',
  );
  const nonDirs = entries.filter((e) => !e.mode.startsWith('d'));
  const koffi = koffiModulePath(arch);
  t.same(
    nonDirs.map((e) => e.path).sort(),
    [
      `${DEB_BIN} -> ../lib/${PACKAGE}/${PACKAGE}.mjs`,
      DEB_CLI,
      koffi,
      koffi.replace(/build\/koffi\/[^/]+\/koffi\.node$/, 'package.json'),
      DEB_UNIT,
      DEB_EXPORTER_UNIT,
      DEB_MAN,
      `${DEB_DOC_DIR}/README.md.gz`,
      `${DEB_DOC_DIR}/changelog.gz`,
      `${DEB_DOC_DIR}/copyright`,
    ].sort(),
  );
  t.equal(entries.find((e) => e.path === DEB_CLI)?.mode, '-rwxr-xr-x');
  t.match(fileInDeb(DEB_CLI).toString('utf8', 0, 40), new RegExp(`^#!${DEB_NODE}\n`), 'the CLI runs on the system node');
  t.equal(entries.filter((e) => e.path.endsWith('.node')).length, 1, 'one native module');
});

t.test(`the unit is src/cli/unit.ts's for ${DEB_CLI} on ${DEB_NODE}, and systemd-analyze accepts it`, async (t) => {
  const unit = fileInDeb(DEB_UNIT).toString();
  t.equal(unit, renderUnit(DEB_CLI, DEB_NODE, 'package'));
  t.match(unit, /^# Installed by the bpf-preload package/);
  t.match(unit, /^ExecReload=.* populate$/m, 'reload re-populates (what an upgrade does)');
  const file = join(work, UNIT_NAME);
  writeFileSync(file, unit);
  // --man=no: the man page it names is in the package, not on this machine.
  const v = run('systemd-analyze', ['verify', '--man=no', file]);
  t.equal(v.code, 0, v.stderr);
  t.equal(v.stderr.trim(), '');
});

t.test(`the exporter's unit is src/cli/unit.ts's for ${DEB_CLI} on ${DEB_NODE}, and systemd-analyze accepts it`, async (t) => {
  const unit = fileInDeb(DEB_EXPORTER_UNIT).toString();
  t.equal(unit, renderExporterUnit(DEB_CLI, DEB_NODE));
  t.match(unit, /^# Installed by the bpf-preload package, not enabled/);
  t.match(unit, new RegExp(`^ExecStart=${DEB_NODE} --max-semi-space-size=1 ${DEB_CLI} exporter --enable-stats$`, 'm'));
  t.match(unit, /^CapabilityBoundingSet=CAP_SYS_ADMIN$/m);
  const file = join(work, EXPORTER_UNIT_NAME);
  writeFileSync(file, unit);
  const v = run('systemd-analyze', ['verify', '--man=no', file]);
  t.equal(v.code, 0, v.stderr);
  t.equal(v.stderr.trim(), '');
});

t.test('the man page comes from the same text as --help, and man renders it without warnings', async (t) => {
  const roff = gunzipSync(fileInDeb(DEB_MAN)).toString();
  const date = roff.match(/^\.TH \S+ 8 (\S+)/)?.[1] ?? '';
  t.equal(roff, manPage(VERSION, date), 'exactly manPage()');
  const file = join(work, `${PACKAGE}.8`);
  writeFileSync(file, roff);
  const r = spawnSync('man', ['--warnings', '-l', file], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '400', MANPAGER: 'cat', LC_ALL: 'C.UTF-8' } });
  t.equal(r.status, 0);
  t.equal(r.stderr, '', 'no groff warnings');
  const rendered = r.stdout.replace(/.\x08/g, '').replace(/\s+/g, ' ');
  const help = helpText().replace(/\s+/g, ' ');
  for (const item of [...COMMAND_ITEMS, ...OPTION_ITEMS]) {
    const text = item.text.replaceAll('`', '');
    t.ok(rendered.includes(`${item.term} ${text}`), `man: ${item.term}`);
    t.ok(help.includes(`${item.term} ${text}`), `--help: ${item.term}`);
  }
});

t.test('lintian: no errors, no warnings; only the remarks we keep', async (t) => {
  // lintian leaves an mldbm-elf-* directory in TMPDIR: keep it in our work directory.
  const r = run('env', [`TMPDIR=${work}`, 'lintian', '--display-info', '--pedantic', deb]);
  t.equal(r.code, 0, r.stdout + r.stderr);
  const tags = [
    ...new Set(
      r.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.replace(/^(\w): \S+: (\S+).*$/, '$1: $2')),
    ),
  ].sort();
  t.same(tags, LINTIAN_KEPT, r.stdout);
});

/**
 * Runs `script` (bash) with $ROOT a scratch root: an overlay on this
 * machine's / (writes go to a tmpfs), with its own /proc, /dev, /tmp and an
 * empty /run, all in a private mount namespace that ends with the script.
 * `r CMD` runs CMD in it.
 */
function inScratchRoot(script: string): { code: number | null; stdout: string; stderr: string } {
  const scratch = mkdtempSync(join(work, 'scratch-'));
  const setup = `
    set -euo pipefail
    mount -t tmpfs scratch "$SCRATCH"
    mkdir "$SCRATCH/upper" "$SCRATCH/work" "$SCRATCH/root"
    ROOT=$SCRATCH/root
    mount -t overlay scratch -o "lowerdir=/,upperdir=$SCRATCH/upper,workdir=$SCRATCH/work" "$ROOT"
    mount -t proc proc "$ROOT/proc"
    mount --rbind /dev "$ROOT/dev"
    mount -t tmpfs run "$ROOT/run"
    mount -t tmpfs tmp "$ROOT/tmp"
    r() { chroot "$ROOT" /usr/bin/env -u NODE_OPTIONS DEBIAN_FRONTEND=noninteractive sh -c "cd / && $1"; }
  `;
  const res = spawnSync('unshare', ['-m', '--propagation', 'private', 'env', `SCRATCH=${scratch}`, 'bash', '-c', setup + script], { encoding: 'utf8' });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

t.test('apt installs it in a scratch root (enabled, not started), dpkg upgrades, removes and purges it', async (t) => {
  const upgrade = buildDeb(UPGRADE);
  const dpkgStatus = () => createHash('sha256').update(readFileSync('/var/lib/dpkg/status')).digest('hex');
  const before = dpkgStatus();
  const wants = `/etc/systemd/system/${WANTED_BY}.wants/${UNIT_NAME}`;
  const r = inScratchRoot(`
    cp "${deb}" "${upgrade}" "$ROOT/tmp/"
    state() { echo "$1: $(r "dpkg-query -W -f='\\\${Status} \\\${Version}' ${PACKAGE} 2>&1") | $(r "if [ -L ${wants} ]; then readlink -f ${wants}; else echo none; fi") | $(r "ls ${DEB_CLI} 2>/dev/null || echo none")"; }
    r "apt-get install -y -qq /tmp/${debFileName(VERSION, arch)}" >/dev/null
    state installed
    echo "exporter enabled: $(r "ls /etc/systemd/system/*.wants/ 2>/dev/null | grep -c ${EXPORTER_UNIT_NAME} || true") $(r "ls ${DEB_EXPORTER_UNIT}")"
    echo "version: $(r "${DEB_BIN} --version")"
    mkdir "$ROOT/tmp/bpffs"
    mount -t bpf bpf "$ROOT/tmp/bpffs"
    mkdir "$ROOT/tmp/bpffs/d"
    echo "populate: $(r "${DEB_BIN} --bpffs /tmp/bpffs/d" | sed 's/ (.*//' | sort | tr '\\n' ' ')"
    echo "progs.debug: $(r "cat /tmp/bpffs/d/progs.debug" | head -n 1)"
    r "${DEB_BIN} unpin --bpffs /tmp/bpffs/d" >/dev/null
    r "dpkg -i /tmp/${debFileName(UPGRADE, arch)}" >/dev/null
    state upgraded
    r "systemctl disable ${UNIT_NAME}" 2>/dev/null
    r "dpkg -i /tmp/${debFileName(VERSION, arch)}" >/dev/null
    state "reinstalled after disable"
    r "systemctl enable ${UNIT_NAME}" 2>/dev/null
    r "dpkg -r ${PACKAGE}" >/dev/null
    state removed
    r "dpkg -P ${PACKAGE}" >/dev/null
    state purged
    echo "helper state: $(r "ls /var/lib/systemd/deb-systemd-helper-enabled/ | grep -c ${PACKAGE} || true")"
  `);
  t.equal(r.code, 0, r.stderr);
  const lines = Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
  );
  t.equal(lines.installed, `install ok installed ${VERSION} | ${DEB_UNIT} | ${DEB_CLI}`, 'installed and enabled');
  t.equal(lines['exporter enabled'], `0 ${DEB_EXPORTER_UNIT}`, "the exporter's unit is installed, not enabled");
  t.equal(lines.version, `${PACKAGE} ${VERSION}`);
  t.equal(lines.populate, 'pinned /tmp/bpffs/d/maps.debug pinned /tmp/bpffs/d/progs.debug ', "the packaged CLI and koffi's module work");
  t.match(lines['progs.debug'], /^\s+id name\s+attached/);
  t.equal(lines.upgraded, `install ok installed ${UPGRADE} | ${DEB_UNIT} | ${DEB_CLI}`, 'upgraded, still enabled');
  t.equal(lines['reinstalled after disable'], `install ok installed ${VERSION} | none | ${DEB_CLI}`, "an administrator's disable survives an upgrade");
  t.equal(lines.removed, `deinstall ok config-files ${VERSION} | ${DEB_UNIT} | none`, 'removed: code gone');
  t.match(lines.purged, /no packages found matching bpf-preload \| none \| none$/, 'purged: enablement links gone');
  t.equal(lines['helper state'], '0', "purged: deb-systemd-helper's record gone");
  t.equal(dpkgStatus(), before, "this machine's dpkg database is untouched");
});
