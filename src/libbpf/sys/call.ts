// The calling conventions of libbpf ≥ 1.0, turned into exceptions:
// int-returning functions give a negative errno, pointer-returning ones give
// NULL and leave errno set. Object-level calls run with libbpf's messages
// captured (LibbpfError); the thin bpf(2) wrappers on raw fds print nothing
// and fail with the kernel's errno (SysError).
import { constants } from 'node:os';
import { captureLog } from '../log.js';
import { LibbpfError, SysError } from '../error.js';
import { native } from './native.js';

const { EINVAL } = constants.errno;

// Low-level bpf_* wrappers return -errno; a few return -1 and set errno.
function errnoOf(ret: number, errno: number): number {
  return ret === -1 && errno ? errno : -ret;
}

/** Calls an int-returning libbpf function; throws on a negative result. */
export function callInt(op: string, fn: () => number): number {
  const { value, log } = captureLog(() => {
    const ret = fn();
    return ret < 0 ? { ret, errno: native().errno() } : { ret, errno: 0 };
  });
  if (value.ret < 0) throw new LibbpfError(op, errnoOf(value.ret, value.errno), log);
  return value.ret;
}

/** Calls a pointer-returning libbpf function; throws on NULL. */
export function callPtr<T>(op: string, fn: () => T | null): T {
  const { value, log } = captureLog(() => {
    const ptr = fn();
    return { ptr, errno: ptr === null ? native().errno() : 0 };
  });
  if (value.ptr === null) throw new LibbpfError(op, value.errno || EINVAL /* libbpf gave no reason */, log);
  return value.ptr;
}

/**
 * Calls one of libbpf's bpf(2) wrappers (bpf_map_*, bpf_obj_*, bpf_prog_load,
 * bpf_link_create, ...); throws a SysError on a negative result. `log`, if
 * given, is read after a failure (bpf_prog_load's verifier log buffer).
 */
export function callSys(op: string, fn: () => number, log?: () => readonly string[]): number {
  const ret = fn();
  if (ret >= 0) return ret;
  throw new SysError('bpf', op, errnoOf(ret, native().errno()), log?.() ?? []);
}
