// A snapshot as the Prometheus text exposition format (version 0.0.4) or
// OpenMetrics 1.0.0: every family with HELP and TYPE (and UNIT in
// OpenMetrics), names and units by Prometheus's conventions (base units,
// _total on counters, _info on info series, one `id` label joining every
// object's series to its info series). Written as bytes into a Body (5 MB
// at 10,000 programs and maps): numbers are read from the iterators'
// records where they lie and written as digits, and each program's and
// map's info line, which cannot change while its record is the same
// object, is rendered once.
import { linkTypeName, mapTypeName, pageSize, progTypeName } from '../libbpf/index.js';
import { MAP, PROG, i64At, u64At, type HolderKind, type MapRecord, type ProgRecord, type RecordSet } from './records.js';
import type { Body } from './body.js';
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

/** `"} `: between an object's id and its value. */
const ID_CLOSE = Buffer.from('"} ', 'latin1');
let openings: Record<keyof typeof F, Buffer> | undefined;

/** `NAME{id="` of each family: how each of an object's samples starts (made on first use, not at every CLI start). */
function sampleOpenings(): Record<keyof typeof F, Buffer> {
  openings ??= Object.fromEntries(Object.entries(S).map(([k, name]) => [k, Buffer.from(`${name}{id="`, 'latin1')])) as Record<keyof typeof F, Buffer>;
  return openings;
}

/** Info lines by record: a record is the same object while its object is unchanged (records.ts). */
const infoLines = new WeakMap<ProgRecord | MapRecord, string>();

/** The record's info line, rendered the first time it is asked for. */
function infoLine<R extends ProgRecord | MapRecord>(r: R, render: (r: R) => string): string {
  let line = infoLines.get(r);
  if (line === undefined) infoLines.set(r, (line = render(r)));
  return line;
}

const progInfo = (p: ProgRecord): string =>
  `${S.progInfo}{id="${p.id}",name="${esc(p.name)}",type="${progType(p.type)}",tag="${p.tag}",attached="${esc(p.attached)}"} 1\n`;

const mapInfo = (m: MapRecord): string =>
  `${S.mapInfo}{id="${m.id}",name="${esc(m.name)}",type="${mapType(m.type)}",key_size="${m.keySize}",value_size="${m.valueSize}",flags="${m.flags}"} 1\n`;

/** A number of a record for each of its objects: NAME{id="ID"} VALUE. */
function idSamples<T extends { id: number }>(body: Body, name: Buffer, records: readonly T[], value: (r: T) => number | undefined): void {
  for (const r of records) {
    const v = value(r);
    if (v === undefined) continue;
    body.raw(name);
    body.uint(r.id);
    body.raw(ID_CLOSE);
    body.uint(v);
    body.newline();
  }
}

/** A 64-bit field of each record whose `present` flag is set, read where the record lies. */
function fieldSamples<T extends { id: number }>(
  body: Body,
  name: Buffer,
  set: RecordSet<T>,
  present: number,
  field: number,
  write: (v: number | bigint) => void,
  read: (view: DataView, offset: number) => number | bigint = u64At,
): void {
  const { view, records, at } = set;
  for (let i = 0; i < records.length; i++) {
    const o = at[i];
    if (view.getUint32(o + present, true) === 0) continue;
    body.raw(name);
    body.uint(records[i].id);
    body.raw(ID_CLOSE);
    write(read(view, o + field));
    body.newline();
  }
}

/** Whether `now` holds the same record objects as `last`, in the same order. */
function sameRecords(last: readonly object[], now: readonly object[]): boolean {
  if (last.length !== now.length) return false;
  for (let i = 0; i < now.length; i++) if (last[i] !== now[i]) return false;
  return true;
}

/**
 * The samples of the families whose lines depend on the records alone (info
 * lines, sizes), kept as bytes while the same objects are loaded: a steady
 * scrape copies them rather than write 70,000 lines again.
 */
class StaticFamilies {
  private progs: readonly ProgRecord[] = [];
  private maps: readonly MapRecord[] = [];
  private readonly bytes = new Map<string, Buffer>();

  /** Forgets what no longer matches this scrape's records. */
  update(progs: readonly ProgRecord[], maps: readonly MapRecord[]): void {
    if (!sameRecords(this.progs, progs)) for (const k of this.bytes.keys()) if (k.startsWith('prog')) this.bytes.delete(k);
    if (!sameRecords(this.maps, maps)) for (const k of this.bytes.keys()) if (k.startsWith('map')) this.bytes.delete(k);
    this.progs = progs;
    this.maps = maps;
  }

  /** Writes the family `key`'s samples: the kept bytes, or `render`'s, then kept. */
  write(body: Body, key: keyof typeof F, render: () => void): void {
    const kept = this.bytes.get(key);
    if (kept) return body.raw(kept);
    const start = body.bytes.length;
    render();
    this.bytes.set(key, Buffer.from(body.bytes.subarray(start)));
  }
}

/** The exposition of one exporter's scrapes, with what it keeps between them. */
export class Exposition {
  private readonly statics = new StaticFamilies();

  /** Writes the exposition of `s` into `body`, a family at a time: HELP, TYPE, UNIT, samples. */
  write(s: Snapshot, counters: ExporterCounters, format: Format, body: Body): void {
    const O = sampleOpenings();
    const progs = s.progs.records;
    const maps = s.maps.records;
    this.statics.update(progs, maps);
    const family = (f: Family) => body.latin1(header(f, format));
    const fixed = (key: keyof typeof F, render: () => void) => {
      family(F[key]);
      this.statics.write(body, key, render);
    };
    const p = PROG.offsets;
    const count = (v: number | bigint) => body.int(v);
    const seconds = (v: number | bigint) => body.seconds(v);

    fixed('progInfo', () => {
      for (const r of progs) body.latin1(infoLine(r, progInfo));
    });
    if (s.statsOn) {
      family(F.progRuns);
      fieldSamples(body, O.progRuns, s.progs, p.has_run_stats, p.runs, count);
      family(F.progRunTime);
      fieldSamples(body, O.progRunTime, s.progs, p.has_run_stats, p.run_ns, seconds);
      family(F.progMisses);
      fieldSamples(body, O.progMisses, s.progs, p.has_run_stats, p.misses, count);
    }
    fixed('progVerified', () => idSamples(body, O.progVerified, progs, (r) => r.verifiedInsns));
    fixed('progInsns', () => idSamples(body, O.progInsns, progs, (r) => r.insns));
    fixed('progJited', () => idSamples(body, O.progJited, progs, (r) => r.jitedBytes));
    page ??= pageSize();
    const bytesPerPage = page;
    fixed('progMemlock', () => idSamples(body, O.progMemlock, progs, (r) => r.pages * bytesPerPage));

    fixed('mapInfo', () => {
      for (const r of maps) body.latin1(infoLine(r, mapInfo));
    });
    fixed('mapMaxEntries', () => idSamples(body, O.mapMaxEntries, maps, (r) => r.maxEntries));
    family(F.mapEntries);
    // An s64, as maps.debug prints it (%lld).
    fieldSamples(body, O.mapEntries, s.maps, MAP.offsets.has_entries, MAP.offsets.entries, count, i64At);
    const memlock = s.mapMemlock;
    if (memlock) {
      family(F.mapMemlock);
      idSamples(body, O.mapMemlock, maps, (r) => memlock.get(r));
    }

    family(F.linkInfo);
    for (const l of s.links) body.latin1(`${S.linkInfo}{id="${l.id}",type="${linkType(l.type)}",prog_id="${l.progId}",target="${esc(l.attached)}"} 1\n`);
    for (const kind of s.withHolders ? (['prog', 'map', 'link'] as const) : []) {
      const seen = new Set<string>();
      const f = HOLDERS[kind];
      const name = sampleName(f);
      family(f);
      for (const h of s.holders) {
        const key = `${h.id}/${h.pid}`;
        if (h.kind !== kind || seen.has(key)) continue;
        seen.add(key);
        body.utf8(`${name}{id="${h.id}",pid="${h.pid}",comm="${esc(h.comm)}"} 1\n`);
      }
    }

    const own = (f: Family, samples: string) => {
      family(f);
      body.latin1(samples);
    };
    own(F.scrapeDuration, `${S.scrapeDuration} ${s.seconds}\n`);
    own(F.objects, `${S.objects}{kind="prog"} ${progs.length}\n${S.objects}{kind="map"} ${maps.length}\n${S.objects}{kind="link"} ${s.links.length}\n`);
    own(F.statsEnabled, `${S.statsEnabled} ${s.statsOn ? 1 : 0}\n`);
    own(F.scrapes, `${S.scrapes} ${counters.scrapes}\n`);
    own(F.errors, `${S.errors} ${counters.errors}\n`);
    if (format === 'openmetrics') body.latin1('# EOF\n');
  }
}

/** OpenMetrics when the scraper's Accept header asks for it, the text format otherwise. */
export function negotiate(accept: string | undefined): Format {
  return accept && /application\/openmetrics-text/i.test(accept) ? 'openmetrics' : 'text';
}
