// Part 1: the runner started cold on a fresh bpffs directory, interleaved
// round by round with the two things it is weighed against: `node -e 0` (what
// any Node program pays before its first line) and the C reference loader
// (what the same kernel work costs from C on libbpf).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchBpffs } from './bpffs.js';
import { measure, type Sample } from './measure.js';
import { rotate, summarize, type Summary } from './stats.js';

export type ColdName = 'node' | 'c' | 'runner';

export interface ColdRow {
  name: ColdName;
  label: string;
  wallMs: Summary;
  cpuMs: Summary;
  userMs: Summary;
  sysMs: Summary;
  maxRssMiB: Summary;
}

export interface ColdResult {
  rows: Record<ColdName, ColdRow>;
  rounds: number;
  warmup: number;
  /**
   * runner ÷ (node + C) and runner − node, taken within each round and then
   * summarized: the commands of one round ran back to back, so a slow spell
   * of the machine hits all three alike and cancels out.
   */
  ratio: Summary;
  cpuRatio: Summary;
  overheadWallMs: Summary;
  overheadCpuMs: Summary;
  overheadRssMiB: Summary;
  /** The same ratio on the medians of each command, for comparison. */
  ratioOfMedians: number;
}

export interface ColdSetup {
  rusage: string;
  loader: string;
  runner: string;
  object: string;
  bpffs: BenchBpffs;
  rounds: number;
  warmup: number;
}

export function runCold(s: ColdSetup): ColdResult {
  const commands: Record<ColdName, { label: string; argv: (dir: string) => string[]; pins: boolean }> = {
    node: { label: '`node -e 0`', argv: () => [process.execPath, '-e', '0'], pins: false },
    c: { label: 'C reference loader (bench/loader.c)', argv: (dir) => [s.loader, s.object, dir], pins: true },
    runner: {
      label: '`node dist/bpf-preload.js --bpffs DIR`',
      argv: (dir) => [process.execPath, s.runner, '--bpffs', dir],
      pins: true,
    },
  };
  const names: ColdName[] = ['node', 'c', 'runner'];
  const samples: Record<ColdName, Sample[]> = { node: [], c: [], runner: [] };

  for (let round = 0; round < s.warmup + s.rounds; round++) {
    const measured = round >= s.warmup;
    for (const name of rotate(names, round)) {
      const cmd = commands[name];
      const dir = s.bpffs.freshDir();
      try {
        const sample = measure(s.rusage, cmd.argv(dir));
        if (cmd.pins) {
          for (const f of ['progs.debug', 'maps.debug']) {
            if (!existsSync(join(dir, f))) throw new Error(`${cmd.label} exited 0 but left no ${f} in ${dir}`);
          }
        }
        if (measured) samples[name].push(sample);
      } finally {
        s.bpffs.remove(dir);
      }
    }
  }

  const row = (name: ColdName): ColdRow => {
    const xs = samples[name];
    return {
      name,
      label: commands[name].label,
      wallMs: summarize(xs.map((x) => x.wallMs)),
      cpuMs: summarize(xs.map((x) => x.cpuMs)),
      userMs: summarize(xs.map((x) => x.userMs)),
      sysMs: summarize(xs.map((x) => x.sysMs)),
      maxRssMiB: summarize(xs.map((x) => x.maxRssKiB / 1024)),
    };
  };
  const rows = { node: row('node'), c: row('c'), runner: row('runner') };
  const perRound = (f: (runner: Sample, node: Sample, c: Sample) => number) => summarize(samples.runner.map((r, i) => f(r, samples.node[i], samples.c[i])));
  return {
    rows,
    rounds: s.rounds,
    warmup: s.warmup,
    ratio: perRound((r, n, c) => r.wallMs / (n.wallMs + c.wallMs)),
    cpuRatio: perRound((r, n, c) => r.cpuMs / (n.cpuMs + c.cpuMs)),
    overheadWallMs: perRound((r, n) => r.wallMs - n.wallMs),
    overheadCpuMs: perRound((r, n) => r.cpuMs - n.cpuMs),
    overheadRssMiB: perRound((r, n) => (r.maxRssKiB - n.maxRssKiB) / 1024),
    ratioOfMedians: rows.runner.wallMs.median / (rows.node.wallMs.median + rows.c.wallMs.median),
  };
}
