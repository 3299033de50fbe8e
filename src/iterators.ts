// Our two iterators as the runner uses them: which map program fits the
// running kernel, loading and attaching, and the header each file starts with.
import { IteratorsSkeleton } from '../skel/iterators.skel.js';
import { release as osRelease } from 'node:os';
import { kernelHasFunction, type BpfLink } from './libbpf/index.js';
import { mark } from './timing.js';

/** Stored in the object's .rodata; how we tell our pins from anyone else's. */
export const MARKER = 'bpf-preload/iterators/v1';
/** Object name at load; the .rodata map shows up as "bpf_pre.rodata" in maps.debug. */
export const OBJECT_NAME = 'bpf_preload';

export const PROGS_HEADER = '  id name             attached\n';
/** Kernels with the bpf_map_sum_elem_count kfunc (6.6+) also print cur_entries. */
export const MAPS_HEADER_WITH_COUNT = '  id name             max_entries  cur_entries\n';
export const MAPS_HEADER_COMPAT = '  id name             max_entries\n';

export const ELEM_COUNT_KFUNC = 'bpf_map_sum_elem_count';

export type FileName = 'maps.debug' | 'progs.debug';
export const FILE_NAMES: readonly FileName[] = ['maps.debug', 'progs.debug'];

export interface IteratorFile {
  name: FileName;
  link: BpfLink;
  /** The first line a working file prints. */
  header: string;
}

export interface LoadedIterators extends Disposable {
  files: IteratorFile[];
  /** Whether maps.debug has the cur_entries column. */
  withCount: boolean;
}

// Release 6.6 added the kfunc; older releases may have it backported.
function kfuncExpected(release = osRelease()): boolean {
  const [major, minor] = release.split('.').map((n) => parseInt(n, 10));
  return major > 6 || (major === 6 && minor >= 6);
}

/**
 * Loads the iterator programs and creates one iterator link per file. The
 * caller pins the links and then disposes of the result (pinned links live on).
 *
 * Which map program fits is a question for the kernel's BTF, and asking it
 * costs a parse of that BTF (~8 ms) on top of the one libbpf does while
 * loading. So on releases that should have the kfunc we just load the
 * program that uses it and ask only if that fails; elsewhere we ask first.
 */
export function loadIterators(): LoadedIterators {
  if (kfuncExpected()) {
    try {
      return loadWith(true);
    } catch (err) {
      if (kernelHasFunction(ELEM_COUNT_KFUNC)) throw err;
      mark('kfunc missing');
      return loadWith(false);
    }
  }
  const withCount = kernelHasFunction(ELEM_COUNT_KFUNC);
  mark('kfunc probe');
  return loadWith(withCount);
}

function loadWith(withCount: boolean): LoadedIterators {
  const skel = IteratorsSkeleton.open({ name: OBJECT_NAME });
  mark('open');
  try {
    skel.progs.dump_bpf_map.autoload = withCount;
    skel.progs.dump_bpf_map_compat.autoload = !withCount;
    skel.load();
    mark('load');
    skel.attach();
    mark('attach');
    const mapLink = withCount ? skel.links.dump_bpf_map : skel.links.dump_bpf_map_compat;
    const progLink = skel.links.dump_bpf_prog;
    if (!mapLink || !progLink) throw new Error('iterator links missing after attach');
    return {
      withCount,
      files: [
        { name: 'maps.debug', link: mapLink, header: withCount ? MAPS_HEADER_WITH_COUNT : MAPS_HEADER_COMPAT },
        { name: 'progs.debug', link: progLink, header: PROGS_HEADER },
      ],
      [Symbol.dispose]: () => skel.destroy(),
    };
  } catch (err) {
    skel.destroy();
    throw err;
  }
}
