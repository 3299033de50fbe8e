// Types of command.mjs (plain JavaScript: the boot harness imports it too).
import type { SpawnSyncOptions } from 'node:child_process';

export interface CommandResult {
  /** Exit code; null when a signal ended it, or it could not be started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** What it printed on stderr, and why it could not be started if it could not. */
  stderr: string;
}

export function run(cmd: string, args: readonly string[], opts?: SpawnSyncOptions): CommandResult;
export function commandFailed(
  cmd: string,
  args: readonly string[],
  status: number | string,
  output: string,
  says?: (output: string) => string,
): Error & { log: string };
export function sh(cmd: string, args: readonly string[], opts?: SpawnSyncOptions, says?: (output: string) => string): string;
