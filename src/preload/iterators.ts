// Our two iterators as the runner uses them: which map program fits the
// running kernel, which loader (light skeleton or libbpf), loading and
// attaching, and the header each file starts with.
import { IteratorsSkeleton } from '../../skel/iterators.skel.js';
import { release as osRelease } from 'node:os';
import { ErrnoError, LightObject, kernelHasFunction, type PinnableLink } from '../libbpf/index.js';
import { PreloadError } from '../errors.js';
import { MAPS_HEADER_COMPAT, MAPS_HEADER_WITH_COUNT, OBJECT_NAME, PROGS_HEADER, type FileName } from './names.js';
import { mark } from '../timing.js';

export const ELEM_COUNT_KFUNC = 'bpf_map_sum_elem_count';

/** One file to pin: its name, the iterator link behind it, and what it must print first. */
export interface IteratorFile {
  name: FileName;
  link: PinnableLink;
  /** The first line a working file prints. */
  header: string;
}

export interface LoadedIterators extends Disposable {
  files: IteratorFile[];
}

export type Loader = 'light' | 'libbpf';
export const LOADER_ENV = 'BPF_PRELOAD_LOADER';

/** BPF_PRELOAD_LOADER: light, libbpf, or (unset, auto) light with libbpf as fallback. */
function loaderChoice(): Loader | 'auto' {
  const v = process.env[LOADER_ENV] ?? '';
  if (v === '' || v === 'auto' || v === 'light' || v === 'libbpf') return v || 'auto';
  throw new PreloadError(`${LOADER_ENV}=${v}: expected light, libbpf or auto`);
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
  const choice = loaderChoice();
  if (kfuncExpected()) {
    try {
      return loadWith(true, choice);
    } catch (err) {
      if (kernelHasFunction(ELEM_COUNT_KFUNC)) throw err;
      mark('kfunc missing');
      return loadWith(false, choice);
    }
  }
  const withCount = kernelHasFunction(ELEM_COUNT_KFUNC);
  mark('kfunc probe');
  return loadWith(withCount, choice);
}

/**
 * The light skeleton (a loader program that does CO-RE inside the kernel:
 * no parse of the kernel's BTF in this process) needs BPF_PROG_TYPE_SYSCALL
 * and in-kernel CO-RE, 5.17 or so. Older kernels refuse the loader program
 * (5.10: E2BIG, the load attr's fd_array is past what it knows) or make it
 * fail; then libbpf loads the object, as it can on any
 * kernel with BTF. Any light failure falls back: libbpf then either works or
 * fails with its own, more detailed, error.
 */
function loadWith(withCount: boolean, choice: Loader | 'auto'): LoadedIterators {
  if (choice === 'libbpf') return loadLibbpf(withCount);
  if (choice === 'light') return loadLight(withCount);
  try {
    return loadLight(withCount);
  } catch (err) {
    if (!(err instanceof ErrnoError)) throw err;
    mark(`light ${err.code}`);
    return loadLibbpf(withCount);
  }
}

function files(withCount: boolean, mapLink: PinnableLink, progLink: PinnableLink): IteratorFile[] {
  return [
    { name: 'maps.debug', link: mapLink, header: withCount ? MAPS_HEADER_WITH_COUNT : MAPS_HEADER_COMPAT },
    { name: 'progs.debug', link: progLink, header: PROGS_HEADER },
  ];
}

function loadLight(withCount: boolean): LoadedIterators {
  const spec = IteratorsSkeleton.light;
  if (spec.objectName !== OBJECT_NAME) throw new Error(`light loaders recorded as ${spec.objectName}, not ${OBJECT_NAME}`);
  const obj = LightObject.load(spec, withCount ? 'withCount' : 'compat');
  mark('load'); // same phase name as libbpf's: the bench reads it
  const links: PinnableLink[] = [];
  try {
    links.push(obj.attachIter(withCount ? 'dump_bpf_map' : 'dump_bpf_map_compat'));
    links.push(obj.attachIter('dump_bpf_prog'));
    mark('attach');
  } catch (err) {
    for (const l of links) l.destroy();
    obj.close();
    throw err;
  }
  return {
    files: files(withCount, links[0], links[1]),
    [Symbol.dispose]: () => {
      for (const l of links) l.destroy();
      obj.close();
    },
  };
}

function loadLibbpf(withCount: boolean): LoadedIterators {
  const skel = IteratorsSkeleton.open({ name: OBJECT_NAME });
  mark('open');
  try {
    skel.progs.dump_bpf_map.autoload = withCount;
    skel.progs.dump_bpf_map_compat.autoload = !withCount;
    const loaded = skel.load();
    mark('load');
    const links = loaded.attach();
    mark('attach');
    const mapLink = withCount ? links.dump_bpf_map : links.dump_bpf_map_compat;
    const progLink = links.dump_bpf_prog;
    return {
      files: files(withCount, mapLink, progLink),
      [Symbol.dispose]: () => skel.destroy(),
    };
  } catch (err) {
    skel.destroy();
    throw err;
  }
}
