// The exporter's section of `npm run bench`: one scrape of
// `bpf-preload exporter --enable-stats` with N programs and N maps loaded,
// against building the same data the way an exporter without iterators
// would, `bpftool -j prog show` plus `bpftool -j map show`, and the
// exporter's RSS after many scrapes at the largest size.
// Alone (while developing): `node build/run.mjs bench/scrape.ts [--sizes N,N] [--rounds N] [--rss-scrapes N]`
// replaces this section in bench/results.md and prints it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { cleanupAll, onCleanup } from './cleanup.js';
import { describeMachine } from './machine.js';
import { measure } from './measure.js';
import { renderScrapePlot } from './plot.js';
import { compileHelpers, ensureBuildDeps } from './native.js';
import { LoadedObjects } from './objects.js';
import { rotate, summarize, type Summary } from './stats.js';
import { EXPORTER_ARGS, EXPORTER_ENVIRONMENT, EXPORTER_NODE_FLAGS } from '../src/cli/unit.js';

export interface ScrapeSetup {
  rusage: string;
  objectsHelper: string;
  runner: string;
  sizes: number[];
  /** Measured scrapes and bpftool pairs per size. */
  rounds: number;
  /** Scrapes at the largest size before RSS is read. */
  rssScrapes: number;
}

export interface ScrapeSize {
  n: number;
  /** Programs and maps the exporter saw (the whole machine's). */
  seen: { progs: number; maps: number };
  /** HTTP GET /metrics, as Prometheus sees it (ms). */
  scrape: Summary;
  /** The exporter's own bpf_exporter_scrape_duration_seconds (ms). */
  collect: Summary;
  /** bpftool -j prog show + bpftool -j map show (ms). */
  bpftool: Summary;
  /** The same GET asking for gzip, as Prometheus does, unpacked by curl (ms). */
  gzip: Summary;
  bodyKiB: number;
  /** The gzipped body's size on the wire. */
  gzipKiB: number;
}

export interface ScrapeResult {
  sizes: ScrapeSize[];
  /**
   * idleMiB: serving, before any scrape and before the objects are loaded.
   * end: after the scrapes, RSS split into anonymous memory (the heap,
   * buffers: what the exporter allocates) and file-backed pages (node's
   * binary and the libraries, shared and reclaimable).
   */
  rss: { scrapes: number; n: number; idleMiB: number; startMiB: number; endMiB: number; endAnonMiB: number; endFileMiB: number };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** A memory figure of /proc/PID/status (VmRSS, RssAnon, RssFile), in MiB. */
function statusMiB(pid: number, field = 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const value = (text: string, sample: string): number => Number(new RegExp(`^${sample} (\\S+)$`, 'm').exec(text)?.[1]);

export async function runScrape(s: ScrapeSetup, log: (msg: string) => void): Promise<ScrapeResult> {
  const port = await freePort();
  // As the packaged unit runs it: node's flags and malloc's environment included (they bound its RSS).
  const env = { ...process.env, ...Object.fromEntries(EXPORTER_ENVIRONMENT.map((e) => e.split('=') as [string, string])) };
  const exporter = spawn(process.execPath, [...EXPORTER_NODE_FLAGS, s.runner, ...EXPORTER_ARGS, '--listen', `127.0.0.1:${port}`], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const release = onCleanup('the exporter', () => exporter.kill('SIGKILL'));
  let out = '';
  exporter.stdout.on('data', (d) => (out += d));
  while (!out.includes('serving')) {
    if (exporter.exitCode !== null) throw new Error(`exporter exited ${exporter.exitCode}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const idleMiB = statusMiB(exporter.pid!);
  const url = `http://127.0.0.1:${port}/metrics`;
  // curl, a C client like Prometheus's Go one: its time_total is the
  // exporter's answer and the transfer, not a JavaScript client parsing 5 MB.
  // With `gzip`, curl asks for it as Prometheus does, and unpacks it.
  const scrape = async (gzip = false): Promise<{ ms: number; text: string; wireBytes: number }> => {
    const args = ['-sS', ...(gzip ? ['--compressed'] : []), '-o', '-', '-w', '%{stderr}%{http_code} %{time_total} %{size_download}', url];
    const r = spawnSync('curl', args, { encoding: 'latin1', maxBuffer: 1 << 28 });
    if (r.error) throw new Error(`curl: ${r.error.message}`);
    const [status, seconds, wire] = r.stderr.trim().split(' ');
    if (r.status !== 0 || status !== '200') throw new Error(`scrape: curl exit ${r.status}, HTTP ${status}: ${r.stderr.trim()}`);
    return { ms: Number(seconds) * 1000, text: r.stdout, wireBytes: Number(wire) };
  };
  const objects = LoadedObjects.start(s.objectsHelper);
  const sizes: ScrapeSize[] = [];
  let rss: ScrapeResult['rss'];
  try {
    for (const n of s.sizes) {
      await objects.grow(n);
      const first = await scrape();
      const ours = (re: RegExp) => (first.text.match(re) ?? []).length;
      const progs = ours(/^bpf_prog_info\{id="\d+",name="bench_p\d+"/gm);
      const maps = ours(/^bpf_map_info\{id="\d+",name="bench_m\d+"/gm);
      if (progs !== n || maps !== n) throw new Error(`with ${n} of each loaded, a scrape lists ${progs} programs and ${maps} maps of ours`);
      log(`scrape: ${n} programs and maps loaded; measuring`);
      const samples = { scrape: [] as number[], collect: [] as number[], gzip: [] as number[], bpftool: [] as number[] };
      let body = first.text;
      let gzipBytes = 0;
      const methods = ['scrape', 'gzip', 'bpftool'] as const;
      for (let round = 0; round <= s.rounds; round++) {
        for (const m of rotate([...methods], round)) {
          if (m === 'scrape') {
            const r = await scrape();
            body = r.text;
            if (round > 0) {
              samples.scrape.push(r.ms);
              samples.collect.push(value(r.text, 'bpf_exporter_scrape_duration_seconds') * 1000);
            }
          } else if (m === 'gzip') {
            const r = await scrape(true);
            gzipBytes = r.wireBytes;
            if (round > 0) samples.gzip.push(r.ms);
          } else {
            const ms = measure(s.rusage, ['bpftool', '-j', 'prog', 'show']).wallMs + measure(s.rusage, ['bpftool', '-j', 'map', 'show']).wallMs;
            if (round > 0) samples.bpftool.push(ms);
          }
        }
      }
      sizes.push({
        n,
        seen: { progs: value(body, 'bpf_exporter_objects\\{kind="prog"\\}'), maps: value(body, 'bpf_exporter_objects\\{kind="map"\\}') },
        scrape: summarize(samples.scrape),
        collect: summarize(samples.collect),
        bpftool: summarize(samples.bpftool),
        gzip: summarize(samples.gzip),
        bodyKiB: Buffer.byteLength(body) / 1024,
        gzipKiB: gzipBytes / 1024,
      });
    }
    const n = s.sizes[s.sizes.length - 1];
    const startMiB = statusMiB(exporter.pid!);
    log(`scrape: ${s.rssScrapes} scrapes at ${n} for RSS`);
    for (let i = 0; i < s.rssScrapes; i++) await scrape();
    const pid = exporter.pid!;
    rss = { scrapes: s.rssScrapes, n, idleMiB, startMiB, endMiB: statusMiB(pid), endAnonMiB: statusMiB(pid, 'RssAnon'), endFileMiB: statusMiB(pid, 'RssFile') };
  } finally {
    await objects.stop();
    exporter.kill('SIGTERM');
    await new Promise((r) => exporter.once('exit', r));
    release();
  }
  return { sizes, rss };
}

export const SECTION_TITLE = '## Exporter: one scrape vs bpftool';
/** The plot's file name, without its extension (bench/plot.ts renderScrapePlot). */
export const SCRAPE_PLOT = 'exporter-scrape';

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const range = (s: Summary) => `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;

export function renderScrape(r: ScrapeResult, rounds: number, plot?: string): string {
  const rows = r.sizes.map(
    (z) =>
      `| ${z.n.toLocaleString('en')} | ${z.seen.progs.toLocaleString('en')} / ${z.seen.maps.toLocaleString('en')} | ${range(z.scrape)} | ${range(z.collect)} | ${range(z.bpftool)} | ${(z.bpftool.median / z.scrape.median).toFixed(1)}× | ${fmt(z.bodyKiB)} | ${range(z.gzip)} | ${fmt(z.gzipKiB)} |`,
  );
  return `${SECTION_TITLE}

\`bpf-preload exporter --enable-stats\` (iterators for programs, maps and
links, run counters summed in the program iterator, maps' memlock bytes
from fdinfo) against what an exporter without iterators would run for the
same data, \`bpftool -j prog show\` plus \`bpftool -j map show\`, with N
programs and N maps loaded (the read path's objects helper). The exporter
runs as its unit runs it: node with \`${EXPORTER_NODE_FLAGS.join(' ')}\`, and
\`${EXPORTER_ENVIRONMENT.join(' ')}\` for glibc's malloc.
Milliseconds, median (min–max) of ${rounds} rounds after unmeasured
warm-up scrapes at each size; "scrape" is an HTTP GET of /metrics by curl
(its \`time_total\`: a C client, as Prometheus's is Go, so the time is the
exporter's and the transfer's), "collect" the exporter's own
\`bpf_exporter_scrape_duration_seconds\`; "scrape, gzip" the same GET
asking for gzip, as Prometheus does (\`curl --compressed\`, which unpacks it).

| N each | programs / maps seen | scrape | collect | bpftool -j prog + map show | bpftool ÷ scrape | body KiB | scrape, gzip | gzipped KiB |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

${plot ? `![one scrape vs bpftool's listings, by objects loaded](${plot})\n\n` : ''}Exporter RSS: ${fmt(r.rss.startMiB)} MiB before, ${fmt(r.rss.endMiB)} MiB after ${r.rss.scrapes.toLocaleString('en')} scrapes at ${r.rss.n.toLocaleString('en')} objects each (target: under 64 MiB), of which ${fmt(r.rss.endAnonMiB)} MiB anonymous (heap and buffers) and ${fmt(r.rss.endFileMiB)} MiB file-backed (node's binary and the libraries); idle, serving before its first scrape: ${fmt(r.rss.idleMiB)} MiB.
`;
}

/** Puts the section into results.md in place of an earlier one (or at its end). */
export function replaceSection(markdown: string, section: string): string {
  const start = markdown.indexOf(SECTION_TITLE);
  if (start < 0) return `${markdown.trimEnd()}\n\n${section}`;
  const next = markdown.indexOf('\n## ', start + SECTION_TITLE.length);
  return `${markdown.slice(0, start)}${section.trimEnd()}\n${next < 0 ? '' : markdown.slice(next)}`;
}

async function alone(argv: string[]): Promise<void> {
  const arg = (name: string, dflt: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] ? argv[i + 1] : dflt;
  };
  const benchDir = dirname(resolve(process.argv[1]));
  const repo = resolve(benchDir, '..');
  const runner = resolve(repo, 'dist/bpf-preload.js');
  if (!existsSync(runner)) throw new Error(`${runner} is missing: run \`npm run build\` first`);
  ensureBuildDeps();
  const tmp = mkdtempSync('/tmp/bpfpreloadbench');
  onCleanup(`temp directory ${tmp}`, () => rmSync(tmp, { recursive: true, force: true }));
  mkdirSync(join(tmp, 'bin'));
  const helpers = compileHelpers(benchDir, join(tmp, 'bin'));
  const rounds = Number(arg('rounds', '11'));
  const result = await runScrape(
    {
      rusage: helpers.rusage,
      objectsHelper: helpers.objects,
      runner,
      sizes: arg('sizes', '100,1000,10000').split(',').map(Number),
      rounds,
      rssScrapes: Number(arg('rss-scrapes', '1000')),
    },
    (m) => console.error(`bench: ${m}`),
  );
  const machine = describeMachine(runner);
  writeFileSync(join(benchDir, `${SCRAPE_PLOT}.svg`), renderScrapePlot(result.sizes, `${machine.cpu}, kernel ${machine.kernel}, ${machine.date}`));
  const section = renderScrape(result, rounds, `${SCRAPE_PLOT}.svg`);
  const results = join(benchDir, 'results.md');
  writeFileSync(results, replaceSection(readFileSync(results, 'utf8'), section));
  console.log(section);
}

if (process.argv[1] && resolve(process.argv[1]).endsWith('bench/scrape.ts')) {
  try {
    await alone(process.argv.slice(2));
  } catch (err) {
    console.error(`bench: ${(err as Error).message}`);
    process.exitCode = 1;
  } finally {
    cleanupAll();
  }
}
