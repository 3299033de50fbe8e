// Where the members the library reads and writes lie in the kernel's structs
// (bpf_prog_info, bpf_map_info, bpf_link_info, perf_event_attr), as the
// compiler lays them out: a tiny C file that includes the headers is compiled
// with clang -g -target bpf, and the offsets are read from the object's BTF
// (bpftool btf dump ... format raw). No C layout rule is worked out here.
// build/uapi.ts writes the result into src/libbpf/sys/layouts.ts; the same
// reader of bpftool's dump gives test/libbpf-uapi.test.ts the running
// kernel's offsets of the same members.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clangTool, multiarchDir } from './compile.js';

/**
 * What to take of one struct: the members the library uses (a bitfield by
 * its bit offset, the rest by byte offset), and the size to hand the kernel.
 * The kernel takes any size and fills (or reads) only what fits, and its
 * structs only ever grow at the end; so the size is where the last member
 * used ends, which newer headers cannot change (sizeof would grow with each
 * linux-libc-dev), unless a named size of the header is the ABI's way
 * (perf_event_attr's PERF_ATTR_SIZE_VERn).
 */
export interface StructSpec {
  readonly struct: string;
  readonly header: string;
  readonly members: readonly string[];
  readonly bitfields?: readonly string[];
  /** A #define of `header` to pass as the size; without it, the end of the last member used. */
  readonly sizeDefine?: string;
}

export const STRUCTS: readonly StructSpec[] = [
  // the members src/libbpf/info.ts (progInfo) and stats.ts (run counters) read
  {
    struct: 'bpf_prog_info',
    header: '/usr/include/linux/bpf.h',
    members: ['type', 'id', 'nr_map_ids', 'map_ids', 'name', 'btf_id', 'run_time_ns', 'run_cnt', 'recursion_misses'],
  },
  // info.ts (mapInfo)
  {
    struct: 'bpf_map_info',
    header: '/usr/include/linux/bpf.h',
    members: ['type', 'id', 'key_size', 'value_size', 'max_entries', 'map_flags', 'name'],
  },
  // info.ts (linkInfo)
  {
    struct: 'bpf_link_info',
    header: '/usr/include/linux/bpf.h',
    members: ['type', 'id', 'prog_id'],
  },
  // perfevent.ts (openPerfEvent)
  {
    struct: 'perf_event_attr',
    header: '/usr/include/linux/perf_event.h',
    members: ['type', 'size', 'config', 'sample_period', 'sample_freq'],
    bitfields: ['freq'],
    sizeDefine: 'PERF_ATTR_SIZE_VER5',
  },
];

/** One struct's layout as the generated module has it. */
export interface Layout {
  readonly size: number;
  /** Byte offsets, by member name. */
  readonly offsets: Readonly<Record<string, number>>;
  /** Bit offsets from the struct's start, by member name (bitfields only). */
  readonly bits?: Readonly<Record<string, number>>;
}

/** One type of a raw BTF dump: what the layout needs of it. */
interface DumpType {
  kind: string;
  name: string;
  /** INT, STRUCT, UNION, ENUM: bytes. */
  size?: number;
  /** TYPEDEF, CONST, VOLATILE, ARRAY, ...: the type referred to. */
  typeId?: number;
  nrElems?: number;
  members?: { name: string; typeId: number; bitOffset: number; bitfieldSize?: number }[];
}

/** The types of `bpftool btf dump ... format raw` output, by id. */
export function readBtfDump(text: string): Map<number, DumpType> {
  const types = new Map<number, DumpType>();
  let current: DumpType | undefined;
  for (const line of text.split('\n')) {
    const head = /^\[(\d+)\] (\w+) '([^']*)'(.*)$/.exec(line);
    if (head) {
      const [, id, kind, name, rest] = head as unknown as [string, string, string, string, string];
      const field = (key: string): number | undefined => {
        const m = new RegExp(`\\b${key}=(\\d+)`).exec(rest);
        return m ? Number(m[1]) : undefined;
      };
      current = { kind, name, size: field('size'), typeId: field('type_id'), nrElems: field('nr_elems') };
      if (kind === 'STRUCT' || kind === 'UNION') current.members = [];
      types.set(Number(id), current);
      continue;
    }
    const member = /^\t'([^']*)' type_id=(\d+) bits_offset=(\d+)(?: bitfield_size=(\d+))?$/.exec(line);
    if (member && current?.members) {
      current.members.push({
        name: member[1],
        typeId: Number(member[2]),
        bitOffset: Number(member[3]),
        bitfieldSize: member[4] === undefined ? undefined : Number(member[4]),
      });
    }
  }
  return types;
}

/** Bytes of the type with this id (a pointer is 8: -target bpf and the 64-bit kernels alike). */
function sizeOf(types: Map<number, DumpType>, id: number, depth = 0): number {
  const type = types.get(id);
  if (!type || depth > 32) throw new Error(`BTF type ${id} not found`);
  if (type.kind === 'PTR') return 8;
  if (type.size !== undefined) return type.size;
  if (type.kind === 'ARRAY') return (type.nrElems ?? 0) * sizeOf(types, type.typeId!, depth + 1);
  if (type.typeId !== undefined) return sizeOf(types, type.typeId, depth + 1);
  throw new Error(`BTF type ${id} (${type.kind}) has no size`);
}

/** The id and size of the struct of this name in a dump's types. */
export function structIn(types: Map<number, DumpType>, name: string): { id: number; size: number } {
  for (const [id, type] of types) if (type.kind === 'STRUCT' && type.name === name) return { id, size: type.size! };
  throw new Error(`struct ${name} not in the BTF`);
}

/**
 * Where the member `name` of the struct with this id lies: its bit offset,
 * its bits (its size, or its bitfield's), and whether it is a bitfield. A
 * member of an unnamed struct or union inside (perf_event_attr's
 * sample_period) counts as the struct's own, as in C.
 */
export function memberIn(types: Map<number, DumpType>, id: number, name: string): { bitOffset: number; bits: number; bitfield: boolean } | undefined {
  for (const member of types.get(id)?.members ?? []) {
    if (member.name === name) {
      const bitfield = member.bitfieldSize !== undefined && member.bitfieldSize > 0;
      return { bitOffset: member.bitOffset, bits: bitfield ? member.bitfieldSize! : 8 * sizeOf(types, member.typeId), bitfield };
    }
    if (member.name === '(anon)' && types.get(member.typeId)?.members) {
      const inner = memberIn(types, member.typeId, name);
      if (inner) return { ...inner, bitOffset: member.bitOffset + inner.bitOffset };
    }
  }
  return undefined;
}

/**
 * The layout of `spec.struct` in a dump's types, with `size` for the size
 * (a named size); without it, the end of the last member used. Throws if the
 * struct or a member is missing, or a member is not what the spec says (a
 * bitfield or not, on a byte boundary).
 */
export function layoutIn(types: Map<number, DumpType>, spec: StructSpec, size?: number): Layout {
  const { id } = structIn(types, spec.struct);
  let end = 0;
  const place = (name: string, bitfield: boolean): number => {
    const member = memberIn(types, id, name);
    if (!member) throw new Error(`struct ${spec.struct} has no member ${name}`);
    if (member.bitfield !== bitfield || (!bitfield && member.bitOffset % 8 !== 0))
      throw new Error(`struct ${spec.struct}: ${name} is ${member.bitfield ? '' : 'not '}a bitfield`);
    end = Math.max(end, Math.ceil((member.bitOffset + member.bits) / 8));
    return bitfield ? member.bitOffset : member.bitOffset / 8;
  };
  const offsets = Object.fromEntries(spec.members.map((name) => [name, place(name, false)]));
  const bits = spec.bitfields && Object.fromEntries(spec.bitfields.map((name) => [name, place(name, true)]));
  if (size !== undefined && size < end) throw new Error(`struct ${spec.struct}: the members used end at ${end}, past ${spec.sizeDefine} (${size})`);
  return { size: size ?? end, offsets, ...(bits && { bits }) };
}

/** The raw BTF dump of an object or of /sys/kernel/btf/vmlinux, through bpftool. */
export function dumpBtf(file: string): string {
  const r = spawnSync('bpftool', ['btf', 'dump', 'file', file, 'format', 'raw'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.error) throw new Error(`bpftool: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`bpftool btf dump file ${file}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** The types of every struct of STRUCTS as clang compiles the headers here, from the object's BTF. */
export function compiledTypes(): Map<number, DumpType> {
  const dir = mkdtempSync(join(tmpdir(), 'bpfpreloadlayouts'));
  try {
    const source = [...new Set(STRUCTS.map((spec) => spec.header))].map((header) => `#include <${header.replace('/usr/include/', '')}>`);
    // A global of each struct makes clang emit its type.
    source.push(...STRUCTS.map((spec) => `struct ${spec.struct} layout_of_${spec.struct};`), '');
    writeFileSync(join(dir, 'layouts.c'), source.join('\n'));
    const clang = clangTool();
    const r = spawnSync(clang, ['-g', '-target', 'bpf', '-I', multiarchDir(), '-c', 'layouts.c', '-o', 'layouts.o'], { cwd: dir, encoding: 'utf8' });
    if (r.error) throw new Error(`${clang}: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`${clang} on the headers: ${r.stderr.trim().split('\n')[0]}`);
    return readBtfDump(dumpBtf(join(dir, 'layouts.o')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The lines of the generated module after its header comment: one line a
 * struct (the package's size budget counts every byte), each @internal, which
 * keeps it out of the published .d.ts.
 */
export function layoutLines(layouts: ReadonlyMap<StructSpec, Layout>): string[] {
  const list = (record: Readonly<Record<string, number>>): string =>
    Object.entries(record)
      .map(([name, value]) => `${name}: ${value}`)
      .join(', ');
  return [...layouts].map(([spec, { size, offsets, bits }]) => {
    const bitsPart = bits ? `, bits: { ${list(bits)} }` : '';
    return `/** @internal */ export const ${spec.struct} = { size: ${size}, offsets: { ${list(offsets)} }${bitsPart} } as const;`;
  });
}
