// The test-side parser of the two file formats, on texts written by hand.
import t from 'tap';
import { ListingError, parseMaps, parseProgs } from './lib/listing.js';

t.test('progs.debug rows, empty columns and long names', async (t) => {
  const text =
    '  id name             attached\n' +
    '   4 dump_bpf_prog     \n' +
    '  17 selftest_tp_btf_task_newtask task_newtask \n' +
    '12345 fentry_tracer    bpf_prog1 target_prog\n';
  const rows = parseProgs(text);
  t.same(
    rows.map((r) => [r.id, r.name, r.attachFunc, r.attachProg]),
    [
      [4, 'dump_bpf_prog', '', ''],
      [17, 'selftest_tp_btf_task_newtask', 'task_newtask', ''],
      [12345, 'fentry_tracer', 'bpf_prog1', 'target_prog'],
    ],
  );
  t.throws(() => parseProgs('bogus\n'), ListingError);
});

t.test('maps.debug in both formats', async (t) => {
  const withCount = parseMaps('  id name             max_entries  cur_entries\n' + '   7 selftest_hash             16            5\n');
  t.equal(withCount.withCount, true);
  t.same(
    withCount.rows.map((r) => [r.id, r.name, r.maxEntries, r.curEntries]),
    [[7, 'selftest_hash', 16, 5]],
  );
  const compat = parseMaps('  id name             max_entries\n' + '   7 selftest_hash       16\n');
  t.equal(compat.withCount, false);
  t.same(
    compat.rows.map((r) => [r.id, r.name, r.maxEntries, r.curEntries]),
    [[7, 'selftest_hash', 16, undefined]],
  );
  t.throws(() => parseMaps('  id name\n'), ListingError);
});
