// The exporter iterators' lines (format: bpf/exporter.bpf.c's header),
// parsed into records. A program's or map's line has what changes (run
// statistics, entries) right after its id; the rest never changes while the
// object lives, except the attach column of a program the kernel clears on
// attach. So the parser keeps each record by id with the text it came from,
// and parses again only a line whose rest differs: at 10,000 programs a
// scrape parses the numbers that move and compares one string per object.
// Lines that do not parse are counted, not guessed at.
import { endianness } from 'node:os';

export interface ProgRecord {
  id: number;
  type: number;
  tag: string;
  /** Translated (xlated) instructions. */
  insns: number;
  jitedBytes: number;
  /** Absent before 5.16. */
  verifiedInsns?: number;
  /** Pages charged to memlock (prog->pages). */
  pages: number;
  /** Full BTF name, as progs.debug prints it. */
  name: string;
  /** progs.debug's "attached" column without trailing blanks ('' if none). */
  attached: string;
}

/** Run-time statistics summed over CPUs, as decimal strings (u64 counters: printed, never computed with). */
export interface RunCounters {
  runs: string;
  runTimeNs: string;
  recursionMisses: string;
}

export interface ProgRow {
  /** The same object from scrape to scrape while the program's line does not change. */
  record: ProgRecord;
  /** The iterator's sums where it can read them (5.19+). Moving only while statistics are on. */
  run?: RunCounters;
}

export interface MapRecord {
  id: number;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

export interface MapRow {
  record: MapRecord;
  /** Absent where the kernel keeps no count for the map (or has no kfunc). */
  entries?: string;
}

export interface LinkRecord {
  id: number;
  type: number;
  progId: number;
  attached: string;
}

export type HolderKind = 'prog' | 'map' | 'link';

export interface HolderRecord {
  kind: HolderKind;
  id: number;
  pid: number;
  comm: string;
}

export interface Records {
  progs: ProgRow[];
  maps: MapRow[];
  links: LinkRecord[];
  holders: HolderRecord[];
  /** Lines that did not parse (a bug, or a kernel printing what we do not expect). */
  malformed: number;
}

const HOLDER_KINDS: Record<string, HolderKind> = { p: 'prog', m: 'map', l: 'link' };

const DECIMAL = /^\d+$/;
const num = (s: string | undefined): number => (s !== undefined && DECIMAL.test(s) ? Number(s) : NaN);
const allNumbers = (...values: number[]): boolean => values.every((v) => Number.isSafeInteger(v));

/** comm as the iterator prints it: 16 bytes as two hex u64s in this machine's byte order. */
function decodeComm(hex: string): string {
  if (!/^[0-9a-f]{32}$/.test(hex)) return '';
  const buf = Buffer.alloc(16);
  const le = endianness() === 'LE';
  for (let i = 0; i < 2; i++) {
    const v = BigInt(`0x${hex.slice(16 * i, 16 * i + 16)}`);
    if (le) buf.writeBigUInt64LE(v, 8 * i);
    else buf.writeBigUInt64BE(v, 8 * i);
  }
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? 16 : end);
}

/** The index of the n-th tab from `from` on, or -1. */
function nthTab(line: string, from: number, n: number): number {
  let at = from - 1;
  for (let i = 0; i < n; i++) {
    at = line.indexOf('\t', at + 1);
    if (at < 0) return -1;
  }
  return at;
}

/**
 * A flat copy of a string of latin1 characters (all the iterators print), for
 * strings kept across scrapes. V8 keeps a slice as a view of the whole string
 * (a kept slice would keep that scrape's megabytes alive) and a concatenation
 * as a tree it walks again each time the string is copied.
 */
export const detach = (s: string): string => Buffer.from(s, 'latin1').toString('latin1');

interface Kept<T> {
  /** The line's text after its moving fields. */
  rest: string;
  record: T;
}

/**
 * Parses the iterators' output scrape after scrape, keeping the records of
 * the objects still there.
 */
export class RecordParser {
  private progs = new Map<number, Kept<ProgRecord>>();
  private maps = new Map<number, Kept<MapRecord>>();

  /** Parses the concatenated output of the iterators. */
  parse(text: string): Records {
    const r: Records = { progs: [], maps: [], links: [], holders: [], malformed: 0 };
    const progs = new Map<number, Kept<ProgRecord>>();
    const maps = new Map<number, Kept<MapRecord>>();
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      const line = text.slice(start, end);
      start = end + 1;
      if (line === '') continue;
      let ok: boolean;
      switch (line[0]) {
        case 'p':
          ok = this.prog(line, r, progs);
          break;
        case 'm':
          ok = this.map(line, r, maps);
          break;
        default:
          ok = parseOther(line.split('\t'), r);
      }
      if (!ok) r.malformed++;
    }
    // Objects gone since the last scrape are forgotten with it.
    this.progs = progs;
    this.maps = maps;
    return r;
  }

  // p id runs run_ns misses | type tag len jited_len pages verified name attached
  private prog(line: string, r: Records, seen: Map<number, Kept<ProgRecord>>): boolean {
    const split = splitLine(line, 3);
    if (!split) return false;
    const [runs, runTimeNs, recursionMisses] = split.moving.split('\t');
    let run: RunCounters | undefined;
    if (runs !== '-' || runTimeNs !== '-' || recursionMisses !== '-') {
      if (!DECIMAL.test(runs) || !DECIMAL.test(runTimeNs) || !DECIMAL.test(recursionMisses)) return false;
      run = { runs: runs, runTimeNs: runTimeNs, recursionMisses: recursionMisses };
    }
    const record = keep(this.progs, seen, split, parseProgRest);
    if (!record) return false;
    r.progs.push(run ? { record, run } : { record });
    return true;
  }

  // m id entries | type key_size value_size max_entries flags name
  private map(line: string, r: Records, seen: Map<number, Kept<MapRecord>>): boolean {
    const split = splitLine(line, 1);
    if (!split) return false;
    const entries = split.moving;
    if (entries !== '-' && !DECIMAL.test(entries)) return false;
    const record = keep(this.maps, seen, split, parseMapRest);
    if (!record) return false;
    r.maps.push(entries === '-' ? { record } : { record, entries });
    return true;
  }
}

interface SplitLine {
  id: number;
  /** The fields after the id that change, tab-separated. */
  moving: string;
  /** The rest of the line. */
  rest: string;
}

/** "K\tID\t" then `moving` tab-separated fields, then the rest; null if the line is shorter. */
function splitLine(line: string, moving: number): SplitLine | null {
  const idEnd = nthTab(line, 2, 1);
  if (line[1] !== '\t' || idEnd < 0) return null;
  const restStart = nthTab(line, idEnd + 1, moving) + 1;
  if (restStart <= 0) return null;
  return { id: num(line.slice(2, idEnd)), moving: line.slice(idEnd + 1, restStart - 1), rest: line.slice(restStart) };
}

/** The record of the last scrape if the line's rest is the same, else the rest parsed anew (null if it does not parse). */
function keep<T>(last: Map<number, Kept<T>>, seen: Map<number, Kept<T>>, line: SplitLine, parse: (id: number, rest: string) => T | null): T | null {
  let kept = last.get(line.id);
  if (kept?.rest !== line.rest) {
    const rest = detach(line.rest);
    const record = parse(line.id, rest);
    if (!record) return null;
    kept = { rest, record };
  }
  seen.set(line.id, kept);
  return kept.record;
}

function parseProgRest(id: number, rest: string): ProgRecord | null {
  const f = rest.split('\t');
  if (f.length !== 8) return null;
  const rec: ProgRecord = {
    id,
    type: num(f[0]),
    tag: f[1],
    insns: num(f[2]),
    jitedBytes: num(f[3]),
    pages: num(f[4]),
    name: f[6],
    attached: f[7].trimEnd(),
  };
  if (f[5] !== '-') rec.verifiedInsns = num(f[5]);
  if (!/^[0-9a-f]{16}$/.test(rec.tag)) return null;
  return allNumbers(rec.id, rec.type, rec.insns, rec.jitedBytes, rec.pages, rec.verifiedInsns ?? 0) ? rec : null;
}

function parseMapRest(id: number, rest: string): MapRecord | null {
  const f = rest.split('\t');
  if (f.length !== 6) return null;
  const rec: MapRecord = { id, type: num(f[0]), keySize: num(f[1]), valueSize: num(f[2]), maxEntries: num(f[3]), flags: num(f[4]), name: f[5] };
  return allNumbers(rec.id, rec.type, rec.keySize, rec.valueSize, rec.maxEntries, rec.flags) ? rec : null;
}

/** Links and holders: few, parsed whole every scrape. */
function parseOther(f: string[], r: Records): boolean {
  switch (f[0]) {
    case 'l': {
      // l id type prog_id prog_name attached
      if (f.length !== 6) return false;
      const rec: LinkRecord = { id: num(f[1]), type: num(f[2]), progId: num(f[3]), attached: f[5].trimEnd() };
      if (!allNumbers(rec.id, rec.type, rec.progId)) return false;
      r.links.push(rec);
      return true;
    }
    case 'h': {
      const kind = HOLDER_KINDS[f[1]];
      if (f.length !== 5 || !kind) return false;
      const rec: HolderRecord = { kind, id: num(f[2]), pid: num(f[3]), comm: decodeComm(f[4]) };
      if (!allNumbers(rec.id, rec.pid)) return false;
      r.holders.push(rec);
      return true;
    }
    default:
      return false;
  }
}
