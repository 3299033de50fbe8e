// Runs inside each qemu guest, after boot, as root. Checks what a user of the
// unit sees, and compares the pinned files against bpftool. Prints one
// `BOOTTEST: PASS name` or `BOOTTEST: FAIL name: why` line per check to the
// serial console; the host harness (test/boot/run.mjs) reads them.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeSync } from 'node:fs';
import { BpfObject, mapInfo, mapUpdate, progInfo, type BpfLink } from '../../../src/libbpf/index.js';
import { parseMaps, parseProgs, type MapRow, type ProgRow } from '../../lib/listing.js';

const BPFFS = '/sys/fs/bpf';
const PROGS = `${BPFFS}/progs.debug`;
const MAPS = `${BPFFS}/maps.debug`;
const UNIT = 'bpf-preload.service';
const FIXTURE = new URL('./attach.bpf.o', import.meta.url).pathname;
/** The installed CLI, beside this script (boottest/ and dist/ under the package). */
const CLI = new URL('../dist/bpf-preload.js', import.meta.url).pathname;

let passed = 0;
let failed = 0;
const emit = (line: string) => writeSync(1, `BOOTTEST: ${line}\n`);
const info = (line: string) => emit(`INFO ${line}`);
function check(name: string, ok: boolean, why = ''): boolean {
  if (ok) passed++;
  else failed++;
  emit(ok ? `PASS ${name}` : `FAIL ${name}: ${why.replaceAll('\n', ' | ')}`);
  return ok;
}
function attempt(name: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    check(name, false, `threw: ${(err as Error).message}`);
  }
}

function run(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  return { code: r.status, out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error ? r.error.message : '') };
}
/** Shows the unit's own account in the console log, for a failure to be diagnosable from there. */
function unitDiagnostics(): void {
  for (const [cmd, args] of [
    ['systemctl', ['status', '--no-pager', '-l', UNIT]],
    ['journalctl', ['-b', '--no-pager', '-o', 'cat', '-u', UNIT]],
  ] as const) {
    for (const line of (run(cmd, [...args]).out || '').split('\n').slice(-25)) if (line) info(`  ${line}`);
  }
}
const isActive = () => run('systemctl', ['is-active', UNIT]).out.trim();
/** `cat FILE`, as a user would: iterator files are read start to end, never seeked. */
function cat(path: string): { ok: boolean; text: string; why: string } {
  const r = run('cat', [path]);
  return { ok: r.code === 0, text: r.out, why: r.err.trim() || `exit ${r.code}` };
}

interface ToolProg { id: number; name?: string }
interface ToolMap { id: number; name?: string; max_entries: number }
function bpftool<T>(what: 'prog' | 'map'): T[] {
  const r = run('bpftool', ['--json', what, 'show']);
  if (r.code !== 0) throw new Error(`bpftool ${what} show: ${r.err.trim()}`);
  return JSON.parse(r.out) as T[];
}

/**
 * Every id bpftool sees both before and after reading the file appears in it
 * exactly once, and the file lists nothing bpftool never saw. (systemd loads
 * and unloads programs of its own at any time.)
 */
function compareIds(what: string, fileIds: number[], before: number[], after: number[]): string[] {
  const problems: string[] = [];
  const count = new Map<number, number>();
  for (const id of fileIds) count.set(id, (count.get(id) ?? 0) + 1);
  const afterSet = new Set(after);
  const seen = new Set([...before, ...after]);
  for (const id of before) {
    if (afterSet.has(id) && count.get(id) !== 1) problems.push(`${what} id ${id} appears ${count.get(id) ?? 0} times`);
  }
  for (const [id, n] of count) {
    if (!seen.has(id)) problems.push(`${what} id ${id} is in the file but not in bpftool's list`);
    else if (n !== 1 && !afterSet.has(id)) problems.push(`${what} id ${id} appears ${n} times`);
  }
  return problems;
}

/** Loads the fixture: the xdp target, then the fentry program attached to it. Returns what to keep alive. */
function attachFentry(): { target: BpfObject; tracer: BpfObject; link: BpfLink; hashId: number; targetId: number; fentryId: number } {
  const image = readFileSync(FIXTURE);
  const target = BpfObject.openMem(image, { name: 'boot_tgt' });
  target.program('boot_fentry_with_long_name').autoload = false;
  target.load();
  const targetFd = target.program('boot_target').fd;
  const tracer = BpfObject.openMem(image, { name: 'boot_trc' });
  tracer.program('boot_target').autoload = false;
  tracer.program('boot_fentry_with_long_name').setAttachTarget(targetFd, 'boot_target');
  tracer.load();
  const fentryId = progInfo(tracer.program('boot_fentry_with_long_name').fd).id;
  // Loaded, not yet attached: the kernel still holds the target program, so
  // the row names both the function and the program it is in.
  attempt('fentry-loaded-row', () => {
    const row = parseProgs(cat(PROGS).text).find((p) => p.id === fentryId);
    check('fentry-loaded-row', row?.attachFunc === 'boot_target' && row.attachProg === 'boot_target', `row for prog ${fentryId}: ${JSON.stringify(row)}; expected attached "boot_target boot_target"`);
  });
  const link = tracer.program('boot_fentry_with_long_name').attach();
  const hashFd = target.map('boot_hash').fd;
  // Three elements: cur_entries must say 3 where the format has the column.
  for (let k = 1; k <= 3; k++) {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(k);
    mapUpdate(hashFd, key, Buffer.alloc(8));
  }
  return {
    target,
    tracer,
    link,
    hashId: mapInfo(hashFd).id,
    targetId: progInfo(targetFd).id,
    fentryId,
  };
}

function selftest(withCur: boolean, fx: ReturnType<typeof attachFentry> | null, label: string): void {
  const progsBefore = bpftool<ToolProg>('prog');
  const mapsBefore = bpftool<ToolMap>('map');
  const progsFile = cat(PROGS);
  const mapsFile = cat(MAPS);
  const progsAfter = bpftool<ToolProg>('prog');
  const mapsAfter = bpftool<ToolMap>('map');
  if (!check(`${label}cat-progs.debug`, progsFile.ok, progsFile.why)) return;
  if (!check(`${label}cat-maps.debug`, mapsFile.ok, mapsFile.why)) return;

  let progs: ProgRow[] = [];
  let maps: MapRow[] = [];
  attempt(`${label}progs.debug-format`, () => {
    progs = parseProgs(progsFile.text);
    check(`${label}progs.debug-format`, progs.length > 0, 'no rows');
  });
  attempt(`${label}maps.debug-format`, () => {
    const listing = parseMaps(mapsFile.text);
    maps = listing.rows;
    check(
      `${label}maps.debug-format`,
      listing.withCount === withCur && maps.length > 0,
      `${listing.withCount ? 'with' : 'without'} cur_entries (expected ${withCur ? 'with' : 'without'} on this kernel), ${maps.length} rows`,
    );
  });
  if (label) info(`${label}progs.debug: ${progs.length} programs, maps.debug: ${maps.length} maps`);
  else {
    for (const l of progsFile.text.split('\n')) if (l) info(`progs.debug| ${l}`);
    for (const l of mapsFile.text.split('\n')) if (l) info(`maps.debug| ${l}`);
  }
  if (progs.length === 0 || maps.length === 0) return;

  const progProblems = compareIds('prog', progs.map((p) => p.id), progsBefore.map((p) => p.id), progsAfter.map((p) => p.id));
  const toolProg = new Map(progsAfter.map((p) => [p.id, p]));
  for (const row of progs) {
    const tool = toolProg.get(row.id)?.name ?? '';
    if (!toolProg.has(row.id)) continue;
    // The file has the full BTF name; bpftool may show the kernel's 15-character cut of it.
    const agrees = row.name === tool || (tool.length >= 15 && row.name.startsWith(tool));
    if (!agrees) progProblems.push(`prog ${row.id}: file says ${JSON.stringify(row.name)}, bpftool ${JSON.stringify(tool)}`);
  }
  check(`${label}selftest-progs`, progProblems.length === 0, progProblems.join('; '));

  const mapProblems = compareIds('map', maps.map((m) => m.id), mapsBefore.map((m) => m.id), mapsAfter.map((m) => m.id));
  const toolMap = new Map(mapsAfter.map((m) => [m.id, m]));
  for (const row of maps) {
    const tool = toolMap.get(row.id);
    if (!tool) continue;
    if (row.name !== (tool.name ?? '')) mapProblems.push(`map ${row.id}: name ${JSON.stringify(row.name)} vs bpftool ${JSON.stringify(tool.name)}`);
    if (row.maxEntries !== tool.max_entries) mapProblems.push(`map ${row.id}: max_entries ${row.maxEntries} vs bpftool ${tool.max_entries}`);
  }
  check(`${label}selftest-maps`, mapProblems.length === 0, mapProblems.join('; '));

  if (!fx) return;
  const fentry = progs.find((p) => p.id === fx.fentryId);
  check(
    `${label}fentry-full-name`,
    fentry?.name === 'boot_fentry_with_long_name',
    `row for prog ${fx.fentryId}: ${JSON.stringify(fentry)}`,
  );
  // Attaching drops the kernel's reference to the target program (5.10 on), so
  // what remains is the traced function, which is the target program itself.
  check(
    `${label}fentry-attached-column`,
    fentry?.attachFunc === 'boot_target' && (fentry.attachProg === '' || fentry.attachProg === 'boot_target'),
    `row for prog ${fx.fentryId}: ${JSON.stringify(fentry)}; expected attached "boot_target"`,
  );
  const target = progs.find((p) => p.id === fx.targetId);
  check(`${label}target-not-attached`, target !== undefined && target.attachFunc === '' && target.attachProg === '', JSON.stringify(target));
  const hash = maps.find((m) => m.id === fx.hashId);
  if (withCur) {
    check(`${label}cur_entries`, hash?.curEntries === 3, `boot_hash (3 elements): ${JSON.stringify(hash)}`);
  } else {
    check(`${label}hash-map-row`, hash !== undefined && hash.name === 'boot_hash' && hash.maxEntries === 7, JSON.stringify(hash));
  }
}

/** A unit property that is a monotonic timestamp (µs since the kernel started; 0: never). */
function timestamp(unit: string, prop: string): number {
  return Number(run('systemctl', ['show', '-P', prop, unit]).out.trim()) || 0;
}
const secs = (us: number) => `${(us / 1e6).toFixed(2)}s`;

/**
 * Where the unit sat in this boot: it delays neither sysinit.target nor
 * basic.target (it is on neither's critical chain, as systemd-analyze computes
 * it from the real boot), and its files are there before multi-user.target,
 * where services and logins start. Also prints the figures: when each target
 * was reached and how long the unit was activating.
 */
function bootOrdering(): void {
  // critical-chain needs the boot to be over (this check's own unit is not a job it waits for).
  run('systemctl', ['is-system-running', '--wait']);
  const targets = ['sysinit.target', 'basic.target', 'multi-user.target'];
  const chains = new Map<string, string>();
  for (const target of targets) {
    const r = run('systemd-analyze', ['critical-chain', '--no-pager', target]);
    chains.set(target, r.code === 0 ? r.out : '');
    if (r.code !== 0) info(`  systemd-analyze critical-chain ${target}: exit ${r.code} ${r.err.trim()}`);
    for (const line of r.out.split('\n').slice(2)) if (line.trim()) info(`  ${target} chain| ${line}`);
  }
  for (const target of ['sysinit.target', 'basic.target']) {
    const chain = chains.get(target) ?? '';
    const on = chain.includes(UNIT);
    check(`unit-off-${target.replace('.target', '')}-critical-chain`, chain !== '' && !on, on ? `${UNIT} is on the critical chain of ${target}` : `no critical chain for ${target}`);
  }
  const start = timestamp(UNIT, 'InactiveExitTimestampMonotonic');
  const active = timestamp(UNIT, 'ActiveEnterTimestampMonotonic');
  const exited = timestamp(UNIT, 'ExecMainExitTimestampMonotonic');
  const reached = Object.fromEntries(targets.map((t) => [t, timestamp(t, 'ActiveEnterTimestampMonotonic')]));
  const multiUser = reached['multi-user.target'] ?? 0;
  check('files-before-multi-user', exited > 0 && multiUser > 0 && exited <= multiUser, `populate exited at ${exited}us, multi-user.target reached at ${multiUser}us`);
  info(
    `boot timing (since kernel start): ${targets.map((t) => `${t} ${secs(reached[t] ?? 0)}`).join(', ')}; ` +
      `${UNIT} activating ${secs(start)} to ${secs(active)} (${secs(active - start)}); ` +
      `on critical chain of: ${targets.filter((t) => chains.get(t)?.includes(UNIT)).join(' ') || 'none'}`,
  );
}

function main(): void {
  const cmdline = readFileSync('/proc/cmdline', 'utf8');
  const withCur = /\bboottest\.cur_entries=1\b/.test(cmdline);
  const release = run('uname', ['-r']).out.trim();
  info(`kernel ${release}; maps.debug expected ${withCur ? 'with' : 'without'} cur_entries`);

  check('kernel-btf', existsSync('/sys/kernel/btf/vmlinux'), `kernel ${release} has no /sys/kernel/btf/vmlinux: no BTF, bpf-preload cannot load its iterators`);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  check('bpffs-mounted', /^\S+ \S+ \S+ \S+ \/sys\/fs\/bpf \S+.* - bpf /m.test(mounts), 'no bpffs at /sys/fs/bpf');
  info(`/sys/fs/bpf mode ${(statSync(BPFFS).mode & 0o7777).toString(8)}`);

  const active = isActive();
  if (!check('unit-active', active === 'active', `systemctl is-active ${UNIT}: ${active}`)) unitDiagnostics();
  bootOrdering();

  let fx: ReturnType<typeof attachFentry> | null = null;
  attempt('fentry-attach', () => {
    fx = attachFentry();
    check('fentry-attach', true);
  });

  attempt('selftest', () => selftest(withCur, fx, ''));

  attempt('restart', () => {
    const r = run('systemctl', ['restart', UNIT]);
    if (!check('restart', r.code === 0 && isActive() === 'active', `systemctl restart: exit ${r.code} ${r.err.trim()}`)) unitDiagnostics();
    selftest(withCur, fx, 'after-restart:');
  });

  attempt('stop', () => {
    const r = run('systemctl', ['stop', UNIT]);
    const left = [PROGS, MAPS, `${BPFFS}/preload`].filter((p) => existsSync(p));
    if (!check('stop-unpins', r.code === 0 && isActive() === 'inactive' && left.length === 0, `systemctl stop: exit ${r.code} ${r.err.trim()}; still there: ${left.join(' ')}; state ${isActive()}`)) unitDiagnostics();
  });

  // The unit's populate took whichever loader worked; where the light skeleton
  // must work (its bpf(2) number and attr layouts are per architecture), make it the only one.
  if (/\bboottest\.light=1\b/.test(cmdline)) {
    attempt('light-loader', () => {
      const r = spawnSync(process.execPath, [CLI, 'populate'], { encoding: 'utf8', env: { ...process.env, BPF_PRELOAD_LOADER: 'light' } });
      const maps = cat(MAPS);
      const withCount = maps.ok && parseMaps(maps.text).withCount;
      check('light-loader', r.status === 0 && withCount === withCur, `BPF_PRELOAD_LOADER=light bpf-preload populate: exit ${r.status} ${(r.stderr ?? '').trim()}; maps.debug ${maps.ok ? 'read' : maps.why}`);
      run(process.execPath, [CLI, 'unpin']);
    });
  }

  const f = fx as ReturnType<typeof attachFentry> | null;
  if (f) {
    f.link.destroy();
    f.tracer.close();
    f.target.close();
  }
  emit(`DONE ${passed} passed, ${failed} failed`);
}

try {
  main();
} catch (err) {
  emit(`FAIL check-script: ${(err as Error).stack?.replaceAll('\n', ' | ')}`);
  emit(`DONE ${passed} passed, ${failed + 1} failed`);
}
