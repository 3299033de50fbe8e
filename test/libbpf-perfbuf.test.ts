// The perf buffer consumer against the real kernel: an xdp program
// (test/fixtures/perfprod.bpf.c, run with BPF_PROG_TEST_RUN) sends numbered
// records with bpf_perf_event_output to the running CPU's buffer. Every
// record arrives once; what a full buffer dropped is counted as lost, and
// received plus lost is what was sent. Waiting and iteration are the ring
// buffer's (stream.ts), so this covers what is particular to perf buffers.
import t, { type Test } from 'tap';
import { BpfObject, PerfBuffer, codecs } from '../src/libbpf/index.js';
import { fixture } from './lib/fixtures.js';

const RECORDS_PER_RUN = 32;

function producer(t: Test) {
  const obj = BpfObject.openFile(fixture('perfprod'));
  t.teardown(() => obj.close());
  obj.load();
  const prog = obj.program('produce');
  const packet = Buffer.alloc(64);
  return {
    obj,
    /** Runs the program `runs` times: RECORDS_PER_RUN records each. */
    produce: (runs: number) => {
      for (let i = 0; i < runs; i++) prog.testRun(packet);
    },
    /** What bpf_perf_event_output refused so far (.bss `refused`). */
    refused: (): bigint => {
      const bss = obj.map('perfprod.bss').lookup(Buffer.from(codecs.u32.encode(0)));
      return bss!.readBigUInt64LE(8);
    },
  };
}

t.test('every record once, in consume and for await; a wait wakes on records; close ends the iteration', async (t) => {
  const { obj, produce } = producer(t);
  const pb = new PerfBuffer(obj.map('events').fd, 'events');
  t.teardown(() => pb.close());
  const seen = new Map<bigint, number>();
  const note = (record: Buffer) => seen.set(record.readBigUInt64LE(0), (seen.get(record.readBigUInt64LE(0)) ?? 0) + 1);
  const sources = new Set<string>();
  for (let round = 0; round < 10; round++) {
    produce(40);
    while (
      pb.consume(
        (r, source) => {
          sources.add(source);
          note(r);
        },
        { maxMs: 10_000 },
      ) > 0
    );
  }
  t.equal(seen.size, 10 * 40 * RECORDS_PER_RUN, 'every record');
  t.ok(
    [...seen.values()].every((n) => n === 1),
    'none twice',
  );
  t.ok(
    [...seen.keys()].every((k) => k < BigInt(seen.size)),
    'nothing else',
  );
  t.same([...sources], ['events'], 'handlers get the name');
  t.equal(pb.lost, 0, 'nothing lost');

  setTimeout(() => produce(2), 50);
  t.equal(await pb.wait({ timeoutMs: 5000 }), true, 'records wake a wait');
  let got = 0;
  setTimeout(() => pb.close(), 300);
  for await (const record of pb) {
    note(record);
    got++;
  }
  t.equal(got, 2 * RECORDS_PER_RUN, 'for await took them, then close() ended it');
  t.equal(seen.size, (10 * 40 + 2) * RECORDS_PER_RUN);
});

t.test('a full buffer: the records it could not take are counted as lost', async (t) => {
  const { obj, produce, refused } = producer(t);
  // One page per CPU holds about 50 records of 64 bytes.
  using pb = new PerfBuffer(obj.map('events').fd, 'events', { pageCount: 1 });
  produce(10);
  let got = 0;
  const drain = () => {
    while (pb.consume(() => got++, { maxMs: 10_000 }) > 0);
  };
  drain();
  t.ok(got < 10 * RECORDS_PER_RUN, `the buffer took ${got} of ${10 * RECORDS_PER_RUN}`);
  // The kernel reports a loss with the next record that fits in that buffer.
  produce(1);
  drain();
  const sent = 11 * RECORDS_PER_RUN;
  t.ok(pb.lost > 0);
  t.equal(BigInt(pb.lost), refused(), 'lost is what bpf_perf_event_output refused');
  t.equal(got + pb.lost, sent, 'received and lost add up to what was sent');
});

t.test('only perf event array maps', async (t) => {
  const { obj } = producer(t);
  t.throws(() => new PerfBuffer(obj.map('perfprod.bss').fd, 'bss'), /^open perf buffer bss: E/);
});
