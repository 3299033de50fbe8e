// Pinning as one transaction. The new links are pinned under dotless
// temporary names and read back while the directory keeps its mode; only the
// renames onto the dotted final names happen with the mode cleared (bpffs
// accepts dotted names only then), and the mode is put back at once. A
// rename replaces atomically, so a reader always finds a working file. On
// failure every final name gets back what it held. The trail (trail.ts)
// covers the process dying anywhere in between.
import { closeSync, mkdirSync, openSync, readSync, renameSync } from 'node:fs';
import { join, relative } from 'node:path';
import { entryExists, modeOf, octal, removeDir, removeEntry, setMode } from './bpffs.js';
import { PreloadError } from './errors.js';
import { failpoint } from './failpoint.js';
import { linkInfo, objGet, objPin, type PinnableLink } from './libbpf/index.js';
import { newPinName, oldPinName, type FileName, type Owner } from './names.js';
import { removeTrail, selfOwner, writeTrail } from './trail.js';

/** Mode of a FALLBACK_SUBDIR we create. */
const SUBDIR_MODE = 0o755;

export interface PinRequest {
  name: FileName;
  link: PinnableLink;
  /** The first line the file prints when it works. */
  header: string;
}

export interface Pinned {
  path: string;
  linkId: number;
  progId: number;
}

export interface Target {
  /** The bpffs directory given (where the trail goes). */
  root: string;
  /** The directory to pin into: root itself or a subdirectory of it. */
  dir: string;
  /** Whether `dir` must be created. */
  create: boolean;
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

/** An fd of the link pinned at `path` now, or undefined if nothing is. */
function holdPrevious(path: string): number | undefined {
  // It exists: failing to hold it must stop the run.
  return entryExists(path) ? objGet(path) : undefined;
}

interface Slot {
  req: PinRequest;
  final: string;
  temp: string;
  /** fd of the link the final name held before, kept to put it back. */
  previous?: number;
  state: 'none' | 'pinned' | 'renamed';
  ids?: { linkId: number; progId: number };
}

/** With the mode cleared: gives `s.final` back what it held before this run. */
function putBack(dir: string, owner: Owner, s: Slot): void {
  if (s.previous === undefined) {
    removeEntry(s.final);
    return;
  }
  const old = join(dir, oldPinName(owner, s.req.name));
  objPin(s.previous, old);
  try {
    renameSync(old, s.final);
  } catch (err) {
    removeEntry(old); // else it would keep the old link alive, pinned nowhere anyone looks
    throw err;
  }
}

/** The directory's mode could not be put back: the trail must stay for the next run. */
class ModeNotRestored extends PreloadError {}

function firstLine(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The renames, with the directory's mode cleared for exactly as long as they
 * take, and the mode put back (with retries). If a rename, or putting the
 * mode back, fails, every name already renamed gets back what it had, and the
 * first error is thrown. If the mode cannot be restored even then, the error
 * says how to restore it by hand, and the trail stays for the next run.
 */
function swap(dir: string, mode: number, owner: Owner, slots: Slot[]): void {
  let failure: unknown;
  let cleared = false;
  try {
    setMode(dir, 0);
    cleared = true;
    failpoint('clear-mode');
    for (const s of slots) {
      renameSync(s.temp, s.final);
      s.state = 'renamed';
      failpoint(`rename-${s.req.name}`);
    }
    setMode(dir, mode);
    return;
  } catch (err) {
    failure = err;
  }
  for (const s of [...slots].reverse()) {
    if (s.state !== 'renamed') continue;
    try {
      putBack(dir, owner, s);
      s.state = 'none';
    } catch {
      // `failure` is what gets reported; the trail lets the next run finish the job
    }
  }
  if (cleared) {
    try {
      setMode(dir, mode);
    } catch {
      let now = 'unknown';
      try {
        now = octal(modeOf(dir));
      } catch {
        // keep 'unknown'
      }
      throw new ModeNotRestored(`${firstLine(failure)}; ${dir} is left at mode ${now}: run chmod ${octal(mode)} ${dir} (or bpf-preload again, which restores it)`);
    }
  }
  throw failure;
}

/**
 * Pins each link at `target.dir`/NAME, all or nothing. Returns the new ids;
 * on failure the directory is as it was (mode, entries, the same links).
 */
export function pinTransaction(target: Target, files: PinRequest[], fileMode: number): Pinned[] {
  const { root, dir, create } = target;
  const owner = selfOwner();
  const dirMode = create ? SUBDIR_MODE : modeOf(dir);
  writeTrail(root, { op: 'populate', owner, dir: relative(root, dir) || '.', mode: dirMode, created: create });
  failpoint('trail');
  const slots: Slot[] = files.map((req) => ({ req, final: join(dir, req.name), temp: join(dir, newPinName(owner, req.name)), state: 'none' }));
  let made = false;
  try {
    if (create) {
      mkdirSync(dir, SUBDIR_MODE);
      made = true;
      failpoint('mkdir');
    }
    for (const s of slots) {
      s.req.link.pin(s.temp);
      s.state = 'pinned';
      setMode(s.temp, fileMode);
      checkReadable(s.temp, s.req.header);
      const info = linkInfo(s.req.link.fd); // now: after the renames nothing may fail
      s.ids = { linkId: info.id, progId: info.progId };
      failpoint(`pin-${s.req.name}`);
    }
    failpoint('readback');
    for (const s of slots) s.previous = holdPrevious(s.final);
    swap(dir, dirMode, owner, slots);
  } catch (err) {
    // swap put back what it renamed; the temporary pins left are removed here.
    for (const s of slots) {
      if (s.state !== 'pinned') continue;
      try {
        removeEntry(s.temp);
        s.state = 'none';
      } catch {
        // stays 'pinned': the trail stays, and the next run removes it
      }
    }
    let undone = slots.every((s) => s.state === 'none') && !(err instanceof ModeNotRestored);
    if (made && undone) {
      try {
        removeDir(dir);
      } catch {
        undone = false;
      }
    }
    // Only a complete undo removes the trail; otherwise the next run finishes it.
    if (undone) tryRemoveTrail(root);
    throw err;
  } finally {
    for (const s of slots) if (s.previous !== undefined) closeSync(s.previous);
  }
  tryRemoveTrail(root);
  return slots.map((s) => ({ path: s.final, linkId: s.ids!.linkId, progId: s.ids!.progId }));
}

/** The trail outliving a finished run is harmless: the next run removes it. */
function tryRemoveTrail(root: string): void {
  try {
    removeTrail(root);
  } catch {
    // left for the next run's repair
  }
}
