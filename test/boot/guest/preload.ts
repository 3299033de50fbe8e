// The checks of the guests whose kernel has its own BPF preload built in
// (the harness's *-preload kernels, built by test/boot/lib/kbuild.mjs): our
// files against the kernel's own, byte for byte, and the package living
// beside the kernel's files without ever harming them.
import { existsSync, mkdirSync, readdirSync, rmdirSync } from 'node:fs';
import { DEFAULT_BPFFS as BPFFS } from '../../../src/preload/transaction/bpffs.js';
import { FALLBACK_SUBDIR, FILE_NAMES, OBJECT_NAME } from '../../../src/preload/names.js';
import { UNIT_NAME as UNIT } from '../../../src/cli/unit.js';
import { bpftoolMaps, bpftoolProgs } from '../../lib/bpftool.js';
import { parseMaps, parseProgs } from '../../lib/listing.js';
import { run } from '../../../harness/command.mjs';
import { attempt, cat, check, info, settings, sleep, startReader } from './report.js';

/** What the fixture loaded (check.ts attachFentry): the rows every read must have. */
export interface FixtureIds {
  fentryId: number;
  targetId: number;
  hashId: number;
  longMapId: number;
  longProgId: number;
}

/** The kernel's preload object is "iterators"; its programs are these (kernel/bpf/preload/iterators). */
const KERNEL_ITERATOR_PROGS = ['dump_bpf_map', 'dump_bpf_prog'];
/** Ours: the same, or the map program without cur_entries on kernels before 6.6. */
const OUR_ITERATOR_PROGS = [...KERNEL_ITERATOR_PROGS, 'dump_bpf_map_compat'];
/**
 * The light skeleton's loader program and map: freed by the kernel a moment
 * after a load, so a read right after one may still list them.
 */
const LOADER_LEFTOVER = /^__loader\./;
/** Our object's maps: libbpf names them after OBJECT_NAME's first 8 characters ("bpf_prel.rodata"). */
const OUR_MAP_PREFIX = `${OBJECT_NAME.slice(0, 8)}.`;

/** Where the check mounts bpffs instances of its own. */
const SECOND = '/run/bpf-preload-boottest-second';
const THIRD = '/run/bpf-preload-boottest-third';
const OURS = `${SECOND}/ours`;

interface FileStatus {
  name: string;
  path: string;
  state: string;
  linkId: number | null;
  progId: number | null;
  kernelPreload: boolean;
}

function cli(args: string[], loader?: string) {
  return run(settings.cli, args, { env: loader ? { ...process.env, BPF_PRELOAD_LOADER: loader } : process.env });
}

function statusFiles(dir: string): FileStatus[] {
  const r = cli(['status', '--bpffs', dir, '--json']);
  if (r.code !== 0) throw new Error(`bpf-preload status --bpffs ${dir} --json: exit ${r.code} ${r.stderr.trim()}`);
  return (JSON.parse(r.stdout) as { files: FileStatus[] }).files;
}

/** The kernel's link and program ids at `dir`'s root, or why they are not the kernel's working files. */
function kernelFiles(dir: string): { links: number[]; progs: number[]; why: string } {
  const files = statusFiles(dir).filter((f) => f.path === `${dir}/${f.name}`);
  const notKernel = files.filter((f) => f.state !== 'foreign' || !f.kernelPreload);
  return {
    links: files.map((f) => f.linkId ?? -1),
    progs: files.map((f) => f.progId ?? -1),
    why: notKernel.length || files.length !== FILE_NAMES.length ? `status --json: ${JSON.stringify(files)}` : '',
  };
}

const mkdirFresh = (dir: string) => {
  mkdirSync(dir, { recursive: true });
  return dir;
};
function mountBpffs(dir: string): void {
  const r = run('mount', ['-t', 'bpf', 'bpf', mkdirFresh(dir)]);
  if (r.code !== 0) throw new Error(`mount -t bpf bpf ${dir}: ${r.stderr.trim()}`);
}
function unmount(dir: string): void {
  if (!existsSync(dir)) return;
  run('umount', [dir]);
  rmdirSync(dir);
}

/** The id of each row of an iterator file's text: its first column. */
interface Row {
  id: number;
  name: string;
  raw: string;
}
function rowsOf(which: 'progs' | 'maps', text: string): { header: string; rows: Row[] } {
  const rows = which === 'progs' ? parseProgs(text) : parseMaps(text).rows;
  return { header: text.slice(0, text.indexOf('\n')), rows };
}

/**
 * Compares three reads of one file, row by row: the header and every row of
 * an id all three have must be byte-identical and in the same order. Rows
 * only one read has must be that side's own iterator programs and maps
 * (`show` loads its own; ours are pinned before the first read, the kernel's
 * are always loaded): those are listed by id.
 */
function compareReads(which: 'progs' | 'maps', label: string, reads: Record<'kernel' | 'show' | 'ours', string>, fx: FixtureIds | null): void {
  const name = `${label}${which}.debug-byte-for-byte`;
  const parsed = Object.fromEntries(Object.entries(reads).map(([k, v]) => [k, rowsOf(which, v)])) as Record<keyof typeof reads, ReturnType<typeof rowsOf>>;
  const sides = Object.keys(parsed) as (keyof typeof reads)[];
  const problems: string[] = [];
  const headers = new Set(sides.map((s) => parsed[s].header));
  if (headers.size !== 1) problems.push(`headers differ: ${sides.map((s) => `${s} ${JSON.stringify(parsed[s].header)}`).join(', ')}`);
  const ids = sides.map((s) => new Set(parsed[s].rows.map((r) => r.id)));
  const common = (r: Row) => ids.every((set) => set.has(r.id));
  const shared = sides.map((s) => parsed[s].rows.filter(common).map((r) => r.raw));
  for (let i = 1; i < sides.length; i++) {
    const a = shared[0];
    const b = shared[i];
    const at = a.findIndex((line, n) => line !== b[n]);
    if (a.length !== b.length || at >= 0)
      problems.push(`${sides[0]} and ${sides[i]} differ at common row ${at}: ${JSON.stringify(a[at])} vs ${JSON.stringify(b[at])}`);
  }
  const own: string[] = [];
  for (const side of sides) {
    const extra = parsed[side].rows.filter((r) => !common(r));
    if (extra.length) own.push(`${side}: ${extra.map((r) => `${r.id} ${r.name}`).join(', ')}`);
    // Only `show` loads anything between the reads: its own iterators.
    const showOwn = (r: Row) => side === 'show' && (which === 'progs' ? OUR_ITERATOR_PROGS.includes(r.name) : r.name.startsWith(OUR_MAP_PREFIX));
    const allowed = (r: Row) => showOwn(r) || LOADER_LEFTOVER.test(r.name);
    const stray = extra.filter((r) => !allowed(r));
    if (stray.length) problems.push(`rows only ${side}'s read has that are not its own iterators: ${stray.map((r) => r.raw.trim()).join(' | ')}`);
  }
  if (fx) {
    const want = which === 'progs' ? [fx.fentryId, fx.targetId, fx.longProgId] : [fx.hashId, fx.longMapId];
    const missing = want.filter((id) => !parsed.kernel.rows.some((r) => r.id === id && common(r)));
    if (missing.length) problems.push(`fixture rows missing from the common rows: ids ${missing.join(' ')}`);
  }
  info(`${name}: ${shared[0].length} rows identical in the kernel's file, show ${which} and our pinned file; own rows: ${own.join('; ') || 'none'}`);
  check(name, problems.length === 0, problems.join('; '));
}

/** The unit at boot found the kernel's files and left them alone, saying so in one line. */
function atBoot(): { links: number[]; progs: number[] } {
  const k = kernelFiles(BPFFS);
  check('kernel-files-at-boot', k.why === '', k.why);
  const status = run('systemctl', ['show', '-P', 'ExecMainStatus', UNIT]).stdout.trim();
  // What the unit's processes wrote (systemd's own lines carry UNIT=, not _SYSTEMD_UNIT=).
  const said = run('journalctl', ['-b', '--no-pager', '-o', 'cat', `_SYSTEMD_UNIT=${UNIT}`])
    .stdout.trim()
    .split('\n')
    .filter(Boolean);
  const line = `the kernel's own maps.debug and progs.debug (its BPF preload) are in ${BPFFS}: left alone; run with --replace to replace them`;
  check('unit-leaves-kernel-files', status === '0' && said.length === 1 && said[0] === line, `exit status ${status}; the unit said: ${JSON.stringify(said)}`);
  const entries = readdirSync(BPFFS).sort();
  check('nothing-pinned-beside-kernel-files', JSON.stringify(entries) === JSON.stringify([...FILE_NAMES].sort()), `${BPFFS} holds ${entries.join(' ')}`);
  // Loaded iterator programs: the kernel's two, and no map of our object.
  // bpftool shows the kernel's 15-character names: dump_bpf_map_co for the compat program.
  const iterators = bpftoolProgs()
    .filter((p) => OUR_ITERATOR_PROGS.some((n) => p.name === n || (p.name?.length === 15 && n.startsWith(p.name))))
    .map((p) => p.id)
    .sort();
  const ourMaps = bpftoolMaps()
    .filter((m) => (m.name ?? '').startsWith(OUR_MAP_PREFIX))
    .map((m) => `${m.id} ${m.name}`);
  check(
    'nothing-left-loaded',
    JSON.stringify(iterators) === JSON.stringify([...k.progs].sort()) && ourMaps.length === 0,
    `iterator programs ${iterators.join(' ')} (the kernel's: ${k.progs.join(' ')}); our maps: ${ourMaps.join(' ') || 'none'}`,
  );
  const human = cli(['status']).stdout;
  const described = FILE_NAMES.every((n, i) => human.includes(`${BPFFS}/${n}: the kernel's own preload (link ${k.links[i]}, program ${k.progs[i]} `));
  check('status-names-kernel-preload', described, JSON.stringify(human));
  return k;
}

/** Our files pinned into a second bpffs, `show`, and the kernel's own files, read back to back. */
function byteForByte(loader: string, fx: FixtureIds | null): void {
  const label = `${loader}:`;
  const pinned = cli(['populate', '--bpffs', OURS], loader);
  if (
    !check(
      `${label}pin-into-second-bpffs`,
      pinned.code === 0 && /^pinned /m.test(pinned.stdout),
      `BPF_PRELOAD_LOADER=${loader} populate --bpffs ${OURS}: exit ${pinned.code} ${pinned.stdout} ${pinned.stderr}`,
    )
  )
    return;
  try {
    for (const which of ['progs', 'maps'] as const) {
      attempt(`${label}${which}.debug-byte-for-byte`, () => {
        const kernel = cat(`${BPFFS}/${which}.debug`);
        const show = cli(['show', which], loader);
        const ours = cat(`${OURS}/${which}.debug`);
        const failed = [
          kernel.ok ? '' : `kernel's: ${kernel.why}`,
          show.code === 0 ? '' : `show: exit ${show.code} ${show.stderr}`,
          ours.ok ? '' : `ours: ${ours.why}`,
        ].filter(Boolean);
        if (failed.length) throw new Error(failed.join('; '));
        compareReads(which, label, { kernel: kernel.text, show: show.stdout, ours: ours.text }, fx);
      });
    }
  } finally {
    const u = cli(['unpin', '--bpffs', OURS]);
    check(
      `${label}unpin-second-bpffs`,
      u.code === 0 && readdirSync(OURS).length === 0,
      `unpin --bpffs ${OURS}: exit ${u.code} ${u.stderr}; left ${readdirSync(OURS).join(' ')}`,
    );
  }
}

/** Every run that must not touch the kernel's files, then the check that it did not. */
function leftAlone(name: string, args: string[], dirs: string[], before: Map<string, number[]>): void {
  const r = args[0] === 'systemctl' ? run('systemctl', args.slice(1)) : cli(args);
  const changed = dirs.flatMap((d) => {
    const k = kernelFiles(d);
    const fallback = existsSync(`${d}/${FALLBACK_SUBDIR}`) ? [`${d}/${FALLBACK_SUBDIR} exists`] : [];
    return [
      ...(k.why
        ? [k.why]
        : JSON.stringify(k.links) !== JSON.stringify(before.get(d))
          ? [`${d}: links ${before.get(d)?.join(',')} -> ${k.links.join(',')}`]
          : []),
      ...fallback,
    ];
  });
  check(name, r.code === 0 && changed.length === 0, `${args.join(' ')}: exit ${r.code} ${r.stderr.trim()}; ${changed.join('; ')}`);
}

/** `populate --replace` swaps the kernel's files for ours while a reader loops over them. */
async function replaceWhileReading(): Promise<void> {
  const reader = startReader('/run/bpf-preload-boottest-reader');
  for (let i = 0; i < 200 && !reader.started(); i++) await sleep(50);
  const r = cli(['populate', '--replace']);
  await sleep(500);
  const reads = await reader.stop();
  const states = statusFiles(BPFFS).map((f) => f.state);
  check(
    'replace-kernel-files',
    r.code === 0 && (r.stdout.match(/replaced a foreign link \d+/g) ?? []).length === 2 && states.join() === 'ours,ours',
    `populate --replace: exit ${r.code} ${r.stdout.trim()} ${r.stderr.trim()}; states now ${states.join(' ')}`,
  );
  info(`replace: ${reads.good} good reads, ${reads.bad} failed`);
  check(
    'replace-files-readable-throughout',
    reads.bad === 0 && reads.good >= 4,
    `${reads.good} good reads, ${reads.bad} failed: ${reads.errors.split('\n').slice(0, 5).join(' | ')}`,
  );
}

/**
 * After `populate --replace`, `unpin` removes ours and leaves the root as
 * removing the kernel's files would: without progs.debug and maps.debug.
 * The kernel keeps its iterators loaded, and every bpffs mounted from then on
 * gets them at its root as before.
 */
function unpinAfterReplace(kernelProgs: number[]): void {
  const u = cli(['unpin']);
  const left = readdirSync(BPFFS);
  check('unpin-after-replace', u.code === 0 && left.length === 0, `unpin: exit ${u.code} ${u.stderr.trim()}; ${BPFFS} holds ${left.join(' ')}`);
  const loaded = new Set(bpftoolProgs().map((p) => p.id));
  mountBpffs(THIRD);
  try {
    const k = kernelFiles(THIRD);
    const reads = FILE_NAMES.map((n) => cat(`${THIRD}/${n}`));
    check(
      'fresh-mount-after-unpin-has-kernel-files',
      kernelProgs.every((id) => loaded.has(id)) && k.why === '' && JSON.stringify(k.progs) === JSON.stringify(kernelProgs) && reads.every((r) => r.ok),
      `kernel's programs ${kernelProgs.join(' ')} loaded: ${kernelProgs.map((id) => loaded.has(id)).join(',')}; ${k.why}; programs ${k.progs.join(',')}; reads ${reads.map((r) => r.why).join(',')}`,
    );
  } finally {
    unmount(THIRD);
  }
}

export async function kernelPreloadChecks(loaders: string[], fx: FixtureIds | null): Promise<void> {
  const boot = atBoot();
  mountBpffs(SECOND);
  try {
    const second = kernelFiles(SECOND);
    const same = FILE_NAMES.every((n) => cat(`${SECOND}/${n}`).text === cat(`${BPFFS}/${n}`).text);
    check(
      'second-bpffs-gets-kernel-files',
      second.why === '' && JSON.stringify(second.progs) === JSON.stringify(boot.progs) && same,
      `${second.why}; programs ${second.progs.join(',')} (at ${BPFFS}: ${boot.progs.join(',')}); same text: ${same}`,
    );
    mkdirFresh(OURS);
    for (const loader of loaders) byteForByte(loader, fx);
    rmdirSync(OURS);

    const before = new Map([BPFFS, SECOND].map((d) => [d, kernelFiles(d).links]));
    const dirs = [BPFFS, SECOND];
    leftAlone('populate-all-leaves-kernel-files', ['--all'], dirs, before);
    leftAlone('unpin-all-leaves-kernel-files', ['unpin', '--all'], dirs, before);
    leftAlone('unpin-leaves-kernel-files', ['unpin'], dirs, before);
    leftAlone('unit-stop-leaves-kernel-files', ['systemctl', 'stop', UNIT], dirs, before);
    leftAlone('unit-start-leaves-kernel-files', ['systemctl', 'start', UNIT], dirs, before);
  } finally {
    unmount(SECOND);
  }
  await replaceWhileReading();
  unpinAfterReplace(boot.progs);
}
