// The *at(2) family on a directory fd, which Node lacks: every change the
// runner makes in a bpffs is relative to a directory it opened once and
// checked, so that no symlink or rename by another user can point the change
// anywhere else. libc's functions (and flock, for flock.ts), reached through
// koffi on native.ts's libc; failures are SysErrors naming what failed.
import { constants } from 'node:fs';
import { constants as os } from 'node:os';
import { SysError } from '../error.js';
import { libc as loadLibc, loadKoffi } from './native.js';
import { AT_REMOVEDIR, O_CLOEXEC } from './linux.js';

// Node's values are this platform's (O_DIRECTORY and O_NOFOLLOW differ on arm).
export const { O_RDONLY, O_RDWR, O_CREAT, O_NONBLOCK, O_DIRECTORY, O_NOFOLLOW } = constants;
const { EINTR } = os.errno;

/** @internal The libc calls below, typed as koffi marshals them (native.ts says how). */
interface Libc {
  errno: () => number;
  flock: (fd: number, operation: number) => number;
  /** Variadic: the mode goes in with its C type named before it. */
  openat: (dirfd: number, path: string, flags: number, modeType: 'uint32', mode: number) => number;
  fchmod: (fd: number, mode: number) => number;
  unlinkat: (dirfd: number, path: string, flags: number) => number;
  renameat: (olddirfd: number, oldpath: string, newdirfd: number, newpath: string) => number;
  mkdirat: (dirfd: number, path: string, mode: number) => number;
  symlinkat: (target: string, dirfd: number, path: string) => number;
  readlinkat: (dirfd: number, path: string, buf: Buffer, size: number) => number | bigint;
}

function declare(): Libc {
  const koffi = loadKoffi();
  const libc = loadLibc();
  return {
    errno: () => koffi.errno(),
    flock: libc.func('int flock(int fd, int operation)'),
    openat: libc.func('int openat(int dirfd, const char *path, int flags, ...)'),
    fchmod: libc.func('int fchmod(int fd, uint32 mode)'),
    unlinkat: libc.func('int unlinkat(int dirfd, const char *path, int flags)'),
    renameat: libc.func('int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)'),
    mkdirat: libc.func('int mkdirat(int dirfd, const char *path, uint32 mode)'),
    symlinkat: libc.func('int symlinkat(const char *target, int dirfd, const char *path)'),
    readlinkat: libc.func('intptr_t readlinkat(int dirfd, const char *path, _Out_ uint8_t *buf, size_t size)'),
  };
}

let cached: Libc | undefined;
/** @internal The libc calls on file descriptors that this module and flock.ts make. */
export const libc = () => (cached ??= declare());

/** Runs a libc call that returns -1 and sets errno on failure; retries EINTR. */
export function callLibc(syscall: string, what: string, fn: () => number | bigint): number {
  for (;;) {
    const ret = Number(fn());
    if (ret >= 0) return ret;
    const errno = libc().errno();
    if (errno !== EINTR) throw new SysError(syscall, what, errno);
  }
}

/** openat(2); `mode` only matters with O_CREAT. Returns the new fd. */
export function openAt(dirfd: number, name: string, flags: number, what: string, mode = 0): number {
  return callLibc('openat', what, () => libc().openat(dirfd, name, flags | O_CLOEXEC, 'uint32', mode));
}

/** fchmod(2): the mode of what `fd` refers to, not of whatever a path names now. */
export function fchmod(fd: number, mode: number, what: string): void {
  callLibc('fchmod', what, () => libc().fchmod(fd, mode));
}

/** unlinkat(2) of a file or symlink (never followed). */
export function unlinkAt(dirfd: number, name: string, what: string): void {
  callLibc('unlinkat', what, () => libc().unlinkat(dirfd, name, 0));
}

/** unlinkat(2) with AT_REMOVEDIR: removes an empty directory. */
export function rmdirAt(dirfd: number, name: string, what: string): void {
  callLibc('unlinkat', what, () => libc().unlinkat(dirfd, name, AT_REMOVEDIR));
}

/** renameat(2) within one directory fd (neither name is followed). */
export function renameAt(dirfd: number, from: string, to: string, what: string): void {
  callLibc('renameat', what, () => libc().renameat(dirfd, from, dirfd, to));
}

export function mkdirAt(dirfd: number, name: string, mode: number, what: string): void {
  callLibc('mkdirat', what, () => libc().mkdirat(dirfd, name, mode));
}

export function symlinkAt(target: string, dirfd: number, name: string, what: string): void {
  callLibc('symlinkat', what, () => libc().symlinkat(target, dirfd, name));
}

/** readlinkat(2): the target text of the symlink `name` (up to 4 KiB). */
export function readlinkAt(dirfd: number, name: string, what: string): string {
  const buf = Buffer.alloc(4096);
  const n = callLibc('readlinkat', what, () => libc().readlinkat(dirfd, name, buf, buf.length));
  return buf.toString('utf8', 0, n);
}
