// The exporter's iterators (bpf/exporter.bpf.c), loaded once at start-up and
// kept: a scrape is one BPF_ITER_CREATE and one sequential read per
// iterator. libbpf loads them (CO-RE against the kernel's BTF, once).
import { ExporterSkeleton } from '../../skel/exporter.skel.js';
import { IteratorReader, kernelHasFunction, possibleCpus, readIterator, type BpfLink } from '../libbpf/index.js';
import { ELEM_COUNT_KFUNC } from '../preload/iterators.js';

/** The kernel function behind the bpf_link iterator target (5.19+). */
const LINK_ITER_FUNC = 'bpf_iter_bpf_link';

export interface ExporterIterators extends Disposable {
  /** Whether maps report their element count (bpf_map_sum_elem_count, 6.6+). */
  readonly withCount: boolean;
  /** Whether the kernel has the bpf_link iterator. */
  readonly withLinks: boolean;
  readonly withHolders: boolean;
  /** struct exporter_prog records (valid until the read after the next). */
  readProgs(): Buffer;
  /** struct exporter_map records (valid until the read after the next). */
  readMaps(): Buffer;
  /** '' without the link iterator. */
  readLinks(): string;
  /** '' without --holders. */
  readHolders(): string;
}

export function loadExporterIterators(opts: { holders: boolean }): ExporterIterators {
  const withCount = kernelHasFunction(ELEM_COUNT_KFUNC);
  const withLinks = kernelHasFunction(LINK_ITER_FUNC);
  const skel = ExporterSkeleton.open();
  try {
    skel.rodata.nr_cpus = possibleCpus();
    skel.progs.exporter_maps.autoload = withCount;
    skel.progs.exporter_maps_compat.autoload = !withCount;
    skel.progs.exporter_links.autoload = withLinks;
    skel.progs.exporter_holders.autoload = opts.holders;
    const links = skel.load().attach();
    const text = (link: BpfLink | undefined) => (link ? readIterator(link.fd).toString('latin1') : '');
    const maps = withCount ? links.exporter_maps : links.exporter_maps_compat;
    // The parser compares each scrape's records with the last scrape's bytes:
    // each reader keeps both.
    const progReader = new IteratorReader();
    const mapReader = new IteratorReader();
    return {
      withCount,
      withLinks,
      withHolders: opts.holders,
      readProgs: () => progReader.read(links.exporter_progs.fd),
      readMaps: () => mapReader.read(maps.fd),
      readLinks: () => (withLinks ? text(links.exporter_links) : ''),
      readHolders: () => (opts.holders ? text(links.exporter_holders) : ''),
      [Symbol.dispose]: () => skel.destroy(),
    };
  } catch (err) {
    skel.destroy();
    throw err;
  }
}
