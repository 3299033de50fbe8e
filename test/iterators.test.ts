// Both map formats on this kernel: the runner picks one by the kfunc, so the
// other is exercised here by loading it directly (the boot test runs each on
// the kernels it belongs to).
import t from 'tap';
import { join } from 'node:path';
import { IteratorsSkeleton } from '../skel/iterators.skel.js';
import { kernelHasFunction } from '../src/libbpf/index.js';
import { ELEM_COUNT_KFUNC } from '../src/preload/iterators.js';
import { OBJECT_NAME } from '../src/preload/names.js';
import { privateBpffs } from './lib/bpffs.js';
import { catFile } from './lib/cli.js';
import { bpftoolMaps } from './lib/kernel.js';
import { MAPS_HEADER_COMPAT, MAPS_HEADER_WITH_COUNT, parseMaps } from './lib/listing.js';

const hasKfunc = kernelHasFunction(ELEM_COUNT_KFUNC);

for (const compat of [true, false]) {
  const prog = compat ? 'dump_bpf_map_compat' : 'dump_bpf_map';
  const skip = !compat && !hasKfunc ? `this kernel has no ${ELEM_COUNT_KFUNC} kfunc (before 6.6)` : false;
  t.test(`${prog} prints the ${compat ? 'pre-6.6' : '6.6+'} maps.debug format`, { skip }, async (t) => {
    const { dir } = privateBpffs(t);
    const skel = IteratorsSkeleton.open({ name: OBJECT_NAME });
    t.teardown(() => skel.destroy());
    skel.progs.dump_bpf_map.autoload = !compat;
    skel.progs.dump_bpf_map_compat.autoload = compat;
    skel.progs.dump_bpf_prog.autoload = false;
    const loaded = skel.load();
    loaded.attach();
    const link = loaded.links[prog];
    const path = join(dir, 'maps');
    link.pin(path);
    const text = catFile(path);
    t.ok(text.startsWith(`${compat ? MAPS_HEADER_COMPAT : MAPS_HEADER_WITH_COUNT}\n`), 'header');
    const rows = parseMaps(text).rows;
    t.equal(parseMaps(text).withCount, !compat);
    const known = new Map(bpftoolMaps().map((m) => [m.id, m]));
    const own = rows.find((r) => r.name === 'bpf_prel.rodata' && known.has(r.id));
    t.ok(own, 'lists our own .rodata map');
    for (const r of rows.filter((r) => known.has(r.id))) {
      t.equal(r.name, known.get(r.id)!.name ?? '', `map ${r.id} name`);
      t.equal(r.maxEntries, known.get(r.id)!.max_entries, `map ${r.id} max_entries`);
    }
    if (compat) t.match(text.split('\n')[1], /^ {0,3}\d+ \S.{0,15} *\d+$/, 'row: "%4u %-16s%6d"');
  });
}
