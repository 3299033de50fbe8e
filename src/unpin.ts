// `bpf-preload unpin`: removes our pins and nothing else, under the same lock
// and trail as populate, so it never interleaves with a run and a killed
// unpin is finished by the next one.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isDirectory, modeOf, removeDir, removeEntry, requireBpffs } from './bpffs.js';
import { inspectEntry, type Entry } from './entries.js';
import { failpoint } from './failpoint.js';
import { DirLock, type LockOptions } from './lock.js';
import { FALLBACK_SUBDIR, FILE_NAMES } from './names.js';
import { holdSignals } from './signals.js';
import { removeTrail, repair, selfOwner, writeTrail, type Repair } from './trail.js';

export interface UnpinResult {
  removed: string[];
  /** Entries left in place because they are not ours. */
  kept: Entry[];
  /** What an interrupted earlier run left, and was put right first. */
  repaired: Repair | null;
}

export function unpin(bpffs: string, lockOpts?: LockOptions): UnpinResult {
  requireBpffs(bpffs, false);
  using _lock = DirLock.acquire(bpffs, lockOpts);
  holdSignals();
  const result: UnpinResult = { removed: [], kept: [], repaired: repair(bpffs) };
  const fallback = join(bpffs, FALLBACK_SUBDIR);
  using _subLock = isDirectory(fallback) ? DirLock.acquire(fallback, lockOpts) : undefined;
  const entries = [bpffs, fallback].flatMap((dir) => FILE_NAMES.map((name) => inspectEntry(join(dir, name))));
  const ours = entries.filter((e) => e.state === 'ours');
  result.kept = entries.filter((e) => e.state !== 'ours' && e.state !== 'missing');
  if (ours.length === 0) return result;

  // The trail names preload/ when we empty it, so that a killed unpin's
  // successor removes it as this run would have.
  const inFallback = ours.some((e) => e.path.startsWith(fallback + '/'));
  const dir = inFallback ? FALLBACK_SUBDIR : '.';
  writeTrail(bpffs, { op: 'unpin', owner: selfOwner(), dir, mode: modeOf(join(bpffs, dir)), created: false });
  failpoint('trail');
  for (const e of ours) {
    removeEntry(e.path);
    result.removed.push(e.path);
    failpoint(`unpin-${e.path.slice(e.path.lastIndexOf('/') + 1)}`);
  }
  // preload/ goes too once our pins in it are gone and nothing else is left.
  if (inFallback && readdirSync(fallback).length === 0) {
    removeDir(fallback);
    result.removed.push(fallback + '/');
  }
  removeTrail(bpffs);
  return result;
}
