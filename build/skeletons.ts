// Per-object skeleton options: which objects also get light-skeleton loaders.
// build-bpf.ts generates with these, and the tests regenerate with them.
import type { LightOptions } from './skelgen.js';

export const LIGHT: Readonly<Record<string, LightOptions>> = {
  // The runner loads either map iterator with the program iterator; the
  // object name is the runner's (src/iterators.ts OBJECT_NAME), which names
  // the .rodata map the loader creates.
  iterators: {
    objectName: 'bpf_preload',
    variants: {
      withCount: ['dump_bpf_map', 'dump_bpf_prog'],
      compat: ['dump_bpf_map_compat', 'dump_bpf_prog'],
    },
  },
};
