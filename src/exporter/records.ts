// What the exporter's iterators wrote (bpf/exporter.bpf.c), as records.
// Programs and maps come as binary records whose layouts the skeleton
// carries (struct exporter_prog, struct exporter_map): the numbers that move
// (run statistics, entries) are read where they lie, in the iterator's
// buffer, when the metrics are written. Everything after them never changes
// while the object lives (but a program's attach strings), so the parser
// compares those bytes with the same object's bytes of the last scrape and
// decodes a record only when they differ: at 10,000 programs a scrape makes
// no object for a program it has seen. Links and holders, few, are lines.
// A record or line that does not parse is counted, not guessed at.
import { endianness } from 'node:os';
import { ExporterRecords } from '../../skel/exporter.skel.js';

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

export interface MapRecord {
  id: number;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
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

/**
 * One iterator's binary records: `records[i]` decoded from the record at
 * `at[i]` of `bytes`, whose moving fields are read from there.
 */
export interface RecordSet<T> {
  readonly bytes: Buffer;
  readonly view: DataView;
  readonly records: T[];
  readonly at: number[];
}

export interface Records {
  progs: RecordSet<ProgRecord>;
  maps: RecordSet<MapRecord>;
  links: LinkRecord[];
  holders: HolderRecord[];
  /** Records and lines that did not parse (a bug, or a kernel writing what we do not expect). */
  malformed: number;
}

export const PROG = ExporterRecords.exporter_prog;
export const MAP = ExporterRecords.exporter_map;
/** Where the part that does not change while the object lives starts. */
const PROG_STATIC = PROG.offsets.type;
const MAP_STATIC = MAP.offsets.type;

/** A u64 field: a number while exact (all but the largest counters), else a bigint. */
export function u64At(view: DataView, offset: number): number | bigint {
  const lo = view.getUint32(offset, true);
  const hi = view.getUint32(offset + 4, true);
  return hi < 0x200000 ? hi * 0x100000000 + lo : view.getBigUint64(offset, true);
}

/** An s64 field: a number while exact, else a bigint. */
export function i64At(view: DataView, offset: number): number | bigint {
  const lo = view.getUint32(offset, true);
  const hi = view.getInt32(offset + 4, true);
  return hi >= -0x200000 && hi < 0x200000 ? hi * 0x100000000 + lo : view.getBigInt64(offset, true);
}

/** A program's record's length: the struct and its three strings. */
function progLength(view: DataView, o: number): number {
  const f = PROG.offsets;
  return PROG.size + view.getUint16(o + f.name_len, true) + view.getUint16(o + f.attach_func_len, true) + view.getUint16(o + f.dst_name_len, true);
}

function decodeProg(bytes: Buffer, view: DataView, o: number): ProgRecord {
  const r = PROG.decode(bytes, view, o);
  let at = o + PROG.size;
  const text = (len: number) => bytes.toString('latin1', at, (at += len));
  const name = text(r.name_len);
  const attach = text(r.attach_func_len);
  const dst = text(r.dst_name_len);
  const rec: ProgRecord = {
    id: r.id,
    type: r.type,
    tag: Buffer.from(r.tag).toString('hex'),
    insns: r.len,
    jitedBytes: r.jited_len,
    pages: r.pages,
    name: name,
    // As progs.debug's column: the attach function, then the program it was loaded for.
    attached: dst ? `${attach} ${dst}` : attach,
  };
  if (r.has_verified_insns) rec.verifiedInsns = r.verified_insns;
  return rec;
}

function decodeMap(bytes: Buffer, view: DataView, o: number): MapRecord {
  const r = MAP.decode(bytes, view, o);
  return { id: r.id, type: r.type, keySize: r.key_size, valueSize: r.value_size, maxEntries: r.max_entries, flags: r.map_flags, name: r.name };
}

/**
 * One scrape's parse of one iterator. A parser has two and uses them in
 * turn, refilling the arrays in place: the last scrape's stays intact for
 * the comparison (and for metrics.ts's), and a steady exporter allocates no
 * new arrays of 10,000 entries each scrape for V8 to promote and collect.
 */
interface Slot<T> {
  set: RecordSet<T>;
  /** Each record's end in set.bytes. */
  ends: number[];
  /** Index by id, made the first time the next scrape finds a record not where the order says. */
  byId?: Map<number, number>;
}

const EMPTY = Buffer.alloc(0);

/** Whether two views share memory. */
const overlap = (a: Uint8Array, b: Uint8Array): boolean =>
  a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
const emptySlot = <T>(): Slot<T> => ({ set: { bytes: EMPTY, view: new DataView(EMPTY.buffer, 0, 0), records: [], at: [] }, ends: [] });

/** Parses one iterator's records, reusing the last scrape's record of an object whose bytes are unchanged. */
class BinaryParser<T extends { id: number }> {
  private readonly slots: [Slot<T>, Slot<T>] = [emptySlot(), emptySlot()];
  private turn = 0;

  constructor(
    private readonly size: number,
    private readonly staticStart: number,
    private readonly length: (view: DataView, o: number) => number,
    private readonly decode: (bytes: Buffer, view: DataView, o: number) => T,
  ) {}

  /** The records of `bytes`; counts into `bad` a tail that is not whole records. */
  parse(bytes: Buffer, bad: { malformed: number }): RecordSet<T> {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const kept = this.slots[this.turn ^ 1];
    // Bytes read into the buffer that held the last scrape's (a scrape that
    // failed between its reads and its parse, so the reader turned twice)
    // leave nothing to compare with.
    const last = kept.set.records.length > 0 && overlap(kept.set.bytes, bytes) ? emptySlot<T>() : kept;
    const slot = this.slots[this.turn];
    this.turn ^= 1;
    const { records, at } = slot.set;
    const ends = slot.ends;
    slot.byId = undefined;
    // Objects come in id order scrape after scrape: where the last scrape's
    // record of this id was, counted from here, is the first guess.
    let shift = 0;
    let n = 0;
    let o = 0;
    while (o < bytes.length) {
      if (bytes.length - o < this.size) {
        bad.malformed++;
        break;
      }
      const end = o + this.length(view, o);
      if (end > bytes.length) {
        bad.malformed++;
        break;
      }
      const id = view.getUint32(o, true);
      let j = n + shift;
      if (last.set.records[j]?.id !== id) {
        last.byId ??= new Map(last.set.records.map((r, k) => [r.id, k]));
        j = last.byId.get(id) ?? -1;
        if (j >= 0) shift = j - n;
      }
      const same = j >= 0 && bytes.compare(last.set.bytes, last.set.at[j] + this.staticStart, last.ends[j], o + this.staticStart, end) === 0;
      records[n] = same ? last.set.records[j] : this.decode(bytes, view, o);
      at[n] = o;
      ends[n++] = end;
      o = end;
    }
    records.length = at.length = ends.length = n;
    slot.set = { bytes, view, records, at };
    return slot.set;
  }
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

/** What the iterators wrote in one scrape. */
export interface IteratorOutput {
  progs: Buffer;
  maps: Buffer;
  /** The links' and holders' lines. */
  lines: string;
}

/** Parses the iterators' output scrape after scrape, keeping the records of the objects still there. */
export class RecordParser {
  private readonly progs = new BinaryParser<ProgRecord>(PROG.size, PROG_STATIC, progLength, decodeProg);
  private readonly maps = new BinaryParser<MapRecord>(MAP.size, MAP_STATIC, () => MAP.size, decodeMap);

  parse(out: IteratorOutput): Records {
    const bad = { malformed: 0 };
    const progs = this.progs.parse(out.progs, bad);
    const maps = this.maps.parse(out.maps, bad);
    const r: Records = { progs, maps, links: [], holders: [], malformed: bad.malformed };
    for (const line of out.lines.split('\n')) if (line !== '' && !parseLine(line.split('\t'), r)) r.malformed++;
    return r;
  }
}

/** A link's or a holder's line. */
function parseLine(f: string[], r: Records): boolean {
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
