// bpftool's view of the kernel's programs and maps, and how a progs.debug /
// maps.debug listing is compared with it. One copy for the tap selftest
// (test/selftest.test.ts) and the boot test's guests (test/boot/guest/check.ts,
// bundled for them): each returns the disagreements as lines, empty when the
// listing is right, and the caller asserts that.
import { spawnSync } from 'node:child_process';
import type { MapRow, ProgRow } from './listing.js';

export interface BpftoolProg {
  id: number;
  name?: string;
  type: string;
  map_ids?: number[];
  /** Processes holding an fd of it. */
  pids?: { pid: number; comm: string }[];
}

export interface BpftoolMap {
  id: number;
  name?: string;
  type: string;
  max_entries: number;
}

export interface BpftoolLink {
  id: number;
  prog_id: number;
  pinned?: string[];
  pids?: { pid: number; comm: string }[];
}

export function bpftoolJson<T>(args: string[]): T {
  const r = spawnSync('bpftool', ['--json', ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`bpftool ${args.join(' ')}: ${(r.stderr ?? '').trim() || r.error?.message || `exit ${r.status}`}`);
  return JSON.parse(r.stdout) as T;
}

export const bpftoolProgs = () => bpftoolJson<BpftoolProg[]>(['prog', 'show']);
export const bpftoolMaps = () => bpftoolJson<BpftoolMap[]>(['map', 'show']);

/**
 * The ids of a listing against bpftool snapshots taken just before and just
 * after reading it (other processes load and unload at any time, systemd
 * among them): an id that lived throughout is listed exactly once, an id that
 * came or went meanwhile at most once, and nothing is listed that bpftool
 * never saw.
 */
export function idProblems(what: string, listed: number[], before: { id: number }[], after: { id: number }[]): string[] {
  const problems: string[] = [];
  const count = new Map<number, number>();
  for (const id of listed) count.set(id, (count.get(id) ?? 0) + 1);
  const inAfter = new Set(after.map((o) => o.id));
  const ever = new Set([...before, ...after].map((o) => o.id));
  for (const { id } of before) {
    if (inAfter.has(id) && count.get(id) !== 1) problems.push(`${what} id ${id} is listed ${count.get(id) ?? 0} times`);
  }
  for (const [id, n] of count) {
    if (!ever.has(id)) problems.push(`${what} id ${id} is listed but bpftool never saw it`);
    else if (n !== 1 && !inAfter.has(id)) problems.push(`${what} id ${id} is listed ${n} times`);
  }
  return problems;
}

/**
 * Program rows whose name is not bpftool's. `shortNames`: also accept
 * bpftool showing the kernel's 15-character cut of a longer name (a bpftool
 * that cannot read the program's BTF name shows that).
 */
export function progNameProblems(rows: ProgRow[], tool: BpftoolProg[], shortNames = false): string[] {
  const byId = new Map(tool.map((p) => [p.id, p]));
  const problems: string[] = [];
  for (const row of rows) {
    if (!byId.has(row.id)) continue;
    const name = byId.get(row.id)!.name ?? '';
    const agrees = row.name === name || (shortNames && name.length >= 15 && row.name.startsWith(name));
    if (!agrees) problems.push(`prog ${row.id}: listed as ${JSON.stringify(row.name)}, bpftool says ${JSON.stringify(name)}`);
  }
  return problems;
}

/** Map rows whose name or max_entries is not bpftool's. */
export function mapRowProblems(rows: MapRow[], tool: BpftoolMap[]): string[] {
  const byId = new Map(tool.map((m) => [m.id, m]));
  const problems: string[] = [];
  for (const row of rows) {
    const m = byId.get(row.id);
    if (!m) continue;
    if (row.name !== (m.name ?? '')) problems.push(`map ${row.id}: listed as ${JSON.stringify(row.name)}, bpftool says ${JSON.stringify(m.name ?? '')}`);
    if (row.maxEntries !== m.max_entries) problems.push(`map ${row.id} ${row.name}: max_entries ${row.maxEntries}, bpftool says ${m.max_entries}`);
  }
  return problems;
}
