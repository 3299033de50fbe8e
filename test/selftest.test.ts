// The selftest against bpftool: with fixture programs and maps of our own
// loaded (long names, hash / LRU hash / per-CPU array maps with known element
// counts, a tp_btf program), everything the kernel has must appear exactly
// once in our files, with the names, sizes and counts bpftool reports.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { kernelHasFunction, mapUpdate } from '../src/libbpf/index.js';
import { ELEM_COUNT_KFUNC } from '../src/preload/iterators.js';
import { privateBpffs } from './lib/bpffs.js';
import { catFile, runCli } from './lib/cli.js';
import { loadFixture } from './lib/fixtures.js';
import { bpftoolMaps, bpftoolProgs, idProblems, mapRowProblems, progNameProblems } from './lib/bpftool.js';
import { parseMaps, parseProgs } from './lib/listing.js';

const HASH_TYPES = new Set(['hash', 'lru_hash', 'percpu_hash', 'lru_percpu_hash']);

function elementCount(id: number): number {
  const r = spawnSync('bpftool', ['--json', 'map', 'dump', 'id', String(id)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`bpftool map dump id ${id}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as unknown[]).length;
}

t.test('progs.debug and maps.debug agree with bpftool', async (t) => {
  const { obj, links } = loadFixture(t, 'selftest', (prog) => prog.sectionName.startsWith('tp_btf/'));
  t.ok(links.length > 0, 'a tp_btf program is attached');

  // Known element counts in every hash-type fixture map.
  const filled = new Map<string, number>();
  let n = 3;
  for (const map of obj.maps.values()) {
    if (map.name.includes('.')) continue;
    if (map.keySize !== 4) continue;
    const count = Math.min(n++, map.maxEntries);
    for (let k = 0; k < count; k++) {
      const key = Buffer.alloc(4);
      key.writeUInt32LE(k);
      // Per-CPU maps take one value per possible CPU.
      mapUpdate(map.fd, key, Buffer.alloc(map.valueSize * 1024));
    }
    filled.set(map.name, count);
  }

  const { dir } = privateBpffs(t);
  const r = runCli(['--bpffs', dir]);
  t.equal(r.code, 0, r.stderr);

  const withCount = kernelHasFunction(ELEM_COUNT_KFUNC);
  // Snapshots before and after reading, so another process loading or
  // unloading at the same time cannot make the comparison flaky: what lived
  // throughout must be listed, and nothing may be listed that never lived.
  const progsBefore = bpftoolProgs();
  const mapsBefore = bpftoolMaps();
  const progsText = catFile(join(dir, 'progs.debug'));
  const mapsText = catFile(join(dir, 'maps.debug'));
  const progsAfter = bpftoolProgs();
  const mapsAfter = bpftoolMaps();

  const progs = parseProgs(progsText);
  const ids = progs.map((p) => p.id);
  t.same(
    ids,
    [...ids].sort((a, b) => a - b),
    'programs in ascending id order',
  );
  t.same(idProblems('program', ids, progsBefore, progsAfter), [], 'every live program listed once, nothing bpftool does not know');
  t.same(progNameProblems(progs, [...progsBefore, ...progsAfter]), [], 'program names as bpftool shows them');
  const names = progs.map((p) => p.name);
  t.ok(
    names.some((n) => n.length > 16),
    'full BTF names longer than 16 characters are printed',
  );
  const tp = progs.filter((p) => p.attachFunc !== '');
  t.ok(tp.length > 0, 'a tp_btf program shows its attach function');

  const maps = parseMaps(mapsText);
  t.equal(maps.withCount, withCount, `maps.debug ${withCount ? 'has' : 'has no'} cur_entries on this kernel`);
  t.same(
    idProblems(
      'map',
      maps.rows.map((m) => m.id),
      mapsBefore,
      mapsAfter,
    ),
    [],
    'every live map listed once, nothing bpftool does not know',
  );
  t.same(mapRowProblems(maps.rows, [...mapsBefore, ...mapsAfter]), [], 'map names and max_entries as bpftool shows them');
  const kmaps = new Map([...mapsBefore, ...mapsAfter].map((m) => [m.id, m]));
  if (withCount) {
    for (const row of maps.rows) {
      const m = kmaps.get(row.id);
      if (!m || !HASH_TYPES.has(m.type) || !mapsAfter.some((a) => a.id === row.id)) continue;
      t.equal(row.curEntries, elementCount(row.id), `map ${row.id} ${row.name} (${m.type}): cur_entries is bpftool's element count`);
    }
  }
  for (const [name, count] of filled) {
    const row = maps.rows.find((m) => m.name === name.slice(0, 15));
    t.ok(row, `fixture map ${name} listed`);
    const type = kmaps.get(row?.id ?? -1)?.type ?? '';
    if (withCount && HASH_TYPES.has(type)) t.equal(row?.curEntries, count, `${name}: ${count} elements`);
  }
});
