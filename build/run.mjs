// Runs a TypeScript build script on plain Node 20: esbuild bundles it into
// node_modules/.cache (native and build-time packages stay external), then
// the bundle is imported with the remaining arguments left in process.argv.
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [script, ...rest] = process.argv.slice(2);
if (!script) {
  console.error('usage: node build/run.mjs SCRIPT.ts [ARGS...]');
  process.exit(2);
}
const cacheDir = resolve('node_modules/.cache/bpf-preload-build');
mkdirSync(cacheDir, { recursive: true });
const outfile = resolve(cacheDir, basename(script).replace(/\.ts$/, '.mjs'));
await build({
  entryPoints: [script],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  logLevel: 'error',
  sourcemap: 'inline',
});
process.argv = [process.argv[0], resolve(script), ...rest];
await import(pathToFileURL(outfile).href);
