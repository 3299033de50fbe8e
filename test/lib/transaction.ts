// What the transaction series share: the directory as a clean run leaves
// it, and no program of ours left behind.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { FALLBACK_SUBDIR, FILE_NAMES, PROGS_HEADER } from '../../src/preload/names.js';
import { catFile, runCli, type Run } from './cli.js';
import { eventually, strayPrograms } from './kernel.js';
import { startsLikeMaps } from './listing.js';
import { statusOf } from './status.js';
import { failedAt, type Step } from './strace.js';

export const FILES = [...FILE_NAMES];
/** The mode the series give a test's directory, to see that it is kept. */
export const DIR_MODE = 0o751;

export const mode = (p: string) => statSync(p).mode & 0o7777;
export const entries = (dir: string) => readdirSync(dir).sort();
export const linkIds = (dir: string) => statusOf(dir).files.map((f) => f.linkId);

/** Both files work: what `cat` shows a user. */
export function readable(dir: string): boolean {
  try {
    return catFile(join(dir, 'progs.debug')).startsWith(PROGS_HEADER) && startsLikeMaps(catFile(join(dir, 'maps.debug')));
  } catch {
    return false;
  }
}

/** The directory as a clean run leaves it; returns what differs, '' if nothing. */
export function cleanState(dir: string, dirMode = DIR_MODE): string {
  const problems: string[] = [];
  if (entries(dir).join(' ') !== FILES.join(' ')) problems.push(`entries ${entries(dir).join(' ')}`);
  if (mode(dir) !== dirMode) problems.push(`mode 0${mode(dir).toString(8)}`);
  if (!readable(dir)) problems.push('files not readable');
  const st = statusOf(dir);
  if (st.files.some((f) => f.state !== 'ours')) problems.push(`states ${st.files.map((f) => f.state).join(' ')}`);
  if (st.interrupted) problems.push('status reports an interrupted run');
  return problems.join('; ');
}

/**
 * `dir` holding our pair and `dir/preload/` a second one, as a run that
 * could not open the root's own files leaves it: a populate, then one whose
 * first bpf() call (BPF_OBJ_GET of our own `dir/maps.debug`) fails with
 * EPERM, so that it pins into preload/ instead. Returns that second run.
 */
export function pairInRootAndPreload(t: Test, dir: string): Run {
  const args = ['--bpffs', dir];
  t.equal(runCli(args).code, 0, 'populated');
  const r = failedAt('bpf', 1, args, 'EPERM');
  t.equal(r.code, 0, `EPERM at bpf #1: exit 0 ${r.stderr}`);
  t.same(entries(join(dir, FALLBACK_SUBDIR)), FILES, 'a second pair of ours in preload/');
  return r;
}

export async function noStrays(t: Test, since: number, what: string) {
  let strays = strayPrograms(since);
  // The kernel frees programs a moment after their last reference goes.
  await eventually(() => (strays = strayPrograms(since)).length === 0, 10000);
  t.same(
    strays.map((p) => `${p.id} ${p.name}`),
    [],
    `${what}: no program of ours left loaded and unreferenced`,
  );
}

/** "bpf 30, fchmod 4, ...": how many of each call a series went through. */
export const summary = (steps: [Step, number][]) =>
  Object.entries(steps.reduce<Record<string, number>>((a, [c]) => ((a[c] = (a[c] ?? 0) + 1), a), {}))
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');
