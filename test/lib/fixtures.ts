// Compiled test fixtures (dist/fixtures/*.bpf.o, built by `npm run build:bpf`).
import { spawnSync } from 'node:child_process';
import { chmodSync, statSync } from 'node:fs';
import { resolve } from 'node:path';

export const fixture = (name: string) => resolve(`dist/fixtures/${name}.bpf.o`);

/**
 * Pins the first program of a fixture as an iterator at `path` with bpftool,
 * as someone else's loader would. Dotted names need the directory's mode
 * cleared for the moment of the pin.
 */
export function pinForeignIterator(object: string, path: string): void {
  const dir = resolve(path, '..');
  const mode = statSync(dir).mode & 0o7777;
  chmodSync(dir, 0);
  try {
    const r = spawnSync('bpftool', ['iter', 'pin', object, path], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`bpftool iter pin: ${r.stderr}`);
  } finally {
    chmodSync(dir, mode);
  }
}
