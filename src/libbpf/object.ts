// A BPF ELF object opened from memory: its programs and maps, loading into the
// kernel, and closing. Mirrors libbpf's bpf_object / bpf_program / bpf_map.
import { callInt, callPtr } from './call.js';
import { LibbpfError } from './error.js';
import { BpfLink } from './link.js';
import { native, type Pointer } from './native.js';

export interface OpenOptions {
  /**
   * Object name; libbpf names the maps of .rodata, .data and .bss after its
   * first 8 characters ("bpf_preload" gives bpf_prel.rodata).
   */
  name?: string;
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
    this.name = n.bpf_program__name(ptr) as string;
    this.sectionName = n.bpf_program__section_name(ptr) as string;
  }

  /** bpf_prog_type as a number (BPF_PROG_TYPE_TRACING is 26). */
  get type(): number {
    return native().bpf_program__type(this.#ptr);
  }

  get autoload(): boolean {
    return native().bpf_program__autoload(this.#ptr);
  }

  /** Whether bpf_object__load loads this program; only before load. */
  set autoload(on: boolean) {
    callInt(`set autoload of ${this.name}`, () => native().bpf_program__set_autoload(this.#ptr, on));
  }

  /** File descriptor of the loaded program; throws if it is not loaded. */
  get fd(): number {
    return callInt(`fd of program ${this.name}`, () => native().bpf_program__fd(this.#ptr));
  }

  /** For fentry/fexit/freplace: attach to `func` in the program behind `targetFd`. Before load. */
  setAttachTarget(targetFd: number, func: string | null): void {
    callInt(`set attach target of ${this.name}`, () =>
      native().bpf_program__set_attach_target(this.#ptr, targetFd, func),
    );
  }

  /** Creates a BPF iterator link for an iter/ program. */
  attachIter(): BpfLink {
    this.#object.assertOpen();
    const ptr = callPtr(`attach iterator ${this.name}`, () => native().bpf_program__attach_iter(this.#ptr, null));
    return new BpfLink(ptr, this.name);
  }

  /** Attaches as the section name says (tp_btf/, kprobe/, iter/, ...). */
  attach(): BpfLink {
    this.#object.assertOpen();
    const ptr = callPtr(`attach ${this.name}`, () => native().bpf_program__attach(this.#ptr));
    return new BpfLink(ptr, this.name);
  }
}

export class BpfMap {
  readonly #ptr: Pointer;
  readonly name: string;

  /** @internal */
  constructor(ptr: Pointer) {
    this.#ptr = ptr;
    this.name = native().bpf_map__name(ptr) as string;
  }

  /** bpf_map_type as a number. */
  get type(): number {
    return native().bpf_map__type(this.#ptr);
  }

  get maxEntries(): number {
    return native().bpf_map__max_entries(this.#ptr);
  }

  get keySize(): number {
    return native().bpf_map__key_size(this.#ptr);
  }

  get valueSize(): number {
    return native().bpf_map__value_size(this.#ptr);
  }

  /** File descriptor of the created map; throws before load. */
  get fd(): number {
    return callInt(`fd of map ${this.name}`, () => native().bpf_map__fd(this.#ptr));
  }

  // ---- global sections (.rodata, .data, .bss): see skeleton.ts ----

  /** Whether libbpf made this map from a section of globals rather than a map definition. */
  get isInternal(): boolean {
    return native().bpf_map__is_internal(this.#ptr);
  }

  /** BTF type id of the value; for a section of globals, its DATASEC. */
  get btfValueTypeId(): number {
    return native().bpf_map__btf_value_type_id(this.#ptr);
  }

  /**
   * A copy of the section's bytes: its initial value before load, the map's
   * current contents after (libbpf maps the kernel map in their place).
   */
  readImage(): Buffer {
    const n = native();
    const size = [0];
    const ptr = n.bpf_map__initial_value(this.#ptr, size);
    if (ptr === null) throw new Error(`map ${this.name} has no memory image (not a section of globals, or not mmapable)`);
    const out = Buffer.alloc(Number(size[0]));
    if (out.length) n.copyFrom(out, n.pointerAddress(ptr), out.length);
    return out;
  }

  /**
   * After load: maps the kernel map's memory over the image, as a C
   * skeleton's load does (libbpf 1.1's bpf_object__load leaves the image a
   * private copy), so readImage and writeImage reach the map itself.
   * libbpf unmaps it when the object closes.
   */
  mapImage(readOnly: boolean): void {
    const n = native();
    const size = [0];
    const ptr = n.bpf_map__initial_value(this.#ptr, size);
    if (ptr === null) throw new Error(`map ${this.name} has no memory image`);
    const page = n.getpagesize();
    const bytes = Math.ceil((Math.ceil(this.valueSize / 8) * 8 * this.maxEntries) / page) * page;
    const PROT_READ = 1;
    const PROT_WRITE = 2;
    const MAP_SHARED = 1;
    const MAP_FIXED = 0x10;
    const at = n.pointerAddress(ptr);
    const got = BigInt(n.mmap(at, bytes, readOnly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, this.fd, 0));
    if (got !== at) throw new LibbpfError(`map memory of ${this.name}`, n.errno());
  }

  /** Replaces the initial value; only before load. */
  setInitialValue(bytes: Buffer): void {
    callInt(`set initial value of map ${this.name}`, () => native().bpf_map__set_initial_value(this.#ptr, bytes, bytes.length));
  }

  /** Writes into the loaded map's writable memory image (.data, .bss) at `offset`. */
  writeImage(offset: number, bytes: Buffer): void {
    const n = native();
    const size = [0];
    const ptr = n.bpf_map__initial_value(this.#ptr, size);
    if (ptr === null || offset + bytes.length > Number(size[0])) throw new RangeError(`map ${this.name}: write past its memory image`);
    n.copyTo(n.pointerAddress(ptr) + BigInt(offset), bytes, bytes.length);
  }
}

export class BpfObject {
  #ptr: Pointer | null;
  // libelf reads the ELF image in place: the bytes must outlive the object.
  readonly #image: Buffer;
  readonly name: string;
  readonly programs: ReadonlyMap<string, BpfProgram>;
  readonly maps: ReadonlyMap<string, BpfMap>;

  private constructor(ptr: Pointer, image: Buffer) {
    this.#ptr = ptr;
    this.#image = image;
    const n = native();
    this.name = n.bpf_object__name(ptr) as string;
    const programs = new Map<string, BpfProgram>();
    for (let p = n.bpf_object__next_program(ptr, null); p !== null; p = n.bpf_object__next_program(ptr, p)) {
      const prog = new BpfProgram(p, this);
      programs.set(prog.name, prog);
    }
    const maps = new Map<string, BpfMap>();
    for (let m = n.bpf_object__next_map(ptr, null); m !== null; m = n.bpf_object__next_map(ptr, m)) {
      const map = new BpfMap(m);
      maps.set(map.name, map);
    }
    this.programs = programs;
    this.maps = maps;
  }

  /** Parses an ELF BPF object held in memory; nothing reaches the kernel yet. */
  static openMem(bytes: Uint8Array, options: OpenOptions = {}): BpfObject {
    const n = native();
    const image = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const opts = { sz: n.openOptsSize, object_name: options.name ?? null };
    const label = options.name ?? 'object';
    const ptr = callPtr(`open BPF object ${label}`, () => n.bpf_object__open_mem(image, image.length, opts));
    return new BpfObject(ptr, image);
  }

  /** Creates the maps and loads the autoload programs (CO-RE relocation, verifier). */
  load(): void {
    const ptr = this.assertOpen();
    callInt(`load BPF object ${this.name}`, () => native().bpf_object__load(ptr));
  }

  program(name: string): BpfProgram {
    const prog = this.programs.get(name);
    if (!prog) throw new Error(`BPF object ${this.name} has no program ${name}`);
    return prog;
  }

  map(name: string): BpfMap {
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

  /** @internal */
  assertOpen(): Pointer {
    if (this.#ptr === null) throw new Error(`BPF object ${this.name} used after close`);
    return this.#ptr;
  }
}
