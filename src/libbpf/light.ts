// Loading a light skeleton: the recorded loader program (see genloader.ts)
// runs inside the kernel, which creates the maps, relocates (CO-RE) and loads
// the programs against its own BTF, so user space never parses that BTF.
// The steps are those of skel_internal.h's bpf_load_and_run, through libbpf's
// own bpf(2) wrappers; each fd is owned by exactly one object and closed by
// it. Failures are the kernel's errnos (SysError): no libbpf object is involved.
import { constants } from 'node:os';
import { closeSync } from 'node:fs';
import { ClosedError, SysError } from './error.js';
import { callSys } from './sys/call.js';
import { FdLink } from './link.js';
import { native } from './sys/native.js';
import { BPF_F_SLEEPABLE, BPF_MAP_TYPE_ARRAY, BPF_PROG_TYPE_SYSCALL } from './sys/uapi.js';

const { EINVAL } = constants.errno;

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
  /** How many maps the object has: the loader's ctx has a struct bpf_map_desc for each. */
  readonly mapCount: number;
  /** Every program of the object in libbpf's order; the ctx has room for a struct bpf_prog_desc each. */
  readonly programs: readonly P[];
  readonly variants: Readonly<Record<V, LightVariant>>;
}

/** Where the loader's ctx (a bpf_loader_ctx, then a bpf_map_desc per map and a bpf_prog_desc per program) has map i's fd, and program i's. */
function ctxLayout(spec: LightSpec) {
  const n = native();
  const progsAt = n.loaderCtxSize + n.mapDescSize * spec.mapCount;
  return {
    size: progsAt + n.progDescSize * spec.programs.length,
    mapFd: (i: number) => n.loaderCtxSize + n.mapDescSize * i,
    progFd: (i: number) => progsAt + n.progDescSize * i,
  };
}

function closeAll(fds: Iterable<number>): void {
  for (const fd of fds) if (fd > 0) closeSync(fd);
}

/** Runs the loader: returns the ctx as the loader left it (fds filled in). */
function loadAndRun(spec: LightSpec, variant: LightVariant, label: string): Buffer {
  const n = native();
  const data = Buffer.from(variant.data, 'base64');
  const insns = Buffer.from(variant.insns, 'base64');
  const ctx = Buffer.alloc(ctxLayout(spec).size);
  // max_entries 0 keeps the object's; initial_value 0 makes the loader use
  // the copy of each map's initial value (.rodata: the marker) in its blob.
  ctx.writeUInt32LE(ctx.length, 0);

  const temp: number[] = [];
  try {
    const mapFd = callSys(`create loader map for ${label}`, () => n.bpf_map_create(BPF_MAP_TYPE_ARRAY, '__loader.map', 4, data.length, 1, null));
    temp.push(mapFd);
    callSys(`fill loader map for ${label}`, () => n.bpf_map_update_elem(mapFd, Buffer.alloc(4), data, 0n));

    // The loader reaches its blob as map 0 of fd_array.
    const fdArray = Buffer.alloc(4);
    fdArray.writeInt32LE(mapFd, 0);
    const loadOpts = { sz: n.progLoadOptsSize, prog_flags: BPF_F_SLEEPABLE, fd_array: fdArray };
    const progFd = callSys(`load loader program for ${label}`, () =>
      n.bpf_prog_load(BPF_PROG_TYPE_SYSCALL, '__loader.prog', 'Dual BSD/GPL', insns, insns.length / 8, loadOpts),
    );
    temp.push(progFd);

    // A syscall program's ctx is copied back to ctx_in: the loader's fds land in `ctx`.
    const runOpts = { sz: n.testRunOptsSize, ctx_in: ctx, ctx_size_in: ctx.length, retval: 0 };
    callSys(`run loader program for ${label}`, () => n.bpf_prog_test_run_opts(progFd, runOpts));
    const retval = runOpts.retval | 0;
    // The loader closes what it made before returning an error.
    if (retval < 0) throw new SysError('bpf', `loader program for ${label}`, -retval);
    return ctx;
  } finally {
    closeAll(temp);
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
    const layout = ctxLayout(spec);
    const mapFds = Array.from({ length: spec.mapCount }, (_, i) => ctx.readInt32LE(layout.mapFd(i)));
    // The loader numbers the programs it loaded, in the object's order.
    const progFds = new Map<P, number>();
    v.programs.forEach((p, i) => {
      const fd = ctx.readInt32LE(layout.progFd(i));
      if (fd > 0) progFds.set(p as P, fd);
    });
    const obj = new LightObject(label, progFds, mapFds);
    const missing = v.programs.filter((p) => !progFds.has(p as P));
    if (missing.length) {
      obj.close();
      throw new SysError('bpf', `loader for ${label} returned no fd for ${missing.join(', ')}`, EINVAL);
    }
    return obj;
  }

  progFd(name: P): number {
    if (this.#closed) throw new ClosedError(`light object ${this.name}`);
    const fd = this.#progFds.get(name);
    if (fd === undefined) throw new Error(`program ${name} not loaded in ${this.name}`);
    return fd;
  }

  /** Creates a BPF iterator link for an iter/ program. */
  attachIter(name: P): FdLink {
    return FdLink.iterator(this.progFd(name), name);
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
