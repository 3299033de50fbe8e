// Generates the numbers the library hands the kernel and libc from the
// headers that define them, so that no file types these numbers by hand:
// src/libbpf/sys/uapi.ts, the BPF ones the library's users see too (map,
// program, attach and link types, BPF flags, BTF kinds, perf events, and a
// few of libbpf.h's), src/libbpf/sys/linux.ts, the rest, which stay
// inside (mmap, flock, *at, poll, the bpffs magic, capabilities), and
// src/libbpf/sys/layouts.ts, where the members the library reads and writes
// lie in the kernel's structs, as clang lays them out (build/layouts.ts). Run once
// when the headers move on:
//   node build/run.mjs build/uapi.ts
// Each module records a digest of the headers it was made from.
// test/libbpf-uapi.test.ts checks that the committed modules are what this
// makes of those headers (where the machine has other versions, that every
// committed name keeps its value in them: the tests do not depend on which
// linux-libc-dev is installed), and that the running kernel's BTF agrees.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { STRUCTS, compiledTypes, layoutIn, layoutLines, type Layout, type StructSpec } from './layouts.js';

/** Each generated module, by what it holds. */
export const MODULES = {
  uapi: {
    path: 'src/libbpf/sys/uapi.ts',
    what: "The kernel's names for the numbers of its BPF ABI, and libbpf.h's (public: the library's index exports them all).",
  },
  linux: {
    path: 'src/libbpf/sys/linux.ts',
    what: 'The other Linux numbers the library and the runner pass or check (internal: not in the index).',
  },
  layouts: {
    path: 'src/libbpf/sys/layouts.ts',
    what: "Where the kernel's structs hold the members the library uses (internal).",
  },
} as const;
export type ModuleName = keyof typeof MODULES;

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
  readonly module: ModuleName;
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
    module: 'uapi',
    items: [
      ...ENUMS.map(([name, what]) => ({ enum: name, what })),
      { enumOf: 'BPF_ANY', what: 'bpf_map_update_elem flags' },
      { enumOf: 'BPF_RINGBUF_BUSY_BIT', what: 'the header before each ring buffer record' },
      { defines: ['BPF_F_SLEEPABLE'], what: 'program flags (bpf_prog_load)' },
      { defines: ['BPF_OBJ_NAME_LEN'], what: 'the name field of bpf_prog_info and bpf_map_info' },
    ],
  },
  {
    header: '/usr/include/linux/btf.h',
    module: 'uapi',
    items: [
      { enumOf: 'BTF_KIND_UNKN', what: 'BTF kinds (the kind field of btf_type.info)' },
      { defines: ['BTF_MAGIC'], what: 'the first two bytes of BTF' },
      { defines: ['BTF_INT_SIGNED', 'BTF_INT_CHAR', 'BTF_INT_BOOL'], what: 'BTF_KIND_INT encodings' },
      { enumOf: 'BTF_VAR_STATIC', what: 'linkage of a BTF_KIND_VAR' },
      { enum: 'btf_func_linkage', what: 'linkage of a BTF_KIND_FUNC (its vlen)' },
    ],
  },
  {
    header: '/usr/include/linux/perf_event.h',
    module: 'uapi',
    items: [
      { enum: 'perf_type_id', what: 'perf event types (perf_event_attr.type)' },
      { enum: 'perf_sw_ids', what: 'software counters (perf_event_attr.config of PERF_TYPE_SOFTWARE)' },
      { defines: ['PERF_ATTR_SIZE_VER5', 'PERF_FLAG_FD_CLOEXEC'], what: 'perf_event_open(2) attr size and flags' },
    ],
  },
  {
    // libbpf's own header, not UAPI: the numbers of its API that the library passes.
    header: '/usr/include/bpf/libbpf.h',
    module: 'uapi',
    items: [
      { enum: 'bpf_tc_attach_point', what: 'tc hook points (bpf_tc_hook.attach_point)' },
      { enum: 'libbpf_print_level', what: "levels of libbpf's print callback" },
    ],
  },
  {
    header: '/usr/include/asm-generic/mman-common.h',
    module: 'linux',
    items: [{ defines: ['PROT_READ', 'PROT_WRITE', 'MAP_FIXED'], what: 'mmap(2) protections and flags' }],
  },
  {
    header: '/usr/include/linux/mman.h',
    module: 'linux',
    items: [{ defines: ['MAP_SHARED'], what: 'mmap(2) sharing' }],
  },
  {
    header: '/usr/include/asm-generic/fcntl.h',
    module: 'linux',
    items: [
      { defines: ['LOCK_SH', 'LOCK_EX', 'LOCK_NB', 'LOCK_UN'], what: 'flock(2) operations' },
      // Node's fs.constants has the other O_ flags, with this platform's values.
      { defines: ['O_CLOEXEC'], what: 'open flags Node does not name' },
    ],
  },
  {
    header: '/usr/include/linux/fcntl.h',
    module: 'linux',
    items: [{ defines: ['AT_FDCWD', 'AT_REMOVEDIR'], what: 'the *at(2) calls: the working directory as dirfd, unlinkat flags' }],
  },
  {
    header: '/usr/include/asm-generic/poll.h',
    module: 'linux',
    items: [{ defines: ['POLLIN'], what: 'poll(2) events' }],
  },
  {
    header: '/usr/include/linux/magic.h',
    module: 'linux',
    items: [{ defines: ['BPF_FS_MAGIC'], what: "a bpffs's f_type (statfs(2))" }],
  },
  {
    header: '/usr/include/linux/capability.h',
    module: 'linux',
    items: [{ defines: ['CAP_SYS_ADMIN', 'CAP_BPF'], what: 'capability bits (/proc/PID/status CapEff)' }],
  },
];

/** The value of a C constant expression as headers write them: 8, 0x10, 02000000, -100, (1U << 4), NAME, A | B, NAME - 1. */
function evaluate(expr: string, known: ReadonlyMap<string, number>, where: string): number {
  const tokens = expr.match(/0x[0-9a-f]+|\w+|<<|[|+\-()]|\S/gi) ?? [];
  let at = 0;
  const fail = (): never => {
    throw new Error(`${where}: cannot read ${JSON.stringify(expr)}`);
  };
  const atom = (): number => {
    const token = tokens[at++] ?? fail();
    if (token === '-') return -atom();
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
    if (new RegExp(`^\\s*${item.enumOf}\\b`, 'm').test(m[1])) return m[1];
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

/** The headers `module` is made from. */
const headersOf = (module: ModuleName): string[] => [
  ...new Set(module === 'layouts' ? STRUCTS.map((spec) => spec.header) : SOURCES.filter((source) => source.module === module).map((source) => source.header)),
];

/** The layout of each struct of STRUCTS as clang compiles the headers here. */
export function structLayouts(): Map<StructSpec, Layout> {
  const types = compiledTypes();
  const named = (spec: StructSpec): number | undefined =>
    spec.sizeDefine === undefined ? undefined : parseDefines(readFileSync(spec.header, 'utf8'), [spec.sizeDefine])[0][1];
  return new Map(STRUCTS.map((spec) => [spec, layoutIn(types, spec, named(spec))]));
}

/** A header's text as a short digest: which headers a module was made from, as the generated comment records it. */
const digest = (header: string): string => createHash('sha256').update(readFileSync(header)).digest('hex').slice(0, 16);

/** Each header of `module` with its digest now. */
export function headerDigests(module: ModuleName): Map<string, string> {
  return new Map(headersOf(module).map((header) => [header, digest(header)]));
}

/** The header digests a generated module's text records. */
export function recordedDigests(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^\/\/ sha256 (\S+) (\S+)$/gm)].map((m) => [m[2], m[1]]));
}

/** Each `export const NAME = VALUE` of a generated module's text, by name. */
export function exportedValues(text: string): Map<string, number> {
  return new Map([...text.matchAll(/^export const (\w+) = (-?(?:0x[0-9a-f]+|\d+));$/gm)].map((m) => [m[1], Number(m[2])]));
}

/** The text of the generated `module`, from the headers as they are now. */
export function generate(module: ModuleName): string {
  const sources = SOURCES.filter((source) => source.module === module);
  const lines = [
    `// Code generated by build/uapi.ts from ${headersOf(module).join(', ')}. DO NOT EDIT.`,
    `// ${MODULES[module].what}`,
    ...[...headerDigests(module)].map(([header, hex]) => `// sha256 ${hex} ${header}`),
    '',
  ];
  if (module === 'layouts') return [...lines, ...layoutLines(structLayouts()), ''].join('\n');
  for (const { header, items } of sources) {
    const text = readFileSync(header, 'utf8');
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
  for (const [module, { path }] of Object.entries(MODULES)) {
    writeFileSync(path, generate(module as ModuleName));
    console.log(`generated ${path}`);
  }
}
