// `npm run bench` at tiny sizes: it must produce its tables and plot, and
// leave nothing behind (mounts, temp directories, loaded programs or maps),
// whether it succeeds or fails half-way.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bpftoolMaps, bpftoolProgs, eventually } from './lib/kernel.js';

const benchTemps = () => new Set(readdirSync('/tmp').filter((n) => n.startsWith('bpfpreloadbench')));
const benchMounts = () =>
  readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes('/tmp/bpfpreloadbench'));
const benchObjects = () => bpftoolProgs().filter((p) => /^bench_/.test(p.name ?? '')).length + bpftoolMaps().filter((m) => /^bench_/.test(m.name ?? '')).length;

/** Every part at its smallest. */
const TINY = [
  '--rounds',
  '1',
  '--warmup',
  '0',
  '--read-rounds',
  '1',
  '--sizes',
  '10',
  '--ring-records',
  '20000',
  '--ring-rounds',
  '1',
  '--ring-rss-records',
  '50000',
  '--rss-scrapes',
  '3',
];

function runBench(args: string[]) {
  return spawnSync(process.execPath, ['build/run.mjs', 'bench/run.ts', ...args], { encoding: 'utf8', timeout: 120_000 });
}

/** Checks that a bench run left nothing behind that was not there before. */
async function leftNothing(t: Test, tempsBefore: Set<string>) {
  t.same(
    [...benchTemps()].filter((n) => !tempsBefore.has(n)),
    [],
    'no temp directory left in /tmp',
  );
  t.same(benchMounts(), [], 'no bench bpffs left mounted');
  t.ok(await eventually(() => benchObjects() === 0), 'no bench_* programs or maps left loaded');
}

t.test('tiny run writes the tables and the plot, then cleans up', async (t) => {
  const out = mkdtempSync('/tmp/bpfpreloadsmoke');
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const before = benchTemps();
  const r = runBench([...TINY, '--out', out, '--no-png']);
  t.equal(r.status, 0, r.stderr);

  const md = readFileSync(join(out, 'results.md'), 'utf8');
  t.equal(r.stdout.trim(), md.trim(), 'the report is also printed');
  t.match(md, /^- CPU: .+/m, 'machine CPU');
  t.match(md, /^- kernel \S+, Node v\d+/m, 'kernel and node version');
  t.match(md, /^\| command \| wall ms \| CPU ms \(user\+sys\) \| user \/ sys ms \| peak RSS MiB \|$/m, 'cold table header');
  for (const row of ['`node -e 0`', 'C reference loader', '`node dist/bpf-preload.js --bpffs DIR`']) {
    t.match(md, new RegExp(`^\\| ${row.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^|]* \\| [\\d.]+ \\([\\d.]+–[\\d.]+\\) \\|`, 'm'), `cold row ${row}`);
  }
  t.match(md, /^\| wall: runner ÷ \(node floor \+ C reference\) \| \d+\.\d\d /m, 'ratio');
  t.match(md, /^\| peak RSS: runner − node floor \| -?\d+\.\d \(-?[\d.]+–-?[\d.]+\) MiB/m, 'RSS overhead');
  t.match(md, /^\| phase \| ms, median \(min–max\) \|$/m, 'runner phase table');
  t.match(md, /^\| load \| [\d.]+ \(/m, 'load phase measured');
  for (const kind of ['Programs', 'Maps']) t.match(md, `### ${kind}`);
  for (const m of ['`cat progs.debug`', '`bpftool prog show`', '`bpftool --json prog show`', '`cat maps.debug`', '`bpftool map show`']) {
    t.match(md, new RegExp(`^\\| ${m.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\| \\d+\\.\\d\\d \\(`, 'm'), `read row ${m}`);
  }
  t.match(md, /\| 10 loaded \(\d+ programs listed\) \|/, 'size column');
  t.match(md, /!\[[^\]]*\]\(read-path\.svg\)/, 'report links the plot');
  t.match(md, /^## Exporter: one scrape vs bpftool$/m, "the exporter's section");
  t.match(
    md,
    /^\| 10 \| \d+ \/ \d+ \| [\d.]+ \([\d.]+–[\d.]+\) \| [\d.]+ \([\d.]+–[\d.]+\) \| [\d.]+ \([\d.]+–[\d.]+\) \| [\d.]+× \| [\d.]+ \| [\d.]+ \([\d.]+–[\d.]+\) \| [\d.]+ \|$/m,
    'scrape row',
  );
  t.match(md, /^Exporter RSS: [\d.]+ MiB before, [\d.]+ MiB after 3 scrapes at 10 objects each/m, 'exporter RSS');
  t.match(md, /^!\[[^\]]*\]\(exporter-scrape\.svg\)$/m, "the exporter's section links its plot");
  const scrapeSvg = readFileSync(join(out, 'exporter-scrape.svg'), 'utf8');
  t.equal((scrapeSvg.match(/<circle /g) ?? []).length, 3, 'exporter plot: a point each for the scrape, collecting and bpftool');
  const svg = readFileSync(join(out, 'read-path.svg'), 'utf8');
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.match(svg, /<\/svg>\s*$/);
  t.match(svg, /<circle /, 'plot has data points');

  t.match(md, /^## Ring buffer$/m, 'ring buffer section');
  for (const row of [
    'C libbpf `ring_buffer__poll` (reference)',
    '`rb.runRaw((data, offset, size) => …)`',
    '`rb.run((record) => …)`',
    '`for await (const record of rb)`',
  ]) {
    t.match(
      md,
      new RegExp(`^\\| ${row.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\| [\\d.]+M \\([\\d.]+M–[\\d.]+M\\) \\| \\d+ \\| 1/[\\d.]+ \\|`, 'm'),
      `ring row ${row}`,
    );
  }
  t.match(md, /^\| nothing \(baseline\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| \d+ \| \|$/m, 'baseline lateness');
  t.match(md, /^\| waiting on an idle ring \| [\d.]+ \| [\d.]+ \| [\d.]+ \| \d+ \| p99 ≤ 5 ms: /m, 'idle lateness');
  t.match(md, /^\| records flowing at ~1M\/s \| [\d.]+ \| [\d.]+ \| [\d.]+ \| \d+ \| p99 ≤ 5 ms: /m, 'flowing lateness');
  t.match(md, /^RSS over 50,000 records through `for await`/m, 'RSS growth');
  t.match(md, /!\[[^\]]*\]\(ring-buffer\.svg\)/, 'report links the ring buffer plot');
  t.match(readFileSync(join(out, 'ring-buffer.svg'), 'utf8'), /<rect x="\d+" y="\d+" width="[\d.]+" height="24" fill="#7f7f7f">/, 'ring plot has the C bar');

  await leftNothing(t, before);
});

t.test('--only ring runs the ring buffer part alone; --only with an unknown part is one message', async (t) => {
  const out = mkdtempSync('/tmp/bpfpreloadsmoke');
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const before = benchTemps();
  const r = runBench([...TINY, '--only', 'ring', '--out', out, '--no-png']);
  t.equal(r.status, 0, r.stderr);
  const md = readFileSync(join(out, 'results.md'), 'utf8');
  t.match(md, /^## Ring buffer$/m);
  t.notMatch(md, /^## (Cold runner|Read path)$/m, 'only that part');
  t.notOk(existsSync(join(out, 'read-path.svg')), 'no read-path plot');
  const bad = runBench(['--only', 'ring,disk', '--out', out]);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /^bench: --only takes cold, read, ring, scrape, not disk$/m);
  await leftNothing(t, before);
});

t.test('a failing runner stops the bench with one message and still cleans up', async (t) => {
  const out = mkdtempSync('/tmp/bpfpreloadsmoke');
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const broken = join(out, 'broken.mjs');
  writeFileSync(broken, 'console.error("broken on purpose"); process.exit(1);\n');
  const before = benchTemps();
  const r = runBench(['--rounds', '1', '--warmup', '0', '--sizes', '10', '--out', out, '--no-png', '--runner', broken]);
  t.equal(r.status, 1);
  t.match(r.stderr, /bench: .*exited 1: broken on purpose/);
  t.notOk(existsSync(join(out, 'results.md')), 'no partial report');
  await leftNothing(t, before);
});
