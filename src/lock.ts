// One run at a time per directory: an exclusive flock(2) on the directory's
// own fd, held from before the first look until the directory is final. The
// kernel drops it when the process dies, however it dies, so a crash never
// leaves a stale lock behind; what a crash does leave is the trail's job.
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { sleepSync } from './bpffs.js';
import { PreloadError } from './errors.js';
import { LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, flock } from './libbpf/index.js';

export const LOCK_TIMEOUT_ENV = 'BPF_PRELOAD_LOCK_TIMEOUT';
/** Seconds a run waits for another run on the same directory. */
export const DEFAULT_LOCK_TIMEOUT = 30;
/** When a waiting run says that it waits. */
const SAY_AFTER_MS = 1000;
const POLL_MS = 20;

export interface LockOptions {
  /** Called once, after a second of waiting, with the holder's pid when known. */
  onWait?: (dir: string, holder: number | undefined) => void;
}

function lockTimeoutMs(): number {
  const v = process.env[LOCK_TIMEOUT_ENV];
  if (v === undefined || v === '') return DEFAULT_LOCK_TIMEOUT * 1000;
  if (!/^\d+(\.\d+)?$/.test(v)) throw new PreloadError(`${LOCK_TIMEOUT_ENV}=${v}: expected a number of seconds`);
  return Number(v) * 1000;
}

/** The pid holding a flock on `path`'s inode, from /proc/locks (in our pid namespace). */
export function lockHolder(path: string): number | undefined {
  let st;
  let locks: string;
  try {
    st = statSync(path, { bigint: true });
    locks = readFileSync('/proc/locks', 'utf8');
  } catch {
    return undefined;
  }
  // "1: FLOCK  ADVISORY  WRITE 1234 00:2d:5678 0 EOF": major and minor in hex, inode in decimal.
  const major = Number((st.dev >> 8n) & 0xfffn);
  const minor = Number((st.dev & 0xffn) | ((st.dev >> 12n) & 0xfff00n));
  const id = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
  for (const line of locks.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === 'FLOCK' && f[5] === id && Number(f[4]) > 0) return Number(f[4]);
  }
  return undefined;
}

/** An exclusive lock on a directory; released by dispose (or by the process's death). */
export class DirLock implements Disposable {
  #fd: number;
  readonly dir: string;

  private constructor(dir: string, fd: number) {
    this.dir = dir;
    this.#fd = fd;
  }

  /**
   * Waits for the exclusive lock on `dir`, up to BPF_PRELOAD_LOCK_TIMEOUT
   * seconds, then gives up with a one-line error.
   */
  static acquire(dir: string, opts: LockOptions = {}): DirLock {
    const timeout = lockTimeoutMs();
    const fd = openSync(dir, 'r');
    try {
      const start = Date.now();
      let said = false;
      while (!flock(fd, LOCK_EX | LOCK_NB, dir)) {
        const waited = Date.now() - start;
        if (waited >= timeout) {
          const holder = lockHolder(dir);
          const who = holder ? ` (pid ${holder})` : '';
          throw new PreloadError(
            `another bpf-preload run${who} has held ${dir} for over ${timeout / 1000} s: let it finish or stop it, then run again (${LOCK_TIMEOUT_ENV} sets the wait)`,
          );
        }
        if (!said && waited >= SAY_AFTER_MS) {
          said = true;
          opts.onWait?.(dir, lockHolder(dir));
        }
        sleepSync(POLL_MS);
      }
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return new DirLock(dir, fd);
  }

  release(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    closeSync(fd); // closing the last fd of the open file drops the lock
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

/** Whether a run holds `dir` right now (a shared lock would have to wait). Changes nothing. */
export function isLocked(dir: string): boolean {
  const fd = openSync(dir, 'r');
  try {
    if (!flock(fd, LOCK_SH | LOCK_NB, dir)) return true;
    flock(fd, LOCK_UN, dir);
    return false;
  } finally {
    closeSync(fd);
  }
}
