// The trail a run leaves for the next one. Before a run changes a directory
// it writes, at the bpffs root, a symlink (TRAIL_NAME) whose target text
// records the operation, the owning process and the directory's exact mode;
// it removes it once the directory is final. Temporary pins carry their
// owner in their names. A run killed anywhere in between (SIGKILL, OOM) thus
// leaves enough for the next `populate` or `unpin` to put the directory back:
// the mode restored, its temporary pins removed (which frees their
// programs). The trail lives in the bpffs itself, so it goes wherever that
// mount goes and never outlives it.
import { readFileSync, readdirSync, readlinkSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { isDirectory, modeOf, octal, removeDir, removeEntry, setMode } from './bpffs.js';
import { PreloadError } from './errors.js';
import { FALLBACK_SUBDIR, TRAIL_NAME, tempPinOwner, type Owner } from './names.js';

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
export function ownerAlive(owner: { pid: number; start?: number }): boolean {
  const start = startTime(owner.pid);
  return start !== undefined && (owner.start === undefined || owner.start === start);
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

/** Records that a run is about to change `root` (or its FALLBACK_SUBDIR). Fails if a trail is there. */
export function writeTrail(root: string, t: Trail): void {
  const path = join(root, TRAIL_NAME);
  try {
    symlinkSync(format(t), path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EROFS') throw new PreloadError(`${root} is mounted read-only: remount it read-write (mount -o remount,rw ${root}) or pick another --bpffs`);
    if (code === 'EEXIST') throw new PreloadError(`${path} is in the way and is not ours: remove it, then run again`);
    throw err;
  }
}

export function removeTrail(root: string): void {
  removeEntry(join(root, TRAIL_NAME));
}

/** The trail at `root`: null when there is none, 'unreadable' when it is not one we wrote. */
export function readTrail(root: string): Trail | 'unreadable' | null {
  let text: string;
  try {
    text = readlinkSync(join(root, TRAIL_NAME));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'EINVAL') return 'unreadable'; // not a symlink
    throw err;
  }
  return parse(text) ?? 'unreadable';
}

export interface TempPin {
  path: string;
  pid: number;
  /** Whether its process still runs (then it is not left over: that run is still going). */
  alive: boolean;
}

/** Temporary pins of ours in `dir` (and in its FALLBACK_SUBDIR when `dir` is a root). */
export function tempPins(root: string): TempPin[] {
  const found: TempPin[] = [];
  for (const dir of [root, join(root, FALLBACK_SUBDIR)]) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue; // no FALLBACK_SUBDIR
    }
    for (const name of names) {
      const owner = tempPinOwner(name);
      if (owner) found.push({ path: join(dir, name), pid: owner.pid, alive: ownerAlive(owner) });
    }
  }
  return found;
}

/** What an interrupted run left at `root`, seen without changing anything. */
export interface Interrupted {
  /** The trail, when the run got as far as writing it. */
  trail: Trail | null;
  /** The directory the trail names, its mode now, and whether that differs from the recorded one. */
  dir: string;
  modeNow?: number;
  /** Temporary pins whose process is gone. */
  tempPins: string[];
  /** The trail is there but is not one of ours. */
  unreadable: boolean;
}

/** Looks for what a killed run left at `root`; null when there is nothing. Changes nothing. */
export function findInterrupted(root: string): Interrupted | null {
  const trail = readTrail(root);
  const leftover = tempPins(root).filter((p) => !p.alive).map((p) => p.path);
  if (trail === null && leftover.length === 0) return null;
  if (trail === 'unreadable') return { trail: null, dir: root, tempPins: leftover, unreadable: true };
  if (trail && ownerAlive(trail.owner)) {
    // Its run is still going (without our lock: it cannot be ours).
    return leftover.length ? { trail: null, dir: root, tempPins: leftover, unreadable: false } : null;
  }
  const dir = trail ? join(root, trail.dir) : root;
  let modeNow: number | undefined;
  try {
    modeNow = modeOf(dir);
  } catch {
    // the run had not created it yet
  }
  return { trail, dir, modeNow, tempPins: leftover, unreadable: false };
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
 * directory it created and left empty, then the trail. Only called with the
 * directory's lock held, so no live run of ours can own what it removes.
 * Returns null when there was nothing to repair.
 */
export function repair(root: string): Repair | null {
  const found = findInterrupted(root);
  if (!found) return null;
  const done: string[] = [];
  for (const path of found.tempPins) {
    removeEntry(path);
    done.push(`removed ${path}`);
  }
  const t = found.trail;
  if (t) {
    const dir = join(root, t.dir);
    const exists = isDirectory(dir);
    // A directory the run created, or one an unpin was emptying, goes if nothing is left in it.
    const disposable = dir !== root && (t.created || t.op === 'unpin');
    if (exists && disposable && readdirSync(dir).length === 0) {
      removeDir(dir);
      done.push(`removed ${dir}/`);
    } else if (exists && found.modeNow !== t.mode) {
      setMode(dir, t.mode);
      done.push(`restored mode ${octal(t.mode)} of ${dir}`);
    }
  }
  if (t || found.unreadable) {
    removeTrail(root);
    done.push(found.unreadable ? `removed an unreadable ${join(root, TRAIL_NAME)}` : `removed ${join(root, TRAIL_NAME)}`);
  }
  return { pid: t?.owner.pid, op: t?.op, done };
}
