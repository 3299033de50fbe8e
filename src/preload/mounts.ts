// Every bpffs in this mount namespace, for `--all`: one target per bpffs
// instance (superblock), however many mount points and bind mounts show it.
import { readFileSync } from 'node:fs';

export interface BpffsInstance {
  /** The superblock's device, "major:minor": what makes two mounts one instance. */
  device: string;
  /** Where to work: a mount point showing the instance's root where there is one. */
  mountPoint: string;
  /** Every mount point of the instance, in mount order. */
  mountPoints: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The bpffs instances in /proc/self/mountinfo, in the order they were first mounted. */
export function bpffsInstances(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): BpffsInstance[] {
  const byDevice = new Map<string, { root: string; point: string }[]>();
  for (const line of mountinfo.split('\n')) {
    // "36 35 0:40 / /sys/fs/bpf rw,nosuid shared:8 - bpf bpf rw,mode=700"
    const [left, right] = line.split(' - ');
    if (!right || right.split(' ')[0] !== 'bpf') continue;
    const f = left.split(' ');
    const mounts = byDevice.get(f[2]) ?? [];
    mounts.push({ root: unescape(f[3]), point: unescape(f[4]) });
    byDevice.set(f[2], mounts);
  }
  return [...byDevice].map(([device, mounts]) => ({
    device,
    mountPoint: (mounts.find((m) => m.root === '/') ?? mounts[0]).point,
    mountPoints: mounts.map((m) => m.point),
  }));
}
