// The runner's pinning policy: where progs.debug and maps.debug go, replacing
// our own earlier pins atomically, leaving other people's alone, and never
// leaving a bpffs half-modified.
import { chmodSync, closeSync, mkdirSync, openSync, readSync, renameSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { requireBpffs, withModeCleared } from './bpffs.js';
import { inspectEntry, type Entry } from './entries.js';
import { PreloadError } from './errors.js';
import { failpoint } from './failpoint.js';
import { FILE_NAMES, loadIterators, type IteratorFile } from './iterators.js';
import { linkInfo, objGet, objPin } from './libbpf/index.js';
import { mark } from './timing.js';

/** Where we pin when the bpffs root holds entries nobody can open or replace. */
export const FALLBACK_SUBDIR = 'preload';

export interface PopulateOptions {
  /** The bpffs directory to populate. */
  bpffs: string;
  /** Mode of the pinned files (the kernel's are 0400). */
  mode: number;
  /** Replace working entries that are not ours. */
  replace: boolean;
  /** Mount a bpffs at `bpffs` if none is there (for the default location). */
  mountIfMissing: boolean;
}

export interface PinnedFile {
  path: string;
  linkId: number;
  progId: number;
  /** What was there before: missing, ours, or foreign (with --replace). */
  replaced: Entry;
}

export type PopulateResult =
  | { kind: 'pinned'; dir: string; files: PinnedFile[]; withCount: boolean; fallbackFrom?: Entry[] }
  | { kind: 'left-alone'; dir: string; foreign: Entry[] };

function inspectDir(dir: string): Entry[] {
  return FILE_NAMES.map((name) => inspectEntry(join(dir, name)));
}

/** Chooses the target directory: DIR itself, or DIR/preload/ when DIR has unusable entries. */
function chooseTarget(root: string): { dir: string; entries: Entry[]; fallbackFrom?: Entry[] } {
  const entries = inspectDir(root);
  const unusable = entries.filter((e) => e.state === 'unusable');
  if (unusable.length === 0) return { dir: root, entries };
  const dir = join(root, FALLBACK_SUBDIR);
  const inner = inspectDir(dir);
  const stuck = inner.find((e) => e.state === 'unusable');
  if (stuck) {
    throw new PreloadError(`${stuck.path} exists but cannot be opened (${stuck.reason}): remove it, or use another --bpffs`);
  }
  return { dir, entries: inner, fallbackFrom: unusable };
}

/** Reads the start of an iterator file; its first line must be the header. */
function checkReadable(path: string, header: string): void {
  const fd = openSync(path, 'r');
  try {
    // Iterator files cannot seek: one sequential read from the start.
    const buf = Buffer.alloc(4096);
    const n = readSync(fd, buf, 0, buf.length, null);
    const text = buf.toString('utf8', 0, n);
    if (!text.startsWith(header)) {
      throw new PreloadError(`${path} does not read back as expected (first line ${JSON.stringify(text.split('\n')[0])})`);
    }
  } finally {
    closeSync(fd);
  }
}

function tempName(dir: string, name: string): string {
  return join(dir, `${name}.${process.pid}.new`);
}

/**
 * Pins the iterator links into `dir` as one transaction: each link is pinned
 * under a temporary name, then renamed over the final name (so a concurrent
 * reader always finds a working file), then read back. On any failure, every
 * final name gets back what it had: the previous link (re-pinned from an fd
 * held open for that purpose) or nothing.
 */
function pinAll(dir: string, files: IteratorFile[], mode: number): PinnedFile[] {
  const temps: string[] = [];
  const previous = new Map<string, number>(); // final path -> fd of the link that was there
  const committed: string[] = [];
  try {
    return withModeCleared(dir, () => {
      try {
        for (const f of files) {
          const tmp = tempName(dir, f.name);
          f.link.pin(tmp);
          temps.push(tmp);
          chmodSync(tmp, mode);
          failpoint(`pin-${f.name}`);
        }
        for (const f of files) {
          const path = join(dir, f.name);
          try {
            previous.set(path, objGet(path));
          } catch {
            // nothing there to restore
          }
        }
        files.forEach((f, i) => {
          const path = join(dir, f.name);
          renameSync(temps[i], path);
          committed.push(path);
          temps[i] = '';
          failpoint(`rename-${f.name}`);
        });
        for (const f of files) checkReadable(join(dir, f.name), f.header);
        failpoint('readback');
        return files.map((f) => {
          const info = linkInfo(f.link.fd);
          return { path: join(dir, f.name), linkId: info.id, progId: info.progId, replaced: { path: '', state: 'missing' } };
        });
      } catch (err) {
        for (const tmp of temps) if (tmp) unlinkQuiet(tmp);
        for (const path of committed) restore(dir, path, previous.get(path));
        throw err;
      }
    });
  } finally {
    for (const fd of previous.values()) closeSync(fd);
  }
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** Puts back what `path` held before this run (called with the mode cleared). */
function restore(dir: string, path: string, previousFd: number | undefined): void {
  if (previousFd === undefined) {
    unlinkQuiet(path);
    return;
  }
  const tmp = join(dir, `restore.${process.pid}`);
  objPin(previousFd, tmp);
  renameSync(tmp, path);
}

export function populate(opts: PopulateOptions): PopulateResult {
  requireBpffs(opts.bpffs, opts.mountIfMissing);
  const { dir, entries, fallbackFrom } = chooseTarget(opts.bpffs);
  mark('inspect');
  const foreign = entries.filter((e) => e.state === 'foreign');
  if (foreign.length > 0 && !opts.replace) return { kind: 'left-alone', dir, foreign };

  using iterators = loadIterators();
  let created = false;
  if (fallbackFrom) {
    try {
      mkdirSync(dir, 0o755);
      created = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  try {
    const pinned = pinAll(dir, iterators.files, opts.mode);
    mark('pin + read back');
    for (const p of pinned) p.replaced = entries.find((e) => e.path === p.path) ?? p.replaced;
    return { kind: 'pinned', dir, files: pinned, withCount: iterators.withCount, fallbackFrom };
  } catch (err) {
    if (created) rmdirSync(dir);
    throw err;
  }
}
