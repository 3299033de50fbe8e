// The runner's pinning policy: where progs.debug and maps.debug go, replacing
// our own earlier pins atomically, leaving other people's alone, and never
// leaving a bpffs half-modified. One run at a time per directory (lock.ts);
// what a killed run left is repaired first (trail.ts); the pinning itself is
// one transaction (transaction.ts).
import { BpffsDir, UntrustedDir } from './transaction/bpffs.js';
import { inspectFiles, type Entry } from './entries.js';
import { PreloadError } from '../errors.js';
import { loadIterators } from './iterators.js';
import { DirLock, type LockOptions } from './transaction/lock.js';
import { FALLBACK_SUBDIR, FILE_NAMES } from './names.js';
import { holdSignals } from './transaction/signals.js';
import { mark } from '../timing.js';
import { repair, type Repair } from './transaction/trail.js';
import { pinTransaction, type Pinned, type Target } from './transaction/transaction.js';

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
  /** Told at once what an interrupted earlier run left and was put right, even if this run then fails. */
  onRepair?: (r: Repair) => void;
}

export interface PinnedFile extends Pinned {
  /** What was there before: missing, ours, or foreign (with --replace). */
  replaced: Entry;
}

export type PopulateResult = (
  | {
      kind: 'pinned';
      dir: string;
      files: PinnedFile[];
      fallbackFrom?: Entry[];
      /** Our earlier pins in preload/, removed now that the root holds the pair. */
      removedStale: string[];
    }
  | { kind: 'left-alone'; dir: string; foreign: Entry[] }
) & {
  /** What an interrupted earlier run left, and was put right first. */
  repaired: Repair | null;
};

/**
 * The root's FALLBACK_SUBDIR, if there is one we may use, and its lock (taken
 * before any signal is held, so a signal ends the wait). A preload/ that is
 * not a directory of ours that only we can write is never used: why is said
 * when the run needs it.
 */
function lockFallback(root: BpffsDir, lockOpts?: LockOptions): { sub?: BpffsDir | UntrustedDir; lock?: DirLock } {
  const sub = root.openDirIfThere(FALLBACK_SUBDIR);
  if (!(sub instanceof BpffsDir)) return { sub };
  try {
    return { sub, lock: DirLock.acquire(sub, lockOpts) };
  } catch (err) {
    sub.close();
    throw err;
  }
}

interface Choice {
  target: Target;
  entries: Entry[];
  /** The root's unusable entries, when they sent us to FALLBACK_SUBDIR. */
  fallbackFrom?: Entry[];
}

/** Chooses the target directory: the root itself, or root/preload/ when the root has unusable entries. */
function chooseTarget(root: BpffsDir, sub: BpffsDir | UntrustedDir | undefined): Choice {
  const entries = inspectFiles(root);
  const unusable = entries.filter((e) => e.state === 'unusable');
  if (unusable.length === 0) {
    // Our pair in preload/ from an earlier fallback goes once the root holds the new one.
    if (!(sub instanceof BpffsDir)) return { target: { root }, entries };
    const found = inspectFiles(sub);
    const names = FILE_NAMES.filter((_, i) => found[i].state === 'ours');
    return { target: { root, stale: names.length ? { dir: sub, names } : undefined }, entries };
  }
  if (sub instanceof UntrustedDir) {
    throw new PreloadError(
      `cannot pin into ${root.path}: ${unusable.map((e) => e.path).join(' and ')} cannot be opened, and ${sub.message}, so bpf-preload will not pin there: remove it, or mount the bpffs with mode=0700`,
    );
  }
  if (!sub)
    return {
      target: { root, sub: 'create' },
      entries: FILE_NAMES.map((n) => ({ path: root.display(`${FALLBACK_SUBDIR}/${n}`), state: 'missing' })),
      fallbackFrom: unusable,
    };
  const inner = inspectFiles(sub);
  const stuck = inner.find((e) => e.state === 'unusable');
  if (stuck) {
    throw new PreloadError(`${stuck.path} exists but cannot be opened (${stuck.reason}): remove it, or use another --bpffs`);
  }
  return { target: { root, sub }, entries: inner, fallbackFrom: unusable };
}

/** preload/ as repair left it: gone (an empty one the killed run had made), or the very one locked. */
function fallbackAfterRepair(root: BpffsDir, locked: BpffsDir | UntrustedDir | undefined): BpffsDir | UntrustedDir | undefined {
  if (!(locked instanceof BpffsDir)) return locked;
  const now = root.openDirIfThere(FALLBACK_SUBDIR);
  if (!(now instanceof BpffsDir)) return now;
  now.close();
  if (now.ino !== locked.ino) throw new PreloadError(`${now.path} was replaced while bpf-preload ran: run again`);
  return locked;
}

export function populate(opts: PopulateOptions): PopulateResult {
  using root = BpffsDir.open(opts.bpffs, { mountIfMissing: opts.mountIfMissing, change: true });
  using _lock = DirLock.acquire(root, opts.lock);
  const fallback = lockFallback(root, opts.lock);
  using _sub = fallback.sub instanceof BpffsDir ? fallback.sub : undefined;
  using _subLock = fallback.lock;
  mark('lock');
  using _signals = holdSignals();
  const repaired = repair(root);
  if (repaired) opts.onRepair?.(repaired);
  mark('repair');
  const sub = fallbackAfterRepair(root, fallback.sub);
  const { target, entries, fallbackFrom } = chooseTarget(root, sub);
  mark('inspect');
  const dir = target.sub instanceof BpffsDir ? target.sub.path : target.sub ? root.display(FALLBACK_SUBDIR) : root.path;
  const foreign = entries.filter((e) => e.state === 'foreign');
  if (foreign.length > 0 && !opts.replace) return { kind: 'left-alone', dir, foreign, repaired };

  using iterators = loadIterators();
  const pinned = pinTransaction(target, iterators.files, opts.mode);
  mark('pin + read back');
  const files = pinned.map((p) => ({ ...p, replaced: entries.find((e) => e.path === p.path) ?? { path: p.path, state: 'missing' as const } }));
  return { kind: 'pinned', dir, files, fallbackFrom, repaired, removedStale: target.stale ? target.stale.names.map((n) => target.stale!.dir.display(n)) : [] };
}
