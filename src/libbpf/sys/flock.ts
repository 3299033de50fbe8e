// flock(2) on a file descriptor. Not a libbpf function, but bpffs directories
// are what callers of libbpf pin into: locking one keeps two writers from
// interleaving there. The runner imports it by path (it is not in the public index).
import { constants } from 'node:os';
import { SysError } from '../error.js';
import { callLibc, libc } from './dirfd.js';
import { LOCK_NB } from './linux.js';

const { EWOULDBLOCK } = constants.errno;

/**
 * flock(fd, op), op one of linux.ts's LOCK_SH, LOCK_EX, LOCK_UN, with LOCK_NB
 * or not. With LOCK_NB, returns false when someone else holds a conflicting
 * lock; every other failure throws a SysError naming `what`.
 */
export function flock(fd: number, op: number, what: string): boolean {
  try {
    callLibc('flock', `flock ${what}`, () => libc().flock(fd, op));
    return true;
  } catch (err) {
    if (err instanceof SysError && err.errno === EWOULDBLOCK && op & LOCK_NB) return false;
    throw err;
  }
}
