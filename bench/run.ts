// `npm run bench`: the cold-runner comparison, the read-path comparison and
// the ring buffer consumers in one run (or those --only names), written to
// bench/results.md with plots beside it. Everything it
// mounts, loads or creates is undone before it exits, errors included.
// Options: see options.ts (`--help`).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { BenchBpffs } from './bpffs.js';
import { cleanupAll, onCleanup } from './cleanup.js';
import { runCold, type ColdResult } from './cold.js';
import { describeMachine } from './machine.js';
import { compileHelpers, ensureBuildDeps, pngConverter } from './native.js';
import { parseOptions, USAGE, type Section } from './options.js';
import { runPhases, type Phase } from './phases.js';
import { renderPlot, renderRingPlot, renderScrapePlot } from './plot.js';
import { runReadPath, type SizeResult } from './readpath.js';
import { renderReport } from './report.js';
import { runRingBuffer, type RingResult } from './ringbuf.js';
import { SCRAPE_PLOT, renderScrape, replaceSection, runScrape } from './scrape.js';

const log = (msg: string) => console.error(`bench: ${msg}`);

async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  // build/run.mjs sets argv[1] to this file; the bundle itself runs from a cache directory.
  const benchDir = dirname(resolve(process.argv[1]));
  const repo = resolve(benchDir, '..');
  const opts = parseOptions(argv, process.env, repo);
  const runs = (section: Section) => opts.only.includes(section);
  if ((runs('cold') || runs('read')) && !existsSync(opts.runner)) throw new Error(`${opts.runner} is missing: run \`npm run build\` first`);
  if (runs('cold') && !existsSync(opts.object)) throw new Error(`${opts.object} is missing: run \`npm run build:bpf\` first`);
  if (runs('ring') && !existsSync(opts.ringObject)) throw new Error(`${opts.ringObject} is missing: run \`npm run build:bpf\` first`);
  if (process.getuid?.() !== 0) throw new Error('the benchmark mounts a bpffs and loads BPF programs: run it as root');
  ensureBuildDeps();
  const started = Date.now();

  // No dots in temp names: libbpf rewrites them in some pin paths.
  const tmp = mkdtempSync('/tmp/bpfpreloadbench');
  onCleanup(`temp directory ${tmp}`, () => rmSync(tmp, { recursive: true, force: true }));
  mkdirSync(join(tmp, 'bin'));
  const helpers = compileHelpers(benchDir, join(tmp, 'bin'));
  const bpffs = BenchBpffs.mount(tmp);
  const machine = describeMachine(opts.runner);
  if (Number(machine.loadStart) >= machine.cores / 2) {
    log(`the machine is busy (load average ${machine.loadStart} on ${machine.cores} cores): wall times will be noisy, CPU times less so`);
  }

  let cold: ColdResult | undefined;
  let phases: Phase[] | undefined;
  if (runs('cold')) {
    log(`cold runner: ${opts.warmup} warm-up + ${opts.rounds} rounds of node -e 0, C loader, runner`);
    cold = runCold({ ...helpers, runner: opts.runner, object: opts.object, bpffs, rounds: opts.rounds, warmup: opts.warmup });
    log(
      `cold runner: ratio ${cold.ratio.median.toFixed(2)}, overhead ${cold.overheadWallMs.median.toFixed(1)} ms, RSS +${cold.overheadRssMiB.median.toFixed(1)} MiB`,
    );
    phases = runPhases(opts.runner, bpffs, Math.min(opts.rounds, 10));
  }

  let read: SizeResult[] | undefined;
  if (runs('read')) {
    // The files read in part 2 come from the runner itself.
    const dir = bpffs.freshDir();
    const pinned = spawnSync(process.execPath, [opts.runner, '--bpffs', dir], { encoding: 'utf8' });
    if (pinned.status !== 0) throw new Error(`runner failed to pin for the read path: ${pinned.stderr.trim()}`);
    read = await runReadPath({ rusage: helpers.rusage, objectsHelper: helpers.objects, dir, sizes: opts.sizes, rounds: opts.readRounds }, log);
    bpffs.remove(dir);
  }

  let ring: RingResult | undefined;
  if (runs('ring')) {
    log(`ring buffer: ${opts.ringRounds} rounds of ${opts.ringRecords} records per consumer, then lateness and RSS`);
    ring = await runRingBuffer(
      { helper: helpers.ringbuf, object: opts.ringObject, records: opts.ringRecords, rounds: opts.ringRounds, rssRecords: opts.ringRssRecords },
      log,
    );
  }

  // The exporter's section (bench/scrape.ts).
  const scrape = runs('scrape')
    ? await runScrape(
        {
          rusage: helpers.rusage,
          objectsHelper: helpers.objects,
          runner: opts.runner,
          sizes: opts.sizes,
          rounds: opts.readRounds,
          rssScrapes: opts.rssScrapes,
        },
        log,
      )
    : undefined;

  mkdirSync(opts.out, { recursive: true });
  const subtitle = `${machine.cpu}, kernel ${machine.kernel}, ${machine.date}`;
  const plots: string[] = [];
  const svgs: [string, string][] = [];
  if (read) svgs.push(['read-path', renderPlot(read, subtitle)]);
  if (ring) svgs.push(['ring-buffer', renderRingPlot(ring, subtitle)]);
  if (scrape) svgs.push([SCRAPE_PLOT, renderScrapePlot(scrape.sizes, subtitle)]);
  const conv = opts.png && svgs.length > 0 ? pngConverter() : null;
  for (const [name, svg] of svgs) {
    writeFileSync(join(opts.out, `${name}.svg`), svg);
    let plot = `${name}.svg`;
    if (opts.png) {
      const r = conv && spawnSync(conv, ['-o', join(opts.out, `${name}.png`), join(opts.out, `${name}.svg`)], { encoding: 'utf8' });
      if (r && r.status === 0) plot = `${name}.png`;
      else log(`no PNG plot${r ? `: ${r.stderr.trim()}` : ' (rsvg-convert unavailable)'}; the SVG is there`);
    }
    plots.push(plot);
  }
  const command = `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`;
  // The exporter's plot goes in its own section, the others in the report's order.
  const scrapePlot = scrape ? plots.pop() : undefined;
  const report = renderReport({ machine, cold, phases, read, ring, readRounds: opts.readRounds, plots, command, elapsedS: (Date.now() - started) / 1000 });
  const md = scrape ? replaceSection(report, renderScrape(scrape, opts.readRounds, scrapePlot)) : report;
  writeFileSync(join(opts.out, 'results.md'), md);
  console.log(md);
  log(`wrote ${join(opts.out, 'results.md')}${svgs.length ? ` and ${svgs.map(([n]) => join(opts.out, `${n}.svg`)).join(', ')}` : ''}`);
}

try {
  await main(process.argv.slice(2));
} catch (err) {
  log((err as Error).message);
  process.exitCode = 1;
} finally {
  cleanupAll();
}
