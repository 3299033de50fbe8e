// Runs the project's TypeScript compiler on one tsconfig, for the build
// scripts that emit JavaScript with tsc (the library, the examples); exits
// the build on failure, after tsc's own diagnostics.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

export function tscProject(tsconfig: string): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', tsconfig], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`build: tsc -p ${tsconfig} failed`);
    process.exit(1);
  }
}
