// Loading a light skeleton: the recorded loader program (see genloader.ts)
// runs inside the kernel, which creates the maps, relocates (CO-RE) and loads
// the programs against its own BTF, so user space never parses that BTF.
// The steps are those of skel_internal.h's bpf_load_and_run, issued as raw
// bpf(2) commands; each fd is owned by exactly one object and closed by it.
import { closeSync } from 'node:fs';
import { LibbpfError } from './error.js';
import { callInt } from './call.js';
import { objPin } from './info.js';
import type { PinnableLink } from './link.js';
import { native } from './native.js';

/** A loader recorded for one set of programs. */
export interface LightVariant {
  /** Programs the loader loads, in the object's order (which is their order in the ctx). */
  readonly programs: readonly string[];
  /** The loader program's instructions, base64. */
  readonly insns: string;
  /** The blob the loader reads, base64. */
  readonly data: string;
}

export interface LightSpec<P extends string = string, V extends string = string> {
  /** Object name the loaders were recorded with (internal map names derive from it). */
  readonly objectName: string;
  /** Number of maps: one struct bpf_map_desc each in the loader's ctx. */
  readonly maps: number;
  /** Every program of the object in libbpf's order; the ctx has room for a struct bpf_prog_desc each. */
  readonly programs: readonly P[];
  readonly variants: Readonly<Record<V, LightVariant>>;
}

// bpf(2) commands and constants from the uapi.
const BPF_MAP_CREATE = 0;
const BPF_MAP_UPDATE_ELEM = 2;
const BPF_PROG_LOAD = 5;
const BPF_PROG_TEST_RUN = 10;
const BPF_LINK_CREATE = 28;
const BPF_MAP_TYPE_ARRAY = 2;
const BPF_PROG_TYPE_SYSCALL = 31;
const BPF_F_SLEEPABLE = 1 << 4;
const BPF_TRACE_ITER = 28;

// __NR_bpf per architecture; elsewhere light skeletons are not offered.
const NR_BPF: Partial<Record<string, number>> = { x64: 321, arm64: 280, riscv64: 280, loong64: 280, ppc64: 361, s390x: 351, ia32: 357, arm: 386 };

// struct bpf_loader_ctx { u32 sz, flags, log_level, log_size; u64 log_buf; },
// then struct bpf_map_desc { int map_fd; u32 max_entries; u64 initial_value; }
// per map and struct bpf_prog_desc { int prog_fd; } per program.
const CTX_HEADER = 24;
const MAP_DESC = 16;
const PROG_DESC = 4;

function sysBpf(op: string, cmd: number, attr: Buffer): number {
  const nr = NR_BPF[process.arch];
  if (nr === undefined) throw new LibbpfError(`${op}: no bpf(2) number for ${process.arch}`, 38 /* ENOSYS */);
  return callInt(op, () => Number(native().syscall(nr, 'int', cmd, 'void *', attr, 'uint', attr.length)));
}

const addr = (buf: Buffer) => BigInt(native().addressOf(buf) as number | bigint);

function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`);
}

function closeAll(fds: Iterable<number>): void {
  for (const fd of fds) if (fd > 0) closeSync(fd);
}

/** Runs the loader: returns the ctx as the loader left it (fds filled in). */
function loadAndRun(spec: LightSpec, variant: LightVariant, label: string): Buffer {
  const data = Buffer.from(variant.data, 'base64');
  const insns = Buffer.from(variant.insns, 'base64');
  const ctx = Buffer.alloc(CTX_HEADER + MAP_DESC * spec.maps + PROG_DESC * spec.programs.length);
  // max_entries 0 keeps the object's; initial_value 0 makes the loader use
  // the copy of each map's initial value (.rodata: the marker) in its blob.
  ctx.writeUInt32LE(ctx.length, 0);

  const temp: number[] = [];
  try {
    const mapAttr = Buffer.alloc(72); // offsetofend(union bpf_attr, map_extra)
    mapAttr.writeUInt32LE(BPF_MAP_TYPE_ARRAY, 0);
    mapAttr.writeUInt32LE(4, 4);
    mapAttr.writeUInt32LE(data.length, 8);
    mapAttr.writeUInt32LE(1, 12);
    mapAttr.write('__loader.map', 28);
    const mapFd = sysBpf(`create loader map for ${label}`, BPF_MAP_CREATE, mapAttr);
    temp.push(mapFd);

    const key = Buffer.alloc(4);
    const updAttr = Buffer.alloc(32); // offsetofend(union bpf_attr, flags)
    updAttr.writeUInt32LE(mapFd, 0);
    updAttr.writeBigUInt64LE(addr(key), 8);
    updAttr.writeBigUInt64LE(addr(data), 16);
    sysBpf(`fill loader map for ${label}`, BPF_MAP_UPDATE_ELEM, updAttr);

    const license = cstr('Dual BSD/GPL');
    const fdArray = Buffer.alloc(4);
    fdArray.writeInt32LE(mapFd, 0);
    const progAttr = Buffer.alloc(128); // offsetofend(union bpf_attr, fd_array)
    progAttr.writeUInt32LE(BPF_PROG_TYPE_SYSCALL, 0);
    progAttr.writeUInt32LE(insns.length / 8, 4);
    progAttr.writeBigUInt64LE(addr(insns), 8);
    progAttr.writeBigUInt64LE(addr(license), 16);
    progAttr.writeUInt32LE(BPF_F_SLEEPABLE, 44);
    progAttr.write('__loader.prog', 48);
    progAttr.writeBigUInt64LE(addr(fdArray), 120);
    const progFd = sysBpf(`load loader program for ${label}`, BPF_PROG_LOAD, progAttr);
    temp.push(progFd);

    const runAttr = Buffer.alloc(80); // offsetofend(union bpf_attr, test)
    runAttr.writeUInt32LE(progFd, 0);
    runAttr.writeUInt32LE(ctx.length, 40);
    runAttr.writeBigUInt64LE(addr(ctx), 48);
    sysBpf(`run loader program for ${label}`, BPF_PROG_TEST_RUN, runAttr);
    const retval = runAttr.readInt32LE(4);
    // The loader closes what it made before returning an error.
    if (retval < 0) throw new LibbpfError(`loader program for ${label}`, -retval);
    return ctx;
  } finally {
    closeAll(temp);
    // keep the buffers the kernel read from alive until here
    void data;
    void insns;
  }
}

/** An iterator link held by fd. */
export class FdLink implements PinnableLink {
  #fd: number;
  readonly name: string;

  /** @internal */
  constructor(fd: number, name: string) {
    this.#fd = fd;
    this.name = name;
  }

  get fd(): number {
    if (this.#fd < 0) throw new Error(`link ${this.name} used after destroy`);
    return this.#fd;
  }

  /** Pins the link at `path`, which must be on a bpffs. */
  pin(path: string): void {
    objPin(this.fd, path);
  }

  /** Closes our fd; a pinned link stays attached. */
  destroy(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    closeSync(fd);
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

/** The programs and maps one loader run created, by fd. */
export class LightObject<P extends string = string> {
  readonly #progFds: Map<P, number>;
  readonly #mapFds: number[];
  #closed = false;
  readonly name: string;

  private constructor(name: string, progFds: Map<P, number>, mapFds: number[]) {
    this.name = name;
    this.#progFds = progFds;
    this.#mapFds = mapFds;
  }

  /** Runs the loader of `variant`; all of its programs are loaded on return. */
  static load<P extends string, V extends string>(spec: LightSpec<P, V>, variant: V): LightObject<P> {
    const v = spec.variants[variant];
    const label = `${spec.objectName} (${variant})`;
    const ctx = loadAndRun(spec, v, label);
    const mapFds = Array.from({ length: spec.maps }, (_, i) => ctx.readInt32LE(CTX_HEADER + MAP_DESC * i));
    // The loader numbers the programs it loaded, in the object's order.
    const progFds = new Map<P, number>();
    v.programs.forEach((p, i) => {
      const fd = ctx.readInt32LE(CTX_HEADER + MAP_DESC * spec.maps + PROG_DESC * i);
      if (fd > 0) progFds.set(p as P, fd);
    });
    const obj = new LightObject(label, progFds, mapFds);
    const missing = v.programs.filter((p) => !progFds.has(p as P));
    if (missing.length) {
      obj.close();
      throw new LibbpfError(`loader for ${label} returned no fd for ${missing.join(', ')}`, 22 /* EINVAL */);
    }
    return obj;
  }

  progFd(name: P): number {
    const fd = this.#progFds.get(name);
    if (this.#closed || fd === undefined) throw new Error(`program ${name} not loaded in ${this.name}`);
    return fd;
  }

  /** Creates a BPF iterator link for an iter/ program. */
  attachIter(name: P): FdLink {
    const attr = Buffer.alloc(28); // offsetofend(union bpf_attr, link_create.iter_info_len)
    attr.writeUInt32LE(this.progFd(name), 0);
    attr.writeUInt32LE(BPF_TRACE_ITER, 8);
    return new FdLink(sysBpf(`attach iterator ${name}`, BPF_LINK_CREATE, attr), name);
  }

  /** Closes every program and map fd; links and pins keep what they use. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeAll([...this.#progFds.values(), ...this.#mapFds]);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
