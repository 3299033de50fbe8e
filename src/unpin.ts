// `bpf-preload unpin`: removes our pins and nothing else.
import { readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { requireBpffs } from './bpffs.js';
import { inspectEntry, type Entry } from './entries.js';
import { FILE_NAMES } from './iterators.js';
import { FALLBACK_SUBDIR } from './populate.js';

export interface UnpinResult {
  removed: string[];
  /** Entries left in place because they are not ours. */
  kept: Entry[];
}

export function unpin(bpffs: string): UnpinResult {
  requireBpffs(bpffs, false);
  const result: UnpinResult = { removed: [], kept: [] };
  const fallback = join(bpffs, FALLBACK_SUBDIR);
  for (const dir of [bpffs, fallback]) {
    for (const name of FILE_NAMES) {
      const entry = inspectEntry(join(dir, name));
      if (entry.state === 'ours') {
        unlinkSync(entry.path);
        result.removed.push(entry.path);
      } else if (entry.state !== 'missing') {
        result.kept.push(entry);
      }
    }
  }
  // preload/ goes too once our pins in it are gone and nothing else is left.
  try {
    if (result.removed.some((p) => p.startsWith(fallback + '/')) && readdirSync(fallback).length === 0) {
      rmdirSync(fallback);
      result.removed.push(fallback + '/');
    }
  } catch {
    // no preload/ directory
  }
  return result;
}
