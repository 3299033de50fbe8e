// Build time only: records a light-skeleton loader with libbpf's gen_loader.
// With a gen_loader attached, bpf_object__load does not touch the kernel's
// BPF objects: it writes a BPF_PROG_TYPE_SYSCALL program (insns) and the
// blob it reads (data: BTF, program bytes, map initial values, CO-RE
// relocations) that will do the whole load inside the kernel at run time.
import { callInt } from './sys/call.js';
import { BpfObject } from './object.js';
import { native } from './sys/native.js';

export interface RecordedLoader {
  insns: Buffer;
  data: Buffer;
}

/**
 * Opens `bytes` as `objectName` (internal map names derive from it and are
 * recorded into the loader), keeps autoload only for `programs`, and returns
 * the recorded loader. Throws if a program named is not in the object.
 */
export function recordLoader(bytes: Uint8Array, objectName: string, programs: readonly string[]): RecordedLoader {
  const n = native();
  using obj = BpfObject.openMem(bytes, { name: objectName });
  for (const name of programs) obj.program(name);
  for (const prog of obj.programs.values()) prog.autoload = programs.includes(prog.name);
  // A struct gen_loader_opts (native.ts) as bytes: libbpf keeps this pointer
  // and writes the results into it at load, so the Buffer must not move or
  // die before we have read them.
  const at = n.genLoaderOpts;
  const opts = Buffer.alloc(at.size);
  opts.writeBigUInt64LE(BigInt(at.size), 0);
  const ptr = obj.assertOpen();
  callInt(`record loader for ${objectName}`, () => n.bpf_object__gen_loader(ptr, opts));
  obj.load();
  const copy = (addrAt: number, sizeAt: number) => {
    const out = Buffer.alloc(opts.readUInt32LE(sizeAt));
    if (out.length) n.copyFrom(out, opts.readBigUInt64LE(addrAt), out.length);
    return out;
  };
  // Both point into memory the object owns: copy before it closes.
  return { data: copy(at.data, at.dataSize), insns: copy(at.insns, at.insnsSize) };
}
