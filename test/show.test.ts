// `bpf-preload show progs|maps`: the listing without pinning, byte for byte
// what the pinned file prints at the same moment.
import t from 'tap';
import { join } from 'node:path';
import { show, LISTINGS } from '../src/preload/show.js';
import { MAPS_HEADER_COMPAT, MAPS_HEADER_WITH_COUNT, PROGS_HEADER } from '../src/preload/names.js';
import { privateBpffs } from './lib/bpffs.js';
import { catFile, runCli } from './lib/cli.js';
import { readAgreeing } from './lib/kernel.js';

t.test('show prints what the pinned file prints at the same moment', async (t) => {
  const { dir } = privateBpffs(t);
  const r = runCli(['--bpffs', dir]);
  t.equal(r.code, 0, r.stderr);
  for (const which of LISTINGS) {
    // Read the pinned file while show's own programs are loaded, just before
    // show reads. Anything else loading or freeing BPF objects in between
    // (the light loader's map is freed a moment after a run) changes both:
    // then try again; the comparison itself is exact.
    const { result, attempts } = await readAgreeing(
      () => {
        let pinned = '';
        const shown = show(which, { whileLoaded: () => (pinned = catFile(join(dir, `${which}.debug`))) }).toString();
        return { shown, pinned };
      },
      (r) => r.shown === r.pinned,
    );
    const { shown, pinned } = result;
    if (attempts > 1) t.comment(`${which}: the kernel's objects changed, ${attempts} attempts`);
    t.equal(shown, pinned, `show ${which} is byte-identical to ${which}.debug`);
  }
});

t.test('the CLI prints the listing and exits', async (t) => {
  const progs = runCli(['show', 'progs']);
  t.equal(progs.code, 0, progs.stderr);
  t.ok(progs.stdout.startsWith(PROGS_HEADER), 'progs header');
  t.match(progs.stdout, /^ *\d+ dump_bpf_prog +bpf_iter_bpf_prog $/m, 'lists its own program, attached as an iterator');
  t.equal(progs.stderr, '');
  const maps = runCli(['show', 'maps']);
  t.equal(maps.code, 0, maps.stderr);
  t.ok(
    [MAPS_HEADER_WITH_COUNT, MAPS_HEADER_COMPAT].some((h) => maps.stdout.startsWith(h)),
    'maps header',
  );
  t.match(maps.stdout, /^ *\d+ bpf_prel\.rodata /m, 'lists its own .rodata map');
  const bad = runCli(['show', 'links']);
  t.equal(bad.code, 2);
  t.equal(bad.stderr, "bpf-preload: show takes progs or maps, not 'links' (see --help)\n");
});
