// The names and texts bpf-preload's files are made of, defined once: file
// names, the fallback directory, temporary names, the object's name, its
// marker and the files' headers. A leaf module: read-only commands import it
// without pulling in the loader. bpf/iterators.bpf.c holds its own copies of
// the marker and the headers (C needs literals); test/skelgen.test.ts checks
// them against these through the generated skeleton.

export type FileName = 'maps.debug' | 'progs.debug';
/** The two files, in the order they are pinned and listed. */
export const FILE_NAMES: readonly FileName[] = ['maps.debug', 'progs.debug'];

/**
 * Object name at load. libbpf names the .rodata map after its first 8
 * characters: maps.debug lists it as bpf_prel.rodata.
 */
export const OBJECT_NAME = 'bpf_preload';

/**
 * The value of the object's .rodata global bpf_preload_marker: how we tell
 * our pins from anyone else's (the kernel's preload uses the same program names).
 */
export const MARKER = 'bpf-preload/iterators/v1';

/** The first line of each file, as the kernel's own iterators print it. */
export const PROGS_HEADER = '  id name             attached\n';
/** Kernels with the bpf_map_sum_elem_count kfunc (6.6+) also print cur_entries. */
export const MAPS_HEADER_WITH_COUNT = '  id name             max_entries  cur_entries\n';
export const MAPS_HEADER_COMPAT = '  id name             max_entries\n';

/** How other projects import our libbpf bindings; `gen skeleton`'s output does by default. */
export const LIBRARY_IMPORT = 'bpf-preload/libbpf';

/** Where we pin when the bpffs root holds entries nobody can open or replace. */
export const FALLBACK_SUBDIR = 'preload';

/**
 * The crash trail of a run that is changing the directory: a symlink at the
 * bpffs root whose target text records what to put back (see trail.ts).
 * Dotless, like every name below, so it can be made while the directory
 * keeps its mode.
 */
export const TRAIL_NAME = 'bpf-preload-transaction';

/** Which process made a temporary name: pid and start time (no pid reuse can fake it). */
export interface Owner {
  pid: number;
  /** Start time in clock ticks after boot, field 22 of /proc/PID/stat. */
  start: number;
}

/** `maps.debug` -> `maps-debug`: bpffs takes dotted names only while the directory's mode is 0. */
const dotless = (name: FileName) => name.replace('.', '-');

/** A new link waiting to be renamed onto `name`. */
export function newPinName(owner: Owner, name: FileName): string {
  return `bpf-preload-${owner.pid}-${owner.start}-${dotless(name)}`;
}

/** The link `name` held before, re-pinned during a rollback on its way back. */
export function oldPinName(owner: Owner, name: FileName): string {
  return `bpf-preload-${owner.pid}-${owner.start}-old-${dotless(name)}`;
}

const TEMP_PIN = /^bpf-preload-(\d+)-(\d+)-(?:old-)?(?:maps|progs)-debug$/;

/** Who made a temporary pin, from its name; null for any other name. */
export function tempPinOwner(name: string): Owner | null {
  const m = TEMP_PIN.exec(name);
  return m ? { pid: Number(m[1]), start: Number(m[2]) } : null;
}
