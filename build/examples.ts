// Compiles examples/ into dist/examples (beside the objects build-bpf.ts puts
// there), type-checked as another project would compile them: they import
// only bpf-preload/libbpf, which resolves to this package's own dist/libbpf
// through package.json `exports` (a package may import itself by name), so
// the library must be built first. The compiled JavaScript is cleared first
// so a removed source leaves no stale module behind.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EXAMPLES_DIR } from './compile.js';
import { tscProject } from './tsc.js';

const out = `dist/${EXAMPLES_DIR}`;

if (existsSync(out)) {
  for (const entry of readdirSync(out, { recursive: true, encoding: 'utf8' })) {
    if (entry.endsWith('.js')) rmSync(join(out, entry));
  }
}
tscProject('tsconfig.examples.json');
console.log(`built ${out}`);
