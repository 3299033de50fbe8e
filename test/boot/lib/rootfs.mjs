// The guests' base root file system, one per architecture: Debian (the
// architecture's suite) from debootstrap, with systemd as init, bpftool, and
// what bpf-preload's package depends on (Debian's own nodejs, libbpf1).
// A foreign architecture's packages are configured in a chroot through
// qemu-user (binfmt_misc). Cached twice: as a directory, the lower layer on
// which each run installs the package (lib/payload.mjs), and packed as a cpio
// archive; the kernel unpacks it into a tmpfs as its initramfs and runs
// systemd from there, so no disk image, block driver or kernel module is
// needed (the Debian cloud kernels build virtio-blk and friends as modules).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HOST_ARCH, binfmtName } from './arch.mjs';
import { CACHE, retry, sh, shAsync } from './util.mjs';

const MIRROR = process.env.BPF_PRELOAD_BOOT_MIRROR ?? 'http://deb.debian.org';
const PACKAGES = ['systemd', 'systemd-sysv', 'libbpf1', 'bpftool', 'nodejs'];
// Units that would wait for devices no udev will ever announce (getty on the
// serial console waits 90s for dev-ttyS0.device), or that only cost boot time.
const MASKED = [
  'serial-getty@.service',
  'getty@.service',
  'console-getty.service',
  'proc-sys-fs-binfmt_misc.automount',
  'systemd-timesyncd.service',
  'apt-daily.timer',
  'apt-daily-upgrade.timer',
  'e2scrub_all.timer',
  'fstrim.timer',
  'systemd-journal-flush.service',
  // The initramfs carries no kernel modules: loading any can only fail.
  'systemd-modules-load.service',
];
const BINFMT = '/proc/sys/fs/binfmt_misc';

/**
 * Makes this machine run `arch`'s programs through qemu-user, which
 * debootstrap's second stage (package configuration, in a chroot) needs.
 * binfmt_misc is not always mounted (no systemd as init here) and Debian's
 * qemu-user-static entries can be registered but disabled.
 */
export function foreignExecution(arch) {
  if (arch.deb === HOST_ARCH) return;
  const entry = join(BINFMT, binfmtName(arch));
  const hint = `install qemu-user-static and binfmt-support, and check that ${entry} says "enabled" with flag F`;
  try {
    if (!existsSync(join(BINFMT, 'register'))) sh('mount', ['-t', 'binfmt_misc', 'binfmt_misc', BINFMT]);
    if (!existsSync(entry) || !readFileSync(entry, 'utf8').startsWith('enabled')) sh('update-binfmts', ['--enable', binfmtName(arch)]);
  } catch (err) {
    throw new Error(`cannot run ${arch.deb} programs here (binfmt_misc): ${err.message}; ${hint}`, { cause: err });
  }
  const state = readFileSync(entry, 'utf8');
  // F: the interpreter is opened now, so it works inside the chroot too.
  if (!state.startsWith('enabled') || !/^flags: \S*F/m.test(state))
    throw new Error(`${entry} is not usable in a chroot (${state.split('\n').slice(0, 3).join(', ')}); ${hint}`);
}

/**
 * Packs directory `dir` as a newc cpio archive at `out` (owners and modes
 * kept: we are root). `noDevices`: leave character devices out.
 */
export async function packCpio(dir, out, { noDevices = false } = {}) {
  const select = noDevices ? '! -type c' : '';
  await shAsync('sh', ['-c', `cd "$1" && find . ${select} -print0 | cpio --null -o -H newc --quiet > "$2"`, 'x', dir, out]);
}

/**
 * Gives { dir, cpio } for `arch` (an ARCHES entry): the cached base root file
 * system as a directory (never written to after this) and as an archive,
 * both built when missing.
 */
export async function baseRootfs(arch) {
  const recipe = JSON.stringify({ v: 3, arch: arch.deb, suite: arch.suite, PACKAGES, MASKED });
  const key = createHash('sha256').update(recipe).digest('hex').slice(0, 12);
  const cacheDir = join(CACHE, 'rootfs');
  const name = `base-${arch.deb}-`;
  const dir = join(cacheDir, `${name}${key}`);
  const cpio = `${dir}.cpio`;
  if (existsSync(cpio) && existsSync(dir)) return { dir, cpio, cached: true };

  mkdirSync(cacheDir, { recursive: true });
  foreignExecution(arch);
  const root = join(cacheDir, `build-${arch.deb}`);
  await retry(`debootstrap ${arch.suite} ${arch.deb}`, async () => {
    rmSync(root, { recursive: true, force: true });
    await shAsync('debootstrap', ['--variant=minbase', `--arch=${arch.deb}`, `--include=${PACKAGES.join(',')}`, arch.suite, root, `${MIRROR}/debian`]);
  });
  // Smaller archive, faster unpacking under emulation.
  for (const p of ['usr/share/doc', 'usr/share/man', 'usr/share/locale', 'usr/share/info', 'var/cache/apt', 'var/lib/apt/lists']) {
    rmSync(join(root, p), { recursive: true, force: true });
  }
  const units = join(root, 'etc/systemd/system');
  for (const u of MASKED) {
    rmSync(join(units, u), { force: true });
    symlinkSync('/dev/null', join(units, u));
  }
  rmSync(join(units, 'default.target'), { force: true });
  symlinkSync('/lib/systemd/system/multi-user.target', join(units, 'default.target'));
  writeFileSync(join(root, 'etc/hostname'), 'bpf-preload-boot\n');

  const tmp = `${cpio}.tmp`;
  await packCpio(root, tmp);
  rmSync(dir, { recursive: true, force: true });
  renameSync(root, dir);
  renameSync(tmp, cpio);
  // Older recipes' trees and archives are dead weight.
  for (const f of readdirSync(cacheDir)) if (f.startsWith(name) && !f.includes(key)) rmSync(join(cacheDir, f), { recursive: true, force: true });
  return { dir, cpio, cached: false };
}
