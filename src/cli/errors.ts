// Failures the CLI reports as one line and an exit code (PreloadError, from
// src/errors.ts, is exit 1). Anything else that escapes is a bug, reported as
// one line too (see cli.ts).
import { PreloadError } from '../errors.js';

/** Set (to anything), it makes the CLI print the stack trace of an unexpected error too. */
export const DEBUG_ENV = 'BPF_PRELOAD_DEBUG';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Arguments the CLI cannot take (exit 2). */
export class UsageError extends PreloadError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
