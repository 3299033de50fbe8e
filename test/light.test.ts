// The two loaders of the runner: the light skeleton (a loader program that
// does CO-RE in the kernel) and libbpf. Both must pin the same files, in the
// same formats, recognised as ours; a loader failure is one line.
import t from 'tap';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { IteratorsSkeleton } from '../skel/iterators.skel.js';
import { LightObject, SysError, decodeSection, linkInfo, mapFdById, mapInfo, mapLookup, objGet, progFdById, progInfo, withFd } from '../src/libbpf/index.js';
import { IteratorsLayouts, type IteratorsRodata } from '../skel/iterators.globals.js';
import { FILE_NAMES, MARKER } from '../src/preload/names.js';
import { privateBpffs } from './lib/bpffs.js';
import { catFile, runCli } from './lib/cli.js';

const LOADERS = ['light', 'libbpf'] as const;

/** What the kernel says about the program and maps behind a pinned link, ids left out. */
function describePin(path: string) {
  return withFd(objGet(path), (fd) => {
    const prog = withFd(progFdById(linkInfo(fd).progId), progInfo);
    const maps = prog.mapIds.map((id) => withFd(mapFdById(id), mapInfo)).map(({ id: _, ...rest }) => rest);
    return { type: prog.type, name: prog.name, maps };
  });
}

/** A row of one of our own programs or maps, with the id cut off. */
const ownRows = (text: string, names: RegExp, ids?: Set<number>) =>
  text
    .split('\n')
    .filter((l) => names.test(l) && (!ids || ids.has(Number(l.trim().split(' ')[0]))))
    .map((l) => l.replace(/^ *\d+ /, ''));

/**
 * The ids of the programs behind the pins in `dirs` and of their maps: the
 * rows to compare. Programs other tests loaded, or are still freeing, may
 * come and go between two reads.
 */
function pinnedIds(dirs: string[]) {
  const progs = new Set<number>();
  const maps = new Set<number>();
  for (const dir of dirs) {
    for (const f of FILE_NAMES) {
      const prog = withFd(objGet(join(dir, f)), (fd) => withFd(progFdById(linkInfo(fd).progId), progInfo));
      progs.add(prog.id);
      for (const id of prog.mapIds) maps.add(id);
    }
  }
  return { progs, maps };
}

function openFds(): number {
  const link = (fd: string) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return ''; // the fd readdir itself used
    }
  };
  return readdirSync('/proc/self/fd').filter((fd) => link(fd).startsWith('anon_inode:bpf')).length;
}

t.test('light and libbpf loaders pin the same iterators, both recognised as ours', async (t) => {
  const seen: Record<string, { maps: string; progs: string; pins: unknown[] }> = {};
  const dirs: Record<string, string> = {};
  for (const loader of LOADERS) {
    const { dir } = privateBpffs(t);
    dirs[loader] = dir;
    const r = runCli(['--bpffs', dir], { BPF_PRELOAD_LOADER: loader, BPF_PRELOAD_TIMING: '1' });
    t.equal(r.code, 0, `${loader}: exit 0 ${r.code ? r.stderr : ''}`);
    // Only libbpf opens (parses) the object in user space.
    t.equal(/^timing: open /m.test(r.stderr), loader === 'libbpf', `${loader}: the loader asked for ran`);
    t.match(r.stderr, /^timing: load /m, `${loader}: a load phase`);
    const status = runCli(['status', '--bpffs', dir]);
    t.equal(status.code, 0, status.stderr);
    t.match(status.stdout, /maps\.debug: ours /, `${loader}: maps.debug is ours`);
    t.match(status.stdout, /progs\.debug: ours /, `${loader}: progs.debug is ours`);
  }
  // Read once both pairs are loaded: each file then lists both.
  for (const loader of LOADERS) {
    const dir = dirs[loader];
    seen[loader] = {
      maps: catFile(join(dir, 'maps.debug')),
      progs: catFile(join(dir, 'progs.debug')),
      pins: ['maps.debug', 'progs.debug'].map((f) => describePin(join(dir, f))),
    };
  }
  const { light, libbpf } = seen;
  t.equal(light.maps.split('\n')[0], libbpf.maps.split('\n')[0], 'same maps.debug header');
  t.equal(light.progs.split('\n')[0], libbpf.progs.split('\n')[0], 'same progs.debug header');
  const ours = /^ *\d+ (dump_bpf_\w+|bpf_prel\.rodata) /;
  const ids = pinnedIds(Object.values(dirs));
  t.same(ownRows(light.maps, ours, ids.maps), ownRows(libbpf.maps, ours, ids.maps), 'same rows for our maps');
  t.same(ownRows(light.progs, ours, ids.progs), ownRows(libbpf.progs, ours, ids.progs), 'same rows for our programs');
  t.equal(ownRows(light.progs, ours, ids.progs).length, 4, 'both pairs listed');
  t.ok(ownRows(light.maps, /bpf_prel\.rodata/).length >= 2, 'maps.debug lists the .rodata maps of both');
  t.same(light.pins, libbpf.pins, 'programs and maps behind the links alike (type, names, map shapes, flags)');
});

t.test('by default this kernel gets the light skeleton', async (t) => {
  const { dir } = privateBpffs(t);
  const r = runCli(['--bpffs', dir], { BPF_PRELOAD_LOADER: undefined, BPF_PRELOAD_TIMING: '1' });
  t.equal(r.code, 0, r.code ? r.stderr : 'exit 0');
  t.notMatch(r.stderr, /^timing: (open|light) /m, 'no libbpf open, no light failure');
  t.match(catFile(join(dir, 'maps.debug')), /^ *\d+ bpf_prel\.rodata /m);
});

t.test('the light loader leaves the .rodata map with the marker', async (t) => {
  const before = openFds();
  const obj = LightObject.load(IteratorsSkeleton.light, 'compat');
  try {
    const info = withFd(progFdById(progInfo(obj.progFd('dump_bpf_prog')).id), progInfo);
    const names = info.mapIds.map((id) => withFd(mapFdById(id), mapInfo).name);
    t.same(names, ['bpf_prel.rodata'], 'the program uses the .rodata map, named as libbpf names it');
    const value = withFd(mapFdById(info.mapIds[0]), (fd) => mapLookup(fd, Buffer.alloc(4), mapInfo(fd).valueSize));
    t.ok(value, 'the .rodata map has its value');
    t.equal(decodeSection<IteratorsRodata>(IteratorsLayouts.rodata, value!).bpf_preload_marker, MARKER, 'its bpf_preload_marker holds the marker');
    t.throws(() => obj.progFd('dump_bpf_map'), /not loaded/, 'the compat variant leaves dump_bpf_map out');
  } finally {
    obj.close();
  }
  t.equal(openFds(), before, 'every fd closed');
});

t.test('a loader failure is one SysError line, and nothing leaks', async (t) => {
  const before = openFds();
  const good = IteratorsSkeleton.light;
  const broken = (insns: string, data: string) => ({
    ...good,
    variants: { ...good.variants, compat: { ...good.variants.compat, insns, data } },
  });
  const failure = (spec: typeof good) => {
    try {
      LightObject.load(spec, 'compat').close();
    } catch (err) {
      return err;
    }
    return null;
  };
  // A loader cut short is refused by the verifier.
  const cut = Buffer.from(good.variants.compat.insns, 'base64').subarray(0, 64).toString('base64');
  const refused = failure(broken(cut, good.variants.compat.data));
  t.ok(refused instanceof SysError, 'a SysError');
  t.match((refused as Error).message, /^load loader program for bpf_preload \(compat\): E\w+ \([^\n]*\)$/);
  // A blob of zeros: the loader runs and fails on its own.
  const zeros = Buffer.alloc(Buffer.from(good.variants.compat.data, 'base64').length).toString('base64');
  const failed = failure(broken(good.variants.compat.insns, zeros));
  t.ok(failed instanceof SysError, 'a SysError');
  t.match((failed as Error).message, /^[^\n]*bpf_preload \(compat\)[^\n]*: E\w+ \([^\n]*\)$/);
  t.equal(openFds(), before, 'every fd closed');
});

t.test('BPF_PRELOAD_LOADER: an unknown value is one line, nothing pinned', async (t) => {
  const { dir } = privateBpffs(t);
  const r = runCli(['--bpffs', dir], { BPF_PRELOAD_LOADER: 'fast' });
  t.equal(r.code, 1);
  t.equal(r.stderr, 'bpf-preload: BPF_PRELOAD_LOADER=fast: expected light, libbpf or auto\n');
  t.same(readdirSync(dir), []);
});

t.test('unprivileged with BPF_PRELOAD_LOADER=light: one line, needs root', async (t) => {
  // show loads the iterators as populate does, without a bpffs: populate
  // itself tells an unprivileged caller it needs root before it loads anything.
  const r = runCli(['show', 'progs'], { BPF_PRELOAD_LOADER: 'light' }, 65534);
  t.equal(r.code, 1);
  t.equal(r.stderr.split('\n').length, 2, 'one line');
  t.match(r.stderr, /^bpf-preload: create loader map for bpf_preload \(\w+\): EPERM .*needs root/);
});
