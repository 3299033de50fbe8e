// Private bpffs directories for the tests (test/lib/bpffs.ts) and the bench
// (bench/bpffs.ts). On this machine's kernel every new bpffs mount root gets
// progs.debug/maps.debug entries nobody can open, so a clean directory is a
// subdirectory of a fresh mount, bind-mounted elsewhere. Everything is undone
// on release: mounts, pins, the temp directory.
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { flock } from '../src/libbpf/sys/flock.js';
import { LOCK_EX, LOCK_NB } from '../src/libbpf/sys/linux.js';
import { LOCK_DIR } from '../src/preload/transaction/lock.js';
import { run, sh } from './command.mjs';

/**
 * Removes the lock files runs left for a bpffs instance once it is gone (a
 * killed run leaves its own; flock(1) in a test never removes one). One that
 * is locked is in use, by a new mount that got the same device: it stays.
 */
function removeLockFiles(dev: number): void {
  let names: string[];
  try {
    names = readdirSync(LOCK_DIR).filter((n) => n.startsWith(`${dev}-`));
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(LOCK_DIR, name);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      continue;
    }
    try {
      if (flock(fd, LOCK_EX | LOCK_NB, path)) unlinkSync(path);
    } finally {
      closeSync(fd);
    }
  }
}

export interface Bpffs {
  /** A clean directory on a bpffs (no entries). */
  dir: string;
  /** The root of the fresh mount behind it (with the kernel's unusable entries). */
  root: string;
  /** A scratch directory that is not on a bpffs. */
  tmp: string;
}

export interface MountedBpffs extends Bpffs {
  /** Unmounts both mounts (dropping every pin, and with them our programs) and removes the temp directory; throws if an unmount failed. */
  release: () => void;
}

/**
 * Mounts a private bpffs under a new temp directory named `prefix`XXXXXX,
 * for a test or the bench alike; the caller arranges for release()
 * (privateBpffs: at teardown).
 */
export function mountPrivateBpffs(prefix = '/tmp/bpfpreloadtest'): MountedBpffs {
  // No dots in the name: libbpf rewrites them in some pin paths.
  const tmp = mkdtempSync(prefix);
  const root = join(tmp, 'mnt');
  const dir = join(tmp, 'dir');
  mkdirSync(root);
  mkdirSync(dir);
  sh('mount', ['-t', 'bpf', 'bpf', root]);
  mkdirSync(join(root, 'clean'));
  sh('mount', ['--bind', join(root, 'clean'), dir]);
  const dev = statSync(root).dev;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    const failed = [dir, root].flatMap((m) => {
      const r = run('umount', [m]);
      return r.code === 0 ? [] : [`umount ${m}: ${r.stderr.trim()}`];
    });
    if (failed.length === 0) {
      rmSync(tmp, { recursive: true, force: true });
      removeLockFiles(dev);
    }
    if (failed.length) throw new Error(failed.join('; '));
  };
  return { dir, root, tmp, release };
}
