// The bench's own bpffs: the private mount the tests use (harness/bpffs.ts),
// and a fresh subdirectory of its clean directory per round. Releasing it at
// cleanup unmounts it, which drops every pin left in it.
import { mkdirSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { mountPrivateBpffs } from '../harness/bpffs.js';
import { onCleanup } from './cleanup.js';

export class BenchBpffs {
  private next = 0;

  private constructor(readonly root: string) {}

  /** Mounts a private bpffs in a new directory under `parent` until cleanup (run as root). */
  static mount(parent: string): BenchBpffs {
    const mounted = mountPrivateBpffs(join(parent, 'bpffs'));
    onCleanup(`bpffs at ${mounted.root}`, mounted.release);
    return new BenchBpffs(mounted.dir);
  }

  /** A new, empty directory on the bpffs. */
  freshDir(): string {
    // No dots in the name: libbpf rewrites them in some pin paths.
    const dir = join(this.root, `round${this.next++}`);
    mkdirSync(dir);
    return dir;
  }

  /** Unpins everything in `dir` (freeing the iterators) and removes it. */
  remove(dir: string): void {
    for (const name of readdirSync(dir)) unlinkSync(join(dir, name));
    rmdirSync(dir);
  }
}
