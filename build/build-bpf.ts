// `npm run build:bpf`: compiles bpf/*.bpf.c, test/fixtures/*.bpf.c and
// examples/*/*.bpf.c with clang, then regenerates skel/<name>.skel.ts for
// each object under bpf/ (with light-skeleton loaders where
// build/skeletons.ts asks for them, and skel/<name>.globals.ts, the globals
// alone, where it lists the object), and examples/<dir>/<name>.skel.ts for
// each example's object, as `bpf-preload gen skeleton` writes it.
// `--objects-only` skips the skeletons (the tests compare the committed ones).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { CompileError, compileAll } from './compile.js';
import { generateSkeleton, skeletonName } from '../src/gen/skeleton.js';
import { GLOBALS_MODULE, SKEL_LIBRARY_IMPORT, LIGHT, REGENERATE, exampleSkeleton } from './skeletons.js';

try {
  const objects = await compileAll();
  if (!process.argv.includes('--objects-only')) {
    mkdirSync('skel', { recursive: true });
    for (const obj of objects.filter((o) => o.kind === 'bpf')) {
      const name = skeletonName(obj.output);
      const out = `skel/${name}.skel.ts`;
      const bytes = readFileSync(obj.output);
      writeFileSync(out, generateSkeleton({ bytes, name, libbpfImport: SKEL_LIBRARY_IMPORT, light: LIGHT[name], regenerate: REGENERATE }));
      console.log(`generated ${out}`);
      if (GLOBALS_MODULE.includes(name)) {
        const globals = `skel/${name}.globals.ts`;
        writeFileSync(globals, generateSkeleton({ bytes, name, libbpfImport: SKEL_LIBRARY_IMPORT, globalsOnly: true, regenerate: REGENERATE }));
        console.log(`generated ${globals}`);
      }
    }
    for (const obj of objects.filter((o) => o.kind === 'example')) {
      const { file, text } = exampleSkeleton(obj.source, readFileSync(obj.output));
      writeFileSync(file, text);
      console.log(`generated ${file}`);
    }
  }
} catch (err) {
  if (err instanceof CompileError && process.env.VERBOSE) console.error(err.detail);
  console.error(`build:bpf: ${(err as Error).message}`);
  process.exit(1);
}
