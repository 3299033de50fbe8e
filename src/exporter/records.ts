// The exporter iterators' lines (format: bpf/exporter.bpf.c's header),
// parsed into records. Lines that do not parse are counted, not guessed at.
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

export interface MapRecord {
  id: number;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** Absent where the kernel keeps no count for the map (or has no kfunc). */
  entries?: number;
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

export interface Records {
  progs: ProgRecord[];
  maps: MapRecord[];
  links: LinkRecord[];
  holders: HolderRecord[];
  /** Lines that did not parse (a bug, or a kernel printing what we do not expect). */
  malformed: number;
}

const HOLDER_KINDS: Record<string, HolderKind> = { p: 'prog', m: 'map', l: 'link' };

const num = (s: string | undefined): number => (s !== undefined && /^\d+$/.test(s) ? Number(s) : NaN);

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

/** Parses the concatenated output of the iterators. */
export function parseRecords(text: string): Records {
  const r: Records = { progs: [], maps: [], links: [], holders: [], malformed: 0 };
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    if (line === '') continue;
    if (!parseLine(line.split('\t'), r)) r.malformed++;
  }
  return r;
}

function parseLine(f: string[], r: Records): boolean {
  switch (f[0]) {
    case 'p': {
      if (f.length !== 10) return false;
      const rec: ProgRecord = {
        id: num(f[1]),
        type: num(f[2]),
        tag: f[3],
        insns: num(f[4]),
        jitedBytes: num(f[5]),
        pages: num(f[7]),
        name: f[8],
        attached: f[9].trimEnd(),
      };
      if (f[6] !== '-') rec.verifiedInsns = num(f[6]);
      if (!allNumbers(rec.id, rec.type, rec.insns, rec.jitedBytes, rec.pages, rec.verifiedInsns ?? 0)) return false;
      r.progs.push(rec);
      return true;
    }
    case 'm': {
      if (f.length !== 10) return false;
      const rec: MapRecord = {
        id: num(f[1]),
        type: num(f[2]),
        keySize: num(f[3]),
        valueSize: num(f[4]),
        maxEntries: num(f[5]),
        flags: num(f[6]),
        name: f[9],
      };
      if (f[7] === '1') rec.entries = num(f[8]);
      else if (f[7] !== '0') return false;
      if (!allNumbers(rec.id, rec.type, rec.keySize, rec.valueSize, rec.maxEntries, rec.flags, rec.entries ?? 0)) return false;
      r.maps.push(rec);
      return true;
    }
    case 'l': {
      if (f.length !== 5) return false;
      const rec: LinkRecord = { id: num(f[1]), type: num(f[2]), progId: num(f[3]), attached: f[4].trimEnd() };
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

const allNumbers = (...values: number[]): boolean => values.every((v) => Number.isSafeInteger(v));
