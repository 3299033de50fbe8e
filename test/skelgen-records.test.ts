// Typed records: gen skeleton gives each record struct of an object
// (test/fixtures/records.bpf.c: struct sample, a field of every kind) a
// TypeScript interface and a decoder written for its layout, and
// skel.ringbuf(map, struct) / skel.perfbuf(map, struct) stream the records
// decoded: every field as the C wrote it, in every way to take records.
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BpfObject, RingBuffer, objectTypes } from '../src/libbpf/index.js';
import { decodeValue } from '../src/libbpf/globals.js';
import { generateSkeleton } from '../src/gen/skeleton.js';
import { fixture } from './lib/fixtures.js';
import { embeddedObject, objectFacts } from './lib/skeletons.js';
import { BENCH_SKELETON, benchSkeleton } from '../build/skeletons.js';

const bytes = readFileSync(fixture('records'));
const text = generateSkeleton({ bytes, name: 'records', libbpfImport: resolve('src/libbpf/index.js') });
const FIRST_SEQ = 1000;

/** What the C's fill() writes for sequence number `n`. */
function sample(n: number) {
  const odd = n % 2 === 1;
  return {
    seq: BigInt(n),
    neg: -(BigInt(n) + 1n) * 1000000007n,
    s32: -123456,
    u16: 65535,
    s8: -7,
    odd,
    level: odd ? 0x7fffffff : 1,
    name: `sample-${n % 10}`,
    counts: [n, n * 2, 0xffffffff],
    pairs: [
      { a: -300, b: 200 },
      { a: 300, b: 1 },
    ],
    one: { a: -1, b: 255 },
    ratio: 1.5,
    quarter: -2.25,
    full: 'abcde',
  };
}
const samples = (from: number, count: number) => Array.from({ length: count }, (_, i) => sample(from + i));

/** The generated module, written to a directory the test removes, imported, opened with first_seq set, loaded. */
async function loadedSkeleton(t: Test) {
  const dir = mkdtempSync(resolve('.records-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'records.skel.ts');
  writeFileSync(file, text);
  const mod = await import(file);
  const open = mod.RecordsSkeleton.open();
  t.teardown(() => open.destroy());
  open.rodata.first_seq = BigInt(FIRST_SEQ);
  const skel = open.load();
  const ctx = (count: number) => Buffer.from(new Uint32Array([count]).buffer);
  return {
    mod,
    skel,
    /** Sends `count` samples into the ring; returns how many it sent. */
    sendRing: (count: number): number => skel.progs.send_ring.testRun(Buffer.alloc(0), ctx(count)).retval,
    sendPerf: (): void => void skel.progs.send_perf.testRun(Buffer.alloc(64)),
    sendShort: (): void => void skel.progs.send_short.testRun(Buffer.alloc(0), ctx(0)),
  };
}

t.test('the skeleton declares struct sample as a record, with its fields typed, and a decoder reading at fixed offsets', async (t) => {
  t.match(text, /^\/\*\* struct sample: a record the programs send \(skel\.ringbuf\(map, 'sample'\)\)\. \*\/\nexport interface RecordsSample \{$/m);
  for (const field of [
    'readonly seq: bigint;',
    'readonly s32: number;',
    'readonly odd: boolean;',
    'readonly name: string;',
    'readonly counts: ReadonlyArray<number>;',
    'readonly ratio: number;',
  ]) {
    t.ok(text.includes(`\n  ${field}\n`), field);
  }
  for (const read of [
    'seq: v.getBigUint64(o, true),',
    'neg: v.getBigInt64(o + 8, true),',
    's8: v.getInt8(o + 22),',
    'name: cString(b, o + 28, 12),',
    'ratio: v.getFloat64(o + 64, true),',
  ]) {
    t.ok(text.includes(read), `decodes ${read}`);
  }
  t.ok(text.includes('a0[i0] = v.getUint32(o + 40 + i0 * 4, true);\n') && text.includes('counts: a0,\n'), 'arrays in a loop');
  // struct pair is only a field's type; xdp_md only an entry point's context: neither is a record.
  t.match(text, /^export const RecordsRecords = \{\n {2}sample: \{$/m);
  t.notMatch(text, /RecordsPair|RecordsXdpMd/);
});

t.test('for await (const s of skel.ringbuf(map, struct)) yields each record decoded, as the C wrote it', async (t) => {
  const { skel, sendRing } = await loadedSkeleton(t);
  t.equal(sendRing(5), 5);
  const rb = skel.ringbuf('samples', 'sample');
  const got = [];
  for await (const s of rb) {
    got.push(s);
    if (got.length === 5) rb.close();
  }
  t.same(got, samples(FIRST_SEQ, 5), 'every field of all five');
  t.equal(skel.bss.sent, 5n, '.bss counted them');
  t.equal(skel.typed.sent_by_parity.get(0), 3n, 'the typed map too: 1000, 1002, 1004 are even');
});

t.test('the generated decoder agrees with the generic decoding of the same bytes', async (t) => {
  const { mod, skel, sendRing } = await loadedSkeleton(t);
  using obj = BpfObject.openMem(bytes, { name: 'records' });
  const [{ type }] = objectTypes(obj).records;
  t.equal(sendRing(3), 3);
  using rb = new RingBuffer(skel.maps.samples.fd, 'samples');
  const pairs: [unknown, unknown][] = [];
  rb.consume((record: Buffer) =>
    pairs.push([mod.RecordsRecords.sample.decode(record, new DataView(record.buffer, record.byteOffset), 0), decodeValue(record, 0, type)]),
  );
  t.equal(pairs.length, 3);
  for (const [generated, generic] of pairs) t.same(generated, generic);
});

t.test('consume() and run() hand decoded records to a callback; so does a perf buffer', async (t) => {
  const { skel, sendRing, sendPerf } = await loadedSkeleton(t);
  const rb = skel.ringbuf('samples', 'sample');
  t.teardown(() => rb.close());
  t.equal(sendRing(3), 3);
  const consumed: unknown[] = [];
  t.equal(
    rb.consume((s: unknown, source: string) => consumed.push([s, source])),
    3,
  );
  t.same(
    consumed,
    samples(FIRST_SEQ, 3).map((s) => [s, 'samples']),
    'consume(): each with the map it came from',
  );

  t.equal(sendRing(4), 4);
  const ran: unknown[] = [];
  await rb.run((s: unknown) => {
    ran.push(s);
    if (ran.length === 4) rb.close();
  });
  t.same(ran, samples(FIRST_SEQ + 3, 4), 'run(): the next four');

  const pb = skel.perfbuf('perf_samples', 'sample');
  t.teardown(() => pb.close());
  sendPerf();
  const perf: unknown[] = [];
  for (let tries = 0; perf.length < 2 && tries < 50; tries++) {
    await pb.stream.wait({ timeoutMs: 100 });
    pb.consume((s: unknown) => perf.push(s));
  }
  t.same(perf, samples(FIRST_SEQ + 7, 2), "a perf buffer's two, decoded");
});

t.test('a record shorter than its struct, or a struct the object does not send: one clear error', async (t) => {
  const { skel, sendShort, sendRing } = await loadedSkeleton(t);
  using rb = skel.ringbuf('samples', 'sample');
  sendShort();
  t.equal(sendRing(1), 1);
  t.throws(() => rb.consume(() => {}), {
    name: 'RangeError',
    message: 'samples: a record of 8 bytes, but struct sample takes 88: is it the struct this map carries?',
  });
  const after: unknown[] = [];
  t.equal(
    rb.consume((s: unknown) => after.push(s)),
    1,
    'the record after it still comes',
  );
  t.same(after, [sample(FIRST_SEQ)]);
  t.throws(() => skel.ringbuf('samples', 'pair'), {
    message: 'skeleton records has no record struct pair (it has sample; see Typed records in docs/libbpf.md)',
  });
});

t.test("the bench's committed skeleton of its producer is what the generator makes of the object it embeds, and matches the object built here", async (t) => {
  const committed = readFileSync(BENCH_SKELETON.file, 'utf8');
  const { bytes: embedded } = embeddedObject(committed);
  t.equal(benchSkeleton(embedded), committed, `${BENCH_SKELETON.file} is up to date (npm run build:bpf)`);
  const built = readFileSync(fixture(BENCH_SKELETON.fixture));
  t.same(
    objectFacts(built, 'ringprod'),
    objectFacts(embedded, 'ringprod'),
    "programs, maps, globals and records of the object built here are the embedded one's",
  );
  t.same(
    objectFacts(built, 'ringprod').records.map(([struct]) => struct),
    ['record'],
    'struct record is its one record struct',
  );
});
