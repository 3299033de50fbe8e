// One scrape's data: one read of each iterator, and, where run-time
// statistics are on, each program's counters: from the iterator on kernels
// with bpf_map_lookup_percpu_elem (5.19+), from bpf_prog_info before. Maps'
// memlock bytes come from fdinfo, which needs an fd per map, so they are
// read once per map and then refreshed a slice of the maps per scrape (see
// docs/fleet.md, "Where the numbers come from").
import { readFileSync } from 'node:fs';
import { ErrnoError, mapMemlockById, progRunStatsById } from '../libbpf/index.js';
import type { ExporterIterators } from './iterators.js';
import { PROG, RecordParser, type MapRecord, type ProgRecord, type Records } from './records.js';

/** 1 while the sysctl has turned statistics on for everyone (our BPF_ENABLE_STATS fd does not show here). */
export const STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

/** Maps whose memlock bytes a scrape reads again, besides those seen for the first time. */
export const MEMLOCK_REFRESH_PER_SCRAPE = 256;

export interface Snapshot extends Records {
  /** Whether run counters are reported at all (every program row has them then). */
  statsOn: boolean;
  /** Statistics are on (the sysctl) but opening programs by id was refused (no CAP_SYS_ADMIN): no run counters. */
  statsDenied: boolean;
  /** Memlock bytes by map record; null where opening maps by id is refused (no CAP_SYS_ADMIN). */
  mapMemlock: WeakMap<MapRecord, number> | null;
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

const refused = (err: unknown): boolean => err instanceof ErrnoError && (err.code === 'EPERM' || err.code === 'EACCES');

/** What the exporter keeps between scrapes: the iterators, the parsed records, the maps' memlock bytes. */
export class Collector {
  private readonly parser = new RecordParser();
  /** Memlock bytes by map record: a record is the same object while its map lives unchanged. */
  private memlock = new WeakMap<MapRecord, number>();
  /** Where the next scrape's memlock refresh starts, as an index into the maps seen. */
  private refreshAt = 0;

  constructor(
    private readonly iters: ExporterIterators,
    private readonly holdingStatsFd: boolean,
  ) {}

  /**
   * Reads everything once. A program that is unloaded between the iterator's
   * read and its counters (kernels before 5.19) is left out altogether, so
   * every series of a scrape describes the same set of programs.
   */
  collect(): Snapshot {
    const started = process.hrtime.bigint();
    const it = this.iters;
    const records = this.parser.parse({ progs: it.readProgs(), maps: it.readMaps(), lines: it.readLinks() + it.readHolders() });
    let statsOn = this.holdingStatsFd || sysctlStatsOn();
    let statsDenied = false;
    if (statsOn) {
      try {
        fillRunStats(records);
      } catch (err) {
        if (!refused(err)) throw err;
        statsOn = false;
        statsDenied = true;
      }
    }
    const mapMemlock = this.readMemlock(records);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { ...records, statsOn, statsDenied, mapMemlock, withHolders: it.withHolders, seconds };
  }

  /**
   * fdinfo's memlock of every map: read for maps seen the first time, and
   * again for MEMLOCK_REFRESH_PER_SCRAPE others in turn (the value changes
   * only for maps that allocate as they fill, such as hash maps made with
   * BPF_F_NO_PREALLOC). A map gone before its fd is opened is left out.
   */
  private readMemlock(records: Records): WeakMap<MapRecord, number> | null {
    const maps = records.maps.records;
    const memlock = this.memlock;
    try {
      for (const record of maps) if (!memlock.has(record)) this.readOne(record);
      const refresh = Math.min(MEMLOCK_REFRESH_PER_SCRAPE, maps.length);
      for (let i = 0; i < refresh; i++) this.readOne(maps[(this.refreshAt + i) % maps.length]);
      this.refreshAt = maps.length === 0 ? 0 : (this.refreshAt + refresh) % maps.length;
    } catch (err) {
      if (!refused(err)) throw err;
      this.memlock = new WeakMap();
      return null;
    }
    return memlock;
  }

  /** One map's memlock bytes, kept with its record; nothing for a map gone meanwhile. */
  private readOne(record: MapRecord): void {
    const bytes = mapMemlockById(record.id);
    if (bytes === null) this.memlock.delete(record);
    else this.memlock.set(record, bytes);
  }
}

/**
 * Kernels where the iterator cannot read run statistics (before 5.19):
 * bpf_prog_info's sums, written into the program's record as the iterator
 * would have. A program unloaded between the iterator's read and its
 * counters is left out altogether, so every series of a scrape describes
 * the same set of programs.
 */
function fillRunStats(records: Records): void {
  const set = records.progs;
  const f = PROG.offsets;
  if (set.at.every((o) => set.view.getUint32(o + f.has_run_stats, true) !== 0)) return;
  const progs: ProgRecord[] = [];
  const at: number[] = [];
  for (let i = 0; i < set.records.length; i++) {
    const o = set.at[i];
    if (set.view.getUint32(o + f.has_run_stats, true) === 0) {
      const s = progRunStatsById(set.records[i].id);
      if (!s) continue;
      set.view.setUint32(o + f.has_run_stats, 1, true);
      set.view.setBigUint64(o + f.runs, s.runCount, true);
      set.view.setBigUint64(o + f.run_ns, s.runTimeNs, true);
      set.view.setBigUint64(o + f.misses, s.recursionMisses, true);
    }
    progs.push(set.records[i]);
    at.push(o);
  }
  // New arrays: the parser keeps the ones it made for the next scrape.
  records.progs = { ...set, records: progs, at };
}
