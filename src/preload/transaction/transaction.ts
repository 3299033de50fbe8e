// Pinning as one transaction. The new links are pinned under dotless
// temporary names and read back while the directory keeps its mode; only the
// renames onto the dotted final names happen with the mode cleared (bpffs
// accepts dotted names only then), and the mode is put back at once. A
// rename replaces atomically, so a reader always finds a working file. On
// failure every final name gets back what it held. The trail (trail.ts)
// covers the process dying anywhere in between.
import { closeSync, readSync } from 'node:fs';
import { BpffsDir, octal } from './bpffs.js';
import { PreloadError } from '../../cli/errors.js';
import { failpoint } from './failpoint.js';
import { linkInfo, type PinnableLink } from '../../libbpf/index.js';
import { fchmod } from '../../libbpf/sys/dirfd.js';
import { FALLBACK_SUBDIR, newPinName, oldPinName, type FileName, type Owner } from '../names.js';
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
  req: PinRequest;
  /** Names in the target directory. */
  final: string;
  temp: string;
  /** fd of the link the final name held before, kept to put it back. */
  previous?: number;
  state: 'none' | 'pinned' | 'renamed';
  ids?: { linkId: number; progId: number };
}

/** With the mode cleared: gives `s.final` back what it held before this run. */
function putBack(dir: BpffsDir, owner: Owner, s: Slot): void {
  if (s.previous === undefined) {
    dir.remove(s.final);
    return;
  }
  const old = oldPinName(owner, s.req.name);
  dir.pin(s.previous, old);
  try {
    dir.rename(old, s.final);
  } catch (err) {
    dir.remove(old); // else it would keep the old link alive, pinned nowhere anyone looks
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
function swap(dir: BpffsDir, mode: number, owner: Owner, slots: Slot[]): void {
  let failure: unknown;
  let cleared = false;
  try {
    dir.setMode(0);
    cleared = true;
    failpoint('clear-mode');
    for (const s of slots) {
      dir.rename(s.temp, s.final);
      s.state = 'renamed';
      failpoint(`rename-${s.req.name}`);
    }
    dir.setMode(mode);
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
      dir.setMode(mode);
    } catch {
      let now = 'unknown';
      try {
        now = octal(dir.mode());
      } catch {
        // keep 'unknown'
      }
      throw new ModeNotRestored(`${firstLine(failure)}; ${dir.path} is left at mode ${now}: run chmod ${octal(mode)} ${dir.path} (or bpf-preload again, which restores it)`);
    }
  }
  throw failure;
}

/**
 * Pins each link at the target directory's NAME, all or nothing. Returns the
 * new ids; on failure the directory is as it was (mode, entries, the same
 * links). Then, in the same trail, removes `target.stale`.
 */
export function pinTransaction(target: Target, files: PinRequest[], fileMode: number): Pinned[] {
  const { root } = target;
  const owner = selfOwner();
  const create = target.sub === 'create';
  const dirMode = target.sub === 'create' ? SUBDIR_MODE : (target.sub ?? root).mode();
  writeTrail(root, { op: 'populate', owner, dir: target.sub ? FALLBACK_SUBDIR : '.', mode: dirMode, created: create });
  failpoint('trail');
  const slots: Slot[] = files.map((req) => ({ req, final: req.name, temp: newPinName(owner, req.name), state: 'none' }));
  let made: BpffsDir | undefined;
  let createdDir = false;
  let dir = target.sub instanceof BpffsDir ? target.sub : root;
  try {
    if (create) {
      root.mkdir(FALLBACK_SUBDIR, SUBDIR_MODE);
      createdDir = true;
      made = root.openDir(FALLBACK_SUBDIR);
      dir = made;
      failpoint('mkdir');
    }
    for (const s of slots) {
      dir.pin(s.req.link.fd, s.temp);
      s.state = 'pinned';
      setModeAndReadBack(dir, s.temp, fileMode, s.req.header);
      const info = linkInfo(s.req.link.fd); // now: after the renames nothing may fail
      s.ids = { linkId: info.id, progId: info.progId };
      failpoint(`pin-${s.req.name}`);
    }
    failpoint('readback');
    for (const s of slots) s.previous = holdPrevious(dir, s.final);
    swap(dir, dirMode, owner, slots);
  } catch (err) {
    // swap put back what it renamed; the temporary pins left are removed here.
    for (const s of slots) {
      if (s.state !== 'pinned') continue;
      try {
        dir.remove(s.temp);
        s.state = 'none';
      } catch {
        // stays 'pinned': the trail stays, and the next run removes it
      }
    }
    let undone = slots.every((s) => s.state === 'none') && !(err instanceof ModeNotRestored);
    if (createdDir && undone) {
      try {
        made?.close();
        root.removeDir(FALLBACK_SUBDIR);
      } catch {
        undone = false;
      }
    }
    // Only a complete undo removes the trail; otherwise the next run finishes it.
    if (undone) tryRemoveTrail(root);
    throw err;
  } finally {
    for (const s of slots) if (s.previous !== undefined) closeSync(s.previous);
    made?.close();
  }
  if (target.stale) removeStale(root, target.stale, slots);
  tryRemoveTrail(root);
  return slots.map((s) => ({ path: dir.display(s.final), linkId: s.ids!.linkId, progId: s.ids!.progId }));
}

/**
 * After the root took the new pair: removes our earlier pair from
 * FALLBACK_SUBDIR, and the directory if that empties it. A run killed here
 * leaves the root's pair working and the rest to the next run, which removes
 * it the same way (or unpin does). A failure here is reported: the new pair
 * is pinned, the old one is not yet gone.
 */
function removeStale(root: BpffsDir, stale: NonNullable<Target['stale']>, slots: Slot[]): void {
  try {
    for (const name of stale.names) {
      stale.dir.remove(name);
      failpoint(`stale-${name}`);
    }
    if (stale.dir.list().length === 0) root.removeDir(FALLBACK_SUBDIR);
  } catch (err) {
    const pinned = slots.map((s) => root.display(s.final)).join(' and ');
    throw new PreloadError(
      `pinned ${pinned}, but could not remove our earlier pins in ${stale.dir.path}/ (${firstLine(err)}): run bpf-preload again, or unpin`,
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
