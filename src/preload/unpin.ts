// `bpf-preload unpin`: removes our pins and nothing else, under the same lock
// and trail as populate, so it never interleaves with a run and a killed
// unpin is finished by the next one.
import { basename } from 'node:path';
import { BpffsDir, pinDirs } from './transaction/bpffs.js';
import { inspectFiles, type Entry } from './entries.js';
import { DirLock, type LockOptions } from './transaction/lock.js';
import { FALLBACK_SUBDIR } from './names.js';
import { holdSignals } from './transaction/signals.js';
import { removeTrail, repair, selfOwner, writeTrail, type Repair } from './transaction/trail.js';

export interface UnpinResult {
  removed: string[];
  /** Entries left in place because they are not ours. */
  kept: Entry[];
  /** What an interrupted earlier run left, and was put right first. */
  repaired: Repair | null;
  /** Why preload/ was left alone, when it is not a directory of ours only we can write. */
  untrusted?: string;
}

export function unpin(bpffs: string, lockOpts?: LockOptions): UnpinResult {
  using root = BpffsDir.open(bpffs, { change: true });
  using _lock = DirLock.acquire(root, lockOpts);
  // Only a preload/ of ours is looked into: never one made by another user, never through a symlink.
  const found = root.openDirIfThere(FALLBACK_SUBDIR);
  using sub = found instanceof BpffsDir ? found : undefined;
  using _subLock = sub && DirLock.acquire(sub, lockOpts);
  using _signals = holdSignals();
  const result: UnpinResult = { removed: [], kept: [], repaired: repair(root) };
  if (found && !(found instanceof BpffsDir)) result.untrusted = found.message;
  // repair removes a preload/ a killed run left empty: nothing to look at then.
  const subNow = sub && root.lstat(FALLBACK_SUBDIR)?.ino === sub.ino ? sub : undefined;
  const entries = pinDirs(root, subNow).flatMap((dir) => inspectFiles(dir).map((entry) => ({ dir, entry })));
  const ours = entries.filter((e) => e.entry.state === 'ours');
  result.kept = entries.map((e) => e.entry).filter((e) => e.state !== 'ours' && e.state !== 'missing');
  if (ours.length === 0) return result;

  // The trail names preload/ when we empty it, so that a killed unpin's
  // successor removes it as this run would have.
  const inFallback = ours.some((e) => e.dir === subNow);
  writeTrail(root, { op: 'unpin', owner: selfOwner(), dir: inFallback ? FALLBACK_SUBDIR : '.', mode: (inFallback ? subNow! : root).mode(), created: false });
  for (const { dir, entry } of ours) {
    dir.remove(basename(entry.path));
    result.removed.push(entry.path);
  }
  // preload/ goes too once our pins in it are gone and nothing else is left.
  if (inFallback && subNow!.list().length === 0) {
    root.removeDir(FALLBACK_SUBDIR);
    result.removed.push(subNow!.path + '/');
  }
  removeTrail(root);
  return result;
}
