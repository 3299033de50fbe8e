// Runs the built CLI the way users do and returns what they would see.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

export const CLI = resolve('dist/bpf-preload.js');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, uid?: number): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    ...(uid === undefined ? {} : { uid, gid: uid }),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Reads an iterator file start to end, as `cat` does (they cannot seek). */
export function catFile(path: string): string {
  const r = spawnSync('cat', [path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cat ${path}: ${r.stderr.trim()}`);
  return r.stdout;
}
