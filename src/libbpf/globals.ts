// Global variables of a BPF object as typed JavaScript values. A generated
// skeleton describes each global section (.rodata, .data, .bss, .rodata.NAME,
// .data.NAME) as a layout: where each variable lies and what its BTF type
// is. This module turns the section's bytes into values and back. It knows
// nothing of libbpf, so tools that only decode a pinned map's value (status)
// can use it without loading anything. The same types describe a skeleton's
// map keys and values: typeCodec makes a map Codec of one.
import type { Codec } from './maps.js';

/** What a global (or a part of one) holds, and so what JavaScript value stands for it. */
export type ValueType =
  /** Integers and enums: number, or bigint when 8 bytes wide. */
  | { readonly kind: 'int'; readonly size: 1 | 2 | 4 | 8; readonly signed: boolean }
  | { readonly kind: 'bool' }
  | { readonly kind: 'float'; readonly size: 4 | 8 }
  /** A char array: the text up to its first NUL. */
  | { readonly kind: 'string'; readonly size: number }
  /** A fixed array: `length` elements `stride` bytes apart. */
  | { readonly kind: 'array'; readonly length: number; readonly stride: number; readonly elem: ValueType }
  /** A struct of plain fields: [name, byte offset, type] each. */
  | { readonly kind: 'struct'; readonly size: number; readonly fields: readonly (readonly [string, number, ValueType])[] }
  /** Anything else (pointers, unions, bitfields): the bytes themselves. */
  | { readonly kind: 'bytes'; readonly size: number };

/** One global section: its size and its variables, [name, byte offset, type] each. */
export interface SectionLayout {
  /** The ELF section, e.g. ".rodata" or ".data.config". */
  readonly section: string;
  readonly size: number;
  readonly vars: readonly (readonly [string, number, ValueType])[];
}

export function sizeOf(type: ValueType): number {
  switch (type.kind) {
    case 'bool':
      return 1;
    case 'int':
    case 'float':
    case 'string':
    case 'struct':
    case 'bytes':
      return type.size;
    case 'array':
      return type.length * type.stride;
  }
}

/** The value at `offset` of `buf`. Arrays and structs come back frozen: they are copies. */
export function decodeValue(buf: Buffer, offset: number, type: ValueType): unknown {
  switch (type.kind) {
    case 'bool':
      return buf[offset] !== 0;
    case 'int':
      if (type.size === 8) return type.signed ? buf.readBigInt64LE(offset) : buf.readBigUInt64LE(offset);
      return type.signed ? buf.readIntLE(offset, type.size) : buf.readUIntLE(offset, type.size);
    case 'float':
      return type.size === 4 ? buf.readFloatLE(offset) : buf.readDoubleLE(offset);
    case 'string':
      return cString(buf, offset, type.size);
    case 'array':
      return Object.freeze(Array.from({ length: type.length }, (_, i) => decodeValue(buf, offset + i * type.stride, type.elem)));
    case 'struct':
      return Object.freeze(Object.fromEntries(type.fields.map(([name, off, t]) => [name, decodeValue(buf, offset + off, t)])));
    case 'bytes':
      return bytesAt(buf, offset, type.size);
  }
}

/** The text of a `size`-byte char array at `offset`: up to its first NUL, or all of it. */
export function cString(buf: Buffer, offset: number, size: number): string {
  let end = offset;
  const limit = offset + size;
  while (end < limit && buf[end] !== 0) end++;
  return buf.toString('utf8', offset, end);
}

/** A copy of `size` bytes at `offset`. */
export function bytesAt(buf: Buffer, offset: number, size: number): Uint8Array {
  return new Uint8Array(buf.subarray(offset, offset + size));
}

/** Writes `value` at `offset` of `buf`; throws, naming `what`, if it does not fit the type. */
export function encodeValue(buf: Buffer, offset: number, type: ValueType, value: unknown, what: string): void {
  const wrong = (expected: string): never => {
    throw new TypeError(`${what}: expected ${expected}, got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`);
  };
  switch (type.kind) {
    case 'bool':
      if (typeof value !== 'boolean') wrong('a boolean');
      buf[offset] = value ? 1 : 0;
      return;
    case 'int': {
      const bits = type.size * 8;
      if (type.size === 8) {
        if (typeof value !== 'bigint') wrong('a bigint');
        const v = value as bigint;
        const [lo, hi] = type.signed ? [-(1n << 63n), (1n << 63n) - 1n] : [0n, (1n << 64n) - 1n];
        if (v < lo || v > hi) wrong(`a ${type.signed ? 'signed' : 'unsigned'} 64-bit integer`);
        if (type.signed) buf.writeBigInt64LE(v, offset);
        else buf.writeBigUInt64LE(v, offset);
        return;
      }
      const [lo, hi] = type.signed ? [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] : [0, 2 ** bits - 1];
      if (typeof value !== 'number' || !Number.isInteger(value) || value < lo || value > hi) {
        wrong(`an integer from ${lo} to ${hi}`);
      }
      if (type.signed) buf.writeIntLE(value as number, offset, type.size);
      else buf.writeUIntLE(value as number, offset, type.size);
      return;
    }
    case 'float':
      if (typeof value !== 'number') wrong('a number');
      if (type.size === 4) buf.writeFloatLE(value as number, offset);
      else buf.writeDoubleLE(value as number, offset);
      return;
    case 'string': {
      if (typeof value !== 'string') wrong('a string');
      const bytes = Buffer.from(value as string);
      // the C side reads up to a NUL: one must fit
      if (bytes.length >= type.size || bytes.includes(0)) wrong(`text of at most ${type.size - 1} bytes without NUL`);
      buf.fill(0, offset, offset + type.size);
      bytes.copy(buf, offset);
      return;
    }
    case 'array': {
      if (!Array.isArray(value) || value.length !== type.length) wrong(`an array of ${type.length}`);
      (value as unknown[]).forEach((v, i) => encodeValue(buf, offset + i * type.stride, type.elem, v, `${what}[${i}]`));
      return;
    }
    case 'struct': {
      if (typeof value !== 'object' || value === null) wrong('an object');
      const obj = value as Record<string, unknown>;
      for (const [name, off, t] of type.fields) {
        if (!(name in obj)) wrong(`an object with field ${name}`);
        encodeValue(buf, offset + off, t, obj[name], `${what}.${name}`);
      }
      return;
    }
    case 'bytes':
      if (!(value instanceof Uint8Array) || value.length !== type.size) wrong(`${type.size} bytes`);
      buf.set(value as Uint8Array, offset);
      return;
  }
}

/** A map Codec for keys or values of this type; `what` names them in errors ("map points value"). */
export function typeCodec<T>(type: ValueType, what: string): Codec<T> {
  const size = sizeOf(type);
  return {
    size,
    encode: (value) => {
      const bytes = Buffer.alloc(size);
      encodeValue(bytes, 0, type, value, what);
      return bytes;
    },
    decode: (bytes) => decodeValue(bytes, 0, type) as T,
  };
}

/** Where a section's bytes live: read them whole, write one variable's bytes. */
export interface SectionStore {
  /** Throws if the bytes are gone (their object closed); checked before every read and write. */
  assertOpen?(): void;
  read(): Buffer;
  write(offset: number, bytes: Buffer): void;
}

/**
 * An object with one property per variable of the section: reading decodes
 * the variable from the store's current bytes, assigning encodes and writes it.
 */
export function sectionVars<T>(layout: SectionLayout, store: SectionStore): T {
  const vars = {};
  for (const [name, offset, type] of layout.vars) {
    Object.defineProperty(vars, name, {
      enumerable: true,
      get: () => {
        store.assertOpen?.();
        return decodeValue(store.read(), offset, type);
      },
      set: (value: unknown) => {
        store.assertOpen?.();
        const bytes = Buffer.alloc(sizeOf(type));
        encodeValue(bytes, 0, type, value, `${layout.section} ${name}`);
        store.write(offset, bytes);
      },
    });
  }
  return Object.seal(vars) as T;
}

/** The variables of a section as held in `bytes` (a map value read from the kernel, say). */
export function decodeSection<T>(layout: SectionLayout, bytes: Buffer): T {
  if (bytes.length < layout.size) throw new RangeError(`${layout.section}: ${bytes.length} bytes, layout needs ${layout.size}`);
  return Object.freeze(Object.fromEntries(layout.vars.map(([name, offset, type]) => [name, decodeValue(bytes, offset, type)]))) as T;
}
