// Failures with an errno: LibbpfError for libbpf's object-level API (with
// whatever libbpf printed while the operation ran: for a failed load, the
// verifier's own lines), SysError for system calls on raw file descriptors.
import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';

const { ENOENT, EEXIST } = constants.errno;

// libbpf's own error codes (enum libbpf_errno), returned like errnos.
const LIBBPF_ERRNO_BASE = 4000;
const LIBBPF_ERRNOS: readonly (readonly [string, string])[] = [
  ['LIBBPF_ERRNO__LIBELF', 'libelf failed'],
  ['LIBBPF_ERRNO__FORMAT', 'BPF object format invalid'],
  ['LIBBPF_ERRNO__KVERSION', "incorrect or no 'version' section"],
  ['LIBBPF_ERRNO__ENDIAN', 'endian mismatch'],
  ['LIBBPF_ERRNO__INTERNAL', 'internal error in libbpf'],
  ['LIBBPF_ERRNO__RELOC', 'relocation failed'],
  ['LIBBPF_ERRNO__LOAD', 'program load failed for an unknown reason'],
  ['LIBBPF_ERRNO__VERIFY', 'kernel verifier blocked the program'],
  ['LIBBPF_ERRNO__PROG2BIG', 'program too big'],
  ['LIBBPF_ERRNO__KVER', 'incorrect kernel version'],
  ['LIBBPF_ERRNO__PROGTYPE', "kernel doesn't support this program type"],
  ['LIBBPF_ERRNO__WRNGPID', 'wrong pid in netlink message'],
  ['LIBBPF_ERRNO__INVSEQ', 'invalid netlink sequence'],
  ['LIBBPF_ERRNO__NLPARSE', 'netlink parsing error'],
];

function describe(errno: number): readonly [string, string] {
  const e = Math.abs(errno);
  return LIBBPF_ERRNOS[e - LIBBPF_ERRNO_BASE] ?? getSystemErrorMap().get(-e) ?? [`E${e}`, `error ${e}`];
}

/** "ENOENT" for 2, "LIBBPF_ERRNO__FORMAT" for 4001. */
export function errnoName(errno: number): string {
  return describe(errno)[0];
}

/** The message for an errno ("no such file or directory"). */
export function errnoMessage(errno: number): string {
  return describe(errno)[1];
}

/**
 * What every failure of this library that has an errno shares: the
 * operation, the errno (positive) and its name. Catch this to treat
 * libbpf's failures and the kernel's alike.
 */
export class ErrnoError extends Error {
  /** Positive errno value. */
  readonly errno: number;
  /** Errno name, e.g. "EPERM". */
  readonly code: string;
  /** What failed, e.g. "load BPF object bpf_preload". */
  readonly op: string;
  /** Lines libbpf or the kernel printed during the operation (a verifier log on load failures). */
  readonly log: readonly string[];

  constructor(op: string, errno: number, log: readonly string[] = [], message?: string) {
    const e = Math.abs(errno);
    super(message ?? `${op}: ${errnoName(e)} (${errnoMessage(e)})`);
    this.name = 'ErrnoError';
    this.errno = e;
    this.code = errnoName(e);
    this.op = op;
    this.log = log;
  }
}

/** A failure of libbpf's object-level API (open, load, attach, ...), with what libbpf printed meanwhile. */
export class LibbpfError extends ErrnoError {
  constructor(op: string, errno: number, log: readonly string[] = []) {
    super(op, errno, log);
    this.name = 'LibbpfError';
  }
}

/**
 * A failed system call: bpf(2) commands on raw fds, paths and ids (map
 * elements, pins, info, the light loader's steps), mmap(2) of a map's memory,
 * if_nametoindex(3), perf_event_open(2), a record consumer's eventfd(2) and
 * poll(2), and the runner's flock(2) and *at(2) calls.
 * Shaped like Node's fs errors (`code`, `errno`, `syscall`); `errno` is positive.
 */
export class SysError extends ErrnoError {
  /** The system call, e.g. "bpf", "mmap" or "flock". */
  readonly syscall: string;
  constructor(syscall: string, op: string, errno: number, log: readonly string[] = []) {
    super(op, errno, log);
    this.name = 'SysError';
    this.syscall = syscall;
  }
}

/**
 * The key is not in the map: an update with UpdateFlags.Exist, a batch
 * delete. (A lookup of a missing key is not an error: null or undefined.)
 * A SysError with code ENOENT, so checks of the code keep working.
 */
export class KeyNotFoundError extends SysError {
  constructor(op: string) {
    super('bpf', op, ENOENT);
    this.name = 'KeyNotFoundError';
  }
}

/** The key is already in the map: an update with UpdateFlags.NoExist. A SysError with code EEXIST. */
export class KeyExistsError extends SysError {
  constructor(op: string) {
    super('bpf', op, EEXIST);
    this.name = 'KeyExistsError';
  }
}

/**
 * A handle used after it, or what it belongs to, was released: a program or
 * map of a closed BpfObject, a destroyed link, a closed FdMap, LightObject or
 * RingBuffer. Thrown before anything native is touched, so a closed handle
 * never passes on a freed libbpf pointer or a closed fd number that may by
 * then belong to something else.
 */
export class ClosedError extends Error {
  /** What was used, e.g. "map counts of BPF object library". */
  readonly handle: string;

  constructor(handle: string, released = 'close') {
    super(`${handle} used after ${released}`);
    this.name = 'ClosedError';
    this.handle = handle;
  }
}

/** libbpf.so.1 could not be loaded at all. */
export class LibraryMissingError extends Error {
  constructor(soname: string) {
    super(`${soname} not found or not loadable: install libbpf ≥ 1.0 (apt-get install libbpf1, dnf install libbpf)`);
    this.name = 'LibraryMissingError';
  }
}
