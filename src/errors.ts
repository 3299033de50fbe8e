// Failures the CLI reports as one line and an exit code. Anything else that
// escapes is a bug, reported as one line too (see cli.ts).

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A failure with a message meant for the user: what failed and what to do. */
export class PreloadError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = EXIT_FAILURE) {
    super(message);
    this.name = 'PreloadError';
    this.exitCode = exitCode;
  }
}

export class UsageError extends PreloadError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
    this.name = 'UsageError';
  }
}
