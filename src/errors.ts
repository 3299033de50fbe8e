// The failure every product reports as one line: the runner's, the
// exporter's and the CLI's. Below all of them, so that none imports upwards;
// src/cli/errors.ts maps it to an exit code.

/** A failure with a message meant for the user: what failed and what to do (exit 1). */
export class PreloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PreloadError';
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
