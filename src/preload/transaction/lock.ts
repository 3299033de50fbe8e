// One run at a time per directory: an exclusive flock(2) on a lock file of
// that directory, held from before the first look until the directory is
// final. The kernel drops it when the process dies, however it dies, so a
// crash never leaves a stale lock behind; what a crash does leave is the
// trail's job.
//
// The lock file is not the directory itself: anyone who can open a
// directory can flock it, and so block the boot unit or pose as a run. It is
// a file in LOCK_DIR, which only root can write, named after the bpffs
// instance (st_dev) and the directory's inode, so every mount point and bind
// mount of one directory shares it. The holder removes it as it releases it;
// a waiter that then gets the lock of a removed file opens the new one.
import { closeSync, fstatSync, mkdirSync, readFileSync, type Stats } from 'node:fs';
import { type BpffsDir, ownedByUs, untrustedDir } from './bpffs.js';
import { sleepSync } from './sleep.js';
import { PreloadError, envSecondsMs } from '../../errors.js';
import { O_CREAT, O_DIRECTORY, O_NOFOLLOW, O_RDONLY, O_RDWR, openAt, unlinkAt } from '../../libbpf/sys/dirfd.js';
import { flock } from '../../libbpf/sys/flock.js';
import { AT_FDCWD, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN } from '../../libbpf/sys/linux.js';

export const LOCK_TIMEOUT_ENV = 'BPF_PRELOAD_LOCK_TIMEOUT';
/** Seconds a run waits for another run on the same directory. */
export const DEFAULT_LOCK_TIMEOUT = 30;
/** Where the lock files live: a directory only root can write (systemd's unit: RuntimeDirectory=). */
export const LOCK_DIR = '/run/bpf-preload';
/** When a waiting run says that it waits. */
const SAY_AFTER_MS = 1000;
const POLL_MS = 20;

export interface LockOptions {
  /** Called once, after a second of waiting, with the holder's pid when known. */
  onWait?: (dir: string, holder: number | undefined) => void;
}

/** The lock file's name in LOCK_DIR for a directory: its bpffs instance and inode. */
export const lockName = (dev: number, ino: number) => `${dev}-${ino}`;

/**
 * LOCK_DIR, opened; made (0700) when `create` and missing. Refused unless it
 * is root's and nobody else can write it. Undefined when missing.
 */
function openLockDir(create: boolean): number | undefined {
  if (create) {
    try {
      mkdirSync(LOCK_DIR, 0o700);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') {
        throw new PreloadError(`cannot make the lock directory ${LOCK_DIR} (${code}): run as root; a systemd unit needs RuntimeDirectory=bpf-preload`);
      }
    }
  }
  let fd: number;
  try {
    fd = openAt(AT_FDCWD, LOCK_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, `open ${LOCK_DIR}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !create) return undefined;
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new PreloadError(`${LOCK_DIR} is a symlink: remove it, then run again`);
    throw err;
  }
  const why = untrustedDir(fstatSync(fd), false);
  if (why) {
    closeSync(fd);
    throw new PreloadError(`${LOCK_DIR} ${why}: bpf-preload locks only in a directory of root's that no one else can write; remove it, then run again`);
  }
  return fd;
}

/** /proc/locks's "major:minor:inode" of a file. */
function lockId(st: Stats): string {
  const dev = BigInt(st.dev);
  const major = Number((dev >> 8n) & 0xfffn);
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & 0xfff00n));
  return `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
}

/** The pid holding a flock on the open file `fd`, from /proc/locks (in our pid namespace). */
function lockHolder(fd: number): number | undefined {
  let id: string;
  let locks: string;
  try {
    id = lockId(fstatSync(fd));
    locks = readFileSync('/proc/locks', 'utf8');
  } catch {
    return undefined;
  }
  // "1: FLOCK  ADVISORY  WRITE 1234 00:2d:5678 0 EOF"
  for (const line of locks.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === 'FLOCK' && f[5] === id && Number(f[4]) > 0) return Number(f[4]);
  }
  return undefined;
}

/** An exclusive lock on a directory; released by dispose (or by the process's death). */
export class DirLock implements Disposable {
  #fd: number;
  #lockDir: number;
  readonly #name: string;

  private constructor(lockDir: number, name: string, fd: number) {
    this.#lockDir = lockDir;
    this.#name = name;
    this.#fd = fd;
  }

  /**
   * Waits for the exclusive lock on `dir`, up to BPF_PRELOAD_LOCK_TIMEOUT
   * seconds, then gives up with a one-line error. The caller holds no
   * signals meanwhile: SIGTERM or SIGINT ends the wait at once (nothing has
   * been changed yet).
   */
  static acquire(dir: BpffsDir, opts: LockOptions = {}): DirLock {
    const timeout = envSecondsMs(LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT);
    const lockDir = openLockDir(true)!;
    const name = lockName(dir.dev, dir.ino);
    const what = `${LOCK_DIR}/${name}`;
    try {
      const start = Date.now();
      let said = false;
      for (;;) {
        const fd = openAt(lockDir, name, O_RDWR | O_CREAT | O_NOFOLLOW, `open ${what}`, 0o600);
        let held = false;
        try {
          const st = fstatSync(fd);
          if (!st.isFile() || !ownedByUs(st)) throw new PreloadError(`${what} is not a lock file of ours: remove it, then run again`);
          if (flock(fd, LOCK_EX | LOCK_NB, what)) {
            // The previous holder removed it on release: lock the new one.
            if (fstatSync(fd).nlink > 0) {
              held = true;
              return new DirLock(lockDir, name, fd);
            }
            continue;
          }
          const waited = Date.now() - start;
          if (waited >= timeout) {
            const holder = lockHolder(fd);
            const who = holder ? ` (pid ${holder})` : '';
            throw new PreloadError(
              `another bpf-preload run${who} has held ${dir.path} for over ${timeout / 1000} s: let it finish or stop it, then run again (${LOCK_TIMEOUT_ENV} sets the wait)`,
            );
          }
          if (!said && waited >= SAY_AFTER_MS) {
            said = true;
            opts.onWait?.(dir.path, lockHolder(fd));
          }
        } finally {
          if (!held) closeSync(fd);
        }
        sleepSync(POLL_MS);
      }
    } catch (err) {
      closeSync(lockDir);
      throw err;
    }
  }

  release(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    try {
      // Removed while still held: a waiter finds its file gone and opens a new one.
      unlinkAt(this.#lockDir, this.#name, `remove ${LOCK_DIR}/${this.#name}`);
    } catch {
      // a lock file left behind is only a file: the next run uses it
    } finally {
      closeSync(fd); // closing the last fd of the open file drops the lock
      closeSync(this.#lockDir);
    }
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

/** A run holds `dir` right now: its pid (0 when not known); null when none does. Changes nothing. */
export function runningOn(dir: BpffsDir): number | null {
  const lockDir = openLockDir(false);
  if (lockDir === undefined) return null;
  try {
    let fd: number;
    try {
      fd = openAt(lockDir, lockName(dir.dev, dir.ino), O_RDONLY | O_NOFOLLOW, `open ${LOCK_DIR}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    try {
      if (flock(fd, LOCK_SH | LOCK_NB, LOCK_DIR)) {
        flock(fd, LOCK_UN, LOCK_DIR);
        return null;
      }
      return lockHolder(fd) ?? 0;
    } finally {
      closeSync(fd);
    }
  } finally {
    closeSync(lockDir);
  }
}
