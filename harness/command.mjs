// Running a command to completion: the spawnSync wrapper of the package,
// environment and all tap tests, the bench's and tests' bpffs mounts
// (harness/bpffs.ts), the boot
// harness (test/boot/lib/util.mjs) and the in-guest checks
// (test/boot/guest/, bundled). Plain JavaScript, so that the harness, which
// node runs without a TypeScript loader, can import it; command.d.mts types it.
import { spawnSync } from 'node:child_process';

/**
 * Runs `cmd` with `args` (options as spawnSync's; text output, up to 256
 * MiB) and returns its exit code (null when a signal ended it), the signal,
 * and what it printed. A command that could not be started has exit code
 * null and says why on stderr.
 */
export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

/** A command for a message: a script given to `sh -c` or `bash -c` is shown as "-c SCRIPT", not in full. */
function commandLine(cmd, args) {
  const i = args.indexOf('-c');
  return [cmd, ...(i >= 0 ? [...args.slice(0, i), '-c SCRIPT'] : args)].join(' ');
}

/**
 * The error for a command that failed: what it was, how it ended, and what
 * `says` picks from its output (by default its last line); its last 30
 * lines as `log`.
 */
export function commandFailed(cmd, args, status, output, says = (out) => out.split('\n').pop() ?? '') {
  const out = output.trim();
  const said = says(out);
  const err = /** @type {Error & { log?: string }} */ (new Error(`${commandLine(cmd, args)} exited ${status}${said ? `: ${said}` : ''}`));
  err.log = out.split('\n').slice(-30).join('\n');
  return err;
}

/** Runs a command to completion and returns its stdout; throws (commandFailed) unless it exits 0. */
export function sh(cmd, args, opts = {}, says = undefined) {
  const r = run(cmd, args, opts);
  if (r.code !== 0) throw commandFailed(cmd, args, r.code ?? r.signal ?? 'without starting', `${r.stdout}${r.stderr}`, says);
  return r.stdout;
}
