// The trail a run leaves for the next one. Before a run changes a directory
// it writes, at the bpffs root, a symlink (TRAIL_NAME) whose target text
// records the operation, the owning process and the directory's exact mode;
// it removes it once the directory is final. Temporary pins carry their
// owner in their names. A run killed anywhere in between (SIGKILL, OOM) thus
// leaves enough for the next `populate` or `unpin` to put the directory back:
// the mode restored, its temporary pins removed (which frees their
// programs). The trail lives in the bpffs itself, so it goes wherever that
// mount goes and never outlives it.
//
// Any local user may create names in a world-writable bpffs root: a trail
// or a temporary pin is ours only when the runner's uid made it (lstat
// owner) and its form is exact. Anything else under those names is a
// Stranger: reported, never followed, trusted or changed.
import { readFileSync, type Stats } from 'node:fs';
import { BpffsDir, UntrustedDir, octal, ownedByUs, pinDirs } from './bpffs.js';
import { PreloadError } from '../../errors.js';
import { FALLBACK_SUBDIR, TRAIL_NAME, tempPinOwner, type Owner } from '../names.js';

export type Operation = 'populate' | 'unpin';

export interface Trail {
  op: Operation;
  owner: Owner;
  /** The directory being changed, relative to the root: '.' or FALLBACK_SUBDIR. */
  dir: string;
  /** Its permission bits before the run. */
  mode: number;
  /** Whether the run created that directory. */
  created: boolean;
}

/** Start time of a process (clock ticks after boot), or undefined if there is no such process. */
function startTime(pid: number | 'self'): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

let self: Owner | undefined;
export function selfOwner(): Owner {
  self ??= { pid: process.pid, start: startTime('self') ?? 0 };
  return self;
}

/** Whether the process that made a name still runs (same pid, same start time). */
export function ownerAlive(owner: Owner): boolean {
  return startTime(owner.pid) === owner.start;
}

function format(t: Trail): string {
  return `op=${t.op} pid=${t.owner.pid} start=${t.owner.start} dir=${t.dir} mode=${octal(t.mode)} created=${t.created ? 1 : 0}`;
}

function parse(text: string): Trail | null {
  const f = Object.fromEntries(text.split(' ').map((kv) => kv.split('=') as [string, string]));
  if ((f.op !== 'populate' && f.op !== 'unpin') || !/^\d+$/.test(f.pid ?? '') || !/^\d+$/.test(f.start ?? '')) return null;
  if ((f.dir !== '.' && f.dir !== FALLBACK_SUBDIR) || !/^0[0-7]{3,4}$/.test(f.mode ?? '') || !/^[01]$/.test(f.created ?? '')) return null;
  return { op: f.op, owner: { pid: Number(f.pid), start: Number(f.start) }, dir: f.dir, mode: parseInt(f.mode, 8), created: f.created === '1' };
}

/** Something under one of our names that is not ours: reported, never acted on. */
export interface Stranger {
  path: string;
  /** What it is: "a symlink", "a directory", "a FIFO", ... */
  what: string;
  uid: number;
  /** Why it is not ours. */
  why: string;
}

function kind(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symlink';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'a file';
}

const stranger = (path: string, st: Stats, why: string): Stranger => ({ path, what: kind(st), uid: st.uid, why });

/** Records that a run is about to change `root` (or its FALLBACK_SUBDIR). Fails if anything is at its name. */
export function writeTrail(root: BpffsDir, t: Trail): void {
  try {
    root.symlink(format(t), TRAIL_NAME);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const path = root.display(TRAIL_NAME);
    if (code === 'EROFS')
      throw new PreloadError(`${root.path} is mounted read-only: remount it read-write (mount -o remount,rw ${root.path}) or pick another --bpffs`);
    if (code === 'EEXIST') {
      const st = root.lstat(TRAIL_NAME);
      const whose = st ? `${kind(st)} of uid ${st.uid}` : 'something';
      throw new PreloadError(`${path} is in the way (${whose}, not a trail of ours): remove it, then run again`);
    }
    throw err;
  }
}

export function removeTrail(root: BpffsDir): void {
  root.remove(TRAIL_NAME);
}

/** The trail at `root`: null when there is none, a Stranger when something not ours has its name. */
export function readTrail(root: BpffsDir): Trail | Stranger | null {
  const st = root.lstat(TRAIL_NAME);
  if (!st) return null;
  const path = root.display(TRAIL_NAME);
  if (!st.isSymbolicLink()) return stranger(path, st, 'not a symlink');
  if (!ownedByUs(st)) return stranger(path, st, 'made by another uid');
  return parse(root.readlink(TRAIL_NAME)) ?? stranger(path, st, 'not in our format');
}

const isStranger = (t: Trail | Stranger | null): t is Stranger => t !== null && 'why' in t;

export interface TempPin {
  /** Where it is: the root ('.') or FALLBACK_SUBDIR. */
  where: string;
  name: string;
  path: string;
  /** Whether its process still runs (then it is not left over: that run is still going). */
  alive: boolean;
}

/** Temporary pins in `dir` that carry our names, split into ours and strangers (see the top). */
function scanTempPins(dir: BpffsDir, where: string, pins: TempPin[], strangers: Stranger[]): void {
  for (const name of dir.list()) {
    const owner = tempPinOwner(name);
    if (!owner) continue;
    const st = dir.lstat(name);
    if (!st) continue;
    const path = dir.display(name);
    if (!st.isFile()) strangers.push(stranger(path, st, 'not a pin'));
    else if (!ownedByUs(st)) strangers.push(stranger(path, st, 'made by another uid'));
    else pins.push({ where, name, path, alive: ownerAlive(owner) });
  }
}

/** What `survey` found under our names. */
export interface Findings {
  /** Our trail, if there is one. */
  trail: Trail | null;
  /** Our temporary pins, in the root and in its FALLBACK_SUBDIR. */
  tempPins: TempPin[];
  /** Whatever carries one of our names but is not ours. */
  strangers: Stranger[];
}

/** Everything at `root` (and in its FALLBACK_SUBDIR) that carries one of our names, ours or not. Changes nothing. */
export function survey(root: BpffsDir): Findings {
  const pins: TempPin[] = [];
  const strangers: Stranger[] = [];
  const trail = readTrail(root);
  if (isStranger(trail)) strangers.push(trail);
  const sub = root.openDirIfThere(FALLBACK_SUBDIR);
  using fallback = sub instanceof BpffsDir ? sub : undefined;
  for (const dir of pinDirs(root, fallback)) scanTempPins(dir, dir === root ? '.' : FALLBACK_SUBDIR, pins, strangers);
  if (sub instanceof UntrustedDir) {
    const st = root.lstat(FALLBACK_SUBDIR);
    if (st) strangers.push(stranger(sub.path, st, `bpf-preload uses only a directory of its uid that no other uid can write; this one ${sub.why}`));
  }
  return { trail: isStranger(trail) ? null : trail, tempPins: pins, strangers };
}

/** What an interrupted run left at `root`, seen without changing anything. */
export interface Interrupted {
  /** The trail, when the run got as far as writing it. */
  trail: Trail | null;
  /** The directory the trail names (the root when there is no trail), as a path to show. */
  dir: string;
  /** Its mode now; undefined when it is not there or is left alone. */
  modeNow?: number;
  /** Temporary pins whose process is gone. */
  tempPins: TempPin[];
  /** Why the directory the trail names is left alone (not ours, a symlink, ...). */
  untrusted?: string;
}

/** Looks for what a killed run left at `root`; null when there is nothing. Changes nothing. */
export function findInterrupted(root: BpffsDir, found = survey(root)): Interrupted | null {
  const leftover = found.tempPins.filter((p) => !p.alive);
  let trail = found.trail;
  // A trail whose run still goes (without our lock: not ours to touch).
  if (trail && ownerAlive(trail.owner)) trail = null;
  if (trail === null && leftover.length === 0) return null;
  if (!trail || trail.dir === '.') return { trail, dir: root.path, modeNow: root.mode(), tempPins: leftover };
  const sub = root.openDirIfThere(trail.dir);
  const dir = root.display(trail.dir);
  if (sub === undefined) return { trail, dir, tempPins: leftover }; // the run had not created it yet
  if (sub instanceof UntrustedDir) return { trail, dir, tempPins: leftover, untrusted: sub.why };
  using d = sub;
  return { trail, dir, modeNow: d.mode(), tempPins: leftover };
}

/** What `repair` did, for one line of output. */
export interface Repair {
  pid?: number;
  op?: Operation;
  done: string[];
}

/**
 * Puts back what an interrupted run left at `root`: removes its temporary
 * pins (their programs go with them), restores the recorded mode, removes a
 * directory it created and left empty, then the trail. Only what is ours:
 * a directory the trail names that is no longer a directory of ours is left
 * alone (and said so). Only called with the directory's lock held, so no
 * live run of ours can own what it removes. Returns null when there was
 * nothing to repair.
 */
export function repair(root: BpffsDir): Repair | null {
  const found = findInterrupted(root);
  if (!found) return null;
  const done: string[] = [];
  for (const pin of found.tempPins) {
    if (pin.where === '.') root.remove(pin.name);
    else {
      const sub = root.openDirIfThere(pin.where);
      if (!(sub instanceof BpffsDir)) continue;
      using d = sub;
      d.remove(pin.name);
    }
    done.push(`removed ${pin.path}`);
  }
  const t = found.trail;
  if (t) {
    if (found.untrusted) done.push(`left ${found.dir} alone (it ${found.untrusted})`);
    else if (t.dir === '.') {
      if (found.modeNow !== t.mode) {
        root.setMode(t.mode);
        done.push(`restored mode ${octal(t.mode)} of ${found.dir}`);
      }
      // A populate into the root removes our earlier pair from preload/, then
      // preload/ itself if that empties it: killed in between, it leaves an
      // empty preload/ that no later run would empty again.
      if (t.op === 'populate') {
        const sub = root.openDirIfThere(FALLBACK_SUBDIR);
        if (sub instanceof BpffsDir) {
          using d = sub;
          if (d.list().length === 0) {
            root.removeDir(FALLBACK_SUBDIR);
            done.push(`removed ${d.path}/`);
          }
        }
      }
    } else {
      const sub = root.openDirIfThere(t.dir);
      if (sub instanceof BpffsDir) {
        using d = sub;
        // A directory the run created, or one an unpin was emptying, goes if nothing is left in it.
        if ((t.created || t.op === 'unpin') && d.list().length === 0) {
          root.removeDir(t.dir);
          done.push(`removed ${found.dir}/`);
        } else if (found.modeNow !== t.mode) {
          d.setMode(t.mode);
          done.push(`restored mode ${octal(t.mode)} of ${found.dir}`);
        }
      }
    }
    removeTrail(root);
    done.push(`removed ${root.display(TRAIL_NAME)}`);
  }
  return { pid: t?.owner.pid, op: t?.op, done };
}
