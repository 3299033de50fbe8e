// The pinning transaction under stress, as a careful user would try it: many
// runs at once, a SIGKILL at every step, an error injected into every step,
// and the signals a stop or Ctrl-C sends. After each, the directory must be
// exactly as after a clean run (or, for a failed run, exactly as before),
// and after each series nothing of ours may be left loaded.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LOCK_DIR, lockName } from '../src/lock.js';
import { FILE_NAMES, PROGS_HEADER, TRAIL_NAME } from '../src/names.js';
import { startsLikeMaps } from './lib/listing.js';
import { privateBpffs } from './lib/bpffs.js';
import { catFile, runCli, startCli, type Run } from './lib/cli.js';
import { eventually, lastProgId, strayPrograms } from './lib/kernel.js';
import { onePairAlive, statusOf } from './lib/status.js';
import type { Test } from 'tap';
import { countSteps, everyStep, failedAt, failedAtOnward, killedAt, signalledAt, type Step } from './lib/strace.js';

const FILES = [...FILE_NAMES];
const DIR_MODE = 0o751;

const mode = (p: string) => statSync(p).mode & 0o7777;
const entries = (dir: string) => readdirSync(dir).sort();

const linkIds = (dir: string) => statusOf(dir).files.map((f) => f.linkId);

/** Both files work: what `cat` shows a user. */
function readable(dir: string): boolean {
  try {
    return catFile(join(dir, 'progs.debug')).startsWith(PROGS_HEADER) && startsLikeMaps(catFile(join(dir, 'maps.debug')));
  } catch {
    return false;
  }
}

/** The directory as a clean run leaves it; returns what differs, '' if nothing. */
function cleanState(dir: string, dirMode = DIR_MODE): string {
  const problems: string[] = [];
  if (entries(dir).join(' ') !== FILES.join(' ')) problems.push(`entries ${entries(dir).join(' ')}`);
  if (mode(dir) !== dirMode) problems.push(`mode 0${mode(dir).toString(8)}`);
  if (!readable(dir)) problems.push('files not readable');
  const st = statusOf(dir);
  if (st.files.some((f) => f.state !== 'ours')) problems.push(`states ${st.files.map((f) => f.state).join(' ')}`);
  if (st.interrupted) problems.push('status reports an interrupted run');
  return problems.join('; ');
}

const killed = (r: { signal: string | null; code: number | null }) => r.signal === 'SIGKILL' || r.code === 137;

async function noStrays(t: Test, since: number, what: string) {
  let strays = strayPrograms(since);
  // The kernel frees programs a moment after their last reference goes.
  await eventually(() => (strays = strayPrograms(since)).length === 0, 10000);
  t.same(strays.map((p) => `${p.id} ${p.name}`), [], `${what}: no program of ours left loaded and unreferenced`);
}

t.test('six runs at once, five rounds: all succeed, one pair of files, mode kept, one pair loaded', async (t) => {
  const { dir, root } = privateBpffs(t);
  chmodSync(dir, DIR_MODE);
  const since = lastProgId();
  const run = () => startCli(['--bpffs', dir]);
  for (let round = 1; round <= 5; round++) {
    const results = await Promise.all(Array.from({ length: 6 }, run));
    t.same(results.map((r) => r.code), [0, 0, 0, 0, 0, 0], `round ${round}: every run exits 0 ${results.map((r) => r.stderr).join('')}`);
    t.ok(results.every((r) => /^pinned .*\npinned .*\n$/.test(r.stdout)), `round ${round}: every run pinned both files`);
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
  const holder = spawn('flock', ['--exclusive', lockFile, 'sleep', '30'], { stdio: 'ignore' });
  t.teardown(() => holder.kill());
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
  holder.kill();
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
async function killSeries(
  t: Test,
  name: string,
  args: string[],
  prepare: () => void,
  after: () => Run,
  check: () => string,
) {
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

const summary = (steps: [Step, number][]) =>
  Object.entries(steps.reduce<Record<string, number>>((a, [c]) => ((a[c] = (a[c] ?? 0) + 1), a), {}))
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');

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
  t.equal(runCli(args).code, 0);
  // The first bpf() call is BPF_OBJ_GET of our own working maps.debug.
  const r = failedAt('bpf', 1, args, 'EPERM');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, `cannot open or replace ${dir}/maps.debug (EPERM): pinned into ${dir}/preload/ instead`);
  t.same(entries(join(dir, 'preload')), FILES, 'that run pinned into preload/');
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
  t.equal(runCli(args).code, 0);
  t.equal(failedAt('bpf', 1, args, 'EPERM').code, 0);
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
