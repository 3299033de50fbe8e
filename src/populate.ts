// The runner's pinning policy: where progs.debug and maps.debug go, replacing
// our own earlier pins atomically, leaving other people's alone, and never
// leaving a bpffs half-modified. One run at a time per directory (lock.ts);
// what a killed run left is repaired first (trail.ts); the pinning itself is
// one transaction (transaction.ts).
import { join } from 'node:path';
import { isDirectory, requireBpffs } from './bpffs.js';
import { inspectEntry, type Entry } from './entries.js';
import { PreloadError } from './errors.js';
import { loadIterators } from './iterators.js';
import { DirLock, type LockOptions } from './lock.js';
import { FALLBACK_SUBDIR, FILE_NAMES } from './names.js';
import { holdSignals } from './signals.js';
import { mark } from './timing.js';
import { repair, type Repair } from './trail.js';
import { pinTransaction, type Pinned } from './transaction.js';

export interface PopulateOptions {
  /** The bpffs directory to populate. */
  bpffs: string;
  /** Mode of the pinned files (the kernel's are 0400). */
  mode: number;
  /** Replace working entries that are not ours. */
  replace: boolean;
  /** Mount a bpffs at `bpffs` if none is there (for the default location). */
  mountIfMissing: boolean;
  lock?: LockOptions;
}

export interface PinnedFile extends Pinned {
  /** What was there before: missing, ours, or foreign (with --replace). */
  replaced: Entry;
}

export type PopulateResult = (
  | { kind: 'pinned'; dir: string; files: PinnedFile[]; fallbackFrom?: Entry[] }
  | { kind: 'left-alone'; dir: string; foreign: Entry[] }
) & {
  /** What an interrupted earlier run left, and was put right first. */
  repaired: Repair | null;
};

function inspectDir(dir: string): Entry[] {
  return FILE_NAMES.map((name) => inspectEntry(join(dir, name)));
}

interface Choice {
  dir: string;
  entries: Entry[];
  /** The root's unusable entries, when they sent us to FALLBACK_SUBDIR. */
  fallbackFrom?: Entry[];
  /** Held while we work in FALLBACK_SUBDIR, against a run given that directory itself. */
  lock?: DirLock;
}

/** Chooses the target directory: the root itself, or root/preload/ when the root has unusable entries. */
function chooseTarget(root: string, lockOpts?: LockOptions): Choice {
  const entries = inspectDir(root);
  const unusable = entries.filter((e) => e.state === 'unusable');
  if (unusable.length === 0) return { dir: root, entries };
  const dir = join(root, FALLBACK_SUBDIR);
  const lock = isDirectory(dir) ? DirLock.acquire(dir, lockOpts) : undefined;
  try {
    const inner = inspectDir(dir);
    const stuck = inner.find((e) => e.state === 'unusable');
    if (stuck) {
      throw new PreloadError(`${stuck.path} exists but cannot be opened (${stuck.reason}): remove it, or use another --bpffs`);
    }
    return { dir, entries: inner, fallbackFrom: unusable, lock };
  } catch (err) {
    lock?.release();
    throw err;
  }
}

export function populate(opts: PopulateOptions): PopulateResult {
  requireBpffs(opts.bpffs, opts.mountIfMissing);
  using _lock = DirLock.acquire(opts.bpffs, opts.lock);
  mark('lock');
  holdSignals();
  const repaired = repair(opts.bpffs);
  mark('repair');
  const { dir, entries, fallbackFrom, lock: subLock } = chooseTarget(opts.bpffs, opts.lock);
  using _subLock = subLock;
  mark('inspect');
  const foreign = entries.filter((e) => e.state === 'foreign');
  if (foreign.length > 0 && !opts.replace) return { kind: 'left-alone', dir, foreign, repaired };

  using iterators = loadIterators();
  const target = { root: opts.bpffs, dir, create: !!fallbackFrom && !isDirectory(dir) };
  const pinned = pinTransaction(target, iterators.files, opts.mode);
  mark('pin + read back');
  const files = pinned.map((p) => ({ ...p, replaced: entries.find((e) => e.path === p.path) ?? { path: p.path, state: 'missing' as const } }));
  return { kind: 'pinned', dir, files, fallbackFrom, repaired };
}
