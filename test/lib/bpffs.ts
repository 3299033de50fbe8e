// A private bpffs for one test (harness/bpffs.ts mounts it), released when
// the test ends.
import type { Test } from 'tap';
import { mountPrivateBpffs, type Bpffs } from '../../harness/bpffs.js';

export type { Bpffs } from '../../harness/bpffs.js';

/** A private bpffs for one test; torn down when the test ends. */
export function privateBpffs(t: Test): Bpffs {
  const mounted = mountPrivateBpffs();
  t.teardown(mounted.release);
  return { dir: mounted.dir, root: mounted.root, tmp: mounted.tmp };
}
