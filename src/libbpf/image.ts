// The memory image of a map made from a section of globals (.rodata, .data,
// .bss): the bytes libbpf keeps for it (bpf_map__initial_value), read and
// written in place, and after load mapped over with the kernel map itself.
// The plumbing behind BpfMap's readImage, writeImage and mapImage; element
// access through the map's fd is maps.ts's.
import { SysError } from './error.js';
import { valueStride } from './maps.js';
import { native, type Pointer } from './sys/native.js';
import { MAP_FIXED, MAP_SHARED, PROT_READ, PROT_WRITE } from './sys/linux.js';

/** Where libbpf keeps the image of the map `map` (a struct bpf_map *), and its size; null if it has none. */
function locate(map: Pointer): { address: bigint; size: number } | null {
  const n = native();
  const size: [number | bigint] = [0];
  const ptr = n.bpf_map__initial_value(map, size);
  return ptr === null ? null : { address: n.pointerAddress(ptr), size: Number(size[0]) };
}

/** A copy of the image of `map`, named `name` in errors. */
export function readImage(map: Pointer, name: string): Buffer {
  const image = locate(map);
  if (image === null) throw new Error(`map ${name} has no memory image (not a section of globals, or not mmapable)`);
  const out = Buffer.alloc(image.size);
  if (out.length) native().copyFrom(out, image.address, out.length);
  return out;
}

/** Writes `bytes` into the image of `map` at `offset`. */
export function writeImage(map: Pointer, name: string, offset: number, bytes: Buffer): void {
  const image = locate(map);
  if (image === null || offset + bytes.length > image.size) throw new RangeError(`map ${name}: write past its memory image`);
  native().copyTo(image.address + BigInt(offset), bytes, bytes.length);
}

/** Maps the kernel map behind `fd` (maxEntries values) over the image of `map`, shared, at the same address. */
export function mapImage(map: Pointer, name: string, fd: number, shape: { valueSize: number; maxEntries: number }, readOnly: boolean): void {
  const n = native();
  const image = locate(map);
  if (image === null) throw new Error(`map ${name} has no memory image`);
  const page = n.getpagesize();
  const bytes = Math.ceil((valueStride(shape.valueSize) * shape.maxEntries) / page) * page;
  const got = BigInt(n.mmap(image.address, bytes, readOnly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0));
  if (got !== image.address) throw new SysError('mmap', `map memory of ${name}`, n.errno());
}
