// The exporter writes its numbers as digits straight into the response
// (src/exporter/body.ts): every value Prometheus reads passes through here,
// so the digits must be exact where the kernel's counters are exact, at
// every boundary where the representation changes.
import t from 'tap';
import { Body, BodyPool } from '../src/exporter/body.js';

const written = (write: (b: Body) => void, capacity = 16): string => {
  const b = new Body(capacity);
  write(b);
  return b.bytes.toString('latin1');
};

t.test('integers up to 2^53, exactly, as decimal', (t) => {
  for (const n of [0, 1, 9, 10, 99, 100, 4095, 4096, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 1e15, 1e15 - 1, 2 ** 53 - 1, 2 ** 53]) {
    t.equal(
      written((b) => b.uint(n)),
      BigInt(n).toString(),
      `${n}`,
    );
  }
  t.end();
});

t.test('u64 counters past 2^53 and up to 2^64-1, exactly', (t) => {
  for (const v of [2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n])
    t.equal(
      written((b) => b.int(v)),
      v.toString(),
      `${v}`,
    );
  t.equal(
    written((b) => b.int(12345)),
    '12345',
  );
  t.end();
});

t.test("signed values (a map's element count, as maps.debug prints it): negative ones too", (t) => {
  const cases: [number | bigint, string][] = [
    [0, '0'],
    [42, '42'],
    [-1, '-1'],
    [-(2 ** 53), '-9007199254740992'],
    [-(2n ** 63n), '-9223372036854775808'],
    [2n ** 63n - 1n, '9223372036854775807'],
  ];
  for (const [v, text] of cases)
    t.equal(
      written((b) => b.int(v)),
      text,
      `${v}`,
    );
  t.end();
});

t.test('nanoseconds as seconds: exact decimals, no exponent, no trailing zeros', (t) => {
  const cases: [number | bigint, string][] = [
    [0, '0'],
    [1, '0.000000001'],
    [150, '0.00000015'],
    [1500, '0.0000015'],
    [999_999_999, '0.999999999'],
    [1_000_000_000, '1'],
    [1_500_000_000, '1.5'],
    [123_456_789_012, '123.456789012'],
    // Just below a whole second past 2^23 s, where ns / 1e9 rounds up as a double.
    [2 ** 23 * 1e9 + 1e9 - 1, '8388608.999999999'],
    [2 ** 53 - 1, '9007199.254740991'],
    [2n ** 64n - 1n, '18446744073.709551615'],
    [10n ** 19n, '10000000000'],
  ];
  for (const [ns, text] of cases) {
    t.equal(
      written((b) => b.seconds(ns)),
      text,
      `${ns} ns`,
    );
    t.equal(Number(text), Number(ns) / 1e9, `${text} parses as ${ns} ns`);
  }
  t.end();
});

t.test('a body grows past its capacity and keeps what it had', (t) => {
  const text = written((b) => {
    for (let i = 0; i < 1000; i++) {
      b.latin1('line ');
      b.uint(i);
      b.newline();
    }
    b.raw(Buffer.alloc(100, 0x61));
    b.utf8('é\n');
  }, 1);
  const expected = `${Array.from({ length: 1000 }, (_, i) => `line ${i}\n`).join('')}${'a'.repeat(100)}é\n`;
  t.equal(Buffer.from(text, 'latin1').toString('utf8'), expected);
  t.end();
});

t.test('the pool hands a returned body out again, emptied', (t) => {
  const pool = new BodyPool();
  const first = pool.take();
  first.latin1('scrape one');
  pool.give(first);
  const again = pool.take();
  t.equal(again, first, 'the same body');
  t.equal(again.bytes.length, 0, 'empty');
  const other = pool.take();
  t.not(other, first, 'a body still out is never handed out twice');
  t.ok(other.capacity >= 'scrape one'.length, "a new body starts at least as large as the last one's size");
  t.end();
});
