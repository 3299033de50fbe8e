// How the CLI is bundled: one ESM file for the oldest Node.js we support.
// Shared by build/bundle.ts and the test that runs the bundle's preamble
// where Symbol.dispose is missing.
import type { BuildOptions } from 'esbuild';
import { readFileSync } from 'node:fs';

interface PackageJson {
  version: string;
  engines: { node: string };
}

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as PackageJson;

/** The oldest Node.js the CLI runs on, from package.json's `engines` (">=18.15" → "18.15"). */
export const OLDEST_NODE = /^>=\s*(\d+(?:\.\d+){0,2})$/.exec(pkg.engines.node)?.[1] ?? fail(`engines.node should read ">=X.Y", not ${pkg.engines.node}`);

function fail(message: string): never {
  throw new Error(message);
}

/** The Symbol.dispose polyfill, which the library imports first and the bundle runs first. */
export const DISPOSE_MODULE = 'src/libbpf/dispose.ts';

/**
 * Runs before anything else in the bundle. `using` is lowered by esbuild, and
 * our classes dispose through `[Symbol.dispose]`; Node.js before 18.18 has no
 * such symbol, so the class keys and esbuild's helper would disagree. The
 * code of DISPOSE_MODULE (plain JavaScript, comments left out) gives those
 * versions the symbol later ones use.
 */
export const PREAMBLE = readFileSync(DISPOSE_MODULE, 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '' && !line.startsWith('//'))
  .join('\n');

export const cliBundleOptions = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: `node${OLDEST_NODE}`,
  external: ['koffi'],
  banner: { js: `#!/usr/bin/env node\n${PREAMBLE}` },
  define: { __VERSION__: JSON.stringify(pkg.version) },
  legalComments: 'none',
  // Whitespace and syntax only: names stay, so an internal error's stack
  // trace (BPF_PRELOAD_DEBUG=1) still reads; the file parses faster at boot.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
} satisfies BuildOptions;
