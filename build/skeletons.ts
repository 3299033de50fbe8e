// Per-object skeleton options: which objects also get light-skeleton loaders.
// build-bpf.ts generates with these, and the tests regenerate with them.
import { dirname } from 'node:path';
import { LIBRARY_IMPORT, OBJECT_NAME } from '../src/preload/names.js';
import { generateSkeleton, skeletonName, type LightOptions } from '../src/gen/skeleton.js';

export const LIGHT: Readonly<Record<string, LightOptions>> = {
  // The runner loads either map iterator with the program iterator; the
  // object name is the runner's, which names the .rodata map the loader creates.
  iterators: {
    objectName: OBJECT_NAME,
    variants: {
      withCount: ['dump_bpf_map', 'dump_bpf_prog'],
      compat: ['dump_bpf_map_compat', 'dump_bpf_prog'],
    },
  },
};

/**
 * Objects whose globals also get a module of their own (skel/NAME.globals.ts),
 * which their skeleton imports: status reads our marker with it.
 */
export const GLOBALS_MODULE: readonly string[] = ['iterators'];

/** How the generated files in skel/ import src/libbpf (by relative path; LIBRARY_IMPORT is how other projects do). */
export const SKEL_LIBRARY_IMPORT = '../src/libbpf/index.js';
/** How skel/ is regenerated, for the generated files' headers. */
export const REGENERATE = 'npm run build:bpf';

/** skel/'s files for the object NAME.bpf.o of bpf/: [path, text] of its skeleton, and of its globals module if it has one. */
export function skelFiles(name: string, bytes: Uint8Array): [string, string][] {
  const common = { bytes, name, libbpfImport: SKEL_LIBRARY_IMPORT, regenerate: REGENERATE };
  if (!GLOBALS_MODULE.includes(name)) return [[`skel/${name}.skel.ts`, generateSkeleton({ ...common, light: LIGHT[name] })]];
  return [
    [`skel/${name}.skel.ts`, generateSkeleton({ ...common, light: LIGHT[name], globalsModule: `./${name}.globals.js` })],
    [`skel/${name}.globals.ts`, generateSkeleton({ ...common, globalsOnly: true })],
  ];
}

/**
 * The bench's skeleton of the ring buffer producer (test/fixtures/ringprod.bpf.c),
 * for its decoders: bench/ringprod.skel.ts.
 */
export const BENCH_SKELETON = { fixture: 'ringprod', file: 'bench/ringprod.skel.ts' } as const;

export function benchSkeleton(bytes: Uint8Array): string {
  return generateSkeleton({ bytes, name: BENCH_SKELETON.fixture, libbpfImport: SKEL_LIBRARY_IMPORT, regenerate: REGENERATE });
}

/**
 * An example's skeleton, beside its source: what `bpf-preload gen skeleton
 * OBJ` prints for the object (no options, so the library is imported as
 * another project imports it), to be committed as examples/DIR/NAME.skel.ts.
 */
export function exampleSkeleton(source: string, bytes: Uint8Array): { file: string; text: string } {
  const name = skeletonName(source.replace(/\.c$/, '.o'));
  return { file: `${dirname(source)}/${name}.skel.ts`, text: generateSkeleton({ bytes, name, libbpfImport: LIBRARY_IMPORT }) };
}
