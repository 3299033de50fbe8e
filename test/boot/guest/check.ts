// Runs inside each qemu guest, after boot, as root, on Debian's own node.
// bpf-preload was installed from its .deb with apt before the boot (its
// maintainer scripts enabled the unit). Checks what a user of the package and
// the unit sees, compares the pinned files against bpftool, upgrades the
// package while the files are being read, and removes it. Prints one
// `BOOTTEST: PASS name` or `BOOTTEST: FAIL name: why` line per check to the
// serial console; the host harness (test/boot/run.mjs) reads them.
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { DEFAULT_BPFFS as BPFFS } from '../../../src/preload/transaction/bpffs.js';
import { BpfObject, mapInfo, mapUpdate, progInfo, type BpfLink } from '../../../src/libbpf/index.js';
import { FALLBACK_SUBDIR } from '../../../src/preload/names.js';
import { UNIT_NAME as UNIT } from '../../../src/cli/unit.js';
import { type BpftoolLink, type BpftoolMap, type BpftoolProg, bpftoolJson, idProblems, mapRowProblems, progNameProblems } from '../../lib/bpftool.js';
import { parseMaps, parseProgs, type MapRow, type ProgRow } from '../../lib/listing.js';
import { kernelPreloadChecks, type FixtureIds } from './preload.js';
import { run } from '../../../harness/command.mjs';
import { exporterChecks } from './exporter.js';
import { MAPS, PROGS, attempt, cat, check, counts, emit, info, settings, sleep, startReader } from './report.js';

const FIXTURE = new URL('./attach.bpf.o', import.meta.url).pathname;

/** Shows the unit's own account in the console log, for a failure to be diagnosable from there. */
function unitDiagnostics(): void {
  for (const [cmd, args] of [
    ['systemctl', ['status', '--no-pager', '-l', UNIT]],
    ['journalctl', ['-b', '--no-pager', '-o', 'cat', '-u', UNIT]],
  ] as const) {
    for (const line of (run(cmd, [...args]).stdout || '').split('\n').slice(-25)) if (line) info(`  ${line}`);
  }
}
const isActive = () => run('systemctl', ['is-active', UNIT]).stdout.trim();

/** Loads the fixture: the xdp target, then the fentry program attached to it. Returns what to keep alive. */
interface Fixture extends FixtureIds {
  target: BpfObject;
  tracer: BpfObject;
  link: BpfLink;
}

function attachFentry(): Fixture {
  const image = readFileSync(FIXTURE);
  const target = BpfObject.openMem(image, { name: 'boot_tgt' });
  target.program('boot_fentry_with_long_name').autoload = false;
  target.load();
  const targetFd = target.program('boot_target').fd;
  const tracer = BpfObject.openMem(image, { name: 'boot_trc' });
  tracer.program('boot_target').autoload = false;
  tracer.program('boot_15char_prg').autoload = false;
  tracer.program('boot_fentry_with_long_name').setAttachTarget(targetFd, 'boot_target');
  tracer.load();
  const fentryId = progInfo(tracer.program('boot_fentry_with_long_name').fd).id;
  // Loaded, not yet attached: the kernel still holds the target program, so
  // the row names both the function and the program it is in.
  attempt('fentry-loaded-row', () => {
    const row = parseProgs(cat(PROGS).text).find((p) => p.id === fentryId);
    check(
      'fentry-loaded-row',
      row?.attachFunc === 'boot_target' && row.attachProg === 'boot_target',
      `row for prog ${fentryId}: ${JSON.stringify(row)}; expected attached "boot_target boot_target"`,
    );
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
    longMapId: mapInfo(target.map('boot_15char_map').fd).id,
    longProgId: progInfo(target.program('boot_15char_prg').fd).id,
  };
}

function selftest(withCur: boolean, fx: Fixture | null, label: string): void {
  const progsBefore = bpftoolJson<BpftoolProg[]>(['prog', 'show']);
  const mapsBefore = bpftoolJson<BpftoolMap[]>(['map', 'show']);
  const progsFile = cat(PROGS);
  const mapsFile = cat(MAPS);
  const progsAfter = bpftoolJson<BpftoolProg[]>(['prog', 'show']);
  const mapsAfter = bpftoolJson<BpftoolMap[]>(['map', 'show']);
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

  const progProblems = [
    ...idProblems(
      'prog',
      progs.map((p) => p.id),
      progsBefore,
      progsAfter,
    ),
    // The file has the full BTF name; bpftool may show the kernel's 15-character cut of it.
    ...progNameProblems(progs, progsAfter, true),
  ];
  check(`${label}selftest-progs`, progProblems.length === 0, progProblems.join('; '));
  const mapProblems = [
    ...idProblems(
      'map',
      maps.map((m) => m.id),
      mapsBefore,
      mapsAfter,
    ),
    ...mapRowProblems(maps, mapsAfter),
  ];
  check(`${label}selftest-maps`, mapProblems.length === 0, mapProblems.join('; '));

  if (!fx) return;
  const fentry = progs.find((p) => p.id === fx.fentryId);
  check(`${label}fentry-full-name`, fentry?.name === 'boot_fentry_with_long_name', `row for prog ${fx.fentryId}: ${JSON.stringify(fentry)}`);
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
  return Number(run('systemctl', ['show', '-P', prop, unit]).stdout.trim()) || 0;
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
    chains.set(target, r.code === 0 ? r.stdout : '');
    if (r.code !== 0) info(`  systemd-analyze critical-chain ${target}: exit ${r.code} ${r.stderr.trim()}`);
    for (const line of r.stdout.split('\n').slice(2)) if (line.trim()) info(`  ${target} chain| ${line}`);
  }
  for (const target of ['sysinit.target', 'basic.target']) {
    const chain = chains.get(target) ?? '';
    const on = chain.includes(UNIT);
    check(
      `unit-off-${target.replace('.target', '')}-critical-chain`,
      chain !== '' && !on,
      on ? `${UNIT} is on the critical chain of ${target}` : `no critical chain for ${target}`,
    );
  }
  const start = timestamp(UNIT, 'InactiveExitTimestampMonotonic');
  const active = timestamp(UNIT, 'ActiveEnterTimestampMonotonic');
  const exited = timestamp(UNIT, 'ExecMainExitTimestampMonotonic');
  const reached = Object.fromEntries(targets.map((t) => [t, timestamp(t, 'ActiveEnterTimestampMonotonic')]));
  const multiUser = reached['multi-user.target'] ?? 0;
  check(
    'files-before-multi-user',
    exited > 0 && multiUser > 0 && exited <= multiUser,
    `populate exited at ${exited}us, multi-user.target reached at ${multiUser}us`,
  );
  info(
    `boot timing (since kernel start): ${targets.map((t) => `${t} ${secs(reached[t] ?? 0)}`).join(', ')}; ` +
      `${UNIT} activating ${secs(start)} to ${secs(active)} (${secs(active - start)}); ` +
      `on critical chain of: ${targets.filter((t) => chains.get(t)?.includes(UNIT)).join(' ') || 'none'}`,
  );
}

const dpkgStatus = (pkg: string) => run('dpkg-query', ['-W', '-f=${Status} ${Version}', pkg]).stdout.trim();
/** Debian's version of a package without its epoch and Debian revision: "18.20.4+dfsg-1~deb12u1" -> "18.20.4". */
const upstreamVersion = (v: string) => v.replace(/^\d+:/, '').split(/[+~-]/)[0];

/** The package is installed, its node is Debian's, and its unit is the package's, enabled by its maintainer scripts. */
function packageChecks(): void {
  const status = dpkgStatus(settings.package);
  check(
    'dpkg-installed',
    status === `install ok installed ${settings.version}`,
    `dpkg-query ${settings.package}: ${JSON.stringify(status)} (expected installed ${settings.version})`,
  );

  const version = run(settings.node, ['--version']).stdout.trim();
  const owner = run('dpkg', ['-S', settings.node]).stdout.trim();
  check(
    'node-is-debians',
    version === `v${upstreamVersion(settings.nodejsVersion)}` && owner === `nodejs: ${settings.node}` && process.version === version,
    `${settings.node} --version: ${version}, running ${process.version}; nodejs package ${settings.nodejsVersion}; dpkg -S: ${owner}`,
  );

  // bookworm's systemd names the unit by its search path /lib/systemd/system,
  // the same directory as /usr/lib/systemd/system on a merged-/usr system.
  const fragment = run('systemctl', ['show', '-P', 'FragmentPath', UNIT]).stdout.trim();
  const sameFile = (a: string, b: string) => existsSync(a) && existsSync(b) && realpathSync(a) === realpathSync(b);
  const unitOwner = run('dpkg', ['-S', settings.unitPath]).stdout.trim();
  info(`${UNIT}: FragmentPath ${fragment}`);
  check(
    'unit-from-package',
    sameFile(fragment, settings.unitPath) && unitOwner === `${settings.package}: ${settings.unitPath}`,
    `FragmentPath ${JSON.stringify(fragment)} (expected ${settings.unitPath}); dpkg -S: ${JSON.stringify(unitOwner)}`,
  );
  // deb-systemd-helper (postinst) records what it enabled; install-unit would have written /etc/systemd/system/UNIT.
  const enabled = run('systemctl', ['is-enabled', UNIT]).stdout.trim();
  const helperState = '/var/lib/systemd/deb-systemd-helper-enabled';
  const recorded = existsSync(helperState) && readdirSync(helperState, { recursive: true }).some((f) => String(f).endsWith(UNIT));
  const adminCopy = existsSync(`/etc/systemd/system/${UNIT}`);
  check(
    'unit-enabled-by-package',
    enabled === 'enabled' && recorded && !adminCopy,
    `is-enabled ${enabled}; deb-systemd-helper recorded it: ${recorded}; /etc/systemd/system/${UNIT} exists: ${adminCopy}`,
  );
}

/** The ids of the links pinned at both files (bpftool looks through the bpffs). */
function pinnedLinkIds(): Record<string, number | undefined> {
  const links = bpftoolJson<BpftoolLink[]>(['--bpffs', 'link', 'show']);
  const at = (path: string) => links.find((l) => l.pinned?.includes(path))?.id;
  return { progs: at(PROGS), maps: at(MAPS) };
}

const APT_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };

/**
 * Installs the same package with a bumped version over the running one while
 * a reader loops over both files: no read may fail, and the files must be
 * new pins afterwards (postinst reloads the unit, which re-populates).
 */
async function upgradeWhileReading(): Promise<void> {
  const before = pinnedLinkIds();
  const reader = startReader('/run/bpf-preload-boottest-reader');
  for (let i = 0; i < 200 && !reader.started(); i++) await sleep(50);
  const t0 = Date.now();
  const r = run('apt-get', ['install', '-y', '-q', '--no-install-recommends', settings.upgradeDeb], { env: APT_ENV });
  const took = (Date.now() - t0) / 1000;
  // apt's account, shown by the harness when a check fails (or with BPF_PRELOAD_BOOT_VERBOSE=1).
  for (const l of r.stdout.split('\n').slice(-12)) if (l) info(`  apt| ${l}`);
  // A few more reads after the upgrade's last step.
  await sleep(500);
  const reads = await reader.stop();
  const after = pinnedLinkIds();
  const status = dpkgStatus(settings.package);
  check(
    'upgrade-installed',
    r.code === 0 && status === `install ok installed ${settings.upgradeVersion}` && isActive() === 'active',
    `apt-get install ${settings.upgradeDeb}: exit ${r.code} ${r.stderr.trim().split('\n').slice(-3).join(' ')}; dpkg-query: ${status}; unit ${isActive()}`,
  );
  info(
    `upgrade: apt-get install ${took.toFixed(1)}s; ${reads.good} good reads, ${reads.bad} failed; links progs ${before.progs} -> ${after.progs}, maps ${before.maps} -> ${after.maps}`,
  );
  check(
    'upgrade-files-readable-throughout',
    reads.bad === 0 && reads.good >= 4,
    `${reads.good} good reads, ${reads.bad} failed: ${reads.errors.split('\n').slice(0, 5).join(' | ')}`,
  );
  const renewed = (k: 'progs' | 'maps') => before[k] !== undefined && after[k] !== undefined && before[k] !== after[k];
  check('upgrade-repinned', renewed('progs') && renewed('maps'), `link ids before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`);
}

/** `apt-get remove` stops the unit (which unpins) and takes the unit file away. */
function removeUnpins(): void {
  const t0 = Date.now();
  const r = run('apt-get', ['remove', '-y', '-q', settings.package], { env: APT_ENV });
  info(`apt-get remove ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  const left = [PROGS, MAPS, `${BPFFS}/${FALLBACK_SUBDIR}`, settings.unitPath, settings.cli].filter((p) => existsSync(p));
  const load = run('systemctl', ['show', '-P', 'LoadState', UNIT]).stdout.trim();
  const status = dpkgStatus(settings.package);
  check(
    'apt-remove-unpins',
    r.code === 0 && left.length === 0 && load === 'not-found' && !status.includes(' installed '),
    `apt-get remove: exit ${r.code} ${r.stderr.trim().split('\n').slice(-3).join(' ')}; still there: ${left.join(' ')}; LoadState ${load}; dpkg-query: ${status}`,
  );
}

async function main(): Promise<void> {
  const cmdline = readFileSync('/proc/cmdline', 'utf8');
  const withCur = /\bboottest\.cur_entries=1\b/.test(cmdline);
  const release = run('uname', ['-r']).stdout.trim();
  info(`kernel ${release}; maps.debug expected ${withCur ? 'with' : 'without'} cur_entries`);

  check('kernel-btf', existsSync('/sys/kernel/btf/vmlinux'), `kernel ${release} has no /sys/kernel/btf/vmlinux: no BTF, bpf-preload cannot load its iterators`);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  check('bpffs-mounted', /^\S+ \S+ \S+ \S+ \/sys\/fs\/bpf \S+.* - bpf /m.test(mounts), 'no bpffs at /sys/fs/bpf');
  info(`/sys/fs/bpf mode ${(statSync(BPFFS).mode & 0o7777).toString(8)}`);

  attempt('package', packageChecks);
  const active = isActive();
  if (!check('unit-active', active === 'active', `systemctl is-active ${UNIT}: ${active}`)) unitDiagnostics();
  bootOrdering();

  let fx: Fixture | null = null;
  attempt('fentry-attach', () => {
    fx = attachFentry();
    check('fentry-attach', true);
  });

  attempt('selftest', () => selftest(withCur, fx, ''));

  const light = /\bboottest\.light=1\b/.test(cmdline);
  if (/\bboottest\.preload=1\b/.test(cmdline)) {
    // The kernel's own files are at the root: the checks of preload.ts
    // replace those that expect ours there (restart, stop, upgrade).
    if (!light) info('light skeleton: not expected to load on this kernel; byte-for-byte with the libbpf loader only');
    try {
      await kernelPreloadChecks(light ? ['libbpf', 'light'] : ['libbpf'], fx);
    } catch (err) {
      check('kernel-preload', false, `threw: ${(err as Error).message}`);
    }
  } else {
    attempt('restart', () => {
      const r = run('systemctl', ['restart', UNIT]);
      if (!check('restart', r.code === 0 && isActive() === 'active', `systemctl restart: exit ${r.code} ${r.stderr.trim()}`)) unitDiagnostics();
      selftest(withCur, fx, 'after-restart:');
    });

    attempt('stop', () => {
      const r = run('systemctl', ['stop', UNIT]);
      const left = [PROGS, MAPS, `${BPFFS}/${FALLBACK_SUBDIR}`].filter((p) => existsSync(p));
      if (
        !check(
          'stop-unpins',
          r.code === 0 && isActive() === 'inactive' && left.length === 0,
          `systemctl stop: exit ${r.code} ${r.stderr.trim()}; still there: ${left.join(' ')}; state ${isActive()}`,
        )
      )
        unitDiagnostics();
    });

    // The unit's populate took whichever loader worked; where the light skeleton
    // must work (its bpf(2) number and attr layouts are per architecture), make it the only one.
    if (light) {
      attempt('light-loader', () => {
        const r = run(settings.cli, ['populate'], { env: { ...process.env, BPF_PRELOAD_LOADER: 'light' } });
        const maps = cat(MAPS);
        const withCount = maps.ok && parseMaps(maps.text).withCount;
        check(
          'light-loader',
          r.code === 0 && withCount === withCur,
          `BPF_PRELOAD_LOADER=light bpf-preload populate: exit ${r.code} ${r.stderr.trim()}; maps.debug ${maps.ok ? 'read' : maps.why}`,
        );
        run(settings.cli, ['unpin']);
      });
    }

    try {
      const r = run('systemctl', ['start', UNIT]);
      check('start-again', r.code === 0 && isActive() === 'active', `systemctl start: exit ${r.code} ${r.stderr.trim()}`);
      await upgradeWhileReading();
      selftest(withCur, fx, 'after-upgrade:');
    } catch (err) {
      check('upgrade', false, `threw: ${(err as Error).message}`);
    }
  }
  try {
    const f = fx as Fixture | null;
    // `show` rather than the pinned file: on the preload kernels the checks
    // before this one leave /sys/fs/bpf without progs.debug.
    const shown = f ? run(settings.cli, ['show', 'progs']) : undefined;
    const fentryRow = f && shown?.code === 0 ? parseProgs(shown.stdout).find((p) => p.id === f.fentryId) : undefined;
    await exporterChecks(f?.targetId, f ? { id: f.fentryId, row: fentryRow } : undefined);
  } catch (err) {
    check('exporter', false, `threw: ${(err as Error).message}`);
  }
  attempt('apt-remove', removeUnpins);

  const f = fx as Fixture | null;
  if (f) {
    f.link.destroy();
    f.tracer.close();
    f.target.close();
  }
  const { passed, failed } = counts();
  emit(`DONE ${passed} passed, ${failed} failed`);
}

main().catch((err: unknown) => {
  emit(`FAIL check-script: ${(err as Error).stack?.replaceAll('\n', ' | ')}`);
  const { passed, failed } = counts();
  emit(`DONE ${passed} passed, ${failed + 1} failed`);
});
