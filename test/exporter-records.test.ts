// The exporter's parser of its iterators' binary records
// (src/exporter/records.ts), fed records laid out as bpf/exporter.bpf.c
// writes them (offsets from the skeleton): what it decodes, when it reuses
// the last scrape's record, and what it refuses. The kernel never writes a
// broken record, so these cases can only be made here; test/exporter.test.ts
// checks the same parser against the real iterators.
import t from 'tap';
import { MAP, PROG, RecordParser, i64At, u64At } from '../src/exporter/records.js';

interface Prog {
  id: number;
  runs?: bigint;
  name: string;
  attach?: string;
  dst?: string;
  verified?: number;
}

/** One struct exporter_prog and its strings. */
function progBytes(p: Prog): Buffer {
  const f = PROG.offsets;
  const strings = [p.name, p.attach ?? '', p.dst ?? ''].map((s) => Buffer.from(s, 'latin1'));
  const b = Buffer.alloc(PROG.size);
  b.writeUInt32LE(p.id, f.id);
  if (p.runs !== undefined) {
    b.writeUInt32LE(1, f.has_run_stats);
    b.writeBigUInt64LE(p.runs, f.runs);
    b.writeBigUInt64LE(p.runs * 10n, f.run_ns);
  }
  b.writeUInt32LE(26, f.type);
  b.writeUInt32LE(100, f.len);
  b.writeUInt32LE(400, f.jited_len);
  b.writeUInt32LE(1, f.pages);
  if (p.verified !== undefined) {
    b.writeUInt32LE(p.verified, f.verified_insns);
    b.writeUInt32LE(1, f.has_verified_insns);
  }
  Buffer.from('0123456789abcdef', 'hex').copy(b, f.tag);
  b.writeUInt16LE(strings[0].length, f.name_len);
  b.writeUInt16LE(strings[1].length, f.attach_func_len);
  b.writeUInt16LE(strings[2].length, f.dst_name_len);
  return Buffer.concat([b, ...strings]);
}

function mapBytes(id: number, name: string, entries?: bigint): Buffer {
  const f = MAP.offsets;
  const b = Buffer.alloc(MAP.size);
  b.writeUInt32LE(id, f.id);
  if (entries !== undefined) {
    b.writeUInt32LE(1, f.has_entries);
    b.writeBigInt64LE(entries, f.entries);
  }
  b.writeUInt32LE(1, f.type);
  b.writeUInt32LE(4, f.key_size);
  b.writeUInt32LE(8, f.value_size);
  b.writeUInt32LE(1024, f.max_entries);
  b.write(name, f.name, 'latin1');
  return b;
}

t.test('64-bit fields read as numbers while exact, as bigints beyond, signed where the kernel prints them signed', (t) => {
  const b = Buffer.alloc(8);
  const v = new DataView(b.buffer, b.byteOffset, 8);
  const cases: [bigint, number | bigint, number | bigint][] = [
    [0n, 0, 0],
    [2n ** 32n + 5n, 2 ** 32 + 5, 2 ** 32 + 5],
    [2n ** 53n - 1n, 2 ** 53 - 1, 2 ** 53 - 1],
    [2n ** 53n, 2n ** 53n, 2n ** 53n],
    [2n ** 64n - 1n, 2n ** 64n - 1n, -1],
    [2n ** 64n - 2n ** 40n, 2n ** 64n - 2n ** 40n, -(2 ** 40)],
  ];
  for (const [raw, unsigned, signed] of cases) {
    b.writeBigUInt64LE(raw);
    t.equal(u64At(v, 0), unsigned, `u64 ${raw}`);
    t.equal(i64At(v, 0), signed, `s64 ${raw}`);
  }
  t.end();
});

const parse = (parser: RecordParser, progs: Buffer, maps: Buffer = Buffer.alloc(0), lines = '') => parser.parse({ progs, maps, lines });

t.test('programs and maps decoded as progs.debug and maps.debug name them', (t) => {
  const r = parse(
    new RecordParser(),
    Buffer.concat([
      progBytes({ id: 7, name: 'handle_sched_switch_event', verified: 55 }),
      progBytes({ id: 9, name: 'fentry_prog', attach: 'bpf_prog_run', dst: 'target_prog' }),
      progBytes({ id: 11, name: 'freplace', dst: 'xdp_main' }),
    ]),
    Buffer.concat([mapBytes(3, 'counts', 12n), mapBytes(4, 'array_of_15chr')]),
  );
  t.same(
    r.progs.records.map((p) => [p.id, p.name, p.attached, p.verifiedInsns]),
    [
      [7, 'handle_sched_switch_event', '', 55],
      [9, 'fentry_prog', 'bpf_prog_run target_prog', undefined],
      [11, 'freplace', ' xdp_main', undefined],
    ],
  );
  t.equal(r.progs.records[0].tag, '0123456789abcdef');
  t.same(
    r.maps.records.map((m) => [m.id, m.name, m.maxEntries]),
    [
      [3, 'counts', 1024],
      [4, 'array_of_15chr', 1024],
    ],
  );
  t.equal(r.malformed, 0);
  t.end();
});

t.test("a record whose bytes after its moving fields are unchanged is the last scrape's object; a changed one is decoded again", (t) => {
  const parser = new RecordParser();
  const first = parse(parser, Buffer.concat([progBytes({ id: 1, runs: 1n, name: 'a' }), progBytes({ id: 2, runs: 1n, name: 'b' })]));
  // Run counters moved; program 2's attach target was cleared by an attach.
  const second = parse(
    parser,
    Buffer.concat([progBytes({ id: 1, runs: 500n, name: 'a' }), progBytes({ id: 2, runs: 3n, name: 'b', attach: 'x' }), progBytes({ id: 5, name: 'new' })]),
  );
  t.equal(second.progs.records[0], first.progs.records[0], 'program 1: the same object');
  t.not(second.progs.records[1], first.progs.records[1], 'program 2: decoded again');
  t.equal(second.progs.records[1].attached, 'x');
  t.equal(second.progs.records[2].name, 'new');
  // Program 1 unloaded: the others are found by id although their places moved.
  const third = parse(parser, Buffer.concat([progBytes({ id: 2, runs: 4n, name: 'b', attach: 'x' }), progBytes({ id: 5, name: 'new' })]));
  t.equal(third.progs.records[0], second.progs.records[1]);
  t.equal(third.progs.records[1], second.progs.records[2]);
  t.end();
});

t.test('bytes read into the buffer of the last parse are decoded, not compared with themselves', (t) => {
  const parser = new RecordParser();
  const a = Buffer.alloc(4096);
  const b = Buffer.alloc(4096);
  const put = (into: Buffer, p: Prog) => into.subarray(0, progBytes(p).copy(into));
  parse(parser, put(a, { id: 1, name: 'old_name' }));
  // A scrape failed between its reads and its parse: the next read is in `a` again.
  const again = parse(parser, put(a, { id: 1, name: 'new_name' }));
  t.equal(again.progs.records[0].name, 'new_name');
  parse(parser, put(b, { id: 1, name: 'in_b' }));
  t.equal(parse(parser, put(a, { id: 1, name: 'back_in_a' })).progs.records[0].name, 'back_in_a');
  t.end();
});

t.test('a tail shorter than its record is counted as malformed, the records before it kept', (t) => {
  const whole = progBytes({ id: 1, name: 'whole' });
  const cut = progBytes({ id: 2, name: 'cut_short' });
  const r = parse(new RecordParser(), Buffer.concat([whole, cut.subarray(0, cut.length - 3)]), mapBytes(3, 'm').subarray(0, 10), 'l\t1\t2\n');
  t.same(
    r.progs.records.map((p) => p.id),
    [1],
  );
  t.same(r.maps.records, []);
  t.equal(r.malformed, 3, 'the cut program, the cut map and the short link line');
  t.end();
});
