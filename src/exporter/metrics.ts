// A snapshot as the Prometheus text exposition format (version 0.0.4) or
// OpenMetrics 1.0.0: every family with HELP and TYPE (and UNIT in
// OpenMetrics), names and units by Prometheus's conventions (base units,
// _total on counters, _info on info series, one `id` label joining every
// object's series to its info series).
import { linkTypeName, mapTypeName, pageSize, progTypeName } from '../libbpf/index.js';
import type { HolderKind } from './records.js';
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
  /** Each sample as `{labels} value` (or ` value`), after the sample name. */
  samples: string[];
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

function sampleName(f: Family): string {
  if (f.kind === 'counter') return `${f.name}_total`;
  if (f.kind === 'info') return `${f.name}_info`;
  return f.name;
}

function render(families: Family[], format: Format): string {
  const out: string[] = [];
  for (const f of families) {
    const sample = sampleName(f);
    // The text format names a family by its samples; OpenMetrics without the suffix.
    const name = format === 'openmetrics' ? f.name : sample;
    const type = f.kind === 'info' && format === 'text' ? 'gauge' : f.kind;
    out.push(`# HELP ${name} ${escapeHelp(f.help)}`);
    out.push(`# TYPE ${name} ${type}`);
    if (f.unit && format === 'openmetrics') out.push(`# UNIT ${name} ${f.unit}`);
    for (const line of f.samples) out.push(sample + line);
  }
  if (format === 'openmetrics') out.push('# EOF');
  return `${out.join('\n')}\n`;
}

const HOLDER_HELP: Record<HolderKind, string> = {
  prog: 'A process holding a file descriptor of the BPF program id (1 per pid).',
  map: 'A process holding a file descriptor of the BPF map id (1 per pid).',
  link: 'A process holding a file descriptor of the BPF link id (1 per pid).',
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

/** The seconds a run-time counter in nanoseconds stands for. */
const nsToSeconds = (ns: bigint): number => Number(ns) / 1e9;

type Prog = Snapshot['progs'][number];

export function families(s: Snapshot, counters: ExporterCounters): Family[] {
  page ??= pageSize();
  const pageBytes = page;
  const byProg = (f: (p: Prog) => number | bigint | undefined): string[] => {
    const lines: string[] = [];
    for (const p of s.progs) {
      const v = f(p);
      if (v !== undefined) lines.push(`{id="${p.id}"} ${v}`);
    }
    return lines;
  };
  const out: Family[] = [
    {
      name: 'bpf_prog',
      kind: 'info',
      help: 'A loaded BPF program: full BTF name, type, tag, and what it is attached to as progs.debug shows it.',
      samples: s.progs.map((p) => `{id="${p.id}",name="${esc(p.name)}",type="${progType(p.type)}",tag="${esc(p.tag)}",attached="${esc(p.attached)}"} 1`),
    },
  ];
  if (s.statsOn) {
    out.push(
      { name: 'bpf_prog_runs', kind: 'counter', help: 'Times the program ran (run-time statistics on).', samples: byProg((p) => s.runStats.get(p.id)?.runCount) },
      {
        name: 'bpf_prog_run_time_seconds',
        kind: 'counter',
        unit: 'seconds',
        help: 'Time the program spent running (run-time statistics on).',
        samples: byProg((p) => {
          const ns = s.runStats.get(p.id)?.runTimeNs;
          return ns === undefined ? undefined : nsToSeconds(ns);
        }),
      },
      {
        name: 'bpf_prog_recursion_misses',
        kind: 'counter',
        help: 'Times the program was not run because it was already running on that CPU.',
        samples: byProg((p) => s.runStats.get(p.id)?.recursionMisses),
      },
    );
  }
  out.push(
    { name: 'bpf_prog_verified_instructions', kind: 'gauge', help: 'Instructions the verifier processed to load the program (5.16+).', samples: byProg((p) => p.verifiedInsns) },
    { name: 'bpf_prog_instructions', kind: 'gauge', help: 'Instructions of the program as the kernel runs it (translated).', samples: byProg((p) => p.insns) },
    { name: 'bpf_prog_jited_bytes', kind: 'gauge', unit: 'bytes', help: 'Size of the program as JIT-compiled machine code.', samples: byProg((p) => p.jitedBytes) },
    { name: 'bpf_prog_memlock_bytes', kind: 'gauge', unit: 'bytes', help: 'Memory the program is charged for (as bpftool and fdinfo show memlock).', samples: byProg((p) => p.pages * pageBytes) },
    {
      name: 'bpf_map',
      kind: 'info',
      help: 'A BPF map: name, type, key and value size, flags.',
      samples: s.maps.map((m) => `{id="${m.id}",name="${esc(m.name)}",type="${mapType(m.type)}",key_size="${m.keySize}",value_size="${m.valueSize}",flags="${m.flags}"} 1`),
    },
    { name: 'bpf_map_max_entries', kind: 'gauge', help: 'The most entries the map can hold.', samples: s.maps.map((m) => `{id="${m.id}"} ${m.maxEntries}`) },
    {
      name: 'bpf_map_entries',
      kind: 'gauge',
      help: 'Entries in the map now, where the kernel counts them (hash maps, 6.6+; absent elsewhere).',
      samples: s.maps.flatMap((m) => (m.entries === undefined ? [] : [`{id="${m.id}"} ${m.entries}`])),
    },
    {
      name: 'bpf_link',
      kind: 'info',
      help: "A BPF link: type, program id, and its program's attach target as progs.debug shows it.",
      samples: s.links.map((l) => `{id="${l.id}",type="${linkType(l.type)}",prog_id="${l.progId}",target="${esc(l.attached)}"} 1`),
    },
  );
  for (const kind of s.withHolders ? (['prog', 'map', 'link'] as const) : []) {
    const seen = new Set<string>();
    const samples: string[] = [];
    for (const h of s.holders) {
      const key = `${h.id}/${h.pid}`;
      if (h.kind !== kind || seen.has(key)) continue;
      seen.add(key);
      samples.push(`{id="${h.id}",pid="${h.pid}",comm="${esc(h.comm)}"} 1`);
    }
    out.push({ name: `bpf_${kind}_holder`, kind: 'info', help: HOLDER_HELP[kind], samples });
  }
  out.push(
    { name: 'bpf_exporter_scrape_duration_seconds', kind: 'gauge', unit: 'seconds', help: 'How long collecting this scrape took.', samples: [` ${s.seconds}`] },
    {
      name: 'bpf_exporter_objects',
      kind: 'gauge',
      help: 'BPF objects seen in this scrape, by kind.',
      samples: [`{kind="prog"} ${s.progs.length}`, `{kind="map"} ${s.maps.length}`, `{kind="link"} ${s.links.length}`],
    },
    { name: 'bpf_exporter_run_stats_enabled', kind: 'gauge', help: 'Whether run counters are reported: 1 while run-time statistics are on.', samples: [` ${s.statsOn ? 1 : 0}`] },
    { name: 'bpf_exporter_scrapes', kind: 'counter', help: 'Scrapes served since the exporter started.', samples: [` ${counters.scrapes}`] },
    { name: 'bpf_exporter_errors', kind: 'counter', help: 'Scrapes that failed and iterator lines that did not parse, since the exporter started.', samples: [` ${counters.errors}`] },
  );
  return out;
}

export function exposition(s: Snapshot, counters: ExporterCounters, format: Format): string {
  return render(families(s, counters), format);
}

/** OpenMetrics when the scraper's Accept header asks for it, the text format otherwise. */
export function negotiate(accept: string | undefined): Format {
  return accept && /application\/openmetrics-text/i.test(accept) ? 'openmetrics' : 'text';
}
