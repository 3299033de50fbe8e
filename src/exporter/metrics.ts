// A snapshot as the Prometheus text exposition format (version 0.0.4) or
// OpenMetrics 1.0.0: every family with HELP and TYPE (and UNIT in
// OpenMetrics), names and units by Prometheus's conventions (base units,
// _total on counters, _info on info series, one `id` label joining every
// object's series to its info series). Written a family at a time, so the
// whole body (5 MB at 10,000 programs and maps) is never one string. The
// lines that cannot change while a program or map lives are rendered once
// per record (records.ts keeps the same record object while its line is
// unchanged); a scrape renders only the numbers that move.
import { linkTypeName, mapTypeName, pageSize, progTypeName } from '../libbpf/index.js';
import { detach, type HolderKind, type MapRecord, type ProgRecord } from './records.js';
import type { Snapshot } from './collect.js';

export type Format = 'text' | 'openmetrics';

export const CONTENT_TYPE: Record<Format, string> = {
  text: 'text/plain; version=0.0.4; charset=utf-8',
  openmetrics: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
};

type Kind = 'gauge' | 'counter' | 'info';

interface Family {
  /** The family's name without _total (counters) or _info (info). */
  name: string;
  kind: Kind;
  help: string;
  /** Base unit, the name's last word (OpenMetrics UNIT). */
  unit?: 'seconds' | 'bytes';
}

/** What the exporter counts about itself across scrapes. */
export interface ExporterCounters {
  scrapes: number;
  /** Scrapes that failed, and lines of iterator output that did not parse. */
  errors: number;
}

/** Label values escaped as both formats require. */
const NEEDS_ESCAPE = /[\\"\n]/;
const esc = (v: string): string => (NEEDS_ESCAPE.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v);
const escapeHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

/** The name its samples carry. */
function sampleName(f: Family): string {
  if (f.kind === 'counter') return `${f.name}_total`;
  if (f.kind === 'info') return `${f.name}_info`;
  return f.name;
}

/** HELP, TYPE (and UNIT) of a family. */
function header(f: Family, format: Format): string {
  // The text format names a family by its samples; OpenMetrics without the suffix.
  const name = format === 'openmetrics' ? f.name : sampleName(f);
  const type = f.kind === 'info' && format === 'text' ? 'gauge' : f.kind;
  const unit = f.unit && format === 'openmetrics' ? `# UNIT ${name} ${f.unit}\n` : '';
  return `# HELP ${name} ${escapeHelp(f.help)}\n# TYPE ${name} ${type}\n${unit}`;
}

const F = {
  progInfo: { name: 'bpf_prog', kind: 'info', help: 'A loaded BPF program: full BTF name, type, tag, and what it is attached to as progs.debug shows it.' },
  progRuns: { name: 'bpf_prog_runs', kind: 'counter', help: 'Times the program ran (run-time statistics on).' },
  progRunTime: { name: 'bpf_prog_run_time_seconds', kind: 'counter', unit: 'seconds', help: 'Time the program spent running (run-time statistics on).' },
  progMisses: { name: 'bpf_prog_recursion_misses', kind: 'counter', help: 'Times the program was not run because it was already running on that CPU.' },
  progVerified: { name: 'bpf_prog_verified_instructions', kind: 'gauge', help: 'Instructions the verifier processed to load the program (5.16+).' },
  progInsns: { name: 'bpf_prog_instructions', kind: 'gauge', help: 'Instructions of the program as the kernel runs it (translated).' },
  progJited: { name: 'bpf_prog_jited_bytes', kind: 'gauge', unit: 'bytes', help: 'Size of the program as JIT-compiled machine code.' },
  progMemlock: {
    name: 'bpf_prog_memlock_bytes',
    kind: 'gauge',
    unit: 'bytes',
    help: 'Memory the program is charged for (as bpftool and fdinfo show memlock).',
  },
  mapInfo: { name: 'bpf_map', kind: 'info', help: 'A BPF map: name, type, key and value size, flags.' },
  mapMaxEntries: { name: 'bpf_map_max_entries', kind: 'gauge', help: 'The most entries the map can hold.' },
  mapEntries: { name: 'bpf_map_entries', kind: 'gauge', help: 'Entries in the map now, where the kernel counts them (hash maps, 6.6+; absent elsewhere).' },
  mapMemlock: {
    name: 'bpf_map_memlock_bytes',
    kind: 'gauge',
    unit: 'bytes',
    help: 'Memory the map is charged for, as fdinfo shows memlock (its use now on 6.5+; refreshed a few hundred maps per scrape).',
  },
  linkInfo: { name: 'bpf_link', kind: 'info', help: "A BPF link: type, program id, and its program's attach target as progs.debug shows it." },
  scrapeDuration: { name: 'bpf_exporter_scrape_duration_seconds', kind: 'gauge', unit: 'seconds', help: 'How long collecting this scrape took.' },
  objects: { name: 'bpf_exporter_objects', kind: 'gauge', help: 'BPF objects seen in this scrape, by kind.' },
  statsEnabled: { name: 'bpf_exporter_run_stats_enabled', kind: 'gauge', help: 'Whether run counters are reported: 1 while run-time statistics are on.' },
  scrapes: { name: 'bpf_exporter_scrapes', kind: 'counter', help: 'Scrapes served since the exporter started.' },
  errors: { name: 'bpf_exporter_errors', kind: 'counter', help: 'Scrapes that failed and iterator lines that did not parse, since the exporter started.' },
} as const satisfies Record<string, Family>;

const HOLDERS: Record<HolderKind, Family> = {
  prog: { name: 'bpf_prog_holder', kind: 'info', help: 'A process holding a file descriptor of the BPF program id (1 per pid).' },
  map: { name: 'bpf_map_holder', kind: 'info', help: 'A process holding a file descriptor of the BPF map id (1 per pid).' },
  link: { name: 'bpf_link_holder', kind: 'info', help: 'A process holding a file descriptor of the BPF link id (1 per pid).' },
};

/** libbpf's type names, asked once per type (a native call each). */
function cachedNames(name: (type: number) => string): (type: number) => string {
  const cache = new Map<number, string>();
  return (type) => {
    let n = cache.get(type);
    if (n === undefined) cache.set(type, (n = esc(name(type))));
    return n;
  };
}
const progType = cachedNames(progTypeName);
const mapType = cachedNames(mapTypeName);
const linkType = cachedNames(linkTypeName);
let page: number | undefined;

const S = Object.fromEntries(Object.entries(F).map(([k, f]) => [k, sampleName(f)])) as Record<keyof typeof F, string>;

/** A program's sample lines that cannot change while its record is the same. */
interface ProgLines {
  /** `{id="N"} `: what its moving samples carry. */
  label: string;
  info: string;
  verified: string;
  insns: string;
  jited: string;
  memlock: string;
}

interface MapLines {
  label: string;
  info: string;
  maxEntries: string;
}

const progLines = new WeakMap<ProgRecord, ProgLines>();
const mapLines = new WeakMap<MapRecord, MapLines>();

function linesOfProg(p: ProgRecord): ProgLines {
  let l = progLines.get(p);
  if (l) return l;
  page ??= pageSize();
  const label = `{id="${p.id}"} `;
  l = {
    label: detach(label),
    info: detach(`${S.progInfo}{id="${p.id}",name="${esc(p.name)}",type="${progType(p.type)}",tag="${p.tag}",attached="${esc(p.attached)}"} 1\n`),
    verified: p.verifiedInsns === undefined ? '' : detach(`${S.progVerified}${label}${p.verifiedInsns}\n`),
    insns: detach(`${S.progInsns}${label}${p.insns}\n`),
    jited: detach(`${S.progJited}${label}${p.jitedBytes}\n`),
    memlock: detach(`${S.progMemlock}${label}${p.pages * page}\n`),
  };
  progLines.set(p, l);
  return l;
}

function linesOfMap(m: MapRecord): MapLines {
  let l = mapLines.get(m);
  if (l) return l;
  const label = `{id="${m.id}"} `;
  l = {
    label: detach(label),
    info: detach(
      `${S.mapInfo}{id="${m.id}",name="${esc(m.name)}",type="${mapType(m.type)}",key_size="${m.keySize}",value_size="${m.valueSize}",flags="${m.flags}"} 1\n`,
    ),
    maxEntries: detach(`${S.mapMaxEntries}${label}${m.maxEntries}\n`),
  };
  mapLines.set(m, l);
  return l;
}

/**
 * The last scrape's body of each family whose lines depend on the records
 * alone, kept with the records it was made of: while the same objects are
 * loaded (the records are the same objects, in the same order), a scrape
 * writes it again without rendering it.
 */
const staticBodies = new Map<string, { records: readonly object[]; body: string }>();

function staticBody(key: string, records: readonly object[], build: () => string): string {
  const last = staticBodies.get(key);
  if (last && last.records.length === records.length && last.records.every((r, i) => r === records[i])) return last.body;
  const body = build();
  staticBodies.set(key, { records, body });
  return body;
}

/** The seconds a run-time counter in nanoseconds stands for. */
const nsToSeconds = (ns: string): number => Number(ns) / 1e9;

/**
 * Writes the exposition of `s` a family at a time to `write`. Each chunk is
 * a whole family: HELP, TYPE, UNIT and its samples.
 */
export function writeExposition(s: Snapshot, counters: ExporterCounters, format: Format, write: (chunk: string) => void): void {
  const family = (f: Family, body: string) => write(header(f, format) + body);
  const progs = s.progs;
  const maps = s.maps;
  const pl = progs.map((p) => linesOfProg(p.record));
  const ml = maps.map((m) => linesOfMap(m.record));
  // One loop per family, lines joined once: the fastest way V8 has here to
  // build a family of 10,000 lines.
  const progRecords = progs.map((p) => p.record);
  const mapRecords = maps.map((m) => m.record);
  const cached = (lines: (ProgLines | MapLines)[], key: 'info' | 'verified' | 'insns' | 'jited' | 'memlock' | 'maxEntries'): string =>
    staticBody(`${lines === pl ? 'prog' : 'map'}.${key}`, lines === pl ? progRecords : mapRecords, () => {
      const out = new Array<string>(lines.length);
      for (let i = 0; i < lines.length; i++) out[i] = (lines[i] as unknown as Record<string, string>)[key]!;
      return out.join('');
    });

  family(F.progInfo, cached(pl, 'info'));
  if (s.statsOn) {
    const runs: string[] = [];
    const time: string[] = [];
    const misses: string[] = [];
    for (let i = 0; i < progs.length; i++) {
      const run = progs[i].run;
      if (!run) continue;
      const label = pl[i].label;
      runs.push(S.progRuns, label, run.runs, '\n');
      time.push(S.progRunTime, label, `${nsToSeconds(run.runTimeNs)}`, '\n');
      misses.push(S.progMisses, label, run.recursionMisses, '\n');
    }
    family(F.progRuns, runs.join(''));
    family(F.progRunTime, time.join(''));
    family(F.progMisses, misses.join(''));
  }
  family(F.progVerified, cached(pl, 'verified'));
  family(F.progInsns, cached(pl, 'insns'));
  family(F.progJited, cached(pl, 'jited'));
  family(F.progMemlock, cached(pl, 'memlock'));

  family(F.mapInfo, cached(ml, 'info'));
  family(F.mapMaxEntries, cached(ml, 'maxEntries'));
  const entries: string[] = [];
  const memlock: string[] = [];
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i];
    const label = ml[i].label;
    if (m.entries !== undefined) entries.push(S.mapEntries, label, m.entries, '\n');
    const bytes = s.mapMemlock?.get(m.record.id);
    if (bytes !== undefined) memlock.push(S.mapMemlock, label, `${bytes}`, '\n');
  }
  family(F.mapEntries, entries.join(''));
  if (s.mapMemlock) family(F.mapMemlock, memlock.join(''));

  let links = '';
  for (const l of s.links) links += `${S.linkInfo}{id="${l.id}",type="${linkType(l.type)}",prog_id="${l.progId}",target="${esc(l.attached)}"} 1\n`;
  family(F.linkInfo, links);
  for (const kind of s.withHolders ? (['prog', 'map', 'link'] as const) : []) {
    const seen = new Set<string>();
    const f = HOLDERS[kind];
    const name = sampleName(f);
    let body = '';
    for (const h of s.holders) {
      const key = `${h.id}/${h.pid}`;
      if (h.kind !== kind || seen.has(key)) continue;
      seen.add(key);
      body += `${name}{id="${h.id}",pid="${h.pid}",comm="${esc(h.comm)}"} 1\n`;
    }
    family(f, body);
  }

  family(F.scrapeDuration, `${S.scrapeDuration} ${s.seconds}\n`);
  family(F.objects, `${S.objects}{kind="prog"} ${s.progs.length}\n${S.objects}{kind="map"} ${s.maps.length}\n${S.objects}{kind="link"} ${s.links.length}\n`);
  family(F.statsEnabled, `${S.statsEnabled} ${s.statsOn ? 1 : 0}\n`);
  family(F.scrapes, `${S.scrapes} ${counters.scrapes}\n`);
  family(F.errors, `${S.errors} ${counters.errors}\n`);
  if (format === 'openmetrics') write('# EOF\n');
}

/** OpenMetrics when the scraper's Accept header asks for it, the text format otherwise. */
export function negotiate(accept: string | undefined): Format {
  return accept && /application\/openmetrics-text/i.test(accept) ? 'openmetrics' : 'text';
}
