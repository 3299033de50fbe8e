// A check of an object's .BTF and .BTF.ext sections before libbpf parses
// them. libbpf 1.1 trusts their offsets and type ids (1.3 learned to check
// them): a corrupted string offset or type id makes it read out of bounds and
// crash the whole process. This checks what it would trust, as the kernel's
// BTF verifier does, so a malformed object is an error, never a crash. Formats
// from include/uapi/linux/btf.h and libbpf's btf.h (struct btf_ext_header).
import { TYPE_SIZE, infoKind, infoVlen, recordWords } from './format.js';
import {
  BTF_KIND_ARRAY,
  BTF_KIND_CONST,
  BTF_KIND_DATASEC,
  BTF_KIND_DECL_TAG,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_FUNC,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_INT,
  BTF_KIND_PTR,
  BTF_KIND_RESTRICT,
  BTF_KIND_STRUCT,
  BTF_KIND_TYPEDEF,
  BTF_KIND_TYPE_TAG,
  BTF_KIND_UNION,
  BTF_KIND_VAR,
  BTF_KIND_VOLATILE,
  BTF_MAGIC,
} from '../sys/uapi.js';

// Kinds whose third word is a type id.
const REFERS = new Set<number>([
  BTF_KIND_PTR,
  BTF_KIND_TYPEDEF,
  BTF_KIND_VOLATILE,
  BTF_KIND_CONST,
  BTF_KIND_RESTRICT,
  BTF_KIND_FUNC,
  BTF_KIND_VAR,
  BTF_KIND_DECL_TAG,
  BTF_KIND_TYPE_TAG,
]);

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
  for (let at = 0; at < types.length;) {
    const info = types.u32(at + 4);
    const kind = infoKind(info);
    const vlen = infoVlen(info);
    if (kind < BTF_KIND_INT || kind > BTF_KIND_ENUM64) throw new Malformed(`.BTF type ${starts.length + 1} has unknown kind ${kind}`);
    if (!validString(types.u32(at))) throw new Malformed(`.BTF type ${starts.length + 1} has its name outside the strings`);
    starts.push(at);
    at += TYPE_SIZE + 4 * recordWords(kind, vlen);
    if (at > types.length) throw new Malformed(`.BTF type ${starts.length} runs past the type section`);
  }
  const count = starts.length;
  const kindOf = (id: number) => (id === 0 ? 0 : infoKind(types.u32(starts[id - 1] + 4)));
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
    const kind = infoKind(info);
    const vlen = infoVlen(info);
    const third = types.u32(at + 8);
    const extra = at + TYPE_SIZE;
    if (REFERS.has(kind)) ref(id, third, 'it');
    if (kind === BTF_KIND_FUNC && kindOf(third) !== BTF_KIND_FUNC_PROTO) throw new Malformed(`.BTF type ${id}: a function whose type is not a prototype`);
    if (kind === BTF_KIND_ARRAY) {
      ref(id, types.u32(extra), 'its element type');
      ref(id, types.u32(extra + 4), 'its index type');
    }
    for (let k = 0; k < vlen; k++) {
      switch (kind) {
        case BTF_KIND_STRUCT:
        case BTF_KIND_UNION:
          name(id, types.u32(extra + 12 * k));
          ref(id, types.u32(extra + 12 * k + 4), `member ${k}`);
          break;
        case BTF_KIND_ENUM:
          name(id, types.u32(extra + 8 * k));
          break;
        case BTF_KIND_ENUM64:
          name(id, types.u32(extra + 12 * k));
          break;
        case BTF_KIND_FUNC_PROTO:
          name(id, types.u32(extra + 8 * k));
          ref(id, types.u32(extra + 8 * k + 4), `parameter ${k}`);
          break;
        case BTF_KIND_DATASEC: {
          const v = types.u32(extra + 12 * k);
          ref(id, v, `variable ${k}`);
          const vk = kindOf(v);
          if (vk !== BTF_KIND_VAR && vk !== BTF_KIND_FUNC) throw new Malformed(`.BTF type ${id}: section entry ${k} is not a variable`);
          break;
        }
      }
    }
    if (kind === BTF_KIND_FUNC_PROTO) ref(id, third, 'its return type');
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
    for (let off = 4; off < part.length;) {
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
