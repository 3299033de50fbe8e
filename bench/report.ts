// bench/results.md: the tables, the verdicts against the issue's targets and
// the machine they were measured on, for each part that ran.
import type { ColdResult, ColdRow } from './cold.js';
import { loadAverage, type Machine } from './machine.js';
import { METHODS, type Kind, type SizeResult } from './readpath.js';
import type { Phase } from './phases.js';
import { CONSUMERS, type RingResult } from './ringbuf.js';
import type { Summary } from './stats.js';

const f = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const range = (s: Summary, digits = 1) => `${f(s.median, digits)} (${f(s.min, digits)}–${f(s.max, digits)})`;
const thousands = (n: number) => n.toLocaleString('en-US');
const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');

function coldTable(c: ColdResult): string[] {
  const line = (r: ColdRow) => `| ${r.label} | ${range(r.wallMs)} | ${range(r.cpuMs)} | ${f(r.userMs.median)} / ${f(r.sysMs.median)} | ${range(r.maxRssMiB)} |`;
  return [
    '| command | wall ms | CPU ms (user+sys) | user / sys ms | peak RSS MiB |',
    '| --- | --- | --- | --- | --- |',
    line(c.rows.node),
    line(c.rows.c),
    line(c.rows.runner),
  ];
}

function readTables(sizes: SizeResult[], kind: Kind): string[] {
  const methods = METHODS.filter((m) => m.kind === kind);
  const noun = kind === 'progs' ? 'programs' : 'maps';
  const head = `| method | ${sizes.map((s) => `${thousands(s.n)} loaded (${thousands(s.seen[kind])} ${noun} listed)`).join(' | ')} |`;
  const rule = `| --- | ${sizes.map(() => '---').join(' | ')} |`;
  const out = [`Median ms (min–max) for one full listing:`, '', head, rule];
  for (const m of methods) out.push(`| ${m.label} | ${sizes.map((s) => range(s.times[m.id], 2)).join(' | ')} |`);
  out.push('', `Time per listed ${kind === 'progs' ? 'program' : 'map'}, µs (median ÷ objects listed):`, '', head, rule);
  for (const m of methods) {
    out.push(`| ${m.label} | ${sizes.map((s) => f((s.times[m.id].median * 1000) / s.seen[kind], 2)).join(' | ')} |`);
  }
  const [cat, , show, json] = methods;
  out.push('', `bpftool ÷ iterator file (both as processes, medians):`, '', head, rule);
  for (const m of [show, json]) {
    out.push(`| ${m.label} ÷ ${cat.label} | ${sizes.map((s) => `${f(s.times[m.id].median / s.times[cat.id].median)}×`).join(' | ')} |`);
  }
  return out;
}

function phaseTable(phases: Phase[], nodeMs: number): string[] {
  if (phases.length === 0) return ['The runner printed no phase marks (BPF_PRELOAD_TIMING=1), so there is no breakdown.', ''];
  const n = phases[0].ms.n;
  return [
    `Where the runner's time goes: its own phase marks (\`BPF_PRELOAD_TIMING=1\`), ${n} extra runs, milliseconds`,
    `since the previous mark; the first phase includes Node's start-up (\`node -e 0\` took ${f(nodeMs)} ms above).`,
    '',
    '| phase | ms, median (min–max) |',
    '| --- | --- |',
    ...phases.map((p) => `| ${p.name} | ${range(p.ms)} |`),
    '',
  ];
}

export interface Report {
  machine: Machine;
  /** Each part is there when it ran (--only). */
  cold?: ColdResult;
  phases?: Phase[];
  read?: SizeResult[];
  ring?: RingResult;
  readRounds: number;
  /** One plot per part that has one, in the order of the parts. */
  plots: string[];
  command: string;
  elapsedS: number;
}

function coldSection(c: ColdResult, phases: Phase[]): string[] {
  const node = c.rows.node;
  return [
    '## Cold runner',
    '',
    `Each command on a fresh bpffs directory, ${c.rounds} measured rounds after ${c.warmup} warm-up rounds, interleaved`,
    "in rotating order. Wall time is fork to reap; CPU time and peak RSS come from the child's wait4() rusage.",
    'Cells: median (min–max).',
    '',
    ...coldTable(c),
    '',
    "Per-round figures: each round's three commands ran back to back, so the ratio and differences are taken",
    'within a round, then summarized as median (min–max) over the rounds.',
    '',
    '| measure | value | target |',
    '| --- | --- | --- |',
    `| wall: runner ÷ (node floor + C reference) | ${range(c.ratio, 2)} (ratio of the medians above: ${f(c.ratioOfMedians, 2)}) | ≤ 1.00: ${verdict(c.ratio.median <= 1)} |`,
    `| CPU: runner ÷ (node floor + C reference) | ${range(c.cpuRatio, 2)} | |`,
    `| wall: TS overhead, runner − node floor | ${range(c.overheadWallMs)} ms (C reference: ${f(c.rows.c.wallMs.median)} ms) | |`,
    `| CPU: runner − node floor | ${range(c.overheadCpuMs)} ms (C reference: ${f(c.rows.c.cpuMs.median)} ms) | |`,
    `| peak RSS: runner − node floor | ${range(c.overheadRssMiB)} MiB (${f(c.rows.runner.maxRssMiB.median)} vs ${f(node.maxRssMiB.median)} MiB) | ≤ 10 MiB: ${verdict(c.overheadRssMiB.median <= 10)} |`,
    '',
    ...phaseTable(phases, c.rows.node.wallMs.median),
  ];
}

function readSection(read: SizeResult[], readRounds: number, plot: string | undefined): string[] {
  const largest = read[read.length - 1];
  const progsSpeedup = largest ? largest.times['prog-show'].median / largest.times['progs-cat'].median : NaN;
  return [
    '## Read path',
    '',
    `The bench loads N tiny socket-filter programs and N one-element array maps (held by one helper process, freed`,
    `when it exits), then times full listings: ${readRounds} measured rounds after one warm-up, interleaved. Processes`,
    'are timed fork to reap with stdout to /dev/null; "in-process" is one readFileSync() in the bench itself, the',
    "kernel's share without any process start-up. Counts listed include what else the system had loaded.",
    '',
    ...read.map((s) => `- grown to ${thousands(s.n)} of each in ${f(s.loadMs / 1000, 2)} s`),
    '',
    '### Programs',
    '',
    ...readTables(read, 'progs'),
    '',
    '### Maps',
    '',
    ...readTables(read, 'maps'),
    '',
    largest
      ? `At ${thousands(largest.n)} programs, \`cat progs.debug\` is ${f(progsSpeedup)}× faster than \`bpftool prog show\` (target ≥ 10×: ${verdict(progsSpeedup >= 10)}).`
      : '',
    '',
    ...(plot ? [`![read time against object count, iterator files vs bpftool](${plot})`, ''] : []),
  ];
}

const mega = (x: number) => `${f(x / 1e6, 2)}M`;

function ringSection(r: RingResult, plot: string | undefined): string[] {
  const c = r.rates.c.median;
  const late = (l: RingResult['idle']) => `${f(l.median, 2)} | ${f(l.p99, 2)} | ${f(l.max, 2)} | ${l.ticks}`;
  return [
    '## Ring buffer',
    '',
    'One BPF producer, `produce` of test/fixtures/ringprod.bpf.c run with BPF_PROG_TEST_RUN by bench/ringbuf.c in a',
    'process of its own, emits 64-byte records numbered in sequence through `bpf_loop` into a 1 MiB ring (waiting',
    'while it is full). Each consumer takes the same number of records and checks every sequence number and size',
    '(the decoded one, whose records are objects made by the decoder gen skeleton wrote in bench/ringprod.skel.ts:',
    'every sequence number and the last fill byte): a record lost, duplicated or altered stops the bench. The C',
    "reference is libbpf's `ring_buffer__poll` in a process of its own (bench/ringbuf.c); the library's consumers",
    "run in the bench's Node process. Rate: records per second of the consumer process's CPU time (user + system;",
    `waiting costs none), ${r.rounds} measured rounds of ${thousands(r.records)} records after one warm-up round, consumers`,
    'interleaved. Cells: median (min–max).',
    '',
    '| consumer | records/s of CPU | ns of CPU per record | ÷ C | target |',
    '| --- | --- | --- | --- | --- |',
    ...CONSUMERS.map((k) => {
      const s = r.rates[k.id];
      const ratio = s.median / c;
      const target = k.target ? `≥ 1/${f(1 / k.target, 0)}: ${verdict(ratio >= k.target)}` : '';
      return `| ${k.label} | ${mega(s.median)} (${mega(s.min)}–${mega(s.max)}) | ${f(1e9 / s.median, 0)} | 1/${f(1 / ratio, 1)} | ${target} |`;
    }),
    '',
    "Event-loop lateness of a 10 ms `setInterval` in the consumer's process, ms: with nothing else running (what",
    "the machine's scheduling alone costs: other work on it delays every row alike), while `for await` waits on an",
    `idle ring for 2 s, and while the producer emits at about 1M records/s for 3 s (consumed: ${mega(r.flowing.rate)}/s):`,
    '',
    '| while | median | p99 | max | ticks | target |',
    '| --- | --- | --- | --- | --- | --- |',
    `| nothing (baseline) | ${late(r.baseline)} | |`,
    `| waiting on an idle ring | ${late(r.idle)} | p99 ≤ 5 ms: ${verdict(r.idle.p99 <= 5)} |`,
    `| records flowing at ~1M/s | ${late(r.flowing)} | p99 ≤ 5 ms: ${verdict(r.flowing.p99 <= 5)} |`,
    '',
    `RSS over ${thousands(r.rss.records)} records through \`for await\` (sampled every 50 ms): ${f(r.rss.startMiB)} MiB at the start,`,
    `${f(r.rss.peakMiB)} MiB at the peak, growth ${f(r.rss.growthMiB)} MiB (target ≤ 32 MiB: ${verdict(r.rss.growthMiB <= 32)}).`,
    '',
    ...(plot ? [`![records per CPU second, C libbpf vs the library's consumers](${plot})`, ''] : []),
  ];
}

export function renderReport(r: Report): string {
  const { machine: m } = r;
  const plots = [...r.plots];
  const lines = [
    '# bpf-preload benchmark',
    '',
    `Written by \`${r.command}\` on ${m.date} in ${f(r.elapsedS, 0)} s. Compare ratios within one run;`,
    'absolute times move between runs on a shared machine.',
    '',
    '## Machine',
    '',
    `- CPU: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB`,
    `- kernel ${m.kernel}, Node ${m.node}, libbpf ${m.libbpf}, ${m.bpftool}`,
    `- runner: \`${m.runnerVersion}\` (--version), dist/bpf-preload.js ${thousands(m.runnerBytes)} bytes`,
    `- load average (1 min) at start ${m.loadStart}, at end ${loadAverage()}: other work on the machine skews wall times`,
    '',
    ...(r.cold ? coldSection(r.cold, r.phases ?? []) : []),
    ...(r.read ? readSection(r.read, r.readRounds, plots.shift()) : []),
    ...(r.ring ? ringSection(r.ring, plots.shift()) : []),
  ];
  return lines.join('\n');
}
