// Just enough of ELF64 and BTF to find bytes to corrupt: tests build
// malformed objects from a compiled fixture, deterministically, by patching
// a section header or a BTF type in place, rather than committing binaries.
import { recordWords } from '../../src/libbpf/btf/format.js';

export const SHT_NOBITS = 8;

export interface ElfSection {
  name: string;
  /** Where its section header starts in the file. */
  header: number;
  type: number;
  /** Where its data starts in the file, and how long it is. */
  offset: number;
  size: number;
}

/** The sections of a little-endian ELF64 object (what clang -target bpf makes on x86 and arm64). */
export function elfSections(elf: Buffer): ElfSection[] {
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) throw new Error('not a little-endian ELF64 object');
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  const raw = Array.from({ length: shnum }, (_, i) => {
    const header = shoff + i * shentsize;
    return {
      header,
      nameOff: elf.readUInt32LE(header),
      type: elf.readUInt32LE(header + 4),
      offset: Number(elf.readBigUInt64LE(header + 0x18)),
      size: Number(elf.readBigUInt64LE(header + 0x20)),
    };
  });
  const names = raw[shstrndx];
  return raw.map(({ nameOff, ...s }) => {
    const start = names.offset + nameOff;
    return { ...s, name: elf.toString('latin1', start, elf.indexOf(0, start)) };
  });
}

export function elfSection(elf: Buffer, name: string): ElfSection {
  const found = elfSections(elf).find((s) => s.name === name);
  if (!found) throw new Error(`no ${name} section`);
  return found;
}

export interface BtfTypeAt {
  id: number;
  /** Where the type's 12-byte header starts in the file. */
  at: number;
  name: string;
  kind: number;
  /** Its size, or the type it refers to. */
  sizeOrType: number;
}

/** The types of the object's .BTF section, by id (index 0 is void, absent), with their places in the file. */
export function btfTypes(elf: Buffer): BtfTypeAt[] {
  const btf = elfSection(elf, '.BTF');
  const base = btf.offset;
  if (elf.readUInt16LE(base) !== 0xeb9f) throw new Error('.BTF: bad magic');
  const hdrLen = elf.readUInt32LE(base + 4);
  const [typeOff, typeLen, strOff] = [8, 12, 16].map((o) => elf.readUInt32LE(base + o));
  const strings = base + hdrLen + strOff;
  const types: BtfTypeAt[] = [];
  for (let at = base + hdrLen + typeOff, id = 1; at < base + hdrLen + typeOff + typeLen; id++) {
    const nameOff = elf.readUInt32LE(at);
    const info = elf.readUInt32LE(at + 4);
    const kind = (info >>> 24) & 0x1f;
    const name = elf.toString('latin1', strings + nameOff, elf.indexOf(0, strings + nameOff));
    types[id] = { id, at, name, kind, sizeOrType: elf.readUInt32LE(at + 8) };
    at += 12 + 4 * recordWords(kind, info & 0xffff);
  }
  return types;
}

/** The first type named `name` of this kind. */
export function btfType(types: BtfTypeAt[], kind: number, name: string): BtfTypeAt {
  const found = types.find((t) => t?.kind === kind && t.name === name);
  if (!found) throw new Error(`no BTF type of kind ${kind} named ${name}`);
  return found;
}
