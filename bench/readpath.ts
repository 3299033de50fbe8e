// Part 2: reading the iterator files against asking bpftool, with N programs
// and N maps loaded, for each N. Commands run as users run them (a process
// each, through the rusage helper); the in-process read shows the kernel's
// own share without any process start-up.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { measure } from './measure.js';
import { LoadedObjects } from './objects.js';
import { rotate, summarize, type Summary } from './stats.js';

export type Kind = 'progs' | 'maps';

export interface Method {
  id: string;
  kind: Kind;
  label: string;
  /** Whether this is one of ours (the iterator file) or bpftool. */
  iterator: boolean;
}

export const METHODS: Method[] = [
  { id: 'progs-cat', kind: 'progs', label: '`cat progs.debug`', iterator: true },
  { id: 'progs-read', kind: 'progs', label: 'progs.debug read in-process', iterator: true },
  { id: 'prog-show', kind: 'progs', label: '`bpftool prog show`', iterator: false },
  { id: 'prog-show-json', kind: 'progs', label: '`bpftool --json prog show`', iterator: false },
  { id: 'maps-cat', kind: 'maps', label: '`cat maps.debug`', iterator: true },
  { id: 'maps-read', kind: 'maps', label: 'maps.debug read in-process', iterator: true },
  { id: 'map-show', kind: 'maps', label: '`bpftool map show`', iterator: false },
  { id: 'map-show-json', kind: 'maps', label: '`bpftool --json map show`', iterator: false },
];

export interface SizeResult {
  /** Programs and maps the bench loaded, each. */
  n: number;
  /** Objects in the whole system at the time (lines the iterator files list). */
  seen: Record<Kind, number>;
  /** Time to load the N objects (added on top of the previous size). */
  loadMs: number;
  /** Milliseconds per method id. */
  times: Record<string, Summary>;
}

export interface ReadSetup {
  rusage: string;
  objectsHelper: string;
  /** A directory holding working progs.debug and maps.debug. */
  dir: string;
  sizes: number[];
  rounds: number;
}

function readTimed(path: string): { ms: number; text: string } {
  const t0 = process.hrtime.bigint();
  // Iterator files have no size and cannot seek: readFileSync reads to EOF.
  const text = readFileSync(path, 'utf8');
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, text };
}

const countRows = (text: string): number => text.split('\n').filter(Boolean).length - 1;

export async function runReadPath(s: ReadSetup, log: (msg: string) => void): Promise<SizeResult[]> {
  const file: Record<Kind, string> = { progs: join(s.dir, 'progs.debug'), maps: join(s.dir, 'maps.debug') };
  const run = (m: Method): number => {
    switch (m.id) {
      case 'progs-cat':
      case 'maps-cat':
        return measure(s.rusage, ['cat', file[m.kind]]).wallMs;
      case 'progs-read':
      case 'maps-read':
        return readTimed(file[m.kind]).ms;
      case 'prog-show':
        return measure(s.rusage, ['bpftool', 'prog', 'show']).wallMs;
      case 'prog-show-json':
        return measure(s.rusage, ['bpftool', '--json', 'prog', 'show']).wallMs;
      case 'map-show':
        return measure(s.rusage, ['bpftool', 'map', 'show']).wallMs;
      case 'map-show-json':
        return measure(s.rusage, ['bpftool', '--json', 'map', 'show']).wallMs;
    }
    throw new Error(`unknown method ${m.id}`);
  };

  const objects = LoadedObjects.start(s.objectsHelper);
  const results: SizeResult[] = [];
  try {
    for (const n of s.sizes) {
      const t0 = process.hrtime.bigint();
      await objects.grow(n);
      const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const progs = readTimed(file.progs).text;
      const maps = readTimed(file.maps).text;
      const ours = (text: string, prefix: string) => (text.match(new RegExp(`^ *\\d+ ${prefix}\\d+ `, 'gm')) ?? []).length;
      if (ours(progs, 'bench_p') !== n || ours(maps, 'bench_m') !== n) {
        throw new Error(`after loading ${n} of each, the iterator files list ${ours(progs, 'bench_p')} programs and ${ours(maps, 'bench_m')} maps of ours`);
      }
      log(`read path: ${n} programs and maps loaded in ${(loadMs / 1000).toFixed(1)} s; measuring`);
      const samples: Record<string, number[]> = Object.fromEntries(METHODS.map((m) => [m.id, []]));
      // One unrecorded warm-up round, then interleaved measured rounds.
      for (let round = 0; round <= s.rounds; round++) {
        for (const m of rotate(METHODS, round)) {
          const ms = run(m);
          if (round > 0) samples[m.id].push(ms);
        }
      }
      results.push({
        n,
        seen: { progs: countRows(progs), maps: countRows(maps) },
        loadMs,
        times: Object.fromEntries(METHODS.map((m) => [m.id, summarize(samples[m.id])])),
      });
    }
  } finally {
    await objects.stop();
  }
  return results;
}
