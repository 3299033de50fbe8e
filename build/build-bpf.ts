// `npm run build:bpf`: compiles bpf/*.bpf.c, test/fixtures/*.bpf.c and
// examples/*/*.bpf.c with clang, then regenerates skel/<name>.skel.ts for
// each object under bpf/ (with light-skeleton loaders where
// build/skeletons.ts asks for them, and skel/<name>.globals.ts, the globals
// alone, where it lists the object), examples/<dir>/<name>.skel.ts for
// each example's object, as `bpf-preload gen skeleton` writes it, and the
// bench's skeleton of its ring buffer producer.
// `--objects-only` skips the skeletons (the tests compare the committed ones).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { CompileError, compileAll } from './compile.js';
import { skeletonName } from '../src/gen/skeleton.js';
import { BENCH_SKELETON, benchSkeleton, exampleSkeleton, skelFiles } from './skeletons.js';

try {
  const objects = await compileAll();
  if (!process.argv.includes('--objects-only')) {
    mkdirSync('skel', { recursive: true });
    for (const obj of objects.filter((o) => o.kind === 'bpf')) {
      for (const [out, text] of skelFiles(skeletonName(obj.output), readFileSync(obj.output))) {
        writeFileSync(out, text);
        console.log(`generated ${out}`);
      }
    }
    for (const obj of objects.filter((o) => o.kind === 'fixture' && skeletonName(o.output) === BENCH_SKELETON.fixture)) {
      writeFileSync(BENCH_SKELETON.file, benchSkeleton(readFileSync(obj.output)));
      console.log(`generated ${BENCH_SKELETON.file}`);
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
