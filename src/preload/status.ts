// `bpf-preload status`: what is pinned where, and whether a run is going on
// or was interrupted, without changing anything (no lock taken, nothing
// loaded). It also reports what it will not touch: anything under our names
// that another user made, and a directory others could change.
import { BpffsDir, pinDirs } from './transaction/bpffs.js';
import { inspectFiles, type Entry } from './entries.js';
import { runningOn } from './transaction/lock.js';
import { FALLBACK_SUBDIR } from './names.js';
import { findInterrupted, survey, type Interrupted, type Stranger } from './transaction/trail.js';

export interface Status {
  dir: string;
  /** The root's entries, then those under preload/ when that directory has any. */
  entries: Entry[];
  /** A run holds the directory's lock right now: its pid (0 when not known). */
  running: number | null;
  /** What a killed run left; the next populate or unpin repairs it. */
  interrupted: Interrupted | null;
  /** Things under our names that are not ours: never followed or changed. */
  strangers: Stranger[];
  /** Why populate would refuse the directory itself, or null. */
  untrusted: string | null;
}

export function status(bpffs: string): Status {
  using root = BpffsDir.open(bpffs, { change: false });
  const sub = root.openDirIfThere(FALLBACK_SUBDIR);
  using fallback = sub instanceof BpffsDir ? sub : undefined;
  const entries: Entry[] = [];
  for (const dir of pinDirs(root, fallback)) {
    const found = inspectFiles(dir);
    if (dir === root || found.some((e) => e.state !== 'missing')) entries.push(...found);
  }
  // While a run holds the lock its trail and temporary pins are work in progress.
  const running = runningOn(root);
  const found = survey(root);
  return {
    dir: bpffs,
    entries,
    running,
    interrupted: running === null ? findInterrupted(root, found) : null,
    strangers: found.strangers,
    untrusted: root.untrusted(),
  };
}
