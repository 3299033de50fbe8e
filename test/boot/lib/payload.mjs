// What each run puts on top of an architecture's base root file system:
// bpf-preload's Debian package, built by build/package.ts for that
// architecture and installed with apt-get in a chroot of the base, so that
// its maintainer scripts enable the unit as on any Debian system being built
// (systemd is not running there: enabled, not started); the same package
// rebuilt with a bumped version, which the guest upgrades to; and the
// in-guest check with its BPF fixture (BPF bytecode is the same for every
// architecture) and its settings. The chroot is an overlay on the cached base
// tree; its upper layer, what the install changed, is packed as a second cpio
// archive, which the kernel unpacks over the base.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { foreignExecution, packCpio } from './rootfs.mjs';
import { sh, shAsync } from './util.mjs';

/** Where the check, its fixture, its settings and the upgrade package go in the guest. */
export const GUEST_TEST_DIR = '/usr/lib/bpf-preload-boottest';
const SETTINGS = 'boottest.json';
const TEST_UNIT = 'bpf-preload-boottest.service';

/**
 * Bundles one of the project's TypeScript modules for the harness's own use
 * (this runs as plain node) and imports it. Modules that read package.json
 * read it from the checkout (the harness runs there).
 */
export async function loadTsModule(repo, workDir, entry) {
  const out = join(workDir, `${basename(entry, '.ts')}.mjs`);
  await build({ entryPoints: [join(repo, entry)], outfile: out, bundle: true, platform: 'node', format: 'esm', packages: 'external', logLevel: 'warning' });
  return import(pathToFileURL(out).href);
}

/** The package of `version` for `arch`, as `npm run package` builds it (dist/bpf-preload.js must exist). */
function buildDeb(repo, out, arch, version, layout) {
  sh(process.execPath, ['build/run.mjs', 'build/package.ts', '--arch', arch.deb, '--version', version, '--out', out], { cwd: repo });
  return join(out, layout.debFileName(version, arch.deb));
}

/**
 * Installs `deb` with apt-get into an overlay of `baseDir` whose writes go to
 * `upper`, then copies the tree `extra` over it; all in a private mount
 * namespace that ends with the install. A foreign architecture's programs run
 * through qemu-user.
 */
async function installInOverlay({ arch, baseDir, upper, scratch, deb, extra }) {
  foreignExecution(arch);
  const script = `
    set -euo pipefail
    mount -t overlay bootroot -o "lowerdir=$BASE,upperdir=$UPPER,workdir=$SCRATCH/work" "$SCRATCH/root"
    ROOT=$SCRATCH/root
    mount -t proc proc "$ROOT/proc"
    mount --rbind /dev "$ROOT/dev"
    mount -t tmpfs run "$ROOT/run"
    mount -t tmpfs tmp "$ROOT/tmp"
    cp "$DEB" "$ROOT/tmp/"
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \\
      apt-get install -y -q --no-install-recommends "/tmp/$(basename "$DEB")"
    cp -a "$EXTRA/." "$ROOT/"
  `;
  mkdirSync(join(scratch, 'work'), { recursive: true });
  mkdirSync(join(scratch, 'root'), { recursive: true });
  mkdirSync(upper, { recursive: true, mode: 0o755 });
  const env = { ...process.env, BASE: baseDir, UPPER: upper, SCRATCH: scratch, DEB: deb, EXTRA: extra };
  await shAsync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', script], { env });
}

/**
 * Builds the package layer for `arch` (an ARCHES entry) on `base` (from
 * baseRootfs) in `workDir`, and gives its archive's path and what the guest
 * will check against. `repo` is the checkout, its dist/bpf-preload.js built;
 * `layout` is build/deb-layout.ts, `bundle` build/bundle-options.ts.
 */
export async function buildPayload({ repo, workDir, arch, base, layout, bundle }) {
  const debs = join(workDir, `debs-${arch.deb}`);
  const deb = buildDeb(repo, debs, arch, layout.VERSION, layout);
  const upgrade = buildDeb(repo, debs, arch, layout.UPGRADE_VERSION, layout);

  // What the guest's check needs beside the package, laid out as in the guest.
  const extra = join(workDir, `extra-${arch.deb}`);
  rmSync(extra, { recursive: true, force: true });
  const testDir = join(extra, GUEST_TEST_DIR);
  mkdirSync(testDir, { recursive: true });
  // The check is bundled with the project's libbpf bindings, for the oldest
  // node we support; koffi is the package's own (its native module for this architecture).
  await build({
    ...bundle.cliBundleOptions,
    banner: { js: bundle.PREAMBLE },
    entryPoints: [join(repo, 'test/boot/guest/check.ts')],
    outfile: join(testDir, 'check.mjs'),
  });
  symlinkSync(`${layout.DEB_CODE_DIR}/node_modules`, join(testDir, 'node_modules'));
  sh('clang', [
    '-O2',
    '-g',
    '-target',
    'bpf',
    `-I/usr/include/${sh('uname', ['-m']).trim()}-linux-gnu`,
    '-c',
    join(repo, 'test/boot/guest/attach.bpf.c'),
    '-o',
    join(testDir, 'attach.bpf.o'),
  ]);
  writeFileSync(join(testDir, basename(upgrade)), readFileSync(upgrade));
  // The nodejs the base root file system holds: the guest checks that /usr/bin/node is it.
  const nodejs = sh('dpkg-query', [`--admindir=${join(base.dir, 'var/lib/dpkg')}`, '-W', '-f=${Version}', 'nodejs']).trim();
  const settings = {
    package: layout.PACKAGE,
    version: layout.VERSION,
    upgradeVersion: layout.UPGRADE_VERSION,
    upgradeDeb: join(GUEST_TEST_DIR, basename(upgrade)),
    cli: layout.DEB_BIN,
    node: layout.DEB_NODE,
    unitPath: layout.DEB_UNIT,
    nodejsVersion: nodejs,
  };
  writeFileSync(join(testDir, SETTINGS), `${JSON.stringify(settings, null, 2)}\n`);
  // The test's own unit, started once the boot is over.
  const units = join(extra, 'etc/systemd/system');
  mkdirSync(join(units, 'multi-user.target.wants'), { recursive: true });
  const unitText = readFileSync(join(repo, 'test/boot/guest', TEST_UNIT), 'utf8').replaceAll('@CHECK@', `${layout.DEB_NODE} ${GUEST_TEST_DIR}/check.mjs`);
  writeFileSync(join(units, TEST_UNIT), unitText);
  symlinkSync(`../${TEST_UNIT}`, join(units, 'multi-user.target.wants', TEST_UNIT));

  const upper = join(workDir, `upper-${arch.deb}`);
  const scratch = join(workDir, `scratch-${arch.deb}`);
  for (const d of [upper, scratch]) rmSync(d, { recursive: true, force: true });
  await installInOverlay({ arch, baseDir: base.dir, upper, scratch, deb, extra });
  // apt's caches of the package lists: rebuilt by apt in the guest when needed.
  for (const f of ['pkgcache.bin', 'srcpkgcache.bin']) rmSync(join(upper, 'var/cache/apt', f), { force: true });

  const out = join(workDir, `payload-${arch.deb}.cpio`);
  // Character devices 0:0 in an overlay's upper layer are whiteouts (files
  // the install deleted from the base); a cpio over the base cannot delete.
  await packCpio(upper, out, { noDevices: true });
  const size = Number(sh('du', ['-sk', out]).split('\t')[0]);
  for (const d of [upper, scratch, extra, debs]) rmSync(d, { recursive: true, force: true });
  return { cpio: out, settings, sizeKiB: size };
}
