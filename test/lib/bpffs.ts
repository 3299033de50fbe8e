// Private bpffs directories for tests. On this machine's kernel every new
// bpffs mount root gets progs.debug/maps.debug entries nobody can open, so a
// clean directory is a subdirectory of a fresh mount, bind-mounted elsewhere.
// Everything is undone in teardown: mounts, pins, the temp directory.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';

export function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

export interface Bpffs {
  /** A clean directory on a bpffs (no entries). */
  dir: string;
  /** The root of the fresh mount behind it (with the kernel's unusable entries). */
  root: string;
  /** A scratch directory that is not on a bpffs. */
  tmp: string;
}

/** A private bpffs for one test; torn down when the test ends. */
export function privateBpffs(t: Test): Bpffs {
  // No dots in the name: libbpf rewrites them in some pin paths.
  const tmp = mkdtempSync('/tmp/bpfpreloadtest');
  const root = join(tmp, 'mnt');
  const dir = join(tmp, 'dir');
  mkdirSync(root);
  mkdirSync(dir);
  sh('mount', ['-t', 'bpf', 'bpf', root]);
  mkdirSync(join(root, 'clean'));
  sh('mount', ['--bind', join(root, 'clean'), dir]);
  t.teardown(() => {
    // Unmounting drops every pin in it, and with them our programs.
    spawnSync('umount', [dir]);
    spawnSync('umount', [root]);
    rmSync(tmp, { recursive: true, force: true });
  });
  return { dir, root, tmp };
}
