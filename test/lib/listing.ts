// Parsing the text of progs.debug and maps.debug, for comparing it with what
// bpftool reports. The files are printf output with fixed formats:
//   progs.debug  "%4u %-16s %s %s\n"            id, name, attach function, target program
//   maps.debug   "%4u %-16s  %10d   %10lld\n"   id, name, max_entries, cur_entries (6.6+)
//                "%4u %-16s%6d\n"               id, name, max_entries (older kernels)
// Names never contain spaces, but may be empty, and widths are minimums (ids
// past 9999, program names past 16 characters), so rows are split by the
// format rather than by whitespace. Empty attached columns leave trailing spaces.

import * as names from '../../src/preload/names.js';

/** The header lines, without their newline (the parsers split on it). */
export const PROGS_HEADER = names.PROGS_HEADER.slice(0, -1);
export const MAPS_HEADER_WITH_COUNT = names.MAPS_HEADER_WITH_COUNT.slice(0, -1);
export const MAPS_HEADER_COMPAT = names.MAPS_HEADER_COMPAT.slice(0, -1);

/** A file that works starts with its header: maps.debug with either format's. */
export const startsLikeMaps = (text: string) => text.startsWith(names.MAPS_HEADER_WITH_COUNT) || text.startsWith(names.MAPS_HEADER_COMPAT);

export interface ProgRow {
  id: number;
  /** Full BTF name, or the kernel's 15-character name when the program has no BTF. */
  name: string;
  /** aux->attach_func_name: the traced function, tracepoint or iterator target; "" if none. */
  attachFunc: string;
  /** 15-character name of the program this one was loaded to trace or replace; "" if none. */
  attachProg: string;
  /** The line as printed, without its newline. */
  raw: string;
}

export interface MapRow {
  id: number;
  name: string;
  /** As the kernel stores it (unsigned); the file prints it with %d. */
  maxEntries: number;
  /** Element count; only in the format with the cur_entries column. */
  curEntries?: number;
  raw: string;
}

export interface MapsListing {
  /** Whether the file has the cur_entries column (kernels with bpf_map_sum_elem_count). */
  withCount: boolean;
  rows: MapRow[];
}

export class ListingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ListingError';
  }
}

/** Lines of a file's text; the final newline ends the last line, it does not start another. */
function lines(text: string): string[] {
  if (text === '') return [];
  const all = text.split('\n');
  if (all[all.length - 1] === '') all.pop();
  return all;
}

interface Split {
  id: number;
  name: string;
  /** What follows the name field (its padding included in the field). */
  rest: string;
}

// "%4u %-16s" at the start of a row: the id, one space, then the name
// left-aligned in a field of at least 16 characters.
function splitIdName(line: string): Split | null {
  const m = /^ *(\d+) (.*)$/s.exec(line);
  if (!m) return null;
  const after = m[2];
  const name = /^[^ ]*/.exec(after)![0];
  const width = Math.max(16, name.length);
  if (after.length < width || after.slice(name.length, width).trim() !== '') return null;
  return { id: Number(m[1]), name, rest: after.slice(width) };
}

function bad(file: string, n: number, line: string): ListingError {
  return new ListingError(`${file} line ${n + 1} does not match the format: ${JSON.stringify(line)}`);
}

/** Rows of progs.debug. Throws a ListingError on a missing header or a malformed row. */
export function parseProgs(text: string): ProgRow[] {
  const ls = lines(text);
  if (ls[0] !== PROGS_HEADER) throw new ListingError(`progs.debug: unexpected header ${JSON.stringify(ls[0] ?? '')}`);
  return ls.slice(1).map((raw, i) => {
    const s = splitIdName(raw);
    // " %s %s": a space, the attach function (no spaces in it), a space, the target.
    if (!s || !s.rest.startsWith(' ')) throw bad('progs.debug', i + 1, raw);
    const cols = s.rest.slice(1);
    const space = cols.indexOf(' ');
    if (space < 0) throw bad('progs.debug', i + 1, raw);
    return { id: s.id, name: s.name, attachFunc: cols.slice(0, space), attachProg: cols.slice(space + 1), raw };
  });
}

/** Which format a maps.debug text has, from its header; null if neither. */
export function mapsFormat(text: string): 'with-count' | 'compat' | null {
  const first = lines(text)[0];
  if (first === MAPS_HEADER_WITH_COUNT) return 'with-count';
  if (first === MAPS_HEADER_COMPAT) return 'compat';
  return null;
}

/** Rows of maps.debug in either format. Throws a ListingError on an unknown header or a malformed row. */
export function parseMaps(text: string): MapsListing {
  const ls = lines(text);
  const format = mapsFormat(text);
  if (!format) throw new ListingError(`maps.debug: unexpected header ${JSON.stringify(ls[0] ?? '')}`);
  const withCount = format === 'with-count';
  // With count: "  %10d   %10lld"; compat: "%6d" right after the name field.
  const numbers = withCount ? /^  +(-?\d+) {2} +(-?\d+)$/ : /^ *(-?\d+)$/;
  const rows = ls.slice(1).map((raw, i): MapRow => {
    const s = splitIdName(raw);
    const m = s && numbers.exec(s.rest);
    if (!s || !m) throw bad('maps.debug', i + 1, raw);
    // %d shows max_entries above 2^31-1 as negative; bpftool shows it unsigned.
    const row: MapRow = { id: s.id, name: s.name, maxEntries: Number(m[1]) >>> 0, raw };
    if (withCount) row.curEntries = Number(m[2]);
    return row;
  });
  return { withCount, rows };
}
