// Runs the built CLI the way users do and returns what they would see.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { resolve } from 'node:path';

export const CLI = resolve('dist/bpf-preload.js');

/**
 * The node that runs the CLI: this test's own, or BPF_PRELOAD_TEST_NODE when
 * set. `npm test` sets it to test/node18/node (Debian 12's node 18) for a
 * second pass of every test file that imports this module; such a wrapper
 * runs as root and takes `--uid N` first to drop to that user itself.
 */
export const NODE = process.env.BPF_PRELOAD_TEST_NODE ? resolve(process.env.BPF_PRELOAD_TEST_NODE) : process.execPath;
const NODE_IS_WRAPPER = NODE !== process.execPath;

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment a user's shell would give the CLI: without tap's settings. */
export function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const k of Object.keys(env)) if (k.startsWith('TAP') || k.startsWith('_TAPJS')) delete env[k];
  return env;
}

/**
 * env(1)'s arguments for running NODE with `words`: tap adds its loaders to
 * NODE_OPTIONS of everything a test spawns, and env takes them out again, so
 * the program runs as a user would run it.
 */
const asUser = (...words: string[]) => ['-u', 'NODE_OPTIONS', NODE, ...words];

/** A command line (program first) running NODE with `words` as a user would. */
export function nodeCommand(...words: string[]): string[] {
  return ['env', ...asUser(...words)];
}

/**
 * The same with this test's own node whatever BPF_PRELOAD_TEST_NODE says,
 * for runs traced system call by system call (strace.ts): the node 18
 * wrapper's own calls (its mount namespace) would count as the CLI's steps.
 * npm test leaves the files that trace runs out of its node 18 pass.
 */
export function ownNodeCommand(...words: string[]): string[] {
  return ['env', '-u', 'NODE_OPTIONS', process.execPath, ...words];
}

/**
 * A command line (program first) running NODE with `words` as a user would,
 * with only the capabilities in `boundingSet` (setpriv's --bounding-set
 * syntax, e.g. "-all,+bpf"). A wrapper drops them itself, after the setup
 * that needs them.
 */
export function withBoundingSet(boundingSet: string, ...words: string[]): string[] {
  return NODE_IS_WRAPPER
    ? ['env', ...asUser('--bounding-set', boundingSet, ...words)]
    : ['setpriv', `--bounding-set=${boundingSet}`, '--inh-caps=-all', 'env', ...asUser(...words)];
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, uid?: number): Run {
  return runScript(CLI, args, env, uid);
}

/** Runs a JavaScript file with NODE as a user would, as `uid` if given, and returns what it printed. */
export function runScript(script: string, args: string[], env: NodeJS.ProcessEnv = {}, uid?: number): Run {
  const dropTo = uid !== undefined && NODE_IS_WRAPPER ? ['--uid', String(uid)] : [];
  const r = spawnSync('env', asUser(...dropTo, script, ...args), {
    encoding: 'utf8',
    env: userEnv(env),
    ...(uid === undefined || NODE_IS_WRAPPER ? {} : { uid, gid: uid }),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The version of NODE, as `process.versions.node` reports it there. */
export function nodeVersion(): string {
  const r = spawnSync('env', asUser('-p', 'process.versions.node'), { encoding: 'utf8', env: userEnv() });
  if (r.status !== 0) throw new Error(`${NODE} -p process.versions.node: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** Reads an iterator file start to end, as `cat` does (they cannot seek). */
export function catFile(path: string): string {
  const r = spawnSync('cat', [path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cat ${path}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Starts a JavaScript file with NODE as a user would, for a test that reads its output as it comes. */
export function spawnScript(script: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcessWithoutNullStreams {
  return spawn('env', asUser(script, ...args), { env: userEnv(env) });
}

/** Starts the CLI without waiting for it; resolves with what it printed once it exits. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolveRun) => {
    const p = spawnScript(CLI, args, env);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolveRun({ code, stdout, stderr }));
  });
}
