// `npm run build:bpf`: compiles bpf/*.bpf.c and test/fixtures/*.bpf.c with
// clang, then regenerates skel/<name>.skel.ts for each object under bpf/.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { compileAll } from './compile.js';
import { generateSkeleton, skeletonName } from './skelgen.js';

const objects = await compileAll();
mkdirSync('skel', { recursive: true });
for (const obj of objects.filter((o) => o.kind === 'bpf')) {
  const name = skeletonName(obj.output);
  const out = `skel/${name}.skel.ts`;
  writeFileSync(out, generateSkeleton({ bytes: readFileSync(obj.output), name, libbpfImport: '../src/libbpf/index.js' }));
  console.log(`generated ${out}`);
}
