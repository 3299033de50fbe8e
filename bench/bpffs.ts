// The bench's own bpffs: one private mount under a temp directory, and a fresh
// subdirectory of it per round (a new mount's root holds the kernel's own
// unopenable progs.debug/maps.debug; its subdirectories start empty).
// Unmounting at the end drops every pin left in it.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { onCleanup } from './cleanup.js';

export class BenchBpffs {
  private next = 0;

  private constructor(readonly root: string) {}

  /** Mounts a bpffs at `root` (an empty directory) until cleanup. */
  static mount(root: string): BenchBpffs {
    mkdirSync(root, { recursive: true });
    const r = spawnSync('mount', ['-t', 'bpf', 'bpf', root], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mount -t bpf bpf ${root}: ${r.stderr.trim() || r.error?.message} (run as root)`);
    onCleanup(`bpffs at ${root}`, () => {
      const u = spawnSync('umount', [root], { encoding: 'utf8' });
      if (u.status !== 0) throw new Error(`umount ${root}: ${u.stderr.trim()}`);
    });
    return new BenchBpffs(root);
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
