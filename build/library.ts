// Compiles src/libbpf into dist/libbpf: the JavaScript and .d.ts files that
// `import ... from 'bpf-preload/libbpf'` loads (package.json `exports`). The
// output is cleared first so a removed source leaves no stale module behind.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const LIBRARY_OUT = 'dist/libbpf';

rmSync(LIBRARY_OUT, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.lib.json'], { stdio: 'inherit' });
if (r.status !== 0) {
  console.error('build: tsc -p tsconfig.lib.json failed');
  process.exit(1);
}
console.log(`built ${LIBRARY_OUT}`);
