// Map elements through the map's fd: lookup, update, delete, key iteration
// and batch lookup, with keys and values as bytes. Per-CPU maps hold one
// value per possible CPU, each padded to 8 bytes in the kernel's buffers;
// here they are an array of values, one per CPU. A Codec turns the bytes
// into JS values (typed()); generated skeletons bring codecs from BTF.
import { constants } from 'node:os';
import { closeSync } from 'node:fs';
import { callSys } from './sys/call.js';
import { ClosedError, KeyExistsError, KeyNotFoundError } from './error.js';
import { mapInfo, mapFdById, objGet } from './info.js';
import { native } from './sys/native.js';
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_F_LOCK,
  BPF_MAP_TYPE_LRU_PERCPU_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY,
  BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
  BPF_MAP_TYPE_PERCPU_HASH,
  BPF_NOEXIST,
} from './sys/uapi.js';

const { ENOENT, EEXIST, ENOSPC } = constants.errno;

/** bpf_map_update_elem flags. */
export const UpdateFlags = {
  /** Create or replace (BPF_ANY). */
  Any: BPF_ANY,
  /** Create only; KeyExistsError (EEXIST) if the key is there (BPF_NOEXIST). */
  NoExist: BPF_NOEXIST,
  /** Replace only; KeyNotFoundError (ENOENT) if the key is not there (BPF_EXIST). */
  Exist: BPF_EXIST,
  /** Take the value's bpf_spin_lock (BPF_F_LOCK). */
  Lock: BPF_F_LOCK,
} as const;

/** The per-CPU map types. */
const PERCPU_TYPES: ReadonlySet<number> = new Set([
  BPF_MAP_TYPE_PERCPU_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY,
  BPF_MAP_TYPE_LRU_PERCPU_HASH,
  BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
]);

/** The result of an element call that names a key: a missing or present key is its own error. */
function keyed(op: string, ret: number): number {
  if (ret === -ENOENT) throw new KeyNotFoundError(op);
  if (ret === -EEXIST) throw new KeyExistsError(op);
  return callSys(op, () => ret);
}

/** Bytes a value takes where the kernel lays several side by side (per-CPU values, an array's mmap): rounded up to 8. */
export function valueStride(valueSize: number): number {
  return Math.ceil(valueSize / 8) * 8;
}

let cpus: number | undefined;

/** How many CPUs the kernel could ever bring up: the length of a per-CPU value. */
export function possibleCpus(): number {
  cpus ??= callSys('count possible CPUs', () => native().libbpf_num_possible_cpus());
  return cpus;
}

/** Turns a map's key or value bytes into a JS value and back. */
export interface Codec<T> {
  /** Bytes per key or value. */
  readonly size: number;
  readonly encode: (value: T) => Uint8Array;
  readonly decode: (bytes: Buffer) => T;
}

function intCodec<T>(size: number, write: (b: Buffer, v: T) => void, read: (b: Buffer) => T): Codec<T> {
  return {
    size,
    encode: (v) => {
      const b = Buffer.alloc(size);
      write(b, v);
      return b;
    },
    decode: read,
  };
}

/** Codecs for plain little-endian integers and raw bytes. */
export const codecs = {
  u8: intCodec<number>(
    1,
    (b, v) => b.writeUInt8(v),
    (b) => b.readUInt8(0),
  ),
  u16: intCodec<number>(
    2,
    (b, v) => b.writeUInt16LE(v),
    (b) => b.readUInt16LE(0),
  ),
  u32: intCodec<number>(
    4,
    (b, v) => b.writeUInt32LE(v),
    (b) => b.readUInt32LE(0),
  ),
  i32: intCodec<number>(
    4,
    (b, v) => b.writeInt32LE(v),
    (b) => b.readInt32LE(0),
  ),
  u64: intCodec<bigint>(
    8,
    (b, v) => b.writeBigUInt64LE(v),
    (b) => b.readBigUInt64LE(0),
  ),
  i64: intCodec<bigint>(
    8,
    (b, v) => b.writeBigInt64LE(v),
    (b) => b.readBigInt64LE(0),
  ),
  /** `size` bytes as they are. */
  bytes: (size: number): Codec<Buffer> => ({ size, encode: (v) => v, decode: (b) => b }),
};

const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** The value stored under `key` in the map behind `fd`, or null when there is none. */
export function mapLookup(fd: number, key: Uint8Array, valueSize: number): Buffer | null {
  const value = Buffer.alloc(valueSize);
  const ret = native().bpf_map_lookup_elem(fd, key, value);
  if (ret === -ENOENT) return null;
  callSys(`look up element in map fd ${fd}`, () => ret);
  return value;
}

/** Stores `value` under `key` in the map behind `fd` (flags: UpdateFlags). */
export function mapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags: number = UpdateFlags.Any): void {
  keyed(`update element in map fd ${fd}`, native().bpf_map_update_elem(fd, key, value, BigInt(flags)));
}

/**
 * Element access shared by every kind of map handle: a map of a loaded
 * object (BpfMap) or one held by a bare fd (FdMap).
 */
export abstract class MapElements {
  abstract readonly name: string;
  abstract get fd(): number;
  /** bpf_map_type as a number. */
  abstract get type(): number;
  abstract get keySize(): number;
  abstract get valueSize(): number;
  /** @internal Throws ClosedError once the map's owner is closed. */
  abstract assertOpen(): void;

  /** Whether values are per CPU (lookupPerCpu / updatePerCpu). */
  get perCpu(): boolean {
    return PERCPU_TYPES.has(this.type);
  }

  /** The value under `key`, or null when there is none. Not for per-CPU maps. */
  lookup(key: Uint8Array): Buffer | null {
    this.#plain('lookup');
    return mapLookup(this.fd, this.#key(key), this.valueSize);
  }

  /** One value per possible CPU, or null when the key is not there. */
  lookupPerCpu(key: Uint8Array): Buffer[] | null {
    this.#percpu('lookupPerCpu');
    const all = mapLookup(this.fd, this.#key(key), this.#stride() * possibleCpus());
    return all && this.#split(all);
  }

  /** Stores `value` under `key` (flags: UpdateFlags). Not for per-CPU maps. */
  update(key: Uint8Array, value: Uint8Array, flags: number = UpdateFlags.Any): void {
    this.#plain('update');
    if (value.length !== this.valueSize) throw new RangeError(`map ${this.name}: value of ${value.length} bytes, expected ${this.valueSize}`);
    mapUpdate(this.fd, this.#key(key), value, flags);
  }

  /** Stores one value per possible CPU under `key`. */
  updatePerCpu(key: Uint8Array, values: readonly Uint8Array[], flags: number = UpdateFlags.Any): void {
    this.#percpu('updatePerCpu');
    const n = possibleCpus();
    if (values.length !== n) throw new RangeError(`map ${this.name}: ${values.length} values, one per possible CPU (${n}) expected`);
    const stride = this.#stride();
    const all = Buffer.alloc(stride * n);
    values.forEach((v, i) => {
      if (v.length !== this.valueSize) throw new RangeError(`map ${this.name}: value of ${v.length} bytes, expected ${this.valueSize}`);
      all.set(v, i * stride);
    });
    mapUpdate(this.fd, this.#key(key), all, flags);
  }

  /** Removes `key`; false if it was not there. */
  delete(key: Uint8Array): boolean {
    const ret = native().bpf_map_delete_elem(this.fd, this.#key(key));
    if (ret === -ENOENT) return false;
    callSys(`delete element from map ${this.name}`, () => ret);
    return true;
  }

  /**
   * The value under `key`, removed in the same step; null when there is
   * none. For queue and stack maps (no key: an empty one) it pops the next value.
   */
  lookupAndDelete(key: Uint8Array): Buffer | null {
    this.#plain('lookupAndDelete');
    const value = Buffer.alloc(this.valueSize);
    const ret: number = native().bpf_map_lookup_and_delete_elem(this.fd, this.#key(key), value);
    if (ret === -ENOENT) return null;
    callSys(`look up and delete element in map ${this.name}`, () => ret);
    return value;
  }

  /** Stores each of `values` under the key at the same index, in BPF_MAP_UPDATE_BATCH calls. Not for per-CPU maps. */
  updateBatch(keys: readonly Uint8Array[], values: readonly Uint8Array[], flags: number = UpdateFlags.Any): void {
    this.#plain('updateBatch');
    if (keys.length !== values.length) throw new RangeError(`map ${this.name}: ${keys.length} keys for ${values.length} values`);
    for (const v of values) if (v.length !== this.valueSize) throw new RangeError(`map ${this.name}: value of ${v.length} bytes, expected ${this.valueSize}`);
    const n = native();
    const keyBytes = Buffer.concat(keys.map((k) => this.#key(k)));
    const valueBytes = Buffer.concat(values.map(asBuffer));
    const count: [number] = [keys.length];
    const opts = { sz: n.batchOptsSize, elem_flags: BigInt(flags), flags: 0n };
    keyed(`batch update of map ${this.name}`, n.bpf_map_update_batch(this.fd, keyBytes, valueBytes, count, opts));
  }

  /** Removes every key of `keys` (BPF_MAP_DELETE_BATCH); a missing one fails the call (ENOENT) after those before it. */
  deleteBatch(keys: readonly Uint8Array[]): void {
    const n = native();
    const fd = this.fd;
    const keyBytes = Buffer.concat(keys.map((k) => this.#key(k)));
    const count: [number] = [keys.length];
    const opts = { sz: n.batchOptsSize, elem_flags: 0n, flags: 0n };
    keyed(`batch delete from map ${this.name}`, n.bpf_map_delete_batch(fd, keyBytes, count, opts));
  }

  /** Makes the map read-only to user space from now on (BPF programs may still write it). */
  freeze(): void {
    const fd = this.fd;
    callSys(`freeze map ${this.name}`, () => native().bpf_map_freeze(fd));
  }

  /** Every key, in the kernel's order (BPF_MAP_GET_NEXT_KEY). */
  keys(): Generator<Buffer> {
    // Checked now, not at the first next(): a closed map fails where it is used.
    this.assertOpen();
    return this.#keys();
  }

  *#keys(): Generator<Buffer> {
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      const ret: number = native().bpf_map_get_next_key(this.fd, prev, next);
      if (ret === -ENOENT) return;
      callSys(`next key of map ${this.name}`, () => ret);
      yield next;
      prev = next;
    }
  }

  /**
   * Every key and value in a few BPF_MAP_LOOKUP_BATCH calls (hash and array
   * maps, 5.6+; elsewhere a SysError, EINVAL or ENOTSUPP). Not for per-CPU maps.
   */
  lookupBatch(batchSize = 64): [Buffer, Buffer][] {
    this.#plain('lookupBatch');
    return this.#batch(batchSize, this.valueSize);
  }

  /** lookupBatch for per-CPU maps: each value is one per possible CPU. */
  lookupBatchPerCpu(batchSize = 64): [Buffer, Buffer[]][] {
    this.#percpu('lookupBatchPerCpu');
    return this.#batch(batchSize, this.#stride() * possibleCpus()).map(([k, v]) => [k, this.#split(v)]);
  }

  /** A view of this map through codecs for its keys and values. */
  typed<K, V>(key: Codec<K>, value: Codec<V>): TypedMap<K, V> {
    if (key.size !== this.keySize || value.size !== this.valueSize) {
      throw new RangeError(`map ${this.name}: codecs for ${key.size}-byte keys and ${value.size}-byte values, map has ${this.keySize} and ${this.valueSize}`);
    }
    return new TypedMap(this, key, value);
  }

  #batch(batchSize: number, valueBytes: number): [Buffer, Buffer][] {
    const n = native();
    const out: [Buffer, Buffer][] = [];
    // The batch token is opaque: a key for arrays, a bucket for hashes.
    const tokenSize = Math.max(this.keySize, 8);
    let inBatch: Buffer | null = null;
    for (let size = batchSize; ;) {
      const keys = Buffer.alloc(this.keySize * size);
      const values = Buffer.alloc(valueBytes * size);
      const outBatch = Buffer.alloc(tokenSize);
      const count: [number] = [size];
      const opts = { sz: n.batchOptsSize, elem_flags: 0n, flags: 0n };
      const ret: number = n.bpf_map_lookup_batch(this.fd, inBatch, outBatch, keys, values, count, opts);
      // ENOSPC: a hash bucket holds more than the batch has room for.
      if (ret === -ENOSPC && count[0] === 0) {
        size *= 2;
        continue;
      }
      if (ret < 0 && ret !== -ENOENT) callSys(`batch lookup in map ${this.name}`, () => ret);
      for (let i = 0; i < count[0]; i++) {
        out.push([Buffer.from(keys.subarray(i * this.keySize, (i + 1) * this.keySize)), Buffer.from(values.subarray(i * valueBytes, (i + 1) * valueBytes))]);
      }
      if (ret === -ENOENT) return out; // that was the last batch
      inBatch = outBatch;
    }
  }

  #key(key: Uint8Array): Buffer {
    if (key.length !== this.keySize) throw new RangeError(`map ${this.name}: key of ${key.length} bytes, expected ${this.keySize}`);
    return asBuffer(key);
  }

  #stride(): number {
    return valueStride(this.valueSize);
  }

  #split(all: Buffer): Buffer[] {
    const stride = this.#stride();
    return Array.from({ length: all.length / stride }, (_, i) => all.subarray(i * stride, i * stride + this.valueSize));
  }

  #plain(op: string): void {
    if (this.perCpu) throw new TypeError(`map ${this.name} is per-CPU: use ${op}PerCpu`);
  }

  #percpu(op: string): void {
    if (!this.perCpu) throw new TypeError(`map ${this.name} is not per-CPU: ${op} is for per-CPU maps`);
  }
}

/** A map's elements as JS values, through a codec for keys and one for values. */
export class TypedMap<K, V> {
  readonly #map: MapElements;
  readonly #key: Codec<K>;
  readonly #value: Codec<V>;

  /** @internal */
  constructor(map: MapElements, key: Codec<K>, value: Codec<V>) {
    this.#map = map;
    this.#key = key;
    this.#value = value;
  }

  #plain(op: string): void {
    this.#map.assertOpen();
    if (this.#map.perCpu) throw new TypeError(`map ${this.#map.name} is per-CPU: use ${op}PerCpu`);
  }

  get(key: K): V | undefined {
    this.#plain('get');
    const v = this.#map.lookup(this.#key.encode(key));
    return v === null ? undefined : this.#value.decode(v);
  }

  /** One value per possible CPU (per-CPU maps). */
  getPerCpu(key: K): V[] | undefined {
    this.#map.assertOpen();
    return this.#map.lookupPerCpu(this.#key.encode(key))?.map((v) => this.#value.decode(v));
  }

  set(key: K, value: V, flags: number = UpdateFlags.Any): void {
    this.#plain('set');
    this.#map.update(this.#key.encode(key), this.#value.encode(value), flags);
  }

  setPerCpu(key: K, values: readonly V[], flags: number = UpdateFlags.Any): void {
    this.#map.assertOpen();
    this.#map.updatePerCpu(
      this.#key.encode(key),
      values.map((v) => this.#value.encode(v)),
      flags,
    );
  }

  delete(key: K): boolean {
    this.#map.assertOpen();
    return this.#map.delete(this.#key.encode(key));
  }

  keys(): Generator<K> {
    const keys = this.#map.keys();
    const decode = this.#key.decode;
    return (function* () {
      for (const k of keys) yield decode(k);
    })();
  }

  /** Every element, key by key. Not for per-CPU maps. */
  entries(): [K, V][] {
    this.#plain('entries');
    return [...this.#map.keys()].flatMap((k) => {
      const v = this.#map.lookup(k);
      return v === null ? [] : [[this.#key.decode(k), this.#value.decode(v)] as [K, V]];
    });
  }
}

/** Options of bpf_map_create that matter for a map made from user space. */
export interface MapCreateOptions {
  /** BPF_F_* map flags, e.g. BPF_F_NO_PREALLOC (1). */
  flags?: number;
}

/** A map held by a bare fd, which this object owns and closes. */
export class FdMap extends MapElements implements Disposable {
  #fd: number;
  readonly name: string;
  readonly #info: { type: number; keySize: number; valueSize: number; maxEntries: number };

  /** Takes ownership of `fd`, a BPF map fd; the shape comes from the kernel. */
  constructor(fd: number) {
    super();
    this.#fd = fd;
    try {
      const info = mapInfo(fd);
      this.name = info.name;
      this.#info = info;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Creates a map (bpf_map_create) of `type`, a bpf_map_type (BPF_MAP_TYPE_HASH, ...: see uapi.ts). */
  static create(type: number, name: string, keySize: number, valueSize: number, maxEntries: number, options: MapCreateOptions = {}): FdMap {
    const n = native();
    const opts = { sz: n.mapCreateOptsSize, map_flags: options.flags ?? 0 };
    return new FdMap(callSys(`create map ${name}`, () => n.bpf_map_create(type, name, keySize, valueSize, maxEntries, opts)));
  }

  /** Opens the map with this id. */
  static fromId(id: number): FdMap {
    return new FdMap(mapFdById(id));
  }

  /** Opens the map pinned at `path`. */
  static fromPin(path: string): FdMap {
    return new FdMap(objGet(path));
  }

  get fd(): number {
    this.assertOpen();
    return this.#fd;
  }

  /** bpf_map_type as a number. */
  get type(): number {
    this.assertOpen();
    return this.#info.type;
  }

  get keySize(): number {
    this.assertOpen();
    return this.#info.keySize;
  }

  get valueSize(): number {
    this.assertOpen();
    return this.#info.valueSize;
  }

  get maxEntries(): number {
    this.assertOpen();
    return this.#info.maxEntries;
  }

  /** @internal */
  assertOpen(): void {
    if (this.#fd < 0) throw new ClosedError(`map ${this.name}`);
  }

  /** Closes our fd; the map lives on while anything else holds it. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    closeSync(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
