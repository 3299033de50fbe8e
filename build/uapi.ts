// Generates src/libbpf/sys/uapi.ts: the kernel's names for the numbers the
// library hands it (map, program, attach and link types, BPF flags, BTF
// kinds, mmap protections, flock operations, perf event numbers) from the
// UAPI headers, and a few of libbpf's own from its libbpf.h, so that no file
// types these numbers by hand. Run once when the headers move on:
//   node build/run.mjs build/uapi.ts
// test/libbpf-uapi.test.ts checks that the committed module is what this
// makes of the headers, and that the running kernel's BTF agrees with it.
import { readFileSync, writeFileSync } from 'node:fs';

export const UAPI_MODULE = 'src/libbpf/sys/uapi.ts';
export const UAPI_HEADER = '/usr/include/linux/bpf.h';

/**
 * What to take from one header: a named enum (`enum: 'bpf_map_type'`), the
 * unnamed enum that holds a given enumerator (`enumOf: 'BPF_ANY'`), or some
 * of its #defines.
 */
export type Item =
  | { readonly enum: string; readonly what: string }
  | { readonly enumOf: string; readonly what: string }
  | { readonly defines: readonly string[]; readonly what: string };

export interface Source {
  readonly header: string;
  readonly items: readonly Item[];
}

/** The named enums of bpf.h whose every value the running kernel's BTF also has (test/libbpf-uapi.test.ts). */
export const ENUMS: readonly (readonly [name: string, what: string])[] = [
  ['bpf_map_type', 'map types (bpf_map_info.type, bpf_map_create)'],
  ['bpf_prog_type', 'program types (bpf_prog_info.type, bpf_prog_load)'],
  ['bpf_attach_type', 'attach types (bpf_link_create)'],
  ['bpf_link_type', 'link types (bpf_link_info.type)'],
  ['bpf_stats_type', 'run-time statistics (bpf_enable_stats)'],
];

export const SOURCES: readonly Source[] = [
  {
    header: UAPI_HEADER,
    items: [
      ...ENUMS.map(([name, what]) => ({ enum: name, what })),
      { enumOf: 'BPF_ANY', what: 'bpf_map_update_elem flags' },
      { enumOf: 'BPF_RINGBUF_BUSY_BIT', what: 'the header before each ring buffer record' },
      { defines: ['BPF_F_SLEEPABLE'], what: 'program flags (bpf_prog_load)' },
    ],
  },
  {
    header: '/usr/include/linux/btf.h',
    items: [
      { enumOf: 'BTF_KIND_UNKN', what: 'BTF kinds (the kind field of btf_type.info)' },
      { defines: ['BTF_MAGIC'], what: 'the first two bytes of BTF' },
      { defines: ['BTF_INT_SIGNED', 'BTF_INT_CHAR', 'BTF_INT_BOOL'], what: 'BTF_KIND_INT encodings' },
      { enumOf: 'BTF_VAR_STATIC', what: 'linkage of a BTF_KIND_VAR' },
    ],
  },
  {
    header: '/usr/include/asm-generic/mman-common.h',
    items: [{ defines: ['PROT_READ', 'PROT_WRITE', 'MAP_FIXED'], what: 'mmap(2) protections and flags' }],
  },
  {
    header: '/usr/include/linux/mman.h',
    items: [{ defines: ['MAP_SHARED'], what: 'mmap(2) sharing' }],
  },
  {
    header: '/usr/include/linux/perf_event.h',
    items: [
      { enum: 'perf_type_id', what: 'perf event types (perf_event_attr.type)' },
      { enum: 'perf_sw_ids', what: 'software counters (perf_event_attr.config of PERF_TYPE_SOFTWARE)' },
      { defines: ['PERF_ATTR_SIZE_VER5', 'PERF_FLAG_FD_CLOEXEC'], what: 'perf_event_open(2) attr size and flags' },
    ],
  },
  {
    // libbpf's own header, not UAPI: the numbers of its API that the library passes.
    header: '/usr/include/bpf/libbpf.h',
    items: [
      { enum: 'bpf_tc_attach_point', what: 'tc hook points (bpf_tc_hook.attach_point)' },
      { enum: 'libbpf_print_level', what: "levels of libbpf's print callback" },
    ],
  },
  {
    header: '/usr/include/asm-generic/fcntl.h',
    items: [
      { defines: ['LOCK_SH', 'LOCK_EX', 'LOCK_NB', 'LOCK_UN'], what: 'flock(2) operations' },
      // Node's fs.constants has the other O_ flags, with this platform's values.
      { defines: ['O_CLOEXEC'], what: 'open flags Node does not name' },
    ],
  },
  {
    header: '/usr/include/linux/fcntl.h',
    items: [{ defines: ['AT_REMOVEDIR'], what: 'unlinkat(2) flags' }],
  },
];

/** The value of a C constant expression as headers write them: 8, 0x10, (1U << 4), NAME, A | B, NAME - 1. */
function evaluate(expr: string, known: ReadonlyMap<string, number>, where: string): number {
  const tokens = expr.match(/0x[0-9a-f]+|\w+|<<|[|+\-()]|\S/gi) ?? [];
  let at = 0;
  const fail = (): never => {
    throw new Error(`${where}: cannot read ${JSON.stringify(expr)}`);
  };
  const atom = (): number => {
    const token = tokens[at++] ?? fail();
    if (token === '(') {
      const value = or();
      if (tokens[at++] !== ')') fail();
      return value;
    }
    const literal = /^(0x[0-9a-f]+|\d+)U?L*$/i.exec(token)?.[1];
    if (literal !== undefined) return /^0\d/.test(literal) ? parseInt(literal, 8) : Number(literal);
    return known.get(token) ?? fail();
  };
  const sum = (): number => {
    let value = atom();
    while (tokens[at] === '+' || tokens[at] === '-') value = tokens[at++] === '+' ? value + atom() : value - atom();
    return value;
  };
  const shift = (): number => {
    const value = sum();
    if (tokens[at] !== '<<') return value;
    at++;
    return (value << sum()) >>> 0; // (1U << 31) is unsigned in C
  };
  const or = (): number => {
    let value = shift();
    while (tokens[at] === '|') {
      at++;
      value = (value | shift()) >>> 0;
    }
    return value;
  };
  const value = or();
  if (at !== tokens.length) fail();
  return value;
}

/** The body of `enum name {` or of the unnamed `enum {` that holds `enumerator`. */
function enumBody(header: string, item: { enum: string } | { enumOf: string }): string {
  if ('enum' in item) {
    const body = new RegExp(`^enum ${item.enum} \\{\\n([^}]*)^\\};`, 'm').exec(header)?.[1];
    if (body === undefined) throw new Error(`enum ${item.enum} not found`);
    return body;
  }
  for (const m of header.matchAll(/^enum \{\n([^}]*)^\};/gm)) {
    if (new RegExp(`^\\s*${item.enumOf}\\b`, 'm').test(m[1]!)) return m[1]!;
  }
  throw new Error(`no enum holds ${item.enumOf}`);
}

/** Each enumerator of the enum with its value; names starting with "__", MAX_, NR_ and *_MAX ones left out. */
export function parseEnum(header: string, item: string | { enum: string } | { enumOf: string }): [string, number][] {
  const which = typeof item === 'string' ? { enum: item } : item;
  const where = 'enum' in which ? `enum ${which.enum}` : `the enum of ${which.enumOf}`;
  const out: [string, number][] = [];
  const values = new Map<string, number>();
  let next = 0;
  for (const raw of enumBody(header, which).split('\n')) {
    const line = raw.replace(/\/\*.*?\*\//g, '').trim();
    if (line === '') continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*(?:=\s*(.+?))?\s*,?$/.exec(line);
    if (!m) throw new Error(`${where}: cannot read ${JSON.stringify(line)}`);
    const [, enumerator, given] = m as unknown as [string, string, string | undefined];
    const value = given === undefined ? next : evaluate(given, values, where);
    values.set(enumerator, value);
    next = value + 1;
    if (!/^(__|MAX_|NR_)|_MAX$/.test(enumerator)) out.push([enumerator, value]);
  }
  return out;
}

/** The value of each `#define NAME value` asked for. */
export function parseDefines(header: string, names: readonly string[]): [string, number][] {
  return names.map((name) => {
    const given = new RegExp(`^#define\\s+${name}\\s+([^/\\n]+?)\\s*(?:/\\*.*)?$`, 'm').exec(header)?.[1];
    if (given === undefined) throw new Error(`#define ${name} not found`);
    return [name, evaluate(given, new Map(), `#define ${name}`)];
  });
}

/** The module for these headers' texts (`read` gives a header's text by path). */
export function generateUapi(read: (header: string) => string = (h) => readFileSync(h, 'utf8')): string {
  const lines = [
    `// Code generated by build/uapi.ts from ${SOURCES.map((s) => s.header).join(', ')}. DO NOT EDIT.`,
    "// The kernel's names for the numbers of its BPF ABI, the few other UAPI numbers the library passes, and libbpf.h's.",
    '',
  ];
  for (const { header, items } of SOURCES) {
    const text = read(header);
    for (const item of items) {
      const head = 'enum' in item ? `enum ${item.enum}` : 'enumOf' in item ? `enum { ${item.enumOf}, ... }` : '#define';
      lines.push(`// ${header.replace('/usr/include/', '')}, ${head}: ${item.what}`);
      const values = 'defines' in item ? parseDefines(text, item.defines) : parseEnum(text, item);
      for (const [name, value] of values) lines.push(`export const ${name} = ${value >= 0x100 ? `0x${value.toString(16)}` : value};`);
      lines.push('');
    }
  }
  return lines.join('\n');
}

if (process.argv[1]?.endsWith('uapi.ts')) {
  writeFileSync(UAPI_MODULE, generateUapi());
  console.log(`generated ${UAPI_MODULE}`);
}
