// The bpffs side of pinning: is a directory on one, mounting the default one,
// and the retried file operations that undo a change.
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, rmdirSync, statSync, statfsSync, unlinkSync } from 'node:fs';
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

/** Whether `path` is a directory now. */
export function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

/**
 * Whether anything is pinned at `path`. bpffs answers a lookup of a dotted
 * name that is not there with EPERM (unless the directory's mode is 0): that
 * too means nothing is there. Other errors are thrown.
 */
export function entryExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EPERM') return false;
    throw err;
  }
}

/** Permission bits of `path` (sticky and set-id bits included). */
export function modeOf(path: string): number {
  return statSync(path).mode & 0o7777;
}

export const octal = (mode: number) => `0${mode.toString(8).padStart(3, '0')}`;

/** Blocks this (synchronous) process for `ms` milliseconds. */
export const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

// Undoing a change must not give up on the first error: a transient failure
// (EINTR, EIO, ENOMEM) would otherwise leave the directory changed for good.
const TRIES = 3;
function persist(fn: () => void): void {
  for (let i = 1; ; i++) {
    try {
      return fn();
    } catch (err) {
      if (i >= TRIES) throw err;
      sleepSync(5 * i);
    }
  }
}

/**
 * Sets the permission bits of a directory, trying again on failure. bpffs
 * accepts names with a dot (progs.debug) only while a directory has none,
 * which is how the kernel populates a fresh mount; we do the same, and put
 * the mode back with this.
 */
export function setMode(dir: string, mode: number): void {
  persist(() => chmodSync(dir, mode));
}

/** Runs `remove` until it succeeds (or finds nothing to remove): see persist. */
function removeIfThere(remove: () => void): void {
  persist(() => {
    try {
      remove();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  });
}

/** Removes a pin or symlink, trying again on failure; one already gone is fine. */
export const removeEntry = (path: string) => removeIfThere(() => unlinkSync(path));

/** Removes an empty directory, trying again on failure; one already gone is fine. */
export const removeDir = (path: string) => removeIfThere(() => rmdirSync(path));
