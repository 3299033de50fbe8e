// Where the runner's own time goes: its phase marks (BPF_PRELOAD_TIMING=1,
// see src/timing.ts) over a few extra runs on fresh directories. Kept out of
// the measured cold rounds, since printing the marks is work of its own.
import { spawnSync } from 'node:child_process';
import type { BenchBpffs } from './bpffs.js';
import { summarize, type Summary } from './stats.js';

export interface Phase {
  name: string;
  ms: Summary;
}

const LINE = /^timing: (.+?)\s+(-?[\d.]+) ms/;

/** Median duration of each phase; empty if the runner prints no marks. */
export function runPhases(runner: string, bpffs: BenchBpffs, runs: number): Phase[] {
  const byPhase = new Map<string, number[]>();
  for (let i = 0; i < runs; i++) {
    const dir = bpffs.freshDir();
    try {
      const r = spawnSync(process.execPath, [runner, '--bpffs', dir], {
        encoding: 'utf8',
        env: { ...process.env, BPF_PRELOAD_TIMING: '1' },
      });
      if (r.status !== 0) throw new Error(`runner with BPF_PRELOAD_TIMING=1 exited ${r.status}: ${r.stderr.trim()}`);
      for (const line of r.stderr.split('\n')) {
        const m = LINE.exec(line);
        if (!m) continue;
        if (!byPhase.has(m[1])) byPhase.set(m[1], []);
        byPhase.get(m[1])!.push(Number(m[2]));
      }
    } finally {
      bpffs.remove(dir);
    }
  }
  return [...byPhase].map(([name, xs]) => ({ name, ms: summarize(xs) }));
}
