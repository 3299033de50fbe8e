// Processes a test keeps running in the background (a lock holder, an
// attacker's loop), and stops whole.
import { spawn } from 'node:child_process';
import type { Test } from 'tap';
import { eventually } from './kernel.js';

/** Whether any process of the group `pgid` is left (a zombie counts until it is reaped). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

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
    // The leader's exit can come before the rest of its group is gone: a
    // loop's mv still in the directory that the teardown then unmounts.
    await eventually(() => !groupAlive(p.pid!), 5000);
  };
  t.teardown(stop);
  return { pid: p.pid!, stop };
}
