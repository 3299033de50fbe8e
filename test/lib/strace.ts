// Crashing and breaking the CLI at every step, with strace: a run is killed
// (SIGKILL) or fails (an injected errno) at the Nth call of a system call, as
// the kernel would make it fail, with no hook in the code under test.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ownNodeCommand, userEnv, type Run } from './cli.js';

/**
 * The system calls by which a run looks at and changes a bpffs, and takes its
 * lock: every step of it is one of these. The runner makes its changes with
 * the *at calls on a directory fd (and fchmod); readlink and mkdir are
 * node's own and the lock directory's.
 */
export const STEPS = ['bpf', 'fchmod', 'renameat', 'unlinkat', 'symlinkat', 'readlink', 'readlinkat', 'mkdir', 'mkdirat', 'flock'] as const;
export type Step = (typeof STEPS)[number];

function strace(straceArgs: string[], args: string[], env: NodeJS.ProcessEnv): Run & { signal: NodeJS.Signals | null } {
  const r = spawnSync('strace', ['-f', '-qq', ...straceArgs, ...ownNodeCommand(CLI, ...args)], { encoding: 'utf8', env: userEnv(env) });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** How often a clean run of `args` makes each of the STEPS calls. */
export function countSteps(args: string[], env: NodeJS.ProcessEnv = {}): Map<Step, number> {
  const dir = mkdtempSync('/tmp/bpfpreloadstrace');
  try {
    const log = join(dir, 'log');
    const r = strace(['-o', log, '-e', `trace=${STEPS.join(',')}`], args, env);
    if (r.code !== 0) throw new Error(`clean traced run failed: ${r.stderr}`);
    const counts = new Map<Step, number>(STEPS.map((s) => [s, 0]));
    for (const line of readFileSync(log, 'utf8').split('\n')) {
      const m = /^\d+ +(\w+)\(/.exec(line);
      if (m && counts.has(m[1] as Step)) counts.set(m[1] as Step, counts.get(m[1] as Step)! + 1);
    }
    return counts;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every (call, N) of a clean run, in a stable order. */
export function everyStep(counts: Map<Step, number>): [Step, number][] {
  return [...counts].flatMap(([s, n]) => Array.from({ length: n }, (_, i) => [s, i + 1] as [Step, number]));
}

/** Runs the CLI and kills it with SIGKILL as it makes its `n`th `call`. */
export function killedAt(call: Step, n: number, args: string[], env: NodeJS.ProcessEnv = {}) {
  return strace(['-o', '/dev/null', '-e', `trace=${call}`, '-e', `inject=${call}:signal=KILL:when=${n}`], args, env);
}

/** Runs the CLI with its `n`th `call` failing with `errno` (the call is not made). */
export function failedAt(call: Step, n: number, args: string[], errno = 'EIO', env: NodeJS.ProcessEnv = {}) {
  return strace(['-o', '/dev/null', '-e', `trace=${call}`, '-e', `inject=${call}:error=${errno}:when=${n}`], args, env);
}

/** Runs the CLI and sends it `signal` as it makes its `n`th `call`. */
export function signalledAt(call: Step, n: number, signal: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return strace(['-o', '/dev/null', '-e', `trace=${call}`, '-e', `inject=${call}:signal=${signal}:when=${n}`], args, env);
}

/** Like failedAt, but every `call` from the `n`th on fails (retries included). */
export function failedAtOnward(call: Step, n: number, args: string[], errno = 'EIO', env: NodeJS.ProcessEnv = {}) {
  return strace(['-o', '/dev/null', '-e', `trace=${call}`, '-e', `inject=${call}:error=${errno}:when=${n}+`], args, env);
}
