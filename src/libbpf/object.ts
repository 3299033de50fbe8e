// A BPF ELF object opened from memory or a file: its programs and maps,
// loading into the kernel, attaching, and closing. Mirrors libbpf's
// bpf_object / bpf_program / bpf_map.
import { constants } from 'node:os';
import { callInt, callPtr, callSys } from './sys/call.js';
import { readFileSync } from 'node:fs';
import { btfProblem } from './btf/check.js';
import { asLoaded, type LoadedObject, type OpenObject } from './lifecycle.js';
import { ClosedError, LibbpfError } from './error.js';
import { mapImage, readImage, writeImage } from './image.js';
import { BpfLink } from './link.js';
import { MapElements } from './maps.js';
import { native, type Pointer } from './sys/native.js';
import { TcAttachment, type TcAttachPoint } from './tc.js';

const { EINVAL } = constants.errno;

/** The bpf_object_open_opts of libbpf 1.1 that matter to a caller. */
export interface OpenOptions {
  /**
   * Object name (default: the file name, or libbpf's for memory). libbpf
   * derives internal map names from its first 8 characters: "bpf_prel.rodata".
   */
  name?: string;
  /**
   * Values for the object's `extern ... __kconfig` variables, as lines of a
   * kernel .config ("CONFIG_FOO=y\nCONFIG_BAR=42"); they override the running kernel's.
   */
  kconfig?: string;
  /** A BTF file to relocate (CO-RE) against instead of the running kernel's /sys/kernel/btf/vmlinux. */
  btfCustomPath?: string;
}

export class BpfProgram {
  readonly #ptr: Pointer;
  readonly #object: BpfObject;
  readonly name: string;
  readonly sectionName: string;

  /** @internal */
  constructor(ptr: Pointer, object: BpfObject) {
    this.#ptr = ptr;
    this.#object = object;
    const n = native();
    this.name = n.bpf_program__name(ptr);
    this.sectionName = n.bpf_program__section_name(ptr);
  }

  // Every use of the pointer goes through here: libbpf frees it with the object.
  #live(): Pointer {
    this.#object.assertOpen(`program ${this.name} of BPF object ${this.#object.name}`);
    return this.#ptr;
  }

  /** A bpf_prog_type (BPF_PROG_TYPE_TRACING, ...: see uapi.ts). */
  get type(): number {
    return native().bpf_program__type(this.#live());
  }

  get autoload(): boolean {
    return native().bpf_program__autoload(this.#live());
  }

  /** Whether bpf_object__load loads this program; only before load. */
  set autoload(on: boolean) {
    const ptr = this.#live();
    callInt(`set autoload of ${this.name}`, () => native().bpf_program__set_autoload(ptr, on));
  }

  /** File descriptor of the loaded program; throws if it is not loaded. */
  get fd(): number {
    const ptr = this.#live();
    return callInt(`fd of program ${this.name}`, () => native().bpf_program__fd(ptr));
  }

  /** For fentry/fexit/freplace: attach to `func` in the program behind `targetFd`. Before load. */
  setAttachTarget(targetFd: number, func: string | null): void {
    const ptr = this.#live();
    callInt(`set attach target of ${this.name}`, () => native().bpf_program__set_attach_target(ptr, targetFd, func));
  }

  /** Creates a BPF iterator link for an iter/ program. */
  attachIter(): BpfLink {
    return this.#attach(`attach iterator ${this.name}`, (ptr) => native().bpf_program__attach_iter(ptr, null));
  }

  /** Attaches as the section name says (tp_btf/, raw_tp/, kprobe/, tracepoint/, iter/, ...). */
  attach(): BpfLink {
    return this.#attach(`attach ${this.name}`, (ptr) => native().bpf_program__attach(ptr));
  }

  /** Attaches a raw_tp/ (or tp_btf/) program to the raw tracepoint `tracepoint`, e.g. "sched_switch". */
  attachRawTracepoint(tracepoint: string): BpfLink {
    return this.#attach(`attach ${this.name} to raw tracepoint ${tracepoint}`, (ptr) => native().bpf_program__attach_raw_tracepoint(ptr, tracepoint));
  }

  /** Attaches a tracepoint/ program to `category`/`name`, e.g. "syscalls", "sys_enter_getpid". */
  attachTracepoint(category: string, name: string): BpfLink {
    return this.#attach(`attach ${this.name} to tracepoint ${category}/${name}`, (ptr) => native().bpf_program__attach_tracepoint(ptr, category, name));
  }

  /** Attaches a kprobe/ program to kernel function `func` (a kretprobe with `retprobe`). */
  attachKprobe(func: string, options: { retprobe?: boolean } = {}): BpfLink {
    const kind = options.retprobe ? 'kretprobe' : 'kprobe';
    return this.#attach(`attach ${this.name} as ${kind} on ${func}`, (ptr) => native().bpf_program__attach_kprobe(ptr, options.retprobe ?? false, func));
  }

  /**
   * Attaches a uprobe/ (or uretprobe/) program to function `func` of the ELF
   * file `binaryPath` (an executable or a shared library; libbpf finds the
   * symbol), in every process or only in `pid`.
   */
  attachUprobe(binaryPath: string, func: string, options: { retprobe?: boolean; pid?: number; cookie?: bigint } = {}): BpfLink {
    const kind = options.retprobe ? 'uretprobe' : 'uprobe';
    const opts = {
      sz: native().uprobeOptsSize,
      ref_ctr_offset: 0,
      bpf_cookie: options.cookie ?? 0n,
      retprobe: options.retprobe ?? false,
      func_name: func,
    };
    return this.#attach(`attach ${this.name} as ${kind} on ${func} in ${binaryPath}`, (ptr) =>
      native().bpf_program__attach_uprobe_opts(ptr, options.pid ?? -1, binaryPath, 0, opts),
    );
  }

  /**
   * Attaches a usdt program (written with usdt.bpf.h's BPF_USDT) to the USDT
   * probe `provider`:`name` of the ELF file `binaryPath` (its .note.stapsdt),
   * in every process or only in `pid`.
   */
  attachUsdt(binaryPath: string, provider: string, name: string, options: { pid?: number } = {}): BpfLink {
    return this.#attach(`attach ${this.name} to USDT ${provider}:${name} in ${binaryPath}`, (ptr) =>
      native().bpf_program__attach_usdt(ptr, options.pid ?? -1, binaryPath, provider, name, null),
    );
  }

  /** Pins the loaded program at `path` on a bpffs (libbpf turns dots in the path into underscores). */
  pin(path: string): void {
    const ptr = this.#live();
    callInt(`pin program ${this.name} at ${path}`, () => native().bpf_program__pin(ptr, path));
  }

  /** Removes the pin at `path`. */
  unpin(path: string): void {
    const ptr = this.#live();
    callInt(`unpin program ${this.name} from ${path}`, () => native().bpf_program__unpin(ptr, path));
  }

  /**
   * Attaches a perf_event program to the perf event behind `perfFd` (from
   * openPerfEvent, say); the link owns a copy of the fd, close yours when you like.
   */
  attachPerfEvent(perfFd: number): BpfLink {
    return this.#attach(`attach ${this.name} to perf event fd ${perfFd}`, (ptr) => native().bpf_program__attach_perf_event(ptr, perfFd));
  }

  /** Attaches a cgroup program (cgroup/skb, cgroup/sock_create, ...) to the cgroup v2 directory behind `cgroupFd`. */
  attachCgroup(cgroupFd: number): BpfLink {
    return this.#attach(`attach ${this.name} to cgroup fd ${cgroupFd}`, (ptr) => native().bpf_program__attach_cgroup(ptr, cgroupFd));
  }

  /** Attaches an xdp program to the interface with index `ifindex` (a BPF link: detached with it). */
  attachXdp(ifindex: number): BpfLink {
    return this.#attach(`attach ${this.name} to XDP of ifindex ${ifindex}`, (ptr) => native().bpf_program__attach_xdp(ptr, ifindex));
  }

  /**
   * Attaches a tc program as a direct-action filter on the clsact qdisc of
   * `ifindex` (created if missing). libbpf 1.1 has no tc links: the
   * filter stays until detach() or the interface goes.
   */
  attachTc(ifindex: number, point: TcAttachPoint): TcAttachment {
    return TcAttachment.attach(this.fd, ifindex, point, this.name);
  }

  /**
   * Runs the loaded program once on `data` (BPF_PROG_TEST_RUN, for program
   * types that have it: xdp, tc, syscall, ...); returns its return value and output.
   */
  testRun(data: Uint8Array, ctx?: Uint8Array): { retval: number; data: Buffer } {
    const n = native();
    // Programs that take no packet (syscall) refuse any data buffer, even for output;
    // they write their ctx back into `ctx` instead.
    const out = data.length ? Buffer.alloc(data.length + 256) : Buffer.alloc(0);
    const opts = {
      sz: n.testRunOptsSize,
      data_in: data.length ? data : null,
      data_size_in: data.length,
      data_out: out.length ? out : null,
      data_size_out: out.length,
      ctx_in: ctx ?? null,
      ctx_size_in: ctx?.length ?? 0,
      retval: 0,
      duration: 0,
      ctx_size_out: 0,
    };
    callSys(`test run of ${this.name}`, () => n.bpf_prog_test_run_opts(this.fd, opts));
    return { retval: opts.retval | 0, data: out.subarray(0, opts.data_size_out) };
  }

  #attach(op: string, fn: (prog: Pointer) => Pointer | null): BpfLink {
    const prog = this.#live();
    return new BpfLink(
      callPtr(op, () => fn(prog)),
      this.name,
    );
  }
}

export class BpfMap extends MapElements {
  readonly #ptr: Pointer;
  readonly #object: BpfObject;
  readonly name: string;

  /** @internal */
  constructor(ptr: Pointer, object: BpfObject) {
    super();
    this.#ptr = ptr;
    this.#object = object;
    this.name = native().bpf_map__name(ptr);
  }

  // Every use of the pointer goes through here: libbpf frees it with the object.
  #live(): Pointer {
    this.#object.assertOpen(`map ${this.name} of BPF object ${this.#object.name}`);
    return this.#ptr;
  }

  /** @internal Throws ClosedError once the object is closed. */
  assertOpen(): void {
    this.#live();
  }

  /** bpf_map_type as a number. */
  get type(): number {
    return native().bpf_map__type(this.#live());
  }

  get maxEntries(): number {
    return native().bpf_map__max_entries(this.#live());
  }

  /** Resizes the map; only before load. */
  set maxEntries(n: number) {
    const ptr = this.#live();
    callInt(`set max_entries of ${this.name}`, () => native().bpf_map__set_max_entries(ptr, n));
  }

  get keySize(): number {
    return native().bpf_map__key_size(this.#live());
  }

  get valueSize(): number {
    return native().bpf_map__value_size(this.#live());
  }

  /** File descriptor of the created map; throws before load. */
  get fd(): number {
    const ptr = this.#live();
    return callInt(`fd of map ${this.name}`, () => native().bpf_map__fd(ptr));
  }

  // ---- global sections (.rodata, .data, .bss): see skeleton.ts ----

  /** Whether libbpf made this map from a section of globals rather than a map definition. */
  get isInternal(): boolean {
    return native().bpf_map__is_internal(this.#live());
  }

  /** BTF type id of the key; 0 when the object does not say (ring buffers, sections of globals). */
  get btfKeyTypeId(): number {
    return native().bpf_map__btf_key_type_id(this.#live());
  }

  /** BTF type id of the value; for a section of globals, its DATASEC. */
  get btfValueTypeId(): number {
    return native().bpf_map__btf_value_type_id(this.#live());
  }

  /**
   * A copy of the section's bytes: its initial value before load, the map's
   * current contents after (libbpf maps the kernel map in their place).
   */
  readImage(): Buffer {
    return readImage(this.#live(), this.name);
  }

  /**
   * After load: maps the kernel map's memory over the image, as a C
   * skeleton's load does (libbpf 1.1's bpf_object__load leaves the image a
   * private copy), so readImage and writeImage reach the map itself.
   * libbpf unmaps it when the object closes.
   */
  mapImage(readOnly: boolean): void {
    mapImage(this.#live(), this.name, this.fd, this, readOnly);
  }

  /** Pins the map at `path` on a bpffs (libbpf turns dots in the path into underscores). */
  pin(path: string): void {
    const ptr = this.#live();
    callInt(`pin map ${this.name} at ${path}`, () => native().bpf_map__pin(ptr, path));
  }

  /** Removes the map's pin at `path`. */
  unpin(path: string): void {
    const ptr = this.#live();
    callInt(`unpin map ${this.name} from ${path}`, () => native().bpf_map__unpin(ptr, path));
  }

  /** Replaces the initial value; only before load. */
  setInitialValue(bytes: Buffer): void {
    const ptr = this.#live();
    callInt(`set initial value of map ${this.name}`, () => native().bpf_map__set_initial_value(ptr, bytes, bytes.length));
  }

  /** Writes into the loaded map's writable memory image (.data, .bss) at `offset`. */
  writeImage(offset: number, bytes: Buffer): void {
    writeImage(this.#live(), this.name, offset, bytes);
  }
}

export class BpfObject {
  #ptr: Pointer | null;
  // libelf reads an image in memory in place: the bytes must outlive the object.
  readonly #image: Buffer | null;
  readonly name: string;
  readonly programs: ReadonlyMap<string, BpfProgram>;
  readonly maps: ReadonlyMap<string, BpfMap>;

  private constructor(ptr: Pointer, image: Buffer | null) {
    this.#ptr = ptr;
    this.#image = image;
    const n = native();
    this.name = n.bpf_object__name(ptr);
    const programs = new Map<string, BpfProgram>();
    for (let p = n.bpf_object__next_program(ptr, null); p !== null; p = n.bpf_object__next_program(ptr, p)) {
      const prog = new BpfProgram(p, this);
      programs.set(prog.name, prog);
    }
    const maps = new Map<string, BpfMap>();
    for (let m = n.bpf_object__next_map(ptr, null); m !== null; m = n.bpf_object__next_map(ptr, m)) {
      const map = new BpfMap(m, this);
      maps.set(map.name, map);
    }
    this.programs = programs;
    this.maps = maps;
  }

  static #opts(options: OpenOptions) {
    return {
      sz: native().openOptsSize,
      object_name: options.name ?? null,
      kconfig: options.kconfig ?? null,
      btf_custom_path: options.btfCustomPath ?? null,
    };
  }

  // libbpf 1.1 trusts the offsets and type ids in an object's BTF: a
  // corrupted one crashes the process. Refuse those first (btf/check.ts).
  static #checkBtf(image: Buffer, label: string): void {
    const problem = btfProblem(image);
    if (problem !== null) throw new LibbpfError(`open BPF object ${label}: malformed BTF (${problem})`, EINVAL, [`malformed BTF: ${problem}`]);
  }

  /** Parses an ELF BPF object held in memory; nothing reaches the kernel yet. */
  static openMem(bytes: Uint8Array, options: OpenOptions = {}): BpfObject {
    const n = native();
    const image = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const label = options.name ?? 'object';
    BpfObject.#checkBtf(image, label);
    const ptr = callPtr(`open BPF object ${label}`, () => n.bpf_object__open_mem(image, image.length, BpfObject.#opts(options)));
    return new BpfObject(ptr, image);
  }

  /** Parses an ELF BPF object file; nothing reaches the kernel yet. */
  static openFile(path: string, options: OpenOptions = {}): BpfObject {
    const n = native();
    let image: Buffer | null = null;
    try {
      image = readFileSync(path);
    } catch {
      // libbpf says why, as it always has
    }
    if (image) BpfObject.#checkBtf(image, path);
    const ptr = callPtr(`open BPF object ${path}`, () => n.bpf_object__open_file(path, BpfObject.#opts(options)));
    return new BpfObject(ptr, null);
  }

  /**
   * Opens an ELF BPF object from a file path or from memory as an OpenObject:
   * what may only happen before or after load is checked at compile time
   * (lifecycle.ts). The object is this class's; only its type differs.
   */
  static open(source: string | Uint8Array, options: OpenOptions = {}): OpenObject {
    const obj = typeof source === 'string' ? BpfObject.openFile(source, options) : BpfObject.openMem(source, options);
    return obj;
  }

  /** Creates the maps and loads the autoload programs (CO-RE relocation, verifier); returns the object, typed as loaded. */
  load(): LoadedObject {
    const ptr = this.assertOpen();
    callInt(`load BPF object ${this.name}`, () => native().bpf_object__load(ptr));
    return asLoaded(this);
  }

  program(name: string): BpfProgram {
    this.assertOpen();
    const prog = this.programs.get(name);
    if (!prog) throw new Error(`BPF object ${this.name} has no program ${name}`);
    return prog;
  }

  map(name: string): BpfMap {
    this.assertOpen();
    const map = this.maps.get(name);
    if (!map) throw new Error(`BPF object ${this.name} has no map ${name}`);
    return map;
  }

  /** Closes every program and map fd; pinned or linked objects stay in the kernel. */
  close(): void {
    if (this.#ptr === null) return;
    const ptr = this.#ptr;
    this.#ptr = null;
    native().bpf_object__close(ptr);
    void this.#image;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal The object's pointer; throws ClosedError, naming `handle`, once it is closed. */
  assertOpen(handle = `BPF object ${this.name}`): Pointer {
    if (this.#ptr === null) throw new ClosedError(handle);
    return this.#ptr;
  }
}
