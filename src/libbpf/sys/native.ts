// The raw C surface: koffi declarations of the libbpf.so.1 and libc functions
// we call, loaded once on first use. Nothing outside src/libbpf imports koffi;
// everything here is wrapped by the typed classes beside this file.
import { createRequire } from 'node:module';
import type koffiModule from 'koffi';
import { LibraryMissingError } from '../error.js';

type Koffi = typeof koffiModule;

/**
 * koffi's entry point also loads https, zlib and crypto for its installer,
 * about 7 ms on every start; its native module alone is the whole API we use.
 * Take the prebuilt module for this platform directly, and fall back to the
 * entry point wherever that is not where we expect it.
 */
export function loadKoffi(): Koffi {
  const require = createRequire(import.meta.url);
  for (const triplet of [`${process.platform}_${process.arch}`, `musl_${process.arch}`]) {
    try {
      return require(`koffi/build/koffi/${triplet}/koffi.node`) as Koffi;
    } catch {
      // not this one
    }
  }
  return require('koffi') as Koffi;
}

/** A C pointer as koffi hands it over: an opaque object (NULL arrives as null). */
export type Pointer = object;
/** A JS function koffi registered as a C function pointer (registerSample and the like); unregister() it. */
export type Callback = koffiModule.IKoffiRegisteredCallback;

// How koffi marshals what the declarations below name: ints, uint32 and bool
// are numbers and booleans; 64-bit values (int64, uint64, size_t, uintptr_t,
// long) come back as a number, or a bigint past 2^53, and go in as either;
// `void *` buffers we pass are Buffers or typed arrays (null for NULL); a
// struct pointer takes a plain object of its fields, and an _Inout_ one gets
// the C side's values written back into it; an _Out_/_Inout_ `uint32 *` takes
// a one-element array; a `const char *` result is a string or null.
type P = Pointer;
type Int64 = number | bigint;
type Bytes = Uint8Array | null;
type Str = string | null;
/** A struct as koffi takes it: `sz` (its size, for libbpf's versioning) and the fields we set; the rest are zero. */
type Opts = { sz: number } & Record<string, number | bigint | boolean | Str | Uint8Array>;

/**
 * The declared C functions by their C names (a few helpers by what they do),
 * typed as koffi marshals them. Internal: kept out of the package's .d.ts.
 * @internal
 */
export interface Native {
  openOptsSize: number;
  mapCreateOptsSize: number;
  progLoadOptsSize: number;
  testRunOptsSize: number;
  batchOptsSize: number;
  tcHookSize: number;
  tcOptsSize: number;
  uprobeOptsSize: number;
  loaderCtxSize: number;
  mapDescSize: number;
  progDescSize: number;
  genLoaderOpts: { size: number; data: number; insns: number; dataSize: number; insnsSize: number };
  registerSample: (fn: (ctx: P, data: P, size: number) => number) => Callback;
  unregister: (cb: Callback) => void;
  register: (fn: (level: number, fmt: P, args: P) => number) => Callback;
  errno: () => number;
  addressOf: (buf: Buffer) => bigint;

  libbpf_set_print: (fn: Callback) => P | null;
  libbpf_major_version: () => number;
  libbpf_minor_version: () => number;

  bpf_object__open_mem: (buf: Uint8Array, size: number, opts: Opts) => P | null;
  bpf_object__open_file: (path: string, opts: Opts) => P | null;
  bpf_object__load: (obj: P) => number;
  bpf_object__gen_loader: (obj: P, opts: Buffer) => number;
  bpf_object__close: (obj: P) => void;
  bpf_object__name: (obj: P) => string;
  bpf_object__next_program: (obj: P, prev: P | null) => P | null;
  bpf_object__next_map: (obj: P, prev: P | null) => P | null;

  bpf_program__name: (prog: P) => string;
  bpf_program__section_name: (prog: P) => string;
  bpf_program__autoload: (prog: P) => boolean;
  bpf_program__set_autoload: (prog: P, autoload: boolean) => number;
  bpf_program__fd: (prog: P) => number;
  bpf_program__type: (prog: P) => number;
  bpf_program__set_attach_target: (prog: P, attachProgFd: number, attachFuncName: Str) => number;
  bpf_program__attach: (prog: P) => P | null;
  bpf_program__attach_raw_tracepoint: (prog: P, tpName: string) => P | null;
  bpf_program__attach_tracepoint: (prog: P, category: string, name: string) => P | null;
  bpf_program__attach_kprobe: (prog: P, retprobe: boolean, func: string) => P | null;
  bpf_program__attach_xdp: (prog: P, ifindex: number) => P | null;
  bpf_program__attach_iter: (prog: P, opts: null) => P | null;

  bpf_map__name: (map: P) => string;
  bpf_map__fd: (map: P) => number;
  bpf_map__type: (map: P) => number;
  bpf_map__max_entries: (map: P) => number;
  bpf_map__key_size: (map: P) => number;
  bpf_map__value_size: (map: P) => number;
  bpf_map__set_max_entries: (map: P, maxEntries: number) => number;
  bpf_map__initial_value: (map: P, size: [Int64]) => P | null;

  bpf_link__fd: (link: P) => number;
  bpf_link__pin: (link: P, path: string) => number;
  bpf_link__destroy: (link: P) => number;

  bpf_obj_pin: (fd: number, path: string) => number;
  bpf_obj_get: (path: string) => number;
  bpf_obj_get_info_by_fd: (fd: number, info: Buffer, len: [number]) => number;
  bpf_prog_get_fd_by_id: (id: number) => number;
  bpf_map_get_fd_by_id: (id: number) => number;
  bpf_prog_get_next_id: (start: number, next: [number]) => number;
  bpf_map_get_next_id: (start: number, next: [number]) => number;
  bpf_map_lookup_elem: (fd: number, key: Bytes, value: Bytes) => number;
  bpf_map_update_elem: (fd: number, key: Bytes, value: Bytes, flags: Int64) => number;
  bpf_map_delete_elem: (fd: number, key: Bytes) => number;
  bpf_map_get_next_key: (fd: number, key: Bytes, nextKey: Bytes) => number;
  bpf_map_lookup_batch: (fd: number, inBatch: Bytes, outBatch: Bytes, keys: Bytes, values: Bytes, count: [number], opts: Opts) => number;
  bpf_map_create: (type: number, name: Str, keySize: number, valueSize: number, maxEntries: number, opts: Opts | null) => number;
  bpf_prog_load: (type: number, name: Str, license: string, insns: Uint8Array, insnCnt: number, opts: Opts) => number;
  bpf_prog_test_run_opts: (progFd: number, opts: Opts) => number;
  bpf_link_create: (progFd: number, targetFd: number, attachType: number, opts: null) => number;
  bpf_iter_create: (linkFd: number) => number;
  bpf_link_get_fd_by_id: (id: number) => number;
  bpf_link_get_next_id: (start: number, next: [number]) => number;
  libbpf_num_possible_cpus: () => number;
  bpf_enable_stats: (type: number) => number;
  libbpf_bpf_prog_type_str: (t: number) => Str;
  libbpf_bpf_map_type_str: (t: number) => Str;
  libbpf_bpf_link_type_str: (t: number) => Str;
  close: (fd: number) => number;

  bpf_tc_hook_create: (hook: Opts) => number;
  bpf_tc_attach: (hook: Opts, opts: Opts) => number;
  bpf_tc_detach: (hook: Opts, opts: Opts) => number;

  ring_buffer__new: (mapFd: number, sample: Callback, ctx: null, opts: null) => P | null;
  ring_buffer__free: (rb: P) => void;

  btf__load_vmlinux_btf: () => P | null;
  btf__find_by_name_kind: (btf: P, name: string, kind: number) => number;
  btf__free: (btf: P) => void;

  bpf_object__btf: (obj: P) => P | null;
  btf__type_cnt: (btf: P) => number;
  btf__type_by_id: (btf: P, id: number) => P | null;
  btf__name_by_offset: (btf: P, offset: number) => Str;
  btf__resolve_size: (btf: P, id: number) => Int64;
  bpf_map__btf_key_type_id: (map: P) => number;
  bpf_map__btf_value_type_id: (map: P) => number;
  bpf_map__is_internal: (map: P) => boolean;
  bpf_map__set_initial_value: (map: P, data: Uint8Array, size: number) => number;
  btfWords: (ptr: P, count: number) => Uint32Array;
  copyTo: (dest: Int64, src: Uint8Array, n: number) => Int64;
  pointerAddress: (ptr: P) => bigint;
  mmap: (addr: Int64, length: number, prot: number, flags: number, fd: number, offset: Int64) => Int64;
  getpagesize: () => number;

  vsnprintf: (buf: Buffer, size: number, fmt: P, args: P) => number;
  copyFrom: (dest: Uint8Array, src: Int64, n: number) => P | null;
  if_nametoindex: (name: string) => number;

  ring_buffer__add: (rb: P, mapFd: number, sample: Callback, ctx: null) => number;
  ring_buffer__epoll_fd: (rb: P) => number;
  mmapPointer: (addr: P | null, length: number, prot: number, flags: number, fd: number, offset: Int64) => P | null;
  munmap: (addr: P, length: number) => number;
  view: (ptr: P, size: number) => ArrayBuffer;
  eventfd: (initval: number, flags: number) => number;
  poll: koffiModule.KoffiFunc<(fds: Buffer, nfds: Int64, timeout: number) => number>;

  registerPerfSample: (fn: (ctx: P, cpu: number, data: P, size: number) => void) => Callback;
  registerPerfLost: (fn: (ctx: P, cpu: number, count: Int64) => void) => Callback;
  perf_buffer__new: (mapFd: number, pageCnt: number, sample: Callback, lost: Callback, ctx: null, opts: null) => P | null;
  perf_buffer__epoll_fd: (pb: P) => number;
  perf_buffer__consume_buffer: (pb: P, bufIdx: number) => number;
  perf_buffer__buffer_cnt: (pb: P) => Int64;
  perf_buffer__free: (pb: P) => void;

  bpf_program__attach_uprobe_opts: (prog: P, pid: number, binaryPath: string, funcOffset: number, opts: Opts) => P | null;
  bpf_program__pin: (prog: P, path: string) => number;
  bpf_program__unpin: (prog: P, path: string) => number;
  bpf_map__pin: (map: P, path: string) => number;
  bpf_map__unpin: (map: P, path: string) => number;
  bpf_map_freeze: (fd: number) => number;
  bpf_map_lookup_and_delete_elem: (fd: number, key: Bytes, value: Bytes) => number;
  bpf_map_update_batch: (fd: number, keys: Bytes, values: Bytes, count: [number], opts: Opts) => number;
  bpf_map_delete_batch: (fd: number, keys: Bytes, count: [number], opts: Opts) => number;
  bpf_program__attach_perf_event: (prog: P, pfd: number) => P | null;
  bpf_program__attach_usdt: (prog: P, pid: number, binaryPath: string, provider: string, name: string, opts: null) => P | null;
  bpf_program__attach_cgroup: (prog: P, cgroupFd: number) => P | null;
  syscallPerfEventOpen: (nr: number, attr: Buffer, pid: number, cpu: number, groupFd: number, flags: Int64) => Int64;
}

let libcLib: koffiModule.IKoffiLib | undefined;

/** libc.so.6, loaded once: for native() and for the *at calls and flock (dirfd.ts, flock.ts), which need no libbpf. */
export function libc(): koffiModule.IKoffiLib {
  libcLib ??= loadKoffi().load('libc.so.6');
  return libcLib;
}

/** libbpf's soname; ≥ 1.0 guarantees errno-style returns everywhere. */
export const LIBBPF_SONAME = 'libbpf.so.1';

function declare(): Native {
  const koffi = loadKoffi();
  let lib: koffiModule.IKoffiLib;
  try {
    lib = koffi.load(LIBBPF_SONAME);
  } catch {
    throw new LibraryMissingError(LIBBPF_SONAME);
  }
  const c = libc();

  koffi.opaque('bpf_object');
  koffi.opaque('bpf_program');
  koffi.opaque('bpf_map');
  koffi.opaque('bpf_link');
  koffi.opaque('btf');
  koffi.opaque('ring_buffer');
  koffi.opaque('perf_buffer');

  // Field order and sizes follow struct bpf_object_open_opts of libbpf 1.x;
  // `sz` tells libbpf how much of it we know, so newer libbpfs accept it.
  const openOpts = koffi.struct('bpf_object_open_opts', {
    sz: 'size_t',
    object_name: 'const char *',
    relaxed_maps: 'bool',
    pin_root_path: 'const char *',
    unused_attach_prog_fd: 'uint32',
    kconfig: 'const char *',
    btf_custom_path: 'const char *',
    kernel_log_buf: 'void *',
    kernel_log_size: 'size_t',
    kernel_log_level: 'uint32',
  });

  // The opts structs of libbpf's bpf(2) wrappers, as bpf/bpf.h of libbpf 1.1
  // declares them (each starts with its own size, so later libbpfs accept it).
  const mapCreateOpts = koffi.struct('bpf_map_create_opts', {
    sz: 'size_t',
    btf_fd: 'uint32',
    btf_key_type_id: 'uint32',
    btf_value_type_id: 'uint32',
    btf_vmlinux_value_type_id: 'uint32',
    inner_map_fd: 'uint32',
    map_flags: 'uint32',
    map_extra: 'uint64',
    numa_node: 'uint32',
    map_ifindex: 'uint32',
  });
  const progLoadOpts = koffi.struct('bpf_prog_load_opts', {
    sz: 'size_t',
    attempts: 'int',
    expected_attach_type: 'uint32',
    prog_btf_fd: 'uint32',
    prog_flags: 'uint32',
    prog_ifindex: 'uint32',
    kern_version: 'uint32',
    attach_btf_id: 'uint32',
    attach_prog_fd: 'uint32',
    attach_btf_obj_fd: 'uint32',
    fd_array: 'void *',
    func_info: 'void *',
    func_info_cnt: 'uint32',
    func_info_rec_size: 'uint32',
    line_info: 'void *',
    line_info_cnt: 'uint32',
    line_info_rec_size: 'uint32',
    log_level: 'uint32',
    log_size: 'uint32',
    log_buf: 'void *',
  });
  const testRunOpts = koffi.struct('bpf_test_run_opts', {
    sz: 'size_t',
    data_in: 'void *',
    data_out: 'void *',
    data_size_in: 'uint32',
    data_size_out: 'uint32',
    ctx_in: 'void *',
    ctx_out: 'void *',
    ctx_size_in: 'uint32',
    ctx_size_out: 'uint32',
    retval: 'uint32',
    repeat: 'int',
    duration: 'uint32',
    flags: 'uint32',
    cpu: 'uint32',
    batch_size: 'uint32',
  });
  const batchOpts = koffi.struct('bpf_map_batch_opts', { sz: 'size_t', elem_flags: 'uint64', flags: 'uint64' });
  // struct bpf_tc_hook / bpf_tc_opts end in `size_t :0`, which pads them to 8.
  const tcHook = koffi.struct('bpf_tc_hook', {
    sz: 'size_t',
    ifindex: 'int',
    attach_point: 'uint32',
    parent: 'uint32',
  });
  const tcOpts = koffi.struct('bpf_tc_opts', {
    sz: 'size_t',
    prog_fd: 'int',
    flags: 'uint32',
    prog_id: 'uint32',
    handle: 'uint32',
    priority: 'uint32',
  });
  // int (*)(void *ctx, void *data, size_t size): one ring buffer record.
  const sampleFn = koffi.proto('int ring_buffer_sample_fn(void *ctx, void *data, size_t size)');

  // perf_buffer_sample_fn and perf_buffer_lost_fn: one record, or lost records, of one CPU.
  const perfSampleFn = koffi.proto('void perf_buffer_sample_fn(void *ctx, int cpu, void *data, uint32 size)');
  const perfLostFn = koffi.proto('void perf_buffer_lost_fn(void *ctx, int cpu, uint64 cnt)');

  // struct bpf_uprobe_opts of libbpf 1.1 (ends in `size_t :0`: padded to 8).
  const uprobeOpts = koffi.struct('bpf_uprobe_opts', {
    sz: 'size_t',
    ref_ctr_offset: 'size_t',
    bpf_cookie: 'uint64',
    retprobe: 'bool',
    func_name: 'const char *',
  });

  // int (*)(enum libbpf_print_level, const char *fmt, va_list): the va_list
  // is only ever handed on to vsnprintf, so it travels as an opaque pointer.
  const printFn = koffi.proto('int libbpf_print_fn_t(int level, void *fmt, void *args)');

  // The light loader's ctx (bpf/skel_internal.h): a bpf_loader_ctx, then a
  // bpf_map_desc per map and a bpf_prog_desc per program (light.ts).
  const loaderCtx = koffi.struct('bpf_loader_ctx', {
    sz: 'uint32',
    flags: 'uint32',
    log_level: 'uint32',
    log_size: 'uint32',
    log_buf: 'uint64',
  });
  const mapDesc = koffi.struct('bpf_map_desc', { map_fd: 'int', max_entries: 'uint32', initial_value: 'uint64' });
  const progDesc = koffi.struct('bpf_prog_desc', { prog_fd: 'int' });
  // struct gen_loader_opts of libbpf.h: gen_loader writes where it recorded
  // the loader into it (genloader.ts reads it as bytes).
  const genLoaderOpts = koffi.struct('gen_loader_opts', {
    sz: 'size_t',
    data: 'const char *',
    insns: 'const char *',
    data_sz: 'uint32',
    insns_sz: 'uint32',
  });

  return {
    openOptsSize: koffi.sizeof(openOpts),
    mapCreateOptsSize: koffi.sizeof(mapCreateOpts),
    progLoadOptsSize: koffi.sizeof(progLoadOpts),
    testRunOptsSize: koffi.sizeof(testRunOpts),
    batchOptsSize: koffi.sizeof(batchOpts),
    tcHookSize: koffi.sizeof(tcHook),
    tcOptsSize: koffi.sizeof(tcOpts),
    uprobeOptsSize: koffi.sizeof(uprobeOpts),
    loaderCtxSize: koffi.sizeof(loaderCtx),
    mapDescSize: koffi.sizeof(mapDesc),
    progDescSize: koffi.sizeof(progDesc),
    genLoaderOpts: {
      size: koffi.sizeof(genLoaderOpts),
      data: koffi.offsetof(genLoaderOpts, 'data'),
      insns: koffi.offsetof(genLoaderOpts, 'insns'),
      dataSize: koffi.offsetof(genLoaderOpts, 'data_sz'),
      insnsSize: koffi.offsetof(genLoaderOpts, 'insns_sz'),
    },
    /** Registers a JS function as a ring_buffer_sample_fn; unregister() it after ring_buffer__free. */
    registerSample: (fn) => koffi.register(fn, koffi.pointer(sampleFn)),
    unregister: (cb) => koffi.unregister(cb),
    /** Registers a JS function as libbpf's print callback (log.ts). */
    register: (fn) => koffi.register(fn, koffi.pointer(printFn)),
    errno: () => koffi.errno(),
    /** Address of a Buffer's bytes, for the u64 pointer fields of bpf_*_info. */
    addressOf: (buf) => koffi.address(buf),

    libbpf_set_print: lib.func('void *libbpf_set_print(libbpf_print_fn_t *fn)'),
    libbpf_major_version: lib.func('uint32 libbpf_major_version()'),
    libbpf_minor_version: lib.func('uint32 libbpf_minor_version()'),

    bpf_object__open_mem: lib.func('bpf_object *bpf_object__open_mem(const void *buf, size_t size, const bpf_object_open_opts *opts)'),
    bpf_object__open_file: lib.func('bpf_object *bpf_object__open_file(const char *path, const bpf_object_open_opts *opts)'),
    bpf_object__load: lib.func('int bpf_object__load(bpf_object *obj)'),
    // opts is a struct gen_loader_opts libbpf keeps a pointer to and fills in
    // at load, so it is passed as caller-owned memory (see light.ts).
    bpf_object__gen_loader: lib.func('int bpf_object__gen_loader(bpf_object *obj, void *opts)'),
    bpf_object__close: lib.func('void bpf_object__close(bpf_object *obj)'),
    bpf_object__name: lib.func('const char *bpf_object__name(const bpf_object *obj)'),
    bpf_object__next_program: lib.func('bpf_program *bpf_object__next_program(const bpf_object *obj, bpf_program *prev)'),
    bpf_object__next_map: lib.func('bpf_map *bpf_object__next_map(const bpf_object *obj, const bpf_map *prev)'),

    bpf_program__name: lib.func('const char *bpf_program__name(const bpf_program *prog)'),
    bpf_program__section_name: lib.func('const char *bpf_program__section_name(const bpf_program *prog)'),
    bpf_program__autoload: lib.func('bool bpf_program__autoload(const bpf_program *prog)'),
    bpf_program__set_autoload: lib.func('int bpf_program__set_autoload(bpf_program *prog, bool autoload)'),
    bpf_program__fd: lib.func('int bpf_program__fd(const bpf_program *prog)'),
    bpf_program__type: lib.func('int bpf_program__type(const bpf_program *prog)'),
    bpf_program__set_attach_target: lib.func('int bpf_program__set_attach_target(bpf_program *prog, int attach_prog_fd, const char *attach_func_name)'),
    bpf_program__attach: lib.func('bpf_link *bpf_program__attach(const bpf_program *prog)'),
    bpf_program__attach_raw_tracepoint: lib.func('bpf_link *bpf_program__attach_raw_tracepoint(const bpf_program *prog, const char *tp_name)'),
    bpf_program__attach_tracepoint: lib.func('bpf_link *bpf_program__attach_tracepoint(const bpf_program *prog, const char *category, const char *name)'),
    bpf_program__attach_kprobe: lib.func('bpf_link *bpf_program__attach_kprobe(const bpf_program *prog, bool retprobe, const char *func)'),
    bpf_program__attach_xdp: lib.func('bpf_link *bpf_program__attach_xdp(const bpf_program *prog, int ifindex)'),
    bpf_program__attach_iter: lib.func('bpf_link *bpf_program__attach_iter(const bpf_program *prog, const void *opts)'),

    bpf_map__name: lib.func('const char *bpf_map__name(const bpf_map *map)'),
    bpf_map__fd: lib.func('int bpf_map__fd(const bpf_map *map)'),
    bpf_map__type: lib.func('int bpf_map__type(const bpf_map *map)'),
    bpf_map__max_entries: lib.func('uint32 bpf_map__max_entries(const bpf_map *map)'),
    bpf_map__key_size: lib.func('uint32 bpf_map__key_size(const bpf_map *map)'),
    bpf_map__value_size: lib.func('uint32 bpf_map__value_size(const bpf_map *map)'),

    bpf_map__set_max_entries: lib.func('int bpf_map__set_max_entries(bpf_map *map, uint32 max_entries)'),
    bpf_map__initial_value: lib.func('void *bpf_map__initial_value(bpf_map *map, _Out_ size_t *size)'),

    bpf_link__fd: lib.func('int bpf_link__fd(const bpf_link *link)'),
    bpf_link__pin: lib.func('int bpf_link__pin(bpf_link *link, const char *path)'),
    bpf_link__destroy: lib.func('int bpf_link__destroy(bpf_link *link)'),

    bpf_obj_pin: lib.func('int bpf_obj_pin(int fd, const char *path)'),
    bpf_obj_get: lib.func('int bpf_obj_get(const char *path)'),
    bpf_obj_get_info_by_fd: lib.func('int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32 *len)'),
    bpf_prog_get_fd_by_id: lib.func('int bpf_prog_get_fd_by_id(uint32 id)'),
    bpf_map_get_fd_by_id: lib.func('int bpf_map_get_fd_by_id(uint32 id)'),
    bpf_prog_get_next_id: lib.func('int bpf_prog_get_next_id(uint32 start, _Out_ uint32 *next)'),
    bpf_map_get_next_id: lib.func('int bpf_map_get_next_id(uint32 start, _Out_ uint32 *next)'),
    bpf_map_lookup_elem: lib.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
    bpf_map_update_elem: lib.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64 flags)'),
    bpf_map_delete_elem: lib.func('int bpf_map_delete_elem(int fd, const void *key)'),
    bpf_map_get_next_key: lib.func('int bpf_map_get_next_key(int fd, const void *key, void *next_key)'),
    bpf_map_lookup_batch: lib.func(
      'int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, _Inout_ uint32 *count, const bpf_map_batch_opts *opts)',
    ),
    bpf_map_create: lib.func(
      'int bpf_map_create(uint32 map_type, const char *map_name, uint32 key_size, uint32 value_size, uint32 max_entries, const bpf_map_create_opts *opts)',
    ),
    bpf_prog_load: lib.func(
      'int bpf_prog_load(uint32 prog_type, const char *prog_name, const char *license, const void *insns, size_t insn_cnt, const bpf_prog_load_opts *opts)',
    ),
    bpf_prog_test_run_opts: lib.func('int bpf_prog_test_run_opts(int prog_fd, _Inout_ bpf_test_run_opts *opts)'),
    bpf_link_create: lib.func('int bpf_link_create(int prog_fd, int target_fd, uint32 attach_type, const void *opts)'),
    // BPF_ITER_CREATE: a readable fd for one pass of an iterator link (show, Link.read).
    bpf_iter_create: lib.func('int bpf_iter_create(int link_fd)'),
    bpf_link_get_fd_by_id: lib.func('int bpf_link_get_fd_by_id(uint32 id)'),
    bpf_link_get_next_id: lib.func('int bpf_link_get_next_id(uint32 start, _Out_ uint32 *next)'),
    libbpf_num_possible_cpus: lib.func('int libbpf_num_possible_cpus()'),
    // ---- run-time statistics and type names (the exporter) ----
    // BPF_ENABLE_STATS: stats stay on while the returned fd is open.
    bpf_enable_stats: lib.func('int bpf_enable_stats(int type)'),
    libbpf_bpf_prog_type_str: lib.func('const char *libbpf_bpf_prog_type_str(int t)'),
    libbpf_bpf_map_type_str: lib.func('const char *libbpf_bpf_map_type_str(int t)'),
    libbpf_bpf_link_type_str: lib.func('const char *libbpf_bpf_link_type_str(int t)'),
    /** close(2) without Node's fs bookkeeping: the exporter closes one fd per program per scrape. */
    close: c.func('int close(int fd)'),

    bpf_tc_hook_create: lib.func('int bpf_tc_hook_create(bpf_tc_hook *hook)'),
    bpf_tc_attach: lib.func('int bpf_tc_attach(const bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)'),
    bpf_tc_detach: lib.func('int bpf_tc_detach(const bpf_tc_hook *hook, const bpf_tc_opts *opts)'),

    ring_buffer__new: lib.func('ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn *sample_cb, void *ctx, const void *opts)'),
    ring_buffer__free: lib.func('void ring_buffer__free(ring_buffer *rb)'),

    btf__load_vmlinux_btf: lib.func('btf *btf__load_vmlinux_btf()'),
    btf__find_by_name_kind: lib.func('int btf__find_by_name_kind(const btf *btf, const char *name, uint32 kind)'),
    btf__free: lib.func('void btf__free(btf *btf)'),

    // ---- BTF of an object: its global variables and its maps' keys and values (skeleton, gen skeleton) ----
    bpf_object__btf: lib.func('btf *bpf_object__btf(const bpf_object *obj)'),
    btf__type_cnt: lib.func('uint32 btf__type_cnt(const btf *btf)'),
    // const struct btf_type *: read through btfWords (name_off, info, size/type, then the kind's records)
    btf__type_by_id: lib.func('const void *btf__type_by_id(const btf *btf, uint32 id)'),
    btf__name_by_offset: lib.func('const char *btf__name_by_offset(const btf *btf, uint32 offset)'),
    btf__resolve_size: lib.func('int64 btf__resolve_size(const btf *btf, uint32 id)'),
    bpf_map__btf_key_type_id: lib.func('uint32 bpf_map__btf_key_type_id(const bpf_map *map)'),
    bpf_map__btf_value_type_id: lib.func('uint32 bpf_map__btf_value_type_id(const bpf_map *map)'),
    bpf_map__is_internal: lib.func('bool bpf_map__is_internal(const bpf_map *map)'),
    // bpf_map__initial_value (above) gives the image; this sets it before load.
    bpf_map__set_initial_value: lib.func('int bpf_map__set_initial_value(bpf_map *map, const void *data, size_t size)'),
    /** `count` 32-bit words at a pointer libbpf handed us. */
    btfWords: (ptr, count) => koffi.decode(ptr, 'uint32', count) as Uint32Array,
    /** Copies n bytes from a Buffer to a raw address (a map's mmaped image). */
    copyTo: c.func('void *memcpy(uintptr_t dest, const void *src, size_t n)'),
    /** Numeric address of a pointer libbpf handed us. */
    pointerAddress: (ptr) => koffi.address(ptr),
    // libbpf 1.1's bpf_object__load leaves the image a private copy; a C
    // skeleton's load maps the kernel map over it, and so do we (skeleton.ts).
    mmap: c.func('uintptr_t mmap(uintptr_t addr, size_t length, int prot, int flags, int fd, int64 offset)'),
    getpagesize: c.func('int getpagesize()'),
    // ---- end of the BTF / globals block ----

    vsnprintf: c.func('int vsnprintf(void *buf, size_t size, void *fmt, void *args)'),
    /** Copies n bytes from a raw address (one libbpf handed us) into a Buffer. */
    copyFrom: c.func('void *memcpy(void *dest, uintptr_t src, size_t n)'),
    /** if_nametoindex(3), for attaching to a network interface by name. */
    if_nametoindex: c.func('uint32 if_nametoindex(const char *name)'),

    // ---- ring buffers read in place (ringbuf.ts) ----
    // libbpf's ring_buffer only multiplexes the rings' fds into one epoll fd;
    // the records are read from our own mapping of each ring.
    ring_buffer__add: lib.func('int ring_buffer__add(ring_buffer *rb, int map_fd, ring_buffer_sample_fn *sample_cb, void *ctx)'),
    ring_buffer__epoll_fd: lib.func('int ring_buffer__epoll_fd(const ring_buffer *rb)'),
    /** mmap(2) giving a pointer, for view(); MAP_FAILED is the address 2^64 - 1. */
    mmapPointer: c.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64 offset)'),
    munmap: c.func('int munmap(void *addr, size_t length)'),
    /** An ArrayBuffer over `size` bytes of native memory (no copy); it must not outlive the memory. */
    view: (ptr, size) => koffi.view(ptr, size),
    eventfd: c.func('int eventfd(uint32 initval, int flags)'),
    /** poll(2) over struct pollfd entries in a Buffer; waited on with .async, off the main thread. */
    poll: c.func('int poll(void *fds, uint64 nfds, int timeout)'),

    // ---- perf buffers (perfbuf.ts): libbpf consumes, a koffi callback per record ----
    /** Registers JS functions as a perf_buffer_sample_fn and lost_fn; unregister() them after perf_buffer__free. */
    registerPerfSample: (fn) => koffi.register(fn, koffi.pointer(perfSampleFn)),
    registerPerfLost: (fn) => koffi.register(fn, koffi.pointer(perfLostFn)),
    perf_buffer__new: lib.func(
      'perf_buffer *perf_buffer__new(int map_fd, size_t page_cnt, perf_buffer_sample_fn *sample_cb, perf_buffer_lost_fn *lost_cb, void *ctx, const void *opts)',
    ),
    perf_buffer__epoll_fd: lib.func('int perf_buffer__epoll_fd(const perf_buffer *pb)'),
    perf_buffer__consume_buffer: lib.func('int perf_buffer__consume_buffer(perf_buffer *pb, size_t buf_idx)'),
    perf_buffer__buffer_cnt: lib.func('size_t perf_buffer__buffer_cnt(const perf_buffer *pb)'),
    perf_buffer__free: lib.func('void perf_buffer__free(perf_buffer *pb)'),

    // ---- uprobes, pins, map freeze and element batches ----
    bpf_program__attach_uprobe_opts: lib.func(
      'bpf_link *bpf_program__attach_uprobe_opts(const bpf_program *prog, int pid, const char *binary_path, size_t func_offset, const bpf_uprobe_opts *opts)',
    ),
    bpf_program__pin: lib.func('int bpf_program__pin(bpf_program *prog, const char *path)'),
    bpf_program__unpin: lib.func('int bpf_program__unpin(bpf_program *prog, const char *path)'),
    bpf_map__pin: lib.func('int bpf_map__pin(bpf_map *map, const char *path)'),
    bpf_map__unpin: lib.func('int bpf_map__unpin(bpf_map *map, const char *path)'),
    bpf_map_freeze: lib.func('int bpf_map_freeze(int fd)'),
    bpf_map_lookup_and_delete_elem: lib.func('int bpf_map_lookup_and_delete_elem(int fd, const void *key, void *value)'),
    bpf_map_update_batch: lib.func(
      'int bpf_map_update_batch(int fd, const void *keys, const void *values, _Inout_ uint32 *count, const bpf_map_batch_opts *opts)',
    ),
    bpf_map_delete_batch: lib.func('int bpf_map_delete_batch(int fd, const void *keys, _Inout_ uint32 *count, const bpf_map_batch_opts *opts)'),
    bpf_program__attach_perf_event: lib.func('bpf_link *bpf_program__attach_perf_event(const bpf_program *prog, int pfd)'),
    bpf_program__attach_usdt: lib.func(
      'bpf_link *bpf_program__attach_usdt(const bpf_program *prog, int pid, const char *binary_path, const char *usdt_provider, const char *usdt_name, const void *opts)',
    ),
    bpf_program__attach_cgroup: lib.func('bpf_link *bpf_program__attach_cgroup(const bpf_program *prog, int cgroup_fd)'),
    /** perf_event_open(2), which libc does not wrap: syscall(2) with its number. */
    syscallPerfEventOpen: c.func('long syscall(long number, void *attr, int pid, int cpu, int group_fd, unsigned long flags)'),
  };
}

let cached: Native | undefined;

/**
 * The declared functions; loads libbpf.so.1 on the first call.
 * @internal
 */
export function native(): Native {
  cached ??= declare();
  return cached;
}
