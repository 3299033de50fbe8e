// The bpffs side of pinning: is a directory on one, mounting the default one,
// and the mode dance that lets dotted names in.
import { spawnSync } from 'node:child_process';
import { chmodSync, statSync, statfsSync } from 'node:fs';
import { PreloadError } from './errors.js';

export const BPF_FS_MAGIC = 0xcafe4a11;
export const DEFAULT_BPFFS = '/sys/fs/bpf';

/** Whether `dir` lives on a bpffs (statfs magic). Throws for a missing path. */
export function isOnBpffs(dir: string): boolean {
  return statfsSync(dir).type === BPF_FS_MAGIC;
}

/**
 * Checks `dir` is an existing directory on a bpffs. The default location gets
 * a bpffs mounted if it has none, with mode 0700 as systemd mounts it.
 */
export function requireBpffs(dir: string, mountIfMissing: boolean): void {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new PreloadError(`${dir} does not exist: create it on a bpffs, or mount one (mount -t bpf bpf ${dir})`);
  }
  if (!st.isDirectory()) throw new PreloadError(`${dir} is not a directory: give --bpffs a directory on a bpffs`);
  if (isOnBpffs(dir)) return;
  if (!mountIfMissing) {
    throw new PreloadError(`${dir} is not on a bpffs: mount one there (mount -t bpf bpf ${dir}) or pick another --bpffs`);
  }
  const r = spawnSync('mount', ['-t', 'bpf', '-o', 'mode=0700', 'bpf', dir], { encoding: 'utf8' });
  if (r.status !== 0 || !isOnBpffs(dir)) {
    const why = (r.stderr || r.error?.message || '').trim().split('\n')[0];
    throw new PreloadError(`cannot mount a bpffs at ${dir}${why ? ` (${why})` : ''}: run as root, or mount it first`);
  }
}

/**
 * Runs `fn` while `dir` has no permission bits. bpffs only accepts names with
 * a dot (progs.debug) while its directory is in that state, which is how the
 * kernel populates a fresh mount; we do the same. The exact original mode is
 * restored on every path, errors included.
 */
export function withModeCleared<T>(dir: string, fn: () => T): T {
  const original = statSync(dir).mode & 0o7777;
  chmodSync(dir, 0);
  try {
    return fn();
  } finally {
    chmodSync(dir, original);
  }
}
