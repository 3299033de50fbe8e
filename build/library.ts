// Compiles src/libbpf into dist/libbpf: the JavaScript and .d.ts files that
// `import ... from 'bpf-preload/libbpf'` loads (package.json `exports`). The
// output is cleared first so a removed source leaves no stale module behind.
import { rmSync } from 'node:fs';
import { tscProject } from './tsc.js';

const LIBRARY_OUT = 'dist/libbpf';

rmSync(LIBRARY_OUT, { recursive: true, force: true });
tscProject('tsconfig.lib.json');
console.log(`built ${LIBRARY_OUT}`);
