// Processes a test keeps running in the background (a lock holder, an
// attacker's loop), and stops whole.
import { spawn } from 'node:child_process';
import type { Test } from 'tap';

/**
 * Starts `cmd` (a flock holding a lock while `sleep` runs, a loop) in a
 * process group of its own, and returns what stops all of it: killing flock
 * alone would leave its sleep holding the inherited fd, and the lock.
 */
export function background(t: Test, cmd: string, args: string[]): { pid: number; stop: () => Promise<void> } {
  const p = spawn(cmd, args, { stdio: 'ignore', detached: true });
  const exited = new Promise<void>((resolve) => p.on('exit', () => resolve()));
  const stop = async () => {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
  };
  t.teardown(stop);
  return { pid: p.pid!, stop };
}
