// flock(2) on a file descriptor. Not a libbpf function, but this is the one
// module that reaches native code, and bpffs directories are what callers of
// libbpf pin into: locking one keeps two writers from interleaving there.
import { constants } from 'node:os';
import { SysError } from '../error.js';
import { native } from './native.js';

const { EWOULDBLOCK, EINTR } = constants.errno;

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;


/**
 * flock(fd, op). With LOCK_NB, returns false when someone else holds a
 * conflicting lock; every other failure throws a SysError naming `what`.
 */
export function flock(fd: number, op: number, what: string): boolean {
  for (;;) {
    if (native().flock(fd, op) === 0) return true;
    const errno = native().errno();
    if (errno === EINTR) continue;
    if (errno === EWOULDBLOCK && op & LOCK_NB) return false;
    throw new SysError('flock', `flock ${what}`, errno);
  }
}
