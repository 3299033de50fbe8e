// `bpf-preload status`: what is pinned where, and whether a run is going on
// or was interrupted, without changing anything (no lock taken, nothing loaded).
import { join } from 'node:path';
import { requireBpffs } from './bpffs.js';
import { inspectEntry, type Entry } from './entries.js';
import { isLocked, lockHolder } from './lock.js';
import { FALLBACK_SUBDIR, FILE_NAMES } from './names.js';
import { findInterrupted, type Interrupted } from './trail.js';

export interface Status {
  dir: string;
  /** The root's entries, then those under preload/ when that directory has any. */
  entries: Entry[];
  /** A run holds the directory's lock right now: its pid (0 when not known). */
  running: number | null;
  /** What a killed run left; the next populate or unpin repairs it. */
  interrupted: Interrupted | null;
}

export function status(bpffs: string): Status {
  requireBpffs(bpffs, false);
  const entries = FILE_NAMES.map((name) => inspectEntry(join(bpffs, name)));
  const fallback = FILE_NAMES.map((name) => inspectEntry(join(bpffs, FALLBACK_SUBDIR, name)));
  if (fallback.some((e) => e.state !== 'missing')) entries.push(...fallback);
  // While a run holds the lock its trail and temporary pins are work in progress.
  const running = isLocked(bpffs) ? (lockHolder(bpffs) ?? 0) : null;
  return { dir: bpffs, entries, running, interrupted: running === null ? findInterrupted(bpffs) : null };
}
