// bench/results.md: the tables, the verdicts against the issue's targets and
// the machine they were measured on.
import type { ColdResult, ColdRow } from './cold.js';
import { loadAverage, type Machine } from './machine.js';
import { METHODS, type Kind, type SizeResult } from './readpath.js';
import type { Phase } from './phases.js';
import type { Summary } from './stats.js';

const f = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const range = (s: Summary, digits = 1) => `${f(s.median, digits)} (${f(s.min, digits)}–${f(s.max, digits)})`;
const thousands = (n: number) => n.toLocaleString('en-US');
const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');

function coldTable(c: ColdResult): string[] {
  const line = (r: ColdRow) =>
    `| ${r.label} | ${range(r.wallMs)} | ${range(r.cpuMs)} | ${f(r.userMs.median)} / ${f(r.sysMs.median)} | ${range(r.maxRssMiB)} |`;
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
  for (const m of methods) out.push(`| ${m.label} | ${sizes.map((s) => range(s.times[m.id]!, 2)).join(' | ')} |`);
  out.push('', `Time per listed ${kind === 'progs' ? 'program' : 'map'}, µs (median ÷ objects listed):`, '', head, rule);
  for (const m of methods) {
    out.push(`| ${m.label} | ${sizes.map((s) => f((s.times[m.id]!.median * 1000) / s.seen[kind], 2)).join(' | ')} |`);
  }
  const [cat, , show, json] = methods;
  out.push('', `bpftool ÷ iterator file (both as processes, medians):`, '', head, rule);
  for (const m of [show!, json!]) {
    out.push(`| ${m.label} ÷ ${cat!.label} | ${sizes.map((s) => `${f(s.times[m.id]!.median / s.times[cat!.id]!.median)}×`).join(' | ')} |`);
  }
  return out;
}

function phaseTable(phases: Phase[], nodeMs: number): string[] {
  if (phases.length === 0) return ['The runner printed no phase marks (BPF_PRELOAD_TIMING=1), so there is no breakdown.', ''];
  const n = phases[0]!.ms.n;
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
  cold: ColdResult;
  phases: Phase[];
  read: SizeResult[];
  readRounds: number;
  plots: string[];
  command: string;
  elapsedS: number;
}

export function renderReport(r: Report): string {
  const { machine: m, cold: c, read } = r;
  const largest = read[read.length - 1];
  const progsSpeedup = largest ? largest.times['prog-show']!.median / largest.times['progs-cat']!.median : NaN;
  const node = c.rows.node;
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
    '## Cold runner',
    '',
    `Each command on a fresh bpffs directory, ${c.rounds} measured rounds after ${c.warmup} warm-up rounds, interleaved`,
    'in rotating order. Wall time is fork to reap; CPU time and peak RSS come from the child\'s wait4() rusage.',
    'Cells: median (min–max).',
    '',
    ...coldTable(c),
    '',
    'Per-round figures: each round\'s three commands ran back to back, so the ratio and differences are taken',
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
    ...phaseTable(r.phases, c.rows.node.wallMs.median),
    '## Read path',
    '',
    `The bench loads N tiny socket-filter programs and N one-element array maps (held by one helper process, freed`,
    `when it exits), then times full listings: ${r.readRounds} measured rounds after one warm-up, interleaved. Processes`,
    'are timed fork to reap with stdout to /dev/null; "in-process" is one readFileSync() in the bench itself, the',
    'kernel\'s share without any process start-up. Counts listed include what else the system had loaded.',
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
    ...r.plots.map((p) => `![read time against object count, iterator files vs bpftool](${p})`),
    '',
  ];
  return lines.join('\n');
}
