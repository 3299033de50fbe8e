// One scrape's data: one read of each iterator, and, where run-time
// statistics are on, each program's counters from bpf_prog_info (the
// iterator cannot read them: see docs/fleet.md, "Where the numbers come from").
import { readFileSync } from 'node:fs';
import { ErrnoError, progRunStatsById, type ProgRunStats } from '../libbpf/index.js';
import type { ExporterIterators } from './iterators.js';
import { parseRecords, type Records } from './records.js';

/** 1 while the sysctl has turned statistics on for everyone (our BPF_ENABLE_STATS fd does not show here). */
export const STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

export interface Snapshot extends Records {
  /** Run counters by program id; empty when statistics are off. */
  runStats: Map<number, ProgRunStats>;
  /** Whether run counters are reported at all. */
  statsOn: boolean;
  /** Statistics are on (the sysctl) but opening programs by id was refused (no CAP_SYS_ADMIN): no run counters. */
  statsDenied: boolean;
  /** Whether holders were asked for (--holders). */
  withHolders: boolean;
  /** Seconds the collection took. */
  seconds: number;
}

export function sysctlStatsOn(): boolean {
  try {
    return readFileSync(STATS_SYSCTL, 'latin1').trim() === '1';
  } catch {
    return false;
  }
}

/**
 * Reads everything once. A program that is unloaded between the iterator's
 * read and its counters is left out altogether, so every series of a scrape
 * describes the same set of programs.
 */
export function collect(iters: ExporterIterators, holdingStatsFd: boolean): Snapshot {
  const started = process.hrtime.bigint();
  const text = iters.readProgs() + iters.readMaps() + iters.readLinks() + iters.readHolders();
  const records = parseRecords(text);
  let statsOn = holdingStatsFd || sysctlStatsOn();
  let statsDenied = false;
  const runStats = new Map<number, ProgRunStats>();
  if (statsOn) {
    try {
      const live = records.progs.filter((p) => {
        const s = progRunStatsById(p.id);
        if (s) runStats.set(p.id, s);
        return s !== null;
      });
      records.progs = live;
    } catch (err) {
      if (!(err instanceof ErrnoError && (err.code === 'EPERM' || err.code === 'EACCES'))) throw err;
      runStats.clear();
      statsOn = false;
      statsDenied = true;
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { ...records, runStats, statsOn, statsDenied, withHolders: iters.withHolders, seconds };
}
