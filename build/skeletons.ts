// Per-object skeleton options: which objects also get light-skeleton loaders.
// build-bpf.ts generates with these, and the tests regenerate with them.
import { OBJECT_NAME } from '../src/names.js';
import type { LightOptions } from '../src/skelgen.js';

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

/** Objects whose globals also get a module of their own (skel/NAME.globals.ts): status reads our marker with it. */
export const GLOBALS_MODULE: readonly string[] = ['iterators'];

/** src/libbpf as the generated files in skel/ import it. */
export const LIBBPF_IMPORT = '../src/libbpf/index.js';
/** How skel/ is regenerated, for the generated files' headers. */
export const REGENERATE = 'npm run build:bpf';
