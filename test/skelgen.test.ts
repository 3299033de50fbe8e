// The skeleton generator on our object and on others: deterministic output,
// generated code that type-checks, clear errors for objects libbpf refuses.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { generateSkeleton, skeletonName } from '../src/gen/skeleton.js';
import { LIGHT, skelFiles } from '../build/skeletons.js';
import { MAPS_HEADER_COMPAT, MAPS_HEADER_WITH_COUNT, MARKER, OBJECT_NAME, PROGS_HEADER } from '../src/preload/names.js';
import { IteratorsSkeleton } from '../skel/iterators.skel.js';
import { ExporterSkeleton } from '../skel/exporter.skel.js';
import { objectFacts } from './lib/skeletons.js';

const objects = [...readdirSync('dist/bpf').map((f) => resolve('dist/bpf', f)), ...readdirSync('dist/fixtures').map((f) => resolve('dist/fixtures', f))].filter(
  (f) => f.endsWith('.bpf.o') && !f.includes('invalid'),
);

t.test('skeleton names come from the object file name', async (t) => {
  t.equal(skeletonName('dist/bpf/iterators.bpf.o'), 'iterators');
  t.equal(skeletonName('foo.o'), 'foo');
});

// The committed files depend on the clang that compiled the object and the
// libbpf that recorded the light loaders; these checks hold with any of them.
const committed = readFileSync('skel/iterators.skel.ts', 'utf8');
/** The skeleton without what only the recording libbpf decides: its version and the loaders' bytes. */
const withoutLoaders = (text: string) =>
  text
    .replace(/recorded by libbpf [\d.]+'s/, 'recorded by libbpf VERSION')
    .replace(/\/\/ \d+ bytes of loader (instructions|data)\n\s+\w+: \[\n(\s+'[^']*',\n)*\s+\]/g, 'LOADER');

t.test('the committed skeleton is what the generator makes of the object it embeds', async (t) => {
  const bytes = IteratorsSkeleton.bytes();
  t.equal(IteratorsSkeleton.sha256, createHash('sha256').update(bytes).digest('hex'), 'its sha256 is that of the embedded object');
  const [[, made], [globalsFile, globals]] = skelFiles('iterators', bytes);
  t.equal(withoutLoaders(committed).split('LOADER').length - 1, 4, "the comparison leaves out exactly the two variants' insns and data");
  t.equal(withoutLoaders(made), withoutLoaders(committed), 'same text, loaders aside');
  t.equal(globalsFile, 'skel/iterators.globals.ts');
  t.equal(globals, readFileSync(globalsFile, 'utf8'), 'skel/iterators.globals.ts is up to date (npm run build:bpf)');
  t.match(committed, /^import \{ IteratorsLayouts, type IteratorsRodata \} from '\.\/iterators\.globals\.js';$/m, 'the skeleton imports the globals module');
  t.notMatch(committed, /export const IteratorsLayouts/, 'and does not repeat it');
});

t.test('the object built here has what the committed skeleton says: programs, maps, globals', async (t) => {
  t.same(objectFacts(readFileSync('dist/bpf/iterators.bpf.o'), OBJECT_NAME), objectFacts(IteratorsSkeleton.bytes(), OBJECT_NAME));
});

t.test(
  "the exporter's committed skeleton is what the generator makes of its object, and the object built here has the same programs, maps and globals",
  async (t) => {
    const bytes = ExporterSkeleton.bytes();
    t.equal(ExporterSkeleton.sha256, createHash('sha256').update(bytes).digest('hex'));
    const [[, made]] = skelFiles('exporter', bytes);
    t.equal(made, readFileSync('skel/exporter.skel.ts', 'utf8'), 'skel/exporter.skel.ts is up to date (npm run build:bpf)');
    t.same(objectFacts(readFileSync('dist/bpf/exporter.bpf.o'), 'exporter'), objectFacts(bytes, 'exporter'));
  },
);

t.test('the marker and headers the C prints are the ones src/preload/names.ts defines', async (t) => {
  using skel = IteratorsSkeleton.open({ name: OBJECT_NAME });
  t.equal(skel.rodata.bpf_preload_marker, MARKER, 'the .rodata global bpf_preload_marker, read through the skeleton');
  const rodata = skel.maps.rodata.readImage();
  for (const header of [PROGS_HEADER, MAPS_HEADER_WITH_COUNT, MAPS_HEADER_COMPAT]) {
    t.ok(rodata.includes(Buffer.from(`${header}\0`)), `the object prints ${JSON.stringify(header)}`);
  }
  t.equal(skel.maps.rodata.name, 'bpf_prel.rodata', 'libbpf keeps 8 characters of the object name');
});

t.test('output is deterministic and type-checks for every object we build', async (t) => {
  t.ok(objects.length >= 3, `several objects to generate from (${objects.length})`);
  const dir = mkdtempSync(resolve('node_modules/.cache/skelgentest'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const libbpf = resolve('src/libbpf/index.js');
  const files: string[] = [];
  for (const obj of objects) {
    const name = skeletonName(obj);
    const bytes = readFileSync(obj);
    const light = LIGHT[name];
    const a = generateSkeleton({ bytes, name, libbpfImport: libbpf, light });
    const b = generateSkeleton({ bytes: Buffer.from(bytes), name, libbpfImport: libbpf, light });
    t.equal(a, b, `${name}: same object, same text`);
    t.equal(a.includes('LightSpec'), light !== undefined, `${name}: light loaders only where asked for`);
    t.match(a, /^\/\/ Code generated by bpf-preload gen skeleton from .*DO NOT EDIT\./);
    const file = join(dir, `${name}.skel.ts`);
    writeFileSync(file, a);
    files.push(file);
  }
  const tsconfig = join(dir, 'tsconfig.json');
  writeFileSync(
    tsconfig,
    JSON.stringify({ extends: resolve('tsconfig.json'), include: files, compilerOptions: { types: ['node'], typeRoots: [resolve('node_modules/@types')] } }),
  );
  const tsc = spawnSync(process.execPath, [resolve('node_modules/typescript/bin/tsc'), '-p', tsconfig], { encoding: 'utf8' });
  t.equal(tsc.status, 0, `generated skeletons type-check: ${tsc.stdout}${tsc.stderr}`);
});

t.test('truncated or garbage objects give a clear error', async (t) => {
  const bytes = readFileSync('dist/bpf/iterators.bpf.o');
  t.throws(() => generateSkeleton({ bytes: bytes.subarray(0, 600), name: 'half', libbpfImport: 'x' }), {
    message: /^half: not a BPF object libbpf can open \(LIBBPF_ERRNO__\w+\)/,
  });
  t.throws(() => generateSkeleton({ bytes: Buffer.from('\x7fELF garbage'), name: 'junk', libbpfImport: 'x' }), {
    message: /^junk: not a BPF object libbpf can open/,
  });
  t.throws(() => generateSkeleton({ bytes, name: 'no spaces', libbpfImport: 'x' }), { message: /not a valid identifier/ });
});

t.test("light loader variants: deterministic, in the object's program order, checked", async (t) => {
  const bytes = readFileSync('dist/bpf/iterators.bpf.o');
  t.equal(LIGHT.iterators.objectName, OBJECT_NAME, 'recorded with the name the runner opens the object with');
  const gen = (variants: Record<string, string[]>) =>
    generateSkeleton({ bytes, name: 'iterators', libbpfImport: 'x', light: { objectName: OBJECT_NAME, variants } });
  const a = gen({ one: ['dump_bpf_prog', 'dump_bpf_map'] });
  t.equal(a, gen({ one: ['dump_bpf_map', 'dump_bpf_prog'] }), 'order of the names given does not matter');
  t.match(a, "programs: ['dump_bpf_map', 'dump_bpf_prog'],", "programs in the object's order");
  t.match(a, /recorded by libbpf \d+\.\d+'s gen_loader/, 'names the libbpf that recorded them');
  t.throws(() => gen({ bad: ['nope'] }), { message: "iterators: light variant bad names unknown programs ['nope']" });
  t.throws(() => gen({ none: [] }), { message: 'iterators: light variant none names no programs' });
  t.throws(() => gen({}), { message: 'iterators: light skeleton without variants' });
});
