// Run by libbpf-malformed.test.ts in a process of its own, so that a crash
// is seen as one: opens (and, where that works, loads) deterministic
// mutations of a real BPF object with BpfObject.openMem, printing a line
// before each attempt and one after, so the last line names the mutation a
// crash or hang happened in.
//   node build/run.mjs test/lib/open-mutants.ts OBJECT COUNT SEED
import { readFileSync } from 'node:fs';
import { BpfObject, LibbpfError } from '../../src/libbpf/index.js';

const [path, countText, seedText, fromText] = process.argv.slice(2);
const original = readFileSync(path);
const count = Number(countText);
let state = Number(seedText) >>> 0 || 1;

/** xorshift32: the same mutations every run. */
function random(below: number): number {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state % below;
}

/** Offset and size of the section called `name` (ELF64, little-endian). */
function section(elf: Buffer, name: string): { offset: number; size: number } {
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const strtab = shoff + elf.readUInt16LE(0x3e) * shentsize;
  const strOffset = Number(elf.readBigUInt64LE(strtab + 0x18));
  for (let i = 0; i < shnum; i++) {
    const sh = shoff + i * shentsize;
    const nameAt = strOffset + elf.readUInt32LE(sh);
    if (elf.toString('latin1', nameAt, elf.indexOf(0, nameAt)) === name) {
      return { offset: Number(elf.readBigUInt64LE(sh + 0x18)), size: Number(elf.readBigUInt64LE(sh + 0x20)) };
    }
  }
  throw new Error(`${path} has no ${name} section`);
}

const btf = section(original, '.BTF');
// struct btf_header: magic, version, flags, hdr_len, then type_off, type_len, str_off, str_len (u32 each).
const BTF_LENGTHS = [8, 12, 16, 20];

function mutant(i: number): { what: string; bytes: Buffer } {
  const bytes = Buffer.from(original);
  switch (i % 4) {
    case 0: {
      const at = Array.from({ length: 1 + random(4) }, () => random(bytes.length));
      for (const a of at) bytes[a] ^= 1 + random(255);
      return { what: `bytes flipped at ${at.join(',')}`, bytes };
    }
    case 1: {
      const length = random(bytes.length);
      return { what: `truncated to ${length} of ${bytes.length} bytes`, bytes: bytes.subarray(0, length) };
    }
    case 2: {
      const field = BTF_LENGTHS[random(4)];
      const value = [0, 0xffffffff, btf.size * 2, random(btf.size), 0x7fffffff][random(5)];
      bytes.writeUInt32LE(value, btf.offset + field);
      return { what: `BTF header field at ${field} set to ${value}`, bytes };
    }
    default: {
      const at = btf.offset + 24 + random(btf.size - 24);
      bytes[at] ^= 1 + random(255);
      return { what: `BTF byte ${at} flipped`, bytes };
    }
  }
}

for (let i = 0; i < count; i++) {
  const { what, bytes } = mutant(i);
  if (i < Number(fromText ?? 0)) continue;
  console.log(`try ${i} ${what}`);
  // try/finally rather than `using`: esbuild (build/run.mjs) lowers a `using`
  // in a loop body so that one iteration's error resurfaces in the next.
  let obj: BpfObject | null = null;
  try {
    obj = BpfObject.openMem(bytes, { name: 'mutant' });
    obj.load();
    console.log(`done ${i} loaded`);
  } catch (err) {
    const kind = err instanceof LibbpfError ? 'LibbpfError' : (err as Error).name;
    console.log(`done ${i} ${kind}: ${JSON.stringify((err as Error).message)}`);
  } finally {
    obj?.close();
  }
}
console.log('finished');
