// Faults injected into a run, as the kernel would make its calls fail: an
// EIO into every step (the run exits 1 with the directory as before, or
// copes), the mode that cannot be restored, and EPERM and EACCES into every
// bpf() call, each followed by an ordinary run: a run that could not open
// our own files pins into preload/, and the next one takes the pair back,
// so exactly one pair of ours stays alive.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { FALLBACK_SUBDIR } from '../src/preload/names.js';
import { privateBpffs } from './lib/bpffs.js';
import { runCli } from './lib/cli.js';
import { lastProgId } from './lib/kernel.js';
import { onePairAlive, statusOf } from './lib/status.js';
import { countSteps, everyStep, failedAt, failedAtOnward } from './lib/strace.js';
import { DIR_MODE, FILES, cleanState, entries, linkIds, mode, noStrays, pairInRootAndPreload, readable, summary } from './lib/transaction.js';

/**
 * One series: the run fails at each step in turn (EIO). A failed run must
 * print one line and leave the directory as `prepare` made it (`unchanged`);
 * a run that copes must leave it as a clean run does (`succeeded`).
 */
async function faultSeries(
  t: Test,
  name: string,
  args: string[],
  prepare: () => void,
  unchanged: (at: string, before: (number | null)[]) => void,
  succeeded: (at: string) => void,
) {
  prepare();
  const steps = everyStep(countSteps(args));
  const since = lastProgId();
  let failed = 0;
  for (const [call, n] of steps) {
    prepare();
    const before = linkIds(dir0(args));
    const r = failedAt(call, n, args);
    const at = `${name}: EIO at ${call} #${n}`;
    if (r.code === 1) {
      failed++;
      t.match(r.stderr, /^bpf-preload: [^\n]+\n$/, `${at}: exit 1 with one line on stderr`);
      unchanged(at, before);
    } else {
      t.equal(r.code, 0, `${at}: exit 0 or 1 (${r.stderr})`);
      t.equal(r.stderr, '', `${at}: nothing on stderr`);
      succeeded(at);
    }
    t.equal(mode(dir0(args)), DIR_MODE, `${at}: the same mode`);
  }
  t.comment(`${name}: ${steps.length} injected faults (${summary(steps)}): ${failed} runs failed cleanly, ${steps.length - failed} succeeded`);
  t.ok(failed > 0, `${name}: some faults make the run fail`);
  await noStrays(t, since, `${name}, after ${steps.length} faults`);
}

const dir0 = (args: string[]) => args[args.indexOf('--bpffs') + 1];

t.test('an error injected into every step: exit 1 with the directory as before, or exit 0 with working files', async (t) => {
  const { dir } = privateBpffs(t);
  chmodSync(dir, DIR_MODE);
  await faultSeries(
    t,
    'replacing run',
    ['--bpffs', dir],
    () => t.equal(runCli(['--bpffs', dir]).code, 0, 'populated'),
    (at, before) => {
      t.same(entries(dir), FILES, `${at}: the same entries`);
      t.same(linkIds(dir), before, `${at}: the same links`);
      t.ok(readable(dir), `${at}: both files still work`);
    },
    (at) => t.equal(cleanState(dir), '', `${at}: working files`),
  );
});

t.test('an error injected into every step of a run that takes the pair back from preload/: as before, or one pair; then one pair', async (t) => {
  const { dir, root } = privateBpffs(t);
  chmodSync(dir, DIR_MODE);
  const args = ['--bpffs', dir];
  const since = lastProgId();
  await faultSeries(
    t,
    'taking back from preload/',
    args,
    () => pairInRootAndPreload(t, dir),
    (at, before) => {
      t.same(entries(dir), [...FILES, FALLBACK_SUBDIR].sort(), `${at}: the same entries`);
      t.same(entries(join(dir, FALLBACK_SUBDIR)), FILES, `${at}: preload/ still holds our pair`);
      t.same(linkIds(dir), before, `${at}: the same links`);
      t.ok(readable(dir), `${at}: both files still work`);
      const next = runCli(args);
      t.equal(next.code, 0, `${at}, then an ordinary run: exit 0 ${next.stderr}`);
      t.equal(cleanState(dir), '', `${at}, then an ordinary run: one pair, in the root, preload/ gone`);
    },
    (at) => t.equal(cleanState(dir), '', `${at}: one pair, in the root, preload/ gone`),
  );
  const alive = await onePairAlive(since, dir, root);
  t.ok(alive.ok, `exactly one pair of our programs alive (found ${alive.found.join(' ')})`);
});

t.test('an error injected into every step of unpin: exit 1 with both files in place, or exit 0 with both gone', async (t) => {
  const { dir } = privateBpffs(t);
  chmodSync(dir, DIR_MODE);
  await faultSeries(
    t,
    'unpin',
    ['unpin', '--bpffs', dir],
    () => t.equal(runCli(['--bpffs', dir]).code, 0, 'populated'),
    (at, before) => {
      t.same(entries(dir), FILES, `${at}: the same entries`);
      t.same(linkIds(dir), before, `${at}: the same links`);
    },
    (at) => t.same(entries(dir), [], `${at}: both files gone`),
  );
});

t.test('the mode cannot be restored: the files are put back, the error says how to fix it, the next run does', async (t) => {
  const { dir } = privateBpffs(t);
  chmodSync(dir, DIR_MODE);
  const args = ['--bpffs', dir];
  t.equal(runCli(args).code, 0);
  const before = linkIds(dir);
  // Every chmod from the one that restores the directory's mode on fails,
  // retries included: the third chmod clears the mode, the fourth restores it.
  const r = failedAtOnward('fchmod', 4, args);
  t.equal(r.code, 1, 'exit 1');
  t.equal(
    r.stderr,
    `bpf-preload: chmod 0751 ${dir}: EIO (i/o error); ${dir} is left at mode 0000: run chmod 0751 ${dir} (or bpf-preload again, which restores it)\n`,
    'one line: what failed, the mode now, the command that fixes it',
  );
  t.equal(mode(dir), 0, 'the mode could not be restored');
  t.same(linkIds(dir), before, 'the files were put back: the same links');
  t.match(statusOf(dir).interrupted, { op: 'populate', mode: '0000', recordedMode: '0751' }, 'the trail says what to restore');
  const next = runCli(args);
  t.equal(next.code, 0, next.stderr);
  t.match(next.stdout, `restored mode 0751 of ${dir}`);
  t.equal(cleanState(dir), '');
});

t.test('an EPERM on our own maps.debug sends one run to preload/; the next run takes the pair back: one pair, two files', async (t) => {
  const { dir, root } = privateBpffs(t);
  chmodSync(dir, DIR_MODE);
  const args = ['--bpffs', dir];
  const since = lastProgId();
  const r = pairInRootAndPreload(t, dir);
  t.match(r.stdout, `cannot open or replace ${dir}/maps.debug (EPERM): pinned into ${dir}/preload/ instead`);
  const next = runCli(args);
  t.equal(next.code, 0, next.stderr);
  t.match(next.stdout, `removed ${dir}/preload/maps.debug: our earlier pin, now that ${dir} holds the files`);
  t.match(next.stdout, `removed ${dir}/preload/progs.debug: our earlier pin, now that ${dir} holds the files`);
  t.equal(cleanState(dir), '', 'preload/ is gone with our pair; the root holds the only one');
  t.equal(statusOf(dir).files.length, 2, 'status lists two files');
  t.ok((await onePairAlive(since, dir, root)).ok, 'exactly one pair of our programs is alive');
});

t.test('preload/ holding our pair and a file of someone else: the pair goes, the directory and the file stay', async (t) => {
  const { dir } = privateBpffs(t);
  chmodSync(dir, DIR_MODE);
  const args = ['--bpffs', dir];
  pairInRootAndPreload(t, dir);
  // Someone else's pin beside ours: a copy of one of our links, under another name.
  spawnSync('bpftool', ['link', 'pin', 'id', String(statusOf(dir).files[2].linkId), join(dir, 'preload', 'theirs')]);
  t.same(entries(join(dir, 'preload')), [...FILES, 'theirs']);
  t.equal(runCli(args).code, 0);
  t.same(entries(join(dir, 'preload')), ['theirs'], 'only our pair was removed');
  t.same(entries(dir), [...FILES, 'preload'].sort());
});

/**
 * EPERM or EACCES injected into each bpf() call of a replacing run in turn,
 * each followed by an ordinary run: the failed run exits 1 with one line and
 * the directory as before, or copes (exit 0); the ordinary run after it
 * leaves the directory as a clean run does. At the end exactly one pair of
 * our programs is alive: nothing pinned twice, nothing leaked.
 */
async function bpfErrnoSeries(t: Test, errno: string) {
  const { dir, root } = privateBpffs(t);
  chmodSync(dir, DIR_MODE);
  const args = ['--bpffs', dir];
  t.equal(runCli(args).code, 0, 'populated');
  const calls = countSteps(args).get('bpf')!;
  const since = lastProgId();
  let failed = 0;
  for (let n = 1; n <= calls; n++) {
    const at = `${errno} at bpf #${n}`;
    const r = failedAt('bpf', n, args, errno);
    if (r.code === 1) {
      failed++;
      t.match(r.stderr, /^bpf-preload: [^\n]+\n$/, `${at}: exit 1 with one line on stderr`);
      t.same(entries(dir), FILES, `${at}: the same entries`);
    } else {
      t.equal(r.code, 0, `${at}: exit 0 or 1 (${r.stderr})`);
    }
    t.equal(mode(dir), DIR_MODE, `${at}: the same mode`);
    const next = runCli(args);
    t.equal(next.code, 0, `${at}, then an ordinary run: exit 0 ${next.stderr}`);
    t.equal(cleanState(dir), '', `${at}, then an ordinary run: one pair of files, in the root`);
  }
  t.comment(`${errno}: ${calls} bpf() calls failed in turn: ${failed} runs failed cleanly, ${calls - failed} coped`);
  t.ok(failed > 0, `${errno}: some make the run fail`);
  const alive = await onePairAlive(since, dir, root);
  t.ok(alive.ok, `${errno}: exactly one pair of our programs alive (found ${alive.found.join(' ')})`);
  await noStrays(t, since, `${errno} series`);
}

t.test('EPERM injected into every bpf() call, each followed by an ordinary run: one pair at the end', (t) => bpfErrnoSeries(t, 'EPERM'));
t.test('EACCES injected into every bpf() call, each followed by an ordinary run: one pair at the end', (t) => bpfErrnoSeries(t, 'EACCES'));
