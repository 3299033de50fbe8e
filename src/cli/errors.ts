// Failures the CLI reports as one line and an exit code. Anything else that
// escapes is a bug, reported as one line too (see cli.ts).

/** Set (to anything), it makes the CLI print the stack trace of an unexpected error too. */
export const DEBUG_ENV = 'BPF_PRELOAD_DEBUG';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A failure with a message meant for the user: what failed and what to do (exit 1). */
export class PreloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PreloadError';
  }
}

/** Arguments the CLI cannot take (exit 2). */
export class UsageError extends PreloadError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * A number of seconds from the environment variable `name`, in milliseconds;
 * `fallback` seconds when it is unset or empty. Anything but a non-negative
 * decimal number is the user's mistake, named in one line.
 */
export function envSecondsMs(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback * 1000;
  if (!/^\d+(\.\d+)?$/.test(v)) throw new PreloadError(`${name}=${v}: expected a number of seconds`);
  return Number(v) * 1000;
}
