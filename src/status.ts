// `bpf-preload status`: what is pinned where, without changing anything.
import { join } from 'node:path';
import { requireBpffs } from './bpffs.js';
import { inspectEntry, type Entry } from './entries.js';
import { FILE_NAMES } from './iterators.js';
import { FALLBACK_SUBDIR } from './populate.js';

export interface Status {
  dir: string;
  /** The root's entries, then those under preload/ when that directory has any. */
  entries: Entry[];
}

export function status(bpffs: string): Status {
  requireBpffs(bpffs, false);
  const entries = FILE_NAMES.map((name) => inspectEntry(join(bpffs, name)));
  const fallback = FILE_NAMES.map((name) => inspectEntry(join(bpffs, FALLBACK_SUBDIR, name)));
  if (fallback.some((e) => e.state !== 'missing')) entries.push(...fallback);
  return { dir: bpffs, entries };
}
