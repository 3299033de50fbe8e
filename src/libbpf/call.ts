// The two calling conventions of libbpf ≥ 1.0, turned into exceptions:
// int-returning functions give a negative errno, pointer-returning ones give
// NULL and leave errno set. Each call runs with libbpf's messages captured.
import { captureLog } from './log.js';
import { LibbpfError } from './error.js';
import { native } from './native.js';

/** Calls an int-returning libbpf function; throws on a negative result. */
export function callInt(op: string, fn: () => number): number {
  const { value, log } = captureLog(() => {
    const ret = fn();
    return ret < 0 ? { ret, errno: native().errno() } : { ret, errno: 0 };
  });
  // Low-level bpf_* wrappers return -errno; a few return -1 and set errno.
  if (value.ret < 0) throw new LibbpfError(op, value.ret === -1 && value.errno ? value.errno : -value.ret, log);
  return value.ret;
}

/** Calls a pointer-returning libbpf function; throws on NULL. */
export function callPtr<T>(op: string, fn: () => T | null): T {
  const { value, log } = captureLog(() => {
    const ptr = fn();
    return { ptr, errno: ptr === null ? native().errno() : 0 };
  });
  if (value.ptr === null) throw new LibbpfError(op, value.errno || 22 /* EINVAL: libbpf gave no reason */, log);
  return value.ptr;
}
