// `npm run build`: bundles the CLI, with the generated skeleton and its
// embedded object, into the single file dist/bpf-preload.js. koffi stays
// outside: it carries a native module.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';
import { cliBundleOptions } from './bundle-options.js';

const outfile = 'dist/bpf-preload.js';

await build({ ...cliBundleOptions, entryPoints: ['src/cli/main.ts'], outfile });
chmodSync(outfile, 0o755);
console.log(`built ${outfile}`);
