// `bpf-preload show progs|maps`: what the pinned file would print, without
// pinning anything. Loads the iterators as populate does, creates the link,
// reads one pass of it through BPF_ITER_CREATE and releases everything.
import { loadIterators } from './iterators.js';
import { readIterator } from '../libbpf/index.js';
import type { FileName } from './names.js';

export type Listing = 'progs' | 'maps';
export const LISTINGS: readonly Listing[] = ['progs', 'maps'];

export interface ShowOptions {
  /** Runs while our programs are loaded, just before the read (tests compare with a pinned file there). */
  whileLoaded?: () => void;
}

export function show(which: Listing, opts: ShowOptions = {}): Buffer {
  using loaded = loadIterators();
  const name: FileName = `${which}.debug`;
  const file = loaded.files.find((f) => f.name === name);
  if (!file) throw new Error(`no iterator for ${name}`);
  opts.whileLoaded?.();
  return readIterator(file.link.fd);
}
