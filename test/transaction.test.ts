// The pinning transaction under stress, as a careful user would try it: many
// runs at once, a waiting run, a SIGKILL at every step, and the signals a
// stop or Ctrl-C sends (errors injected into every step: faults.test.ts). After each, the directory must be
// exactly as after a clean run (or, for a failed run, exactly as before),
// and after each series nothing of ours may be left loaded.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { LOCK_DIR, lockName } from '../src/preload/transaction/lock.js';
import { FILE_NAMES, TRAIL_NAME } from '../src/preload/names.js';
import { background } from './lib/background.js';
import { privateBpffs } from './lib/bpffs.js';
import { runCli, startCli, type Run } from './lib/cli.js';
import { eventually, lastProgId } from './lib/kernel.js';
import { onePairAlive, statusOf } from './lib/status.js';
import { countSteps, everyStep, killedAt, signalledAt } from './lib/strace.js';
import { DIR_MODE, cleanState, entries, linkIds, mode, noStrays, pairInRootAndPreload, summary } from './lib/transaction.js';

const killed = (r: { signal: string | null; code: number | null }) => r.signal === 'SIGKILL' || r.code === 137;

t.test('six runs at once, five rounds: all succeed, one pair of files, mode kept, one pair loaded', async (t) => {
  const { dir, root } = privateBpffs(t);
  chmodSync(dir, DIR_MODE);
  const since = lastProgId();
  const run = () => startCli(['--bpffs', dir]);
  for (let round = 1; round <= 5; round++) {
    const results = await Promise.all(Array.from({ length: 6 }, run));
    t.same(
      results.map((r) => r.code),
      [0, 0, 0, 0, 0, 0],
      `round ${round}: every run exits 0 ${results.map((r) => r.stderr).join('')}`,
    );
    t.ok(
      results.every((r) => /^pinned .*\npinned .*\n$/.test(r.stdout)),
      `round ${round}: every run pinned both files`,
    );
    t.equal(cleanState(dir), '', `round ${round}: two files, mode 0751, both readable`);
  }
  t.ok((await onePairAlive(since, dir, root)).ok, 'exactly the pinned pair of our programs is loaded');
  await noStrays(t, since, 'concurrent rounds');
});

t.test('a second run waits for the first, says so after a second, and gives up after the timeout', async (t) => {
  const { dir } = privateBpffs(t);
  chmodSync(dir, DIR_MODE);
  t.equal(runCli(['--bpffs', dir]).code, 0);
  const before = linkIds(dir);

  // flock(1), as root, holds the same lock a run holds: its file in the lock directory.
  const st = statSync(dir);
  const lockFile = join(LOCK_DIR, lockName(st.dev, st.ino));
  const holder = background(t, 'flock', ['--exclusive', lockFile, 'sleep', '30']);
  await eventually(() => spawnSync('flock', ['--nonblock', lockFile, 'true']).status !== 0);
  const r = runCli(['--bpffs', dir], { BPF_PRELOAD_LOCK_TIMEOUT: '2' });
  t.equal(r.code, 1, 'gives up');
  t.equal(
    r.stderr,
    `bpf-preload: waiting for another run (pid ${holder.pid}) to finish with ${dir}\n` +
      `bpf-preload: another bpf-preload run (pid ${holder.pid}) has held ${dir} for over 2 s: let it finish or stop it, then run again (BPF_PRELOAD_LOCK_TIMEOUT sets the wait)\n`,
  );
  t.same(linkIds(dir), before, 'nothing changed');
  const s = runCli(['status', '--bpffs', dir]);
  t.match(s.stdout, `a bpf-preload run (pid ${holder.pid}) is changing ${dir} right now`);

  // Released while the next run waits: that run then does its work.
  const waiting = startCli(['--bpffs', dir]);
  await new Promise((r) => setTimeout(r, 1500));
  await holder.stop();
  const w = await waiting;
  t.equal(w.code, 0, w.stderr);
  t.equal(w.stderr, `bpf-preload: waiting for another run (pid ${holder.pid}) to finish with ${dir}\n`);
  t.match(w.stdout, /replaced link \d+/);
  t.equal(cleanState(dir), '');
});

t.test('SIGTERM, SIGINT, SIGHUP mid-transaction: the run finishes first, then exits as usual', async (t) => {
  const { dir } = privateBpffs(t);
  chmodSync(dir, DIR_MODE);
  t.equal(runCli(['--bpffs', dir]).code, 0);
  for (const sig of ['TERM', 'INT', 'HUP']) {
    const before = linkIds(dir);
    // At the first rename the directory's mode is cleared: the worst moment to stop.
    const r = signalledAt('renameat', 1, sig, ['--bpffs', dir]);
    t.equal(r.code, 0, `SIG${sig}: exit 0 ${r.stderr}`);
    t.equal(r.stderr, '', `SIG${sig}: nothing on stderr`);
    t.match(r.stdout, /pinned .*maps\.debug.*\npinned .*progs\.debug/, `SIG${sig}: both pinned`);
    t.equal(cleanState(dir), '', `SIG${sig}: directory final`);
    t.not(linkIds(dir)[1], before[1], `SIG${sig}: progs.debug replaced`);
  }
  // Before the lock nothing is changed yet: the default action stands.
  const early = signalledAt('flock', 1, 'TERM', ['--bpffs', dir]);
  t.equal(early.signal ?? (early.code === 143 ? 'SIGTERM' : early.code), 'SIGTERM', 'SIGTERM before the lock ends the run at once');
  t.equal(cleanState(dir), '');
});

t.test('status reports a killed run and how to repair it; the next populate repairs it', async (t) => {
  const { dir } = privateBpffs(t);
  chmodSync(dir, DIR_MODE);
  t.equal(runCli(['--bpffs', dir]).code, 0);
  // Killed at its second rename: mode cleared, progs.debug's new link still under its temporary name.
  const k = killedAt('renameat', 2, ['--bpffs', dir]);
  t.ok(killed(k), 'killed');
  t.equal(mode(dir), 0, 'the killed run left the mode cleared');
  const st = statusOf(dir);
  t.equal(st.running, null);
  t.match(st.interrupted, { op: 'populate', dir, mode: '0000', recordedMode: '0751', repair: `bpf-preload populate --bpffs ${dir}` });
  t.equal(st.interrupted!.temporaryPins.length, 1, 'one temporary pin left');
  t.match(st.interrupted!.temporaryPins[0], new RegExp(`^${dir}/bpf-preload-${st.interrupted!.pid}-\\d+-progs-debug$`));
  const text = runCli(['status', '--bpffs', dir]);
  t.match(
    text.stdout,
    `interrupted run (populate, pid ${st.interrupted!.pid}) left ${dir} at mode 0000 (was 0751) and temporary pins ${st.interrupted!.temporaryPins[0]}: run 'bpf-preload populate --bpffs ${dir}' (or unpin) to repair it`,
  );

  const r = runCli(['--bpffs', dir]);
  t.equal(r.code, 0, r.stderr);
  t.equal(
    r.stdout.split('\n')[0],
    `repaired what an interrupted run (populate, pid ${st.interrupted!.pid}) left: removed ${st.interrupted!.temporaryPins[0]}, restored mode 0751 of ${dir}, removed ${dir}/${TRAIL_NAME}`,
  );
  t.equal(cleanState(dir), '', 'repaired and populated');
});

/** One series: `prepare`, then the run killed at each step, then `after`; checked by `check`. */
async function killSeries(t: Test, name: string, args: string[], prepare: () => void, after: () => Run, check: () => string) {
  prepare();
  const steps = everyStep(countSteps(args));
  const since = lastProgId();
  let reached = 0;
  for (const [call, n] of steps) {
    prepare();
    const k = killedAt(call, n, args);
    if (killed(k)) reached++;
    const r = after();
    t.equal(r.code, 0, `${name}: killed at ${call} #${n}, then the next run exits 0 ${r.stderr}`);
    t.equal(r.stderr, '', `${name}: killed at ${call} #${n}: nothing on stderr`);
    t.equal(check(), '', `${name}: killed at ${call} #${n}: directory as after a clean run`);
  }
  t.equal(reached, steps.length, `${name}: a kill at every one of the ${steps.length} steps (${summary(steps)})`);
  t.comment(`${name}: ${steps.length} kill points: ${summary(steps)}`);
  await noStrays(t, since, `${name}, after ${steps.length} kills`);
}

t.test('SIGKILL at every step of a replacing run, then an ordinary run: as after a clean run, nothing leaked', async (t) => {
  const { dir } = privateBpffs(t);
  chmodSync(dir, DIR_MODE);
  const args = ['--bpffs', dir];
  await killSeries(
    t,
    'replacing run',
    args,
    () => t.equal(runCli(args).code, 0),
    () => runCli(args),
    () => cleanState(dir),
  );
});

t.test('SIGKILL at every step of a run that creates preload/: the next run finishes it', async (t) => {
  const { root } = privateBpffs(t);
  const args = ['--bpffs', root];
  const sub = join(root, 'preload');
  await killSeries(
    t,
    'preload/ run',
    args,
    () => t.equal(runCli(['unpin', ...args]).code, 0),
    () => runCli(args),
    () => {
      const rootEntries = entries(root).filter((e) => ![...FILE_NAMES, 'clean'].includes(e)); // the kernel's and privateBpffs's
      return [rootEntries.join(' ') !== 'preload' ? `root entries ${rootEntries.join(' ')}` : '', cleanState(sub, 0o755)].filter(Boolean).join('; ');
    },
  );
});

t.test('SIGKILL at every step of a run that takes the pair back from preload/, then an ordinary run: one pair, preload/ gone', async (t) => {
  const { dir, root } = privateBpffs(t);
  chmodSync(dir, DIR_MODE);
  const args = ['--bpffs', dir];
  const since = lastProgId();
  await killSeries(
    t,
    'taking back from preload/',
    args,
    () => pairInRootAndPreload(t, dir),
    () => runCli(args),
    () => cleanState(dir),
  );
  const alive = await onePairAlive(since, dir, root);
  t.ok(alive.ok, `exactly one pair of our programs alive (found ${alive.found.join(' ')})`);
});

t.test('killed between emptying preload/ and removing it: the next run removes it, and says so', async (t) => {
  const { dir } = privateBpffs(t);
  chmodSync(dir, DIR_MODE);
  const args = ['--bpffs', dir];
  pairInRootAndPreload(t, dir);
  // A run taking the pair back removes preload/'s two pins, then (its third unlinkat) preload/ itself.
  t.ok(killed(killedAt('unlinkat', 3, args)), 'killed');
  t.same(entries(join(dir, 'preload')), [], 'preload/ left empty');
  t.match(statusOf(dir).interrupted, { op: 'populate', dir }, 'status reports the interrupted run');
  const r = runCli(args);
  t.equal(r.code, 0, r.stderr);
  t.match(
    r.stdout,
    new RegExp(`^repaired what an interrupted run \\(populate, pid \\d+\\) left: removed ${dir}/preload/, removed ${dir}/${TRAIL_NAME}\n`),
    'it says it removed the emptied preload/',
  );
  t.equal(cleanState(dir), '', 'one pair, in the root; preload/ gone');
});

t.test('SIGKILL at every step of unpin, then an ordinary unpin: nothing of ours left, mode kept', async (t) => {
  const { dir } = privateBpffs(t);
  chmodSync(dir, DIR_MODE);
  const args = ['unpin', '--bpffs', dir];
  await killSeries(
    t,
    'unpin',
    args,
    () => t.equal(runCli(['--bpffs', dir]).code, 0),
    () => runCli(args),
    () => {
      const problems = [];
      if (entries(dir).length) problems.push(`entries ${entries(dir).join(' ')}`);
      if (mode(dir) !== DIR_MODE) problems.push(`mode 0${mode(dir).toString(8)}`);
      return problems.join('; ');
    },
  );
});
