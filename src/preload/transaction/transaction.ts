// Pinning as one transaction. The new links are pinned under dotless
// temporary names and read back while the directory keeps its mode; only the
// renames onto the dotted final names happen with the mode cleared (bpffs
// accepts dotted names only then), and the mode is put back at once. A
// rename replaces atomically, so a reader always finds a working file. On
// failure every final name gets back what it held. The trail (trail.ts)
// covers the process dying anywhere in between.
import { closeSync, readSync } from 'node:fs';
import { BpffsDir, octal } from './bpffs.js';
import { PreloadError } from '../../errors.js';
import { failpoint } from './failpoint.js';
import { linkInfo } from '../../libbpf/index.js';
import { fchmod } from '../../libbpf/sys/dirfd.js';
import type { IteratorFile } from '../iterators.js';
import { FALLBACK_SUBDIR, newPinName, oldPinName, type FileName, type Owner } from '../names.js';
import { removeTrail, selfOwner, writeTrail } from './trail.js';

/** Mode of a FALLBACK_SUBDIR we create. */
const SUBDIR_MODE = 0o755;

export interface Pinned {
  path: string;
  linkId: number;
  progId: number;
}

export interface Target {
  /** The bpffs directory given (where the trail goes). */
  root: BpffsDir;
  /** Where to pin when not the root: its FALLBACK_SUBDIR, opened and checked, or 'create' to make it. */
  sub?: BpffsDir | 'create';
  /**
   * Our earlier pins in the root's FALLBACK_SUBDIR, when pinning into the
   * root: removed once the root holds the new pair (and the directory with
   * them if that empties it), so one pair of ours stays, not two.
   */
  stale?: { dir: BpffsDir; names: FileName[] };
}

/**
 * Sets the mode of a new temporary pin and reads its start back; its first
 * line must be the header. Through one fd opened without following or
 * blocking, and checked to be our file: nothing put in its place is changed.
 */
function setModeAndReadBack(dir: BpffsDir, name: string, mode: number, header: string): void {
  const fd = dir.openOurFile(name);
  try {
    fchmod(fd, mode, `chmod ${octal(mode)} ${dir.display(name)}`);
    // Iterator files cannot seek: one sequential read from the start.
    const buf = Buffer.alloc(4096);
    const n = readSync(fd, buf, 0, buf.length, null);
    const text = buf.toString('utf8', 0, n);
    if (!text.startsWith(header)) {
      throw new PreloadError(`${dir.display(name)} does not read back as expected (first line ${JSON.stringify(text.split('\n')[0])})`);
    }
  } finally {
    closeSync(fd);
  }
}

/** An fd of the link pinned at `name` now, or undefined if nothing is. */
function holdPrevious(dir: BpffsDir, name: string): number | undefined {
  // It exists: failing to hold it must stop the run.
  return dir.lstat(name) ? dir.objGet(name) : undefined;
}

interface Slot {
  file: IteratorFile;
  /** Names in the target directory. */
  final: string;
  temp: string;
  /** fd of the link the final name held before, kept to put it back. */
  previous?: number;
  state: 'none' | 'pinned' | 'renamed';
  ids?: { linkId: number; progId: number };
}

/** One run's pinning, from the trail on: what it has changed so far, so that undo knows what to put back. */
interface Transaction {
  root: BpffsDir;
  owner: Owner;
  /** Where the pins go: the root, or its FALLBACK_SUBDIR. */
  dir: BpffsDir;
  /** That directory's mode before the run (and after it). */
  dirMode: number;
  /** Whether this run made FALLBACK_SUBDIR (so undo removes it), and the directory once opened. */
  madeDir: boolean;
  made?: BpffsDir;
  slots: Slot[];
  /** Whether the directory's mode is cleared right now (for the renames). */
  modeCleared: boolean;
}

/** The directory's mode could not be put back: the trail must stay for the next run. */
class ModeNotRestored extends PreloadError {}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Writes the trail (nothing else is changed yet if that fails) and starts the transaction. */
function begin(target: Target, files: IteratorFile[]): Transaction {
  const { root } = target;
  const owner = selfOwner();
  const dirMode = target.sub === 'create' ? SUBDIR_MODE : (target.sub ?? root).mode();
  writeTrail(root, { op: 'populate', owner, dir: target.sub ? FALLBACK_SUBDIR : '.', mode: dirMode, created: target.sub === 'create' });
  const slots: Slot[] = files.map((file) => ({ file, final: file.name, temp: newPinName(owner, file.name), state: 'none' }));
  return { root, owner, dir: target.sub instanceof BpffsDir ? target.sub : root, dirMode, slots, madeDir: false, modeCleared: false };
}

/** Makes FALLBACK_SUBDIR, which the pins then go into. */
function makeFallback(tx: Transaction): void {
  tx.root.mkdir(FALLBACK_SUBDIR, SUBDIR_MODE);
  tx.madeDir = true;
  tx.made = tx.root.openDir(FALLBACK_SUBDIR);
  tx.dir = tx.made;
}

/** Pins each link under its temporary name, sets its mode, reads it back and takes its ids, all while the directory keeps its mode. */
function pinTemporaries(tx: Transaction, fileMode: number): void {
  for (const s of tx.slots) {
    tx.dir.pin(s.file.link.fd, s.temp);
    s.state = 'pinned';
    setModeAndReadBack(tx.dir, s.temp, fileMode, s.file.header);
    const info = linkInfo(s.file.link.fd); // now: after the renames nothing may fail
    s.ids = { linkId: info.id, progId: info.progId };
    failpoint(`pin-${s.file.name}`);
  }
  failpoint('readback');
}

/** The renames onto the final names, with the directory's mode cleared for exactly as long as they take. */
function swap(tx: Transaction): void {
  for (const s of tx.slots) s.previous = holdPrevious(tx.dir, s.final);
  tx.dir.setMode(0);
  tx.modeCleared = true;
  for (const s of tx.slots) {
    tx.dir.rename(s.temp, s.final);
    s.state = 'renamed';
    failpoint(`rename-${s.file.name}`);
  }
  tx.dir.setMode(tx.dirMode);
  tx.modeCleared = false;
}

/** With the mode cleared: gives `s.final` back what it held before this run. */
function putBack(tx: Transaction, s: Slot): void {
  if (s.previous === undefined) {
    tx.dir.remove(s.final);
    return;
  }
  const old = oldPinName(tx.owner, s.file.name);
  tx.dir.pin(s.previous, old);
  try {
    tx.dir.rename(old, s.final);
  } catch (err) {
    tx.dir.remove(old); // else it would keep the old link alive, pinned nowhere anyone looks
    throw err;
  }
}

/**
 * Puts the directory back as it was after `failure`, never giving up on the
 * first error: every final name already renamed gets back what it had (while
 * the mode is still cleared), the mode is restored, the temporary pins are
 * removed, then a FALLBACK_SUBDIR this run made, then the trail. Only a
 * complete undo removes the trail; otherwise the next run finishes the job.
 * Returns the error to report: `failure`, or, if the mode cannot be
 * restored, one that says how to restore it by hand.
 */
function undo(tx: Transaction, failure: unknown): unknown {
  let reported = failure;
  for (const s of [...tx.slots].reverse()) {
    if (s.state !== 'renamed') continue;
    try {
      putBack(tx, s);
      s.state = 'none';
    } catch {
      // `failure` is what gets reported; the trail lets the next run finish the job
    }
  }
  if (tx.modeCleared) {
    try {
      tx.dir.setMode(tx.dirMode);
      tx.modeCleared = false;
    } catch {
      let now = 'unknown';
      try {
        now = octal(tx.dir.mode());
      } catch {
        // keep 'unknown'
      }
      const { path } = tx.dir;
      reported = new ModeNotRestored(
        `${messageOf(failure)}; ${path} is left at mode ${now}: run chmod ${octal(tx.dirMode)} ${path} (or bpf-preload again, which restores it)`,
      );
    }
  }
  for (const s of tx.slots) {
    if (s.state !== 'pinned') continue;
    try {
      tx.dir.remove(s.temp);
      s.state = 'none';
    } catch {
      // stays 'pinned': the trail stays, and the next run removes it
    }
  }
  let undone = tx.slots.every((s) => s.state === 'none') && !tx.modeCleared;
  if (tx.madeDir && undone) {
    try {
      tx.made?.close();
      tx.root.removeDir(FALLBACK_SUBDIR);
    } catch {
      undone = false;
    }
  }
  if (undone) tryRemoveTrail(tx.root);
  return reported;
}

/**
 * Pins each link at the target directory's NAME, all or nothing. Returns the
 * new ids; on failure the directory is as it was (mode, entries, the same
 * links). Then, in the same trail, removes `target.stale`.
 */
export function pinTransaction(target: Target, files: IteratorFile[], fileMode: number): Pinned[] {
  const tx = begin(target, files);
  try {
    if (target.sub === 'create') makeFallback(tx);
    pinTemporaries(tx, fileMode);
    swap(tx);
  } catch (err) {
    throw undo(tx, err);
  } finally {
    for (const s of tx.slots) if (s.previous !== undefined) closeSync(s.previous);
    tx.made?.close();
  }
  if (target.stale) removeStale(tx.root, target.stale, tx.slots);
  tryRemoveTrail(tx.root);
  return tx.slots.map((s) => ({ path: tx.dir.display(s.final), linkId: s.ids!.linkId, progId: s.ids!.progId }));
}

/**
 * After the root took the new pair: removes our earlier pair from
 * FALLBACK_SUBDIR, and the directory if that empties it. A run killed here
 * leaves the root's pair working and the rest to the next run, which removes
 * it the same way (or unpin does); a FALLBACK_SUBDIR it had already emptied
 * goes in that run's repair (trail.ts). A failure here is reported: the new
 * pair is pinned, the old one is not yet gone.
 */
function removeStale(root: BpffsDir, stale: NonNullable<Target['stale']>, slots: Slot[]): void {
  try {
    for (const name of stale.names) {
      stale.dir.remove(name);
    }
    if (stale.dir.list().length === 0) root.removeDir(FALLBACK_SUBDIR);
  } catch (err) {
    const pinned = slots.map((s) => root.display(s.final)).join(' and ');
    throw new PreloadError(
      `pinned ${pinned}, but could not remove our earlier pins in ${stale.dir.path}/ (${messageOf(err)}): run bpf-preload again, or unpin`,
    );
  }
}

/** The trail outliving a finished run is harmless: the next run removes it. */
function tryRemoveTrail(root: BpffsDir): void {
  try {
    removeTrail(root);
  } catch {
    // left for the next run's repair
  }
}
