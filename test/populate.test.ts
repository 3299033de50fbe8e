// The runner as users meet it: `bpf-preload [populate]` on private bpffs
// directories, checked by what lands in the directory and what `cat` prints.
import t from 'tap';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FILE_NAMES, PROGS_HEADER } from '../src/preload/names.js';
import { startsLikeMaps } from './lib/listing.js';
import { privateBpffs } from './lib/bpffs.js';
import { catFile, runCli } from './lib/cli.js';
import { fixture, pinForeignIterator } from './lib/fixtures.js';
import { bpftoolProgs, eventually } from './lib/kernel.js';
import { statusOf } from './lib/status.js';

const mode = (p: string) => statSync(p).mode & 0o7777;

t.test('fresh directory: both files pinned, readable, mode 0400, directory mode kept', async (t) => {
  const { dir } = privateBpffs(t);
  chmodSync(dir, 0o751);
  const r = runCli(['--bpffs', dir]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr, '');
  t.match(r.stdout, `pinned ${dir}/maps.debug (link `);
  t.match(r.stdout, `pinned ${dir}/progs.debug (link `);
  t.same(readdirSync(dir).sort(), [...FILE_NAMES]);
  t.equal(mode(dir), 0o751, 'directory mode restored exactly');
  t.equal(mode(join(dir, 'progs.debug')), 0o400);
  t.equal(mode(join(dir, 'maps.debug')), 0o400);

  const progs = catFile(join(dir, 'progs.debug'));
  t.ok(progs.startsWith(PROGS_HEADER), 'progs.debug starts with its header');
  t.equal(progs.split(PROGS_HEADER).length, 2, 'header printed once');
  t.match(progs, /^ *\d+ dump_bpf_prog {4}/m, 'our prog iterator lists itself');
  const maps = catFile(join(dir, 'maps.debug'));
  t.ok(startsLikeMaps(maps), 'maps.debug starts with its header');
  t.match(maps, /^ *\d+ bpf_prel\.rodata /m, 'maps.debug lists our .rodata map');

  const ids = progs
    .split('\n')
    .slice(1)
    .filter(Boolean)
    .map((l) => Number(l.trim().split(/\s+/)[0]));
  t.same(
    ids,
    [...ids].sort((a, b) => a - b),
    'programs in ascending id order',
  );
});

t.test('populate is the default command and the explicit one', async (t) => {
  const { dir } = privateBpffs(t);
  const r = runCli(['populate', '--bpffs', dir]);
  t.equal(r.code, 0, r.stderr);
  t.ok(catFile(join(dir, 'progs.debug')).startsWith(PROGS_HEADER));
});

t.test('re-running three times replaces our pins and frees the old programs', async (t) => {
  const { dir } = privateBpffs(t);
  const seen: number[] = [];
  for (let i = 0; i < 4; i++) {
    const r = runCli(['--bpffs', dir]);
    t.equal(r.code, 0, r.stderr);
    if (i > 0) t.match(r.stdout, /replaced link \d+/);
    const st = statusOf(dir);
    t.same(
      st.files.map((f) => f.state),
      ['ours', 'ours'],
    );
    seen.push(...st.files.map((f) => f.progId!));
    t.ok(catFile(join(dir, 'progs.debug')).startsWith(PROGS_HEADER), `run ${i + 1}: progs.debug works`);
    t.ok(startsLikeMaps(catFile(join(dir, 'maps.debug'))), `run ${i + 1}: maps.debug works`);
  }
  const current = new Set(statusOf(dir).files.map((f) => f.progId!));
  const old = seen.filter((id) => !current.has(id));
  t.equal(old.length, 6, 'three earlier pairs were replaced');
  const freed = await eventually(() => {
    const live = new Set(bpftoolProgs().map((p) => p.id));
    return old.every((id) => !live.has(id));
  });
  t.ok(freed, 'replaced programs are unloaded');
  const live = new Set(bpftoolProgs().map((p) => p.id));
  t.ok(
    [...current].every((id) => live.has(id)),
    'the current pair is alive',
  );
});

// A reader in a loop, as a user's `cat` or a monitoring agent would be. On
// SIGTERM it prints "<good reads> <bad reads>"; every bad read goes to stderr.
const READER = `
good=0 bad=0
trap 'echo "$good $bad"; exit 0' TERM
while :; do
  for f in progs.debug maps.debug; do
    if out=$(cat "$1/$f" 2>&1) && [[ $out == "  id name "* ]]; then
      good=$((good + 1))
    else
      bad=$((bad + 1)); echo "$f: $out" >&2
    fi
  done
done`;

t.test('a concurrent reader always finds working files while re-runs replace them', async (t) => {
  const { dir } = privateBpffs(t);
  t.equal(runCli(['--bpffs', dir]).code, 0, 'first run');
  const reader = spawn('bash', ['-c', READER, 'reader', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  reader.stdout.on('data', (d) => (out += d));
  reader.stderr.on('data', (d) => (err += d));
  const exited = new Promise((done) => reader.on('close', done));
  for (let i = 0; i < 5; i++) {
    const r = runCli(['--bpffs', dir]);
    t.equal(r.code, 0, `re-run ${i + 1}: ${r.stderr}`);
    t.match(r.stdout, /replaced link \d+/);
  }
  reader.kill('SIGTERM');
  await exited;
  const [good, bad] = out.trim().split(' ').map(Number);
  t.equal(bad, 0, `no failed or partial read${err ? `: ${err.split('\n')[0]}` : ''}`);
  t.ok(good >= 10, `the reader overlapped the re-runs (${good} reads)`);
});

t.test('a working entry that is not ours is left alone, then --replace replaces it', async (t) => {
  const { dir } = privateBpffs(t);
  pinForeignIterator(fixture('foreign'), join(dir, 'progs.debug'));
  t.equal(catFile(join(dir, 'progs.debug')).split('\n')[0], 'foreign');

  const r = runCli(['--bpffs', dir]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, `${dir}/progs.debug: not ours`);
  t.match(r.stdout, 'left alone; run with --replace');
  t.equal(catFile(join(dir, 'progs.debug')).split('\n')[0], 'foreign', 'foreign entry untouched');
  t.notOk(existsSync(join(dir, 'maps.debug')), 'nothing pinned beside it');
  t.same(
    statusOf(dir).files.map((f) => [f.state, f.kernelPreload]),
    [
      ['missing', false],
      ['foreign', false],
    ],
    "not taken for the kernel's",
  );

  const again = runCli(['--bpffs', dir, '--replace']);
  t.equal(again.code, 0, again.stderr);
  t.match(again.stdout, /replaced a foreign link \d+/);
  t.ok(catFile(join(dir, 'progs.debug')).startsWith(PROGS_HEADER));
  t.same(
    statusOf(dir).files.map((f) => f.state),
    ['ours', 'ours'],
  );
});

t.test('entries nobody can open make the runner pin into preload/', async (t) => {
  const { root } = privateBpffs(t);
  // This kernel leaves unopenable progs.debug/maps.debug at every new mount's root.
  t.ok(existsSync(join(root, 'progs.debug')), 'fresh mount has the kernel-made entry');
  const r = runCli(['--bpffs', root]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, `cannot open or replace ${root}/maps.debug (ENOENT), ${root}/progs.debug (ENOENT): pinned into ${root}/preload/ instead`);
  t.ok(catFile(join(root, 'preload', 'progs.debug')).startsWith(PROGS_HEADER));
  t.ok(startsLikeMaps(catFile(join(root, 'preload', 'maps.debug'))));
  const st = statusOf(root);
  t.same(
    st.files.map((f) => [f.path, f.state]),
    [
      [`${root}/maps.debug`, 'unusable'],
      [`${root}/progs.debug`, 'unusable'],
      [`${root}/preload/maps.debug`, 'ours'],
      [`${root}/preload/progs.debug`, 'ours'],
    ],
  );
  const u = runCli(['unpin', '--bpffs', root]);
  t.equal(u.code, 0, u.stderr);
  t.notOk(existsSync(join(root, 'preload')), 'unpin removes the preload/ it emptied');
});

t.test('not a bpffs, missing directory: one line, exit 1, nothing created', async (t) => {
  const { tmp } = privateBpffs(t);
  const before = readdirSync(tmp).sort();
  const r = runCli(['--bpffs', tmp]);
  t.equal(r.code, 1);
  t.equal(r.stdout, '');
  t.equal(r.stderr, `bpf-preload: ${tmp} is not on a bpffs: mount one there (mount -t bpf bpf ${tmp}) or pick another --bpffs\n`);
  t.same(readdirSync(tmp).sort(), before, 'nothing created');

  const missing = join(tmp, 'nope');
  const m = runCli(['--bpffs', missing]);
  t.equal(m.code, 1);
  t.equal(m.stderr, `bpf-preload: ${missing} does not exist: create it on a bpffs, or mount one (mount -t bpf bpf ${missing})\n`);
  t.notOk(existsSync(missing));
});

t.test('a failure mid-run leaves the directory as it was, mode included', async (t) => {
  const { dir } = privateBpffs(t);
  chmodSync(dir, 0o750);
  const steps = ['pin-maps.debug', 'pin-progs.debug', 'rename-maps.debug', 'rename-progs.debug', 'readback'];
  for (const step of steps) {
    const r = runCli(['--bpffs', dir], { BPF_PRELOAD_FAILPOINT: step });
    t.equal(r.code, 1, `${step}: exit 1`);
    t.equal(r.stderr, `bpf-preload: failure injected at ${step} (BPF_PRELOAD_FAILPOINT)\n`);
    t.same(readdirSync(dir), [], `${step}: empty directory stays empty`);
    t.equal(mode(dir), 0o750, `${step}: mode restored`);
  }
  // With our pins in place, a failed re-run must keep the old ones working.
  t.equal(runCli(['--bpffs', dir]).code, 0);
  const before = statusOf(dir).files.map((f) => f.linkId);
  for (const step of steps) {
    const r = runCli(['--bpffs', dir], { BPF_PRELOAD_FAILPOINT: step });
    t.equal(r.code, 1, `${step}: exit 1`);
    t.same(readdirSync(dir).sort(), [...FILE_NAMES], `${step}: no temporary names left`);
    t.same(
      statusOf(dir).files.map((f) => f.linkId),
      before,
      `${step}: the same links are pinned`,
    );
    t.ok(catFile(join(dir, 'progs.debug')).startsWith(PROGS_HEADER), `${step}: progs.debug still works`);
    t.equal(mode(dir), 0o750, `${step}: mode restored`);
  }
});

t.test('unpin removes only our pins', async (t) => {
  const { dir } = privateBpffs(t);
  pinForeignIterator(fixture('foreign'), join(dir, 'progs.debug'));
  t.equal(runCli(['--bpffs', dir, '--replace']).code, 0);
  t.equal(runCli(['unpin', '--bpffs', dir]).stdout, `removed ${dir}/maps.debug\nremoved ${dir}/progs.debug\n`);
  t.same(readdirSync(dir), []);

  pinForeignIterator(fixture('foreign'), join(dir, 'progs.debug'));
  const r = runCli(['unpin', '--bpffs', dir]);
  t.equal(r.code, 0);
  t.match(r.stdout, `${dir}/progs.debug: not ours`);
  t.match(catFile(join(dir, 'progs.debug')), /^foreign\n/, 'foreign entry still works');
  t.same(readdirSync(dir), ['progs.debug'], 'foreign entry kept');
});

// The kernel's preload is recognised by its object, named "iterators" (its
// .rodata map: iterator.rodata) with programs dump_bpf_prog and dump_bpf_map.
// The real thing is compared in the boot test's preload kernels; here a
// look-alike: the foreign fixture loaded under the kernel object's name.
t.test("an iterator object named like the kernel's preload is called the kernel's", async (t) => {
  const { dir } = privateBpffs(t);
  const tmp = mkdtempSync(join(tmpdir(), 'bpf-preload-kernel-lookalike-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const object = join(tmp, 'iterators.bpf.o');
  copyFileSync(fixture('foreign'), object);
  pinForeignIterator(object, join(dir, 'progs.debug'));

  const st = statusOf(dir);
  t.same(
    st.files.map((f) => [f.state, f.kernelPreload]),
    [
      ['missing', false],
      ['foreign', true],
    ],
  );
  const human = runCli(['status', '--bpffs', dir]);
  t.match(human.stdout, `${dir}/progs.debug: the kernel's own preload (link ${st.files[1].linkId}, program ${st.files[1].progId} dump_bpf_prog)`);
  const r = runCli(['--bpffs', dir]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `the kernel's own progs.debug (its BPF preload) are in ${dir}: left alone; run with --replace to replace them\n`);
  t.same(readdirSync(dir), ['progs.debug'], 'nothing pinned beside it');
  const u = runCli(['unpin', '--bpffs', dir]);
  t.equal(u.code, 0, u.stderr);
  t.match(catFile(join(dir, 'progs.debug')), /^foreign\n/, 'unpin left it working');
});

t.test('status --json names each file, its state and ids', async (t) => {
  const { dir } = privateBpffs(t);
  t.same(statusOf(dir), {
    bpffs: dir,
    files: [
      { name: 'maps.debug', path: `${dir}/maps.debug`, state: 'missing', linkId: null, progId: null, progName: null, kernelPreload: false, reason: null },
      { name: 'progs.debug', path: `${dir}/progs.debug`, state: 'missing', linkId: null, progId: null, progName: null, kernelPreload: false, reason: null },
    ],
    running: null,
    interrupted: null,
    notOurs: [],
    untrusted: null,
  });
  t.equal(runCli(['--bpffs', dir]).code, 0);
  const st = statusOf(dir);
  t.same(
    st.files.map((f) => f.state),
    ['ours', 'ours'],
  );
  const progs = new Map(bpftoolProgs().map((p) => [p.id, p.name]));
  t.equal(progs.get(st.files[1].progId!), 'dump_bpf_prog');
  t.match(progs.get(st.files[0].progId!), /^dump_bpf_map/);
});

t.test('--mode 0644 lets an unprivileged user read the files; 0400 does not', async (t) => {
  const { dir, tmp } = privateBpffs(t);
  chmodSync(tmp, 0o755);
  chmodSync(dir, 0o755);
  t.equal(runCli(['--bpffs', dir, '--mode', '0644']).code, 0);
  t.equal(mode(join(dir, 'progs.debug')), 0o644);
  const { spawnSync } = await import('node:child_process');
  const asNobody = (path: string) => spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'cat', path], { encoding: 'utf8' });
  const ok = asNobody(join(dir, 'progs.debug'));
  t.equal(ok.status, 0, ok.stderr);
  t.ok(ok.stdout.startsWith(PROGS_HEADER), 'nobody reads progs.debug');
  t.equal(runCli(['--bpffs', dir]).code, 0);
  t.equal(mode(join(dir, 'progs.debug')), 0o400);
  const denied = asNobody(join(dir, 'progs.debug'));
  t.not(denied.status, 0);
  t.match(denied.stderr, 'Permission denied');
});

t.test('usage errors exit 2 with one line', async (t) => {
  const cases: [string[], string][] = [
    [['frobnicate'], "unknown command 'frobnicate': expected one of populate, status, unpin, show, gen, install-unit, uninstall-unit, exporter (see --help)"],
    [['--frob'], "unknown option '--frob' (see --help)"],
    [['--mode', '999'], "--mode takes an octal file mode such as 0400 or 0444, not '999'"],
    [['--bpffs'], '--bpffs needs a value (see --help)'],
    [['populate', '--json'], "--json does not apply to 'populate' (see --help)"],
    [['status', 'extra'], "unexpected argument 'extra' (see --help)"],
  ];
  for (const [args, msg] of cases) {
    const r = runCli(args);
    t.equal(r.code, 2, args.join(' '));
    t.equal(r.stderr, `bpf-preload: ${msg}\n`);
    t.equal(r.stdout, '');
  }
});

t.test('--help documents commands and exit codes; --version prints the version', async (t) => {
  const h = runCli(['--help']);
  t.equal(h.code, 0);
  t.match(h.stdout, /exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 {2}usage error/);
  const v = runCli(['--version']);
  t.equal(v.code, 0);
  t.match(v.stdout, /^bpf-preload \d+\.\d+\.\d+\n$/);
});
