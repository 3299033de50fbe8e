// What is pinned at progs.debug / maps.debug: nothing, our own iterator, a
// working iterator of someone else's (the kernel's preload, say), or an entry
// that exists but cannot be opened. Ours are recognised by the marker, a
// typed .rodata global of our object read through its generated layout, not
// by program name: the kernel's preload uses the same names. The kernel's
// own preload (CONFIG_BPF_PRELOAD) is told from anyone else's by its object.
import { readlinkSync } from 'node:fs';
import { BPF_LINK_TYPE_ITER, ErrnoError, decodeSection, linkInfo, mapFdById, mapInfo, mapLookup, progFdById, progInfo, withFd } from '../libbpf/index.js';
import { IteratorsLayouts, type IteratorsRodata } from '../../skel/iterators.globals.js';
import type { BpffsDir } from './transaction/bpffs.js';
import { FILE_NAMES, MARKER } from './names.js';

export type EntryState = 'missing' | 'ours' | 'foreign' | 'unusable';

export interface Entry {
  path: string;
  state: EntryState;
  linkId?: number;
  progId?: number;
  /** The kernel's (16-byte) name of the program behind the link. */
  progName?: string;
  /** A foreign entry that is the kernel's own preload (kernel/bpf/preload), pinned by the kernel at mount. */
  kernelPreload?: boolean;
  /** Why an existing entry is unusable (errno name). */
  reason?: string;
}

/** Errors of the moment (out of memory, I/O, fd limits), not of the entry. */
const TRANSIENT = new Set(['EIO', 'ENOMEM', 'EINTR', 'EAGAIN', 'ENFILE', 'EMFILE']);

function fdKind(fd: number): string {
  // "anon_inode:bpf-link", "anon_inode:bpf-prog", "anon_inode:bpf-map"
  return readlinkSync(`/proc/self/fd/${fd}`);
}

/** Whether one of the maps is a .rodata whose bpf_preload_marker holds our marker. */
function carriesMarker(mapIds: readonly number[]): boolean {
  const layout = IteratorsLayouts.rodata;
  for (const id of mapIds) {
    const found = withFd(mapFdById(id), (fd) => {
      const info = mapInfo(fd);
      if (!info.name.endsWith('.rodata') || info.keySize !== 4 || info.valueSize < layout.size) return false;
      const value = mapLookup(fd, Buffer.alloc(4), info.valueSize);
      return value !== null && decodeSection<IteratorsRodata>(layout, value).bpf_preload_marker === MARKER;
    });
    if (found) return true;
  }
  return false;
}

/**
 * The kernel's preload loads kernel/bpf/preload/iterators/iterators.bpf.c, an
 * object named "iterators": libbpf names its .rodata map after the first 8
 * characters, and its programs are dump_bpf_map and dump_bpf_prog.
 */
const KERNEL_PRELOAD_RODATA = 'iterator.rodata';
const KERNEL_PRELOAD_PROGS = new Set(['dump_bpf_map', 'dump_bpf_prog']);

/** Whether an iterator program without our marker is the kernel's own preload's. */
function isKernelPreload(prog: { name: string; mapIds: readonly number[] }): boolean {
  if (!KERNEL_PRELOAD_PROGS.has(prog.name)) return false;
  return prog.mapIds.some((id) => withFd(mapFdById(id), (fd) => mapInfo(fd).name === KERNEL_PRELOAD_RODATA));
}

/** Describes the entry `name` in `dir` without changing anything (nor following a symlink). */
export function inspectEntry(dir: BpffsDir, name: string): Entry {
  const path = dir.display(name);
  const st = dir.lstat(name);
  if (!st) return { path, state: 'missing' };
  if (!st.isFile()) return { path, state: 'unusable', reason: st.isSymbolicLink() ? 'a symlink' : 'not a pinned object' };
  let fd: number;
  try {
    fd = dir.objGet(name);
  } catch (err) {
    // A transient failure says nothing about the entry: taking it for
    // unusable would send the run to preload/ for no reason.
    if (err instanceof ErrnoError && TRANSIENT.has(err.code)) throw err;
    return { path, state: 'unusable', reason: err instanceof ErrnoError ? err.code : String(err) };
  }
  return withFd(fd, (fd): Entry => {
    if (fdKind(fd) !== 'anon_inode:bpf-link') return { path, state: 'foreign' };
    const link = linkInfo(fd);
    if (link.type !== BPF_LINK_TYPE_ITER) return { path, state: 'foreign', linkId: link.id, progId: link.progId };
    const prog = withFd(progFdById(link.progId), progInfo);
    const ours = carriesMarker(prog.mapIds);
    return {
      path,
      state: ours ? 'ours' : 'foreign',
      linkId: link.id,
      progId: prog.id,
      progName: prog.name,
      ...(!ours && isKernelPreload(prog) ? { kernelPreload: true } : {}),
    };
  });
}

/** Describes both files (FILE_NAMES, in that order) in `dir`. */
export function inspectFiles(dir: BpffsDir): Entry[] {
  return FILE_NAMES.map((name) => inspectEntry(dir, name));
}
