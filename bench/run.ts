// `npm run bench`: the cold-runner comparison and the read-path comparison in
// one run, written to bench/results.md with a plot beside it. Everything it
// mounts, loads or creates is undone before it exits, errors included.
// Options: see options.ts (`--help`).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { BenchBpffs } from './bpffs.js';
import { cleanupAll, onCleanup } from './cleanup.js';
import { runCold } from './cold.js';
import { describeMachine } from './machine.js';
import { compileHelpers, ensureBuildDeps, pngConverter } from './native.js';
import { parseOptions, USAGE } from './options.js';
import { runPhases } from './phases.js';
import { renderPlot } from './plot.js';
import { runReadPath } from './readpath.js';
import { renderReport } from './report.js';
import { renderScrape, replaceSection, runScrape } from './scrape.js';

const log = (msg: string) => console.error(`bench: ${msg}`);

async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  // build/run.mjs sets argv[1] to this file; the bundle itself runs from a cache directory.
  const benchDir = dirname(resolve(process.argv[1]!));
  const repo = resolve(benchDir, '..');
  const opts = parseOptions(argv, process.env, repo);
  if (!existsSync(opts.runner)) throw new Error(`${opts.runner} is missing: run \`npm run build\` first`);
  if (!existsSync(opts.object)) throw new Error(`${opts.object} is missing: run \`npm run build:bpf\` first`);
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

  log(`cold runner: ${opts.warmup} warm-up + ${opts.rounds} rounds of node -e 0, C loader, runner`);
  const cold = runCold({ ...helpers, runner: opts.runner, object: opts.object, bpffs, rounds: opts.rounds, warmup: opts.warmup });
  log(`cold runner: ratio ${cold.ratio.median.toFixed(2)}, overhead ${cold.overheadWallMs.median.toFixed(1)} ms, RSS +${cold.overheadRssMiB.median.toFixed(1)} MiB`);

  const phases = runPhases(opts.runner, bpffs, Math.min(opts.rounds, 10));

  // The files read in part 2 come from the runner itself.
  const dir = bpffs.freshDir();
  const pinned = spawnSync(process.execPath, [opts.runner, '--bpffs', dir], { encoding: 'utf8' });
  if (pinned.status !== 0) throw new Error(`runner failed to pin for the read path: ${pinned.stderr.trim()}`);
  const read = await runReadPath(
    { rusage: helpers.rusage, objectsHelper: helpers.objects, dir, sizes: opts.sizes, rounds: opts.readRounds },
    log,
  );
  bpffs.remove(dir);

  // The exporter's section (bench/scrape.ts).
  const scrape = await runScrape(
    { rusage: helpers.rusage, objectsHelper: helpers.objects, runner: opts.runner, sizes: opts.sizes, rounds: opts.readRounds, rssScrapes: opts.rssScrapes },
    log,
  );

  mkdirSync(opts.out, { recursive: true });
  const subtitle = `${machine.cpu}, kernel ${machine.kernel}, ${machine.date}`;
  writeFileSync(join(opts.out, 'read-path.svg'), renderPlot(read, subtitle));
  const plots = ['read-path.svg'];
  if (opts.png) {
    const conv = pngConverter();
    const r = conv && spawnSync(conv, ['-o', join(opts.out, 'read-path.png'), join(opts.out, 'read-path.svg')], { encoding: 'utf8' });
    if (r && r.status === 0) plots.unshift('read-path.png');
    else log(`no PNG plot${r ? `: ${r.stderr.trim()}` : ' (rsvg-convert unavailable)'}; the SVG is there`);
  }
  const command = `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`;
  const md = replaceSection(
    renderReport({ machine, cold, phases, read, readRounds: opts.readRounds, plots: plots.slice(0, 1), command, elapsedS: (Date.now() - started) / 1000 }),
    renderScrape(scrape, opts.readRounds),
  );
  writeFileSync(join(opts.out, 'results.md'), md);
  console.log(md);
  log(`wrote ${join(opts.out, 'results.md')} and ${plots.map((p) => join(opts.out, p)).join(', ')}`);
}

try {
  await main(process.argv.slice(2));
} catch (err) {
  log((err as Error).message);
  process.exitCode = 1;
} finally {
  cleanupAll();
}
