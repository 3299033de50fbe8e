// What a local user can make a root-run bpf-preload do on a bpffs mounted
// without mode= (world-writable, sticky: the kernel's default). Each attack
// is made by an unprivileged user (setpriv to nobody) against a private bpffs;
// root then runs status, populate and unpin. After each: a root-owned victim
// directory and file outside the bpffs are untouched, nothing outside DIR's
// bpffs changed, no pin of ours lands where another uid can write, every
// failure is one line, and status reports what it found with its owner.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { LOCK_DIR, lockName } from '../src/preload/transaction/lock.js';
import { FILE_NAMES, TRAIL_NAME } from '../src/preload/names.js';
import { privateBpffs } from './lib/bpffs.js';
import { CLI, NODE, runCli, userEnv, type Run } from './lib/cli.js';
import { eventually } from './lib/kernel.js';
import { background } from './lib/background.js';
import { statusOf } from './lib/status.js';
import { killedAt } from './lib/strace.js';

const NOBODY = 65534;
const nobodyArgs = [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
const asNobody = (cmd: string, ...args: string[]) => {
  const r = spawnSync('setpriv', [...nobodyArgs, cmd, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`as nobody: ${cmd} ${args.join(' ')}: ${r.stderr}`);
};
const entries = (dir: string) => readdirSync(dir).sort();
const mode = (p: string) => lstatSync(p).mode & 0o7777;
/** The kernel's unusable entries and privateBpffs's bind-mounted subdirectory. */
const ROOT_BASE = ['clean', ...FILE_NAMES].sort();

interface Victim {
  dir: string;
  file: string;
  /** What differs from how the victim was made; '' when untouched. */
  changed(): string;
}

/** A root-owned 0755 directory and 0600 file standing in for /etc and /etc/shadow, under the test's temp dir. */
function makeVictim(tmp: string): Victim {
  chmodSync(tmp, 0o755); // nobody must reach the bpffs, as on /sys/fs/bpf
  const dir = join(tmp, 'victim');
  const file = join(dir, 'secret');
  const secret = 'root:$6$saltsalt$notarealhashbutsecret:19000:0:99999:7:::\n';
  mkdirSync(dir, 0o755);
  writeFileSync(file, secret, { mode: 0o600 });
  return {
    dir,
    file,
    changed() {
      const problems: string[] = [];
      if (mode(dir) !== 0o755) problems.push(`${dir} mode 0${mode(dir).toString(8)}`);
      if (mode(file) !== 0o600) problems.push(`${file} mode 0${mode(file).toString(8)}`);
      if (lstatSync(dir).uid !== 0 || lstatSync(file).uid !== 0) problems.push('owner changed');
      if (readFileSync(file, 'utf8') !== secret) problems.push('content changed');
      if (entries(dir).join(' ') !== 'secret') problems.push(`entries ${entries(dir).join(' ')}`);
      return problems.join('; ');
    },
  };
}

/** A failed run: exit 1, one line on stderr matching `line`. */
function failsWithOneLine(t: Test, r: Run, line: string | RegExp, what: string) {
  t.equal(r.code, 1, `${what}: exit 1 ${r.stdout}`);
  t.match(r.stderr, /^bpf-preload: [^\n]+\n$/, `${what}: one line on stderr`);
  t.match(r.stderr, line, `${what}: says what is wrong`);
}

t.test('a fake trail with dir=preload through a symlink: status reports it with its owner; nothing acts on it', async (t) => {
  const { root, tmp } = privateBpffs(t);
  const victim = makeVictim(tmp);
  asNobody('ln', '-s', victim.dir, join(root, 'preload'));
  asNobody('ln', '-s', 'op=populate pid=999999 start=1 dir=preload mode=0777 created=0', join(root, TRAIL_NAME));

  const text = runCli(['status', '--bpffs', root]);
  t.equal(text.code, 0);
  t.notMatch(text.stdout, /interrupted|run 'bpf-preload/, 'no advice to run populate');
  t.match(text.stdout, `${root}/${TRAIL_NAME}: a symlink of uid ${NOBODY}, not ours (made by another uid): left alone`);
  t.match(text.stdout, `${root}/preload: a symlink of uid ${NOBODY}, not ours`);
  const st = statusOf(root);
  t.equal(st.interrupted, null);
  t.same(
    st.notOurs.map((x) => [x.path, x.what, x.owner]),
    [
      [`${root}/${TRAIL_NAME}`, 'a symlink', NOBODY],
      [`${root}/preload`, 'a symlink', NOBODY],
    ],
  );

  failsWithOneLine(t, runCli(['--bpffs', root]), `${root}/preload is a symlink (owner uid ${NOBODY}), so bpf-preload will not pin there`, 'populate');
  const u = runCli(['unpin', '--bpffs', root]);
  t.equal(u.code, 0, u.stderr);
  t.match(u.stdout, `${root}/preload is a symlink (owner uid ${NOBODY}): left alone`);
  t.equal(victim.changed(), '', 'victim untouched');
  t.same(entries(root), [...ROOT_BASE, 'bpf-preload-transaction', 'preload'].sort(), 'the root as nobody left it');
  t.equal(mode(root), 0o1777, 'the root keeps its mode');
});

for (const fakeMode of ['0777', '0000']) {
  t.test(`a fake trail with dir=. and mode ${fakeMode} in a world-writable directory: its mode is kept, the run refuses`, async (t) => {
    const { dir, tmp } = privateBpffs(t);
    const victim = makeVictim(tmp);
    chmodSync(dir, 0o1777);
    asNobody('ln', '-s', `op=populate pid=999999 start=1 dir=. mode=${fakeMode} created=0`, join(dir, TRAIL_NAME));
    t.same(
      statusOf(dir).notOurs.map((x) => x.owner),
      [NOBODY],
      'status names its owner',
    );
    failsWithOneLine(
      t,
      runCli(['--bpffs', dir]),
      `${dir}/${TRAIL_NAME} is in the way (a symlink of uid ${NOBODY}, not a trail of ours): remove it, then run again`,
      'populate',
    );
    t.equal(mode(dir), 0o1777, 'mode 1777 kept');
    t.same(entries(dir), [TRAIL_NAME], 'nothing pinned, nothing removed');
    t.equal(victim.changed(), '', 'victim untouched');
    // Once root removes it, the directory is populated as usual.
    spawnSync('rm', [join(dir, TRAIL_NAME)]);
    const r = runCli(['--bpffs', dir]);
    t.equal(r.code, 0, r.stderr);
    t.same(entries(dir), [...FILE_NAMES]);
    t.equal(mode(dir), 0o1777);
  });
}

t.test('the fallback race: preload/ swapped between a 0777 directory and a symlink to the victim', async (t) => {
  const { root, tmp } = privateBpffs(t);
  const victim = makeVictim(tmp);
  const a = join(root, 'A');
  asNobody('mkdir', '-m', '0777', a);
  asNobody('ln', '-s', a, join(root, 'preload'));
  // nobody swaps preload/ back and forth between A and the victim while root runs.
  const swapper = background(t, 'setpriv', [
    ...nobodyArgs,
    'sh',
    '-c',
    `cd ${root} && while :; do ln -sfn ${victim.dir} p1 && mv -T p1 preload; ln -sfn ${a} p2 && mv -T p2 preload; done`,
  ]);
  for (let i = 1; i <= 5; i++) {
    failsWithOneLine(t, runCli(['--bpffs', root]), `${root}/preload is a symlink (owner uid ${NOBODY}), so bpf-preload will not pin there`, `run ${i}`);
  }
  await swapper.stop();
  t.same(entries(a), [], 'no temporary pin leaked into A');
  t.equal(mode(a), 0o777);
  t.equal(victim.changed(), '', 'victim untouched');
  t.equal(mode(root), 0o1777, 'the root keeps its mode');
});

/**
 * Starts the CLI through sh, which waits for a line on stdin before it execs
 * node: the pid and start time (which exec keeps) are known beforehand, and
 * with them the names of the run's temporary pins.
 */
function startPaused(t: Test, args: string[]) {
  const p = spawn('sh', ['-c', `read go; exec env -u NODE_OPTIONS ${NODE} ${CLI} ${args.join(' ')}`], { env: userEnv() });
  t.teardown(() => p.kill('SIGKILL')); // never left waiting if the test fails before go()
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<Run>((resolve) => p.on('close', (code) => resolve({ code, stdout, stderr })));
  const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
  const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  return { tempName: (file: string) => `bpf-preload-${p.pid}-${start}-${file.replace('.', '-')}`, go: () => p.stdin.write('\n'), done };
}

t.test("a symlink with the temporary pin's name, to a root-only file: not followed, not chmod'ed, not printed", async (t) => {
  const { dir, tmp } = privateBpffs(t);
  const victim = makeVictim(tmp);
  chmodSync(dir, 0o1777);
  const run = startPaused(t, ['--bpffs', dir, '--mode', '0444']);
  asNobody('ln', '-s', victim.file, join(dir, run.tempName('maps.debug')));
  run.go();
  const r = await run.done;
  failsWithOneLine(
    t,
    r,
    `${dir}/${run.tempName('maps.debug')} is in the way (owner uid ${NOBODY}), not a pin of this run: remove it, then run again`,
    'populate',
  );
  t.notMatch(r.stderr + r.stdout, /root:/, "the file's content is not printed");
  t.equal(victim.changed(), '', 'victim untouched: mode 0600');
  t.same(entries(dir), [run.tempName('maps.debug')], 'nothing else left');
  t.equal(mode(dir), 0o1777);
  t.match(runCli(['status', '--bpffs', dir]).stdout, `${dir}/${run.tempName('maps.debug')}: a symlink of uid ${NOBODY}, not ours (not a pin): left alone`);
  // The next run has another pid: it pins, and leaves nobody's symlink alone.
  const next = runCli(['--bpffs', dir]);
  t.equal(next.code, 0, next.stderr);
  t.same(entries(dir), [...FILE_NAMES, run.tempName('maps.debug')].sort());
});

t.test("a FIFO with the temporary pin's name behind a preload/ symlink, and a killed run's own trail: nothing blocks, nothing is chmod'ed", async (t) => {
  const { root, tmp } = privateBpffs(t);
  const victim = makeVictim(tmp);
  // A genuine trail of root's naming preload/, left by a run killed before it made the directory...
  const k = killedAt('mkdirat', 1, ['--bpffs', root]);
  t.ok(k.signal === 'SIGKILL' || k.code === 137, 'killed');
  t.match(statusOf(root).interrupted, { op: 'populate', dir: `${root}/preload` });
  // ...then nobody makes preload a symlink to a directory of theirs (bpffs has
  // no FIFOs), holding a FIFO with the next run's temporary pin's name.
  const theirs = join(tmp, 'theirs');
  mkdirSync(theirs);
  chmodSync(theirs, 0o777);
  spawnSync('chown', [String(NOBODY), theirs]);
  const run = startPaused(t, ['--bpffs', root]);
  asNobody('mkfifo', '-m', '0666', join(theirs, run.tempName('maps.debug')));
  asNobody('ln', '-s', theirs, join(root, 'preload'));
  t.match(runCli(['status', '--bpffs', root]).stdout, `a trail naming ${root}/preload, which it leaves alone (it is a symlink)`);
  const began = Date.now();
  run.go();
  const r = await run.done;
  t.ok(Date.now() - began < 10000, `ended without blocking (${Date.now() - began} ms)`);
  failsWithOneLine(t, r, `${root}/preload is a symlink (owner uid ${NOBODY}), so bpf-preload will not pin there`, 'populate');
  t.match(r.stdout, /^repaired what an interrupted run \(populate, pid \d+\) left: /, 'it repaired what was its own');
  t.match(r.stdout, `left ${root}/preload alone (it is a symlink)`);
  t.same(entries(theirs), [run.tempName('maps.debug')], "nothing added to nobody's directory");
  t.equal(mode(theirs), 0o777, "nobody's directory keeps its mode");
  t.equal(victim.changed(), '', 'victim untouched');
  t.same(entries(root), [...ROOT_BASE, 'preload'].sort(), "the trail is gone, nobody's symlink stays");
});

t.test('unpin never crosses a symlink into another bpffs', async (t) => {
  const { root, tmp } = privateBpffs(t);
  const victim = makeVictim(tmp);
  const other = privateBpffs(t);
  chmodSync(other.dir, 0o700); // nobody cannot even list it
  t.equal(runCli(['--bpffs', other.dir]).code, 0);
  const before = statusOf(other.dir).files;
  asNobody('ln', '-s', other.dir, join(root, 'preload'));
  const u = runCli(['unpin', '--bpffs', root]);
  t.equal(u.code, 0, u.stderr);
  t.notMatch(u.stdout, /removed/);
  t.match(u.stdout, `${root}/preload is a symlink (owner uid ${NOBODY}): left alone`);
  t.same(statusOf(other.dir).files, before, "the other bpffs's pins are still there, the same links");
  t.same(entries(other.dir), [...FILE_NAMES]);
  t.equal(victim.changed(), '');
});

t.test('a preload/ made by another user is never pinned into, nor emptied', async (t) => {
  const { root, tmp } = privateBpffs(t);
  const victim = makeVictim(tmp);
  asNobody('mkdir', '-m', '0777', join(root, 'preload'));
  failsWithOneLine(
    t,
    runCli(['--bpffs', root]),
    `${root}/preload belongs to another uid (owner uid ${NOBODY}), so bpf-preload will not pin there: remove it, or mount the bpffs with mode=0700`,
    'populate',
  );
  t.same(entries(join(root, 'preload')), [], 'nothing pinned there');
  t.equal(mode(join(root, 'preload')), 0o777, 'its mode untouched');
  t.match(statusOf(root).notOurs, [{ path: `${root}/preload`, what: 'a directory', owner: NOBODY }]);
  // Root's own preload/ that others may write is refused too.
  const { root: root2 } = privateBpffs(t);
  mkdirSync(join(root2, 'preload'), 0o777);
  chmodSync(join(root2, 'preload'), 0o777);
  failsWithOneLine(t, runCli(['--bpffs', root2]), `${root2}/preload is writable by other users (mode 0777)`, 'populate into a 0777 preload/ of root');
  t.equal(victim.changed(), '');
});

t.test('a directory other users can change without the sticky bit is refused with one line', async (t) => {
  const { dir, tmp } = privateBpffs(t);
  const victim = makeVictim(tmp);
  /** What nobody plants where they can write: a fake trail to restore mode 0777 of a preload/ that is the victim. */
  const plant = () => {
    asNobody('ln', '-sfn', victim.dir, join(dir, 'preload'));
    asNobody('ln', '-sfn', 'op=populate pid=999999 start=1 dir=preload mode=0777 created=1', join(dir, TRAIL_NAME));
  };
  const planted = [TRAIL_NAME, 'preload'].sort();
  chmodSync(dir, 0o777);
  plant();
  failsWithOneLine(
    t,
    runCli(['--bpffs', dir]),
    `${dir} is writable by other users (mode 0777): bpf-preload pins only where no other user can change its files`,
    'populate',
  );
  t.same(entries(dir), planted, 'nothing pinned, nothing of nobody removed');
  t.match(runCli(['status', '--bpffs', dir]).stdout, `${dir} is writable by other users (mode 0777): bpf-preload will not pin there`);
  t.equal(victim.changed(), '', 'victim untouched');
  spawnSync('rm', ['-f', join(dir, TRAIL_NAME), join(dir, 'preload')]);
  spawnSync('chown', [String(NOBODY), dir]);
  chmodSync(dir, 0o755);
  plant();
  failsWithOneLine(t, runCli(['--bpffs', dir]), `${dir} belongs to another uid (owner uid ${NOBODY})`, 'populate into a directory of nobody');
  t.same(entries(dir), planted, 'nothing pinned, nothing of nobody removed');
  t.equal(mode(dir), 0o755, 'its mode kept');
  t.equal(victim.changed(), '', 'victim untouched');
});

t.test("a user's flock on the directory neither blocks a run nor poses as one", async (t) => {
  const { dir, tmp } = privateBpffs(t);
  const victim = makeVictim(tmp);
  chmodSync(dir, 0o1777);
  // nobody's preload -> victim beside the flock, named by the planted trail: a status or run going by paths would follow it.
  asNobody('ln', '-s', victim.dir, join(dir, 'preload'));
  for (const how of ['--shared', '--exclusive']) {
    const holder = background(t, 'setpriv', [...nobodyArgs, 'flock', how, dir, 'sleep', '30']);
    t.ok(await eventually(() => spawnSync('flock', ['--nonblock', '--exclusive', dir, 'true']).status !== 0), `${how}: nobody holds a flock on ${dir}`);
    asNobody('ln', '-sf', 'op=populate pid=999999 start=1 dir=preload mode=0777 created=0', join(dir, TRAIL_NAME));
    const st = statusOf(dir);
    t.equal(st.running, null, `${how}: status sees no run`);
    t.same(
      st.notOurs.map((x) => x.path),
      [join(dir, TRAIL_NAME), join(dir, 'preload')],
      `${how}: status reports the planted trail and preload/`,
    );
    spawnSync('rm', ['-f', join(dir, TRAIL_NAME)]);
    const began = Date.now();
    const r = runCli(['--bpffs', dir], { BPF_PRELOAD_LOCK_TIMEOUT: '5' });
    t.equal(r.code, 0, `${how}: the run is not held up ${r.stderr}`);
    t.equal(r.stderr, '', `${how}: no waiting`);
    t.ok(Date.now() - began < 5000, `${how}: done within the lock timeout`);
    t.same(entries(dir), [...FILE_NAMES, 'preload'].sort(), `${how}: pinned into the directory itself, nobody's preload left as it is`);
    t.ok(lstatSync(join(dir, 'preload')).isSymbolicLink(), `${how}: preload is still nobody's symlink`);
    t.equal(victim.changed(), '', `${how}: victim untouched`);
    await holder.stop();
  }
});

t.test('SIGTERM and SIGINT end the wait for a lock at once, for the directory and for preload/', async (t) => {
  const { root, tmp } = privateBpffs(t);
  const victim = makeVictim(tmp);
  t.equal(runCli(['--bpffs', root]).code, 0, 'populated into preload/');
  // In the world-writable root, nobody's symlink to the victim file under the
  // trail's name: what a run that went on past the signal would read first.
  asNobody('ln', '-s', victim.file, join(root, TRAIL_NAME));
  for (const [what, path] of [
    ['the directory', root],
    ['preload/', join(root, 'preload')],
  ]) {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      const st = statSync(path);
      const lockFile = join(LOCK_DIR, lockName(st.dev, st.ino));
      const holder = background(t, 'flock', ['--exclusive', lockFile, 'sleep', '30']);
      await eventually(() => spawnSync('flock', ['--nonblock', lockFile, 'true']).status !== 0);
      const p = spawn('env', ['-u', 'NODE_OPTIONS', NODE, CLI, '--bpffs', root], { env: userEnv() });
      let stderr = '';
      p.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) => p.on('close', (code, signal) => resolve(signal ?? code)));
      await eventually(() => stderr.includes('waiting for another run'), 5000);
      const sent = Date.now();
      p.kill(sig);
      const how = await exited;
      t.equal(how, sig, `${what}, ${sig}: the run ends by the signal`);
      t.ok(Date.now() - sent < 1000, `${what}, ${sig}: at once (${Date.now() - sent} ms)`);
      await holder.stop();
      await eventually(() => spawnSync('flock', ['--nonblock', lockFile, 'true']).status === 0);
    }
  }
  t.match(
    statusOf(root).files.map((f) => f.state),
    ['unusable', 'unusable', 'ours', 'ours'],
    'nothing changed',
  );
  t.same(entries(root), [...ROOT_BASE, TRAIL_NAME, 'preload'].sort(), "nobody's symlink left as it is");
  t.equal(victim.changed(), '', 'victim untouched');
});
