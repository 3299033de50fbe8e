// The names bpf-preload gives things in a bpffs, defined once. A leaf module:
// read-only commands import it without pulling in the loader.

export type FileName = 'maps.debug' | 'progs.debug';
/** The two files, in the order they are pinned and listed. */
export const FILE_NAMES: readonly FileName[] = ['maps.debug', 'progs.debug'];

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
/** Temporary names of bpf-preload 0.1, which carried only the pid. */
const LEGACY_TEMP_PIN = /^(?:maps|progs)\.debug\.(\d+)\.new$/;

/** Who made a temporary pin, from its name; null for any other name. */
export function tempPinOwner(name: string): { pid: number; start?: number } | null {
  const m = TEMP_PIN.exec(name);
  if (m) return { pid: Number(m[1]), start: Number(m[2]) };
  const legacy = LEGACY_TEMP_PIN.exec(name);
  return legacy ? { pid: Number(legacy[1]) } : null;
}
