// Shared plumbing of the boot harness: named steps, commands (none left
// running when the harness ends), retries, and the cache directory that
// survives between runs.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { commandFailed, run, sh as shCommand } from '../../../harness/command.mjs';

/** Cache for everything downloaded or built from Debian packages; outside the repo. */
export const CACHE = resolve(process.env.BPF_PRELOAD_BOOT_CACHE ?? '/var/cache/bpf-preload-boot');
mkdirSync(CACHE, { recursive: true });

export class StepError extends Error {
  constructor(step, message, log) {
    super(`${step}: ${message}`);
    this.step = step;
    this.log = log;
  }
}

const t0 = Date.now();
export const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
export const say = (msg) => console.log(`boot: [${elapsed()}] ${msg}`);

/** Runs `fn` as the named step; any failure inside is reported under that name. */
export async function step(name, fn) {
  const start = Date.now();
  try {
    const r = await fn();
    say(`${name}: done in ${((Date.now() - start) / 1000).toFixed(1)}s`);
    return r;
  } catch (err) {
    if (err instanceof StepError) throw err;
    throw new StepError(name, err.message, err.log);
  }
}

/**
 * What a failed tool said that explains the failure, for the one-line error:
 * apt's and dpkg's error lines and unmet dependencies (`pkg : Depends: x but
 * it is not installable`) where there are any, else its last line.
 */
export function toolSays(output) {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const telling = lines.filter((l) => /^(E:|dpkg: error|dpkg: dependency problems)|\s:\s(Pre-)?Depends:|not installable|unmet dependencies/.test(l));
  return (telling.length ? telling.slice(-4) : lines.slice(-1)).join(' | ');
}

/** Runs a command to completion; throws with its output (what apt or dpkg said, where they said it) on a non-zero exit. */
export const sh = (cmd, args, opts = {}) => shCommand(cmd, args, opts, toolSays);

const children = new Set();
/**
 * Registers a child spawned with `detached: true` (a process group of its
 * own): it and everything it started (debootstrap's chroot, dpkg, wget) are
 * killed when the harness exits or is interrupted.
 */
export function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
function killChildren() {
  for (const child of children) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
process.on('exit', killChildren);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killChildren();
    process.exit(130);
  });
}

/** The same, asynchronously, so other work (another guest) goes on meanwhile. */
export function shAsync(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...opts }));
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) return resolve(out);
      reject(commandFailed(cmd, args, code ?? signal, out, toolSays));
    });
  });
}

/** Network steps: Debian's mirrors hiccup; a few tries with growing pauses. */
export async function retry(what, fn, tries = 4) {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= tries) throw err;
      say(`${what}: try ${i} failed (${err.message}); again in ${i * 5}s`);
      await new Promise((r) => setTimeout(r, i * 5000));
    }
  }
}

export const has = (cmd) => run('sh', ['-c', `command -v ${cmd}`]).code === 0;
