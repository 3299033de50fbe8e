// Compiled test fixtures (dist/fixtures/*.bpf.o, built by `npm run build:bpf`).
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Test } from 'tap';
import { BpfObject, type BpfLink, type BpfProgram } from '../../src/libbpf/index.js';

export const fixture = (name: string) => resolve(`dist/fixtures/${name}.bpf.o`);

/**
 * The fixture `name` opened and loaded, with the programs `attach` picks
 * attached; links and object are released when the test ends.
 */
export function loadFixture(t: Test, name: string, attach: (prog: BpfProgram) => boolean): { obj: BpfObject; links: BpfLink[] } {
  const obj = BpfObject.openMem(readFileSync(fixture(name)), { name });
  const links: BpfLink[] = [];
  t.teardown(() => {
    for (const l of links) l.destroy();
    obj.close();
  });
  obj.load();
  for (const prog of obj.programs.values()) if (attach(prog)) links.push(prog.attach());
  return { obj, links };
}

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
