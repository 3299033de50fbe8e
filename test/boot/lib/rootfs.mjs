// The guests' root file system: Debian bookworm from debootstrap, with systemd
// as init, libbpf and bpftool. Packed once as a cpio archive and cached; the
// kernel unpacks it into a tmpfs as its initramfs and runs systemd from there,
// so no disk image, block driver or kernel module is needed (the Debian cloud
// kernels build virtio-blk and friends as modules).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE, retry, shAsync } from './util.mjs';

const MIRROR = process.env.BPF_PRELOAD_BOOT_MIRROR ?? 'http://deb.debian.org';
const SUITE = 'bookworm';
const PACKAGES = ['systemd', 'systemd-sysv', 'libbpf1', 'bpftool'];
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
];
const RECIPE = JSON.stringify({ v: 1, SUITE, PACKAGES, MASKED });

/** Packs directory `dir` as a newc cpio archive at `out` (owners and modes kept: we are root). */
export async function packCpio(dir, out) {
  await shAsync('sh', ['-c', 'cd "$1" && find . -print0 | cpio --null -o -H newc --quiet > "$2"', 'x', dir, out]);
}

/** Gives { cpio, libs }: the cached base archive (built when missing) and the shared libraries it holds. */
export async function baseRootfs() {
  const key = createHash('sha256').update(RECIPE).digest('hex').slice(0, 12);
  const dir = join(CACHE, 'rootfs');
  const cpio = join(dir, `base-${key}.cpio`);
  const libsFile = join(dir, `base-${key}.libs.json`);
  if (existsSync(cpio) && existsSync(libsFile)) return { cpio, libs: JSON.parse(readFileSync(libsFile, 'utf8')), cached: true };

  mkdirSync(dir, { recursive: true });
  const root = join(dir, 'build');
  await retry('debootstrap', async () => {
    rmSync(root, { recursive: true, force: true });
    await shAsync('debootstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, SUITE, root, `${MIRROR}/debian`]);
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
  const libs = readdirSync(join(root, 'usr/lib/x86_64-linux-gnu'));

  const tmp = `${cpio}.tmp`;
  await packCpio(root, tmp);
  renameSync(tmp, cpio);
  writeFileSync(libsFile, JSON.stringify(libs));
  rmSync(root, { recursive: true, force: true });
  // Older recipes' archives are dead weight.
  for (const f of readdirSync(dir)) if (f.startsWith('base-') && !f.includes(key)) rmSync(join(dir, f), { force: true });
  return { cpio, libs, cached: false };
}
