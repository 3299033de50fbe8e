// A check of an object's .BTF and .BTF.ext sections before libbpf parses
// them. libbpf 1.1 trusts their offsets and type ids (1.3 learned to check
// them): a corrupted string offset or type id makes it read out of bounds and
// crash the whole process. This checks what it would trust, as the kernel's
// BTF verifier does, so a malformed object is an error, never a crash. Formats
// from include/uapi/linux/btf.h and libbpf's btf.h (struct btf_ext_header).

const BTF_MAGIC = 0xeb9f;
const TYPE_SIZE = 12; // struct btf_type: name_off, info, size or type

// enum of BTF kinds, and what each kind appends after struct btf_type.
const KIND = {
  INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10,
  RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
} as const;
/** Bytes after struct btf_type: fixed, then per vlen entry. */
const EXTRA: Record<number, [fixed: number, perEntry: number]> = {
  [KIND.INT]: [4, 0], [KIND.ARRAY]: [12, 0], [KIND.STRUCT]: [0, 12], [KIND.UNION]: [0, 12], [KIND.ENUM]: [0, 8],
  [KIND.FUNC_PROTO]: [0, 8], [KIND.VAR]: [4, 0], [KIND.DATASEC]: [0, 12], [KIND.DECL_TAG]: [4, 0], [KIND.ENUM64]: [0, 12],
};
// Kinds whose third word is a type id.
const REFERS = new Set<number>([KIND.PTR, KIND.TYPEDEF, KIND.VOLATILE, KIND.CONST, KIND.RESTRICT, KIND.FUNC, KIND.VAR, KIND.DECL_TAG, KIND.TYPE_TAG]);

class Malformed extends Error {}

/** A bounds-checked little-endian view of part of a buffer. */
class Region {
  constructor(
    readonly buf: Buffer,
    readonly start: number,
    readonly length: number,
    readonly what: string,
  ) {
    if (start < 0 || length < 0 || start + length > buf.length) throw new Malformed(`${what} lies outside the file`);
  }
  u32(at: number): number {
    if (at < 0 || at + 4 > this.length) throw new Malformed(`${this.what} is cut short`);
    return this.buf.readUInt32LE(this.start + at);
  }
  u16(at: number): number {
    if (at < 0 || at + 2 > this.length) throw new Malformed(`${this.what} is cut short`);
    return this.buf.readUInt16LE(this.start + at);
  }
  sub(at: number, length: number, what: string): Region {
    if (at < 0 || length < 0 || at + length > this.length) throw new Malformed(`${what} lies outside ${this.what}`);
    return new Region(this.buf, this.start + at, length, what);
  }
}

/**
 * The .BTF and .BTF.ext sections of an ELF64 little-endian file; null when it
 * is not one or its section headers do not fit the file: libelf checks those
 * and says why (LIBBPF_ERRNO__FORMAT, __LIBELF).
 */
function sections(elf: Buffer): Map<string, Region> | null {
  try {
    return btfSections(elf);
  } catch (err) {
    if (err instanceof Malformed) return null;
    throw err;
  }
}

function btfSections(elf: Buffer): Map<string, Region> | null {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return null;
  const file = new Region(elf, 0, elf.length, 'the ELF file');
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = file.u16(0x3a);
  const shnum = file.u16(0x3c);
  const shstrndx = file.u16(0x3e);
  if (shentsize < 64 || shstrndx >= shnum) return null;
  const table = file.sub(shoff, shnum * shentsize, 'the section header table');
  const header = (i: number) => {
    const at = i * shentsize;
    return { name: table.u32(at), offset: Number(elf.readBigUInt64LE(table.start + at + 0x18)), size: Number(elf.readBigUInt64LE(table.start + at + 0x20)) };
  };
  const names = header(shstrndx);
  const strtab = file.sub(names.offset, names.size, 'the section name table');
  const out = new Map<string, Region>();
  for (let i = 0; i < shnum; i++) {
    const h = header(i);
    if (h.name >= strtab.length) continue;
    const end = elf.indexOf(0, strtab.start + h.name);
    if (end < 0 || end >= strtab.start + strtab.length) continue;
    const name = elf.toString('latin1', strtab.start + h.name, end);
    if (name === '.BTF' || name === '.BTF.ext') out.set(name, file.sub(h.offset, h.size, `section ${name}`));
  }
  return out;
}

interface Btf {
  /** Number of types, void (0) excluded: valid ids are 0..count. */
  count: number;
  /** Whether `off` starts a NUL-terminated string inside the string section. */
  validString(off: number): boolean;
}

function checkBtf(btf: Region): Btf {
  if (btf.u16(0) !== BTF_MAGIC) throw new Malformed('.BTF has a bad magic number');
  const hdrLen = btf.u32(4);
  if (hdrLen < 24) throw new Malformed('.BTF header is too short');
  const types = btf.sub(hdrLen + btf.u32(8), btf.u32(12), '.BTF type section');
  const strings = btf.sub(hdrLen + btf.u32(16), btf.u32(20), '.BTF string section');
  if (strings.length === 0 || btf.buf[strings.start] !== 0 || btf.buf[strings.start + strings.length - 1] !== 0) {
    throw new Malformed('.BTF string section is not NUL-delimited');
  }
  const validString = (off: number) => off < strings.length;
  // First pass: each type's extent and kind; ids count from 1.
  const starts: number[] = [];
  for (let at = 0; at < types.length; ) {
    const info = types.u32(at + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    if (kind < KIND.INT || kind > KIND.ENUM64) throw new Malformed(`.BTF type ${starts.length + 1} has unknown kind ${kind}`);
    if (!validString(types.u32(at))) throw new Malformed(`.BTF type ${starts.length + 1} has its name outside the strings`);
    const [fixed, perEntry] = EXTRA[kind] ?? [0, 0];
    starts.push(at);
    at += TYPE_SIZE + fixed + perEntry * vlen;
    if (at > types.length) throw new Malformed(`.BTF type ${starts.length} runs past the type section`);
  }
  const count = starts.length;
  const kindOf = (id: number) => (id === 0 ? 0 : (types.u32(starts[id - 1] + 4) >>> 24) & 0x1f);
  const ref = (id: number, type: number, what: string) => {
    if (type > count) throw new Malformed(`.BTF type ${id}: ${what} refers to type ${type}, of ${count}`);
  };
  const name = (id: number, off: number) => {
    if (!validString(off)) throw new Malformed(`.BTF type ${id} has a name outside the strings`);
  };
  // Second pass: every reference inside the types.
  starts.forEach((at, i) => {
    const id = i + 1;
    const info = types.u32(at + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const third = types.u32(at + 8);
    const extra = at + TYPE_SIZE;
    if (REFERS.has(kind)) ref(id, third, 'it');
    if (kind === KIND.FUNC && kindOf(third) !== KIND.FUNC_PROTO) throw new Malformed(`.BTF type ${id}: a function whose type is not a prototype`);
    if (kind === KIND.ARRAY) {
      ref(id, types.u32(extra), 'its element type');
      ref(id, types.u32(extra + 4), 'its index type');
    }
    for (let k = 0; k < vlen; k++) {
      switch (kind) {
        case KIND.STRUCT:
        case KIND.UNION:
          name(id, types.u32(extra + 12 * k));
          ref(id, types.u32(extra + 12 * k + 4), `member ${k}`);
          break;
        case KIND.ENUM:
          name(id, types.u32(extra + 8 * k));
          break;
        case KIND.ENUM64:
          name(id, types.u32(extra + 12 * k));
          break;
        case KIND.FUNC_PROTO:
          name(id, types.u32(extra + 8 * k));
          ref(id, types.u32(extra + 8 * k + 4), `parameter ${k}`);
          break;
        case KIND.DATASEC: {
          const v = types.u32(extra + 12 * k);
          ref(id, v, `variable ${k}`);
          const vk = kindOf(v);
          if (vk !== KIND.VAR && vk !== KIND.FUNC) throw new Malformed(`.BTF type ${id}: section entry ${k} is not a variable`);
          break;
        }
      }
    }
    if (kind === KIND.FUNC_PROTO) ref(id, third, 'its return type');
  });
  return { count, validString };
}

// struct btf_ext_header: magic, version, flags (u16, u8, u8), hdr_len, then
// func_info_off/len, line_info_off/len, and (hdr_len >= 32) core_relo_off/len.
function checkBtfExt(ext: Region, btf: Btf): void {
  if (ext.u16(0) !== BTF_MAGIC) throw new Malformed('.BTF.ext has a bad magic number');
  const hdrLen = ext.u32(4);
  if (hdrLen < 24) throw new Malformed('.BTF.ext header is too short');
  // [what, minimum record size, fields that are type ids, fields that are string offsets] (field indexes in u32s)
  const parts: [string, number, number, number[], number[]][] = [
    ['func_info', 8, 8, [1], []],
    ['line_info', 16, 16, [], [1, 2]],
  ];
  if (hdrLen >= 32) parts.push(['core_relo', 24, 16, [1], [2]]);
  parts.forEach(([what, at, minRecord, typeFields, stringFields]) => {
    const length = ext.u32(at + 4);
    if (length === 0) return;
    const part = ext.sub(hdrLen + ext.u32(at), length, `.BTF.ext ${what}`);
    const recordSize = part.u32(0);
    if (recordSize < minRecord || recordSize % 4 !== 0) throw new Malformed(`.BTF.ext ${what} has records of ${recordSize} bytes`);
    for (let off = 4; off < part.length; ) {
      if (!btf.validString(part.u32(off))) throw new Malformed(`.BTF.ext ${what} names a section outside the strings`);
      const records = part.u32(off + 4);
      off += 8;
      if (records * recordSize > part.length - off) throw new Malformed(`.BTF.ext ${what} runs past its end`);
      for (let r = 0; r < records; r++, off += recordSize) {
        for (const f of typeFields) if (part.u32(off + 4 * f) > btf.count) throw new Malformed(`.BTF.ext ${what} refers to a type that is not there`);
        for (const f of stringFields) if (!btf.validString(part.u32(off + 4 * f))) throw new Malformed(`.BTF.ext ${what} has a string outside the strings`);
      }
    }
  });
}

/**
 * What is wrong with the object's BTF, in a few words, or null when nothing
 * is (or the ELF file itself is broken, which libelf then rejects by itself).
 */
export function btfProblem(elf: Buffer): string | null {
  try {
    const found = sections(elf);
    const btf = found?.get('.BTF');
    if (!found || !btf) return null;
    const checked = checkBtf(btf);
    const ext = found.get('.BTF.ext');
    if (ext) checkBtfExt(ext, checked);
    return null;
  } catch (err) {
    if (err instanceof Malformed) return err.message;
    throw err;
  }
}
