// The systemd unit that runs `bpf-preload populate` at boot: its text, and
// installing or removing it. No libbpf calls here: this has to work on a
// machine where the loader itself would fail, so that the unit can still be
// removed.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { PreloadError } from '../errors.js';
import { DEFAULT_BPFFS } from '../preload/transaction/bpffs.js';

export const UNIT_NAME = 'bpf-preload.service';
/** Where `install-unit` writes the unit (the administrator's directory). */
export const UNIT_DIR = '/etc/systemd/system';
/** Where the Debian package ships it (the vendor's directory). */
export const PACKAGE_UNIT_DIR = '/usr/lib/systemd/system';
/**
 * Where the unit is wanted from, and what it finishes before: services and
 * logins (multi-user.target) find the files; nothing in early boot reads them.
 */
export const WANTED_BY = 'multi-user.target';

/**
 * One ExecStart= word, written so that systemd parses it back to `word`
 * (systemd.syntax "Quoting", systemd.service "Command lines"): % starts a
 * specifier in every word, so it is doubled; in the arguments $ starts a
 * variable, so it is doubled too, but the program's own path is never
 * expanded, so there it stays. A word with whitespace, a quote, a backslash
 * or ; is double-quoted with C escapes. systemd refuses control characters
 * anywhere, and quotes or backslashes in the program's path ("Executable
 * name contains special characters"): those are refused here, saying so.
 */
function execWord(word: string, program: boolean): string {
  if (/[\x00-\x1f\x7f]/.test(word)) {
    throw new PreloadError(`${JSON.stringify(word)} has a control character, which systemd does not allow in a command line: install it at a plain path`);
  }
  if (program && /["'\\]/.test(word)) {
    throw new PreloadError(
      `${JSON.stringify(word)} has a quote or backslash, which systemd does not allow in the program a unit runs: install node at a plain path`,
    );
  }
  const escaped = program ? word.replaceAll('%', '%%') : word.replaceAll('%', '%%').replaceAll('$', '$$$$');
  return /[\s"'\\;]/.test(escaped) ? `"${escaped.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"` : escaped;
}

/** What systemd's ProtectHome= hides (systemd.exec). */
const HOME_DIRS = ['/home', '/root', '/run/user'];
const underHome = (path: string) => HOME_DIRS.some((d) => path === d || path.startsWith(`${d}/`));

// ProtectHome=yes makes /home, /root and /run/user empty and inaccessible:
// a node or CLI installed there (nvm, npx, an npm prefix under /root) could
// not even be started, so such a unit keeps them readable, and says why.
const HOME_READ_ONLY = `# node or the CLI lives under ${HOME_DIRS.join(', ')}: read-only, not hidden,
# or the service could not start.
ProtectHome=read-only`;

/**
 * Who put the unit there, and so how it is removed: its first line, which
 * uninstall-unit also reads to recognise the units install-unit wrote.
 */
const ORIGIN = {
  'install-unit': '# Installed by `bpf-preload install-unit`; remove with `bpf-preload uninstall-unit`.',
  package: '# Installed by the bpf-preload package; `systemctl disable bpf-preload` keeps it from running at boot.',
};

/** ProtectHome= for a unit running node at `nodePath` and the CLI at `cliPath`. */
const protectHome = (cliPath: string, nodePath: string) => ([cliPath, nodePath].some(underHome) ? HOME_READ_ONLY : 'ProtectHome=yes');

/** What both units keep away from: kernel modules and logs, cgroups, the clock, the hostname. */
const PROTECT_KERNEL = `ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes`;

/** A unit runs programs by absolute path. */
function requireAbsolute(...paths: string[]): void {
  for (const p of paths) {
    if (!isAbsolute(p)) throw new PreloadError(`unit paths must be absolute: ${p}`);
  }
}

/** The end of both units' sandboxing: namespaces, privileges and system calls. */
const SANDBOX_TAIL = `RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
# Node's JIT needs writable+executable memory, so no MemoryDenyWriteExecute.
SystemCallArchitectures=native
SystemCallFilter=@system-service bpf
SystemCallErrorNumber=EPERM`;

/**
 * The unit text for a CLI at `cliPath`, run by the node binary at `nodePath`
 * (both absolute), as installed by `installedBy`.
 */
export function renderUnit(cliPath: string, nodePath: string, installedBy: keyof typeof ORIGIN = 'install-unit'): string {
  requireAbsolute(cliPath, nodePath);
  const cmd = (verb: string) => `${execWord(nodePath, true)} ${execWord(cliPath, false)} ${verb}`;
  return `${ORIGIN[installedBy]}
[Unit]
Description=Pin progs.debug and maps.debug BPF iterators in ${DEFAULT_BPFFS}
${installedBy === 'package' ? 'Documentation=man:bpf-preload(8)\n' : ''}# Off the boot's critical path: the default dependencies start it after
# basic.target (so it delays neither sysinit.target nor basic.target, and the
# bpffs systemd mounts is there), and it is done before ${WANTED_BY}.
Before=${WANTED_BY}
# Without a bpffs at ${DEFAULT_BPFFS} (containers, kernels without BPF) the unit is
# skipped, not failed.
ConditionPathIsMountPoint=${DEFAULT_BPFFS}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=${cmd('populate')}
ExecStop=${cmd('unpin')}
# populate replaces its own pins atomically: \`systemctl reload\` (what a
# package upgrade does) refreshes them without a moment where they are missing,
# where restart would unpin first.
ExecReload=${cmd('populate')}
# Loading iterators takes CAP_BPF and CAP_PERFMON; telling our own pins from
# others' (prog/map by id) takes CAP_SYS_ADMIN. bpffs refuses dotted names in
# a directory with any permission bits, so the pins are made while the
# directory is mode 0, which only CAP_DAC_OVERRIDE gets past. Nothing else.
CapabilityBoundingSet=CAP_SYS_ADMIN CAP_BPF CAP_PERFMON CAP_DAC_OVERRIDE
NoNewPrivileges=yes
# BPF maps are charged to RLIMIT_MEMLOCK on kernels before 5.11.
LimitMEMLOCK=infinity
UMask=0077
# The lock files (/run/bpf-preload, root's alone); kept when the unit stops,
# so that a run from a shell holding one is not left with a removed file.
RuntimeDirectory=bpf-preload
RuntimeDirectoryMode=0700
RuntimeDirectoryPreserve=yes
# Read-only everywhere but the bpffs. No ProtectKernelTunables: it makes all
# of /sys read-only, and ${DEFAULT_BPFFS} stays so even with ReadWritePaths= (the
# pins fail with EROFS, tried on systemd 252).
ProtectSystem=strict
ReadWritePaths=${DEFAULT_BPFFS}
${protectHome(cliPath, nodePath)}
PrivateDevices=yes
PrivateNetwork=yes
${PROTECT_KERNEL}
ProtectProc=invisible
ProcSubset=pid
RestrictAddressFamilies=AF_UNIX
${SANDBOX_TAIL}

[Install]
WantedBy=${WANTED_BY}
`;
}

/** The exporter's unit, shipped by the Debian package and not enabled there. */
export const EXPORTER_UNIT_NAME = 'bpf-preload-exporter.service';
/**
 * What the packaged exporter (with --enable-stats) needs, and nothing else:
 * CAP_SYS_ADMIN, which BPF_ENABLE_STATS and opening programs by id (their
 * run counters) require, and which the kernel also accepts in place of
 * CAP_BPF and CAP_PERFMON for loading the iterators (bpf_capable(),
 * perfmon_capable()), so adding those would change nothing. Without
 * --enable-stats, CAP_BPF and CAP_PERFMON are enough.
 * test/exporter-unit.test.ts runs the exporter with exactly this bounding set.
 */
export const EXPORTER_CAPABILITIES = ['CAP_SYS_ADMIN'] as const;
/**
 * Node's flags in the exporter's unit: young-generation space of 1 MiB
 * instead of V8's default of up to 16, measured at 10,000 programs and maps:
 * RSS 110 MiB instead of 208 after 60 scrapes, each 4% slower.
 */
export const EXPORTER_NODE_FLAGS = ['--max-semi-space-size=1'] as const;
/**
 * glibc malloc settings in the exporter's unit: one arena, and a fixed mmap
 * threshold so that the large buffers of a scrape (socket writes of a 5 MB
 * body) are mapped and unmapped each time instead of staying in the heap
 * once glibc raises its threshold. At 10,000 programs and maps, after 150
 * scrapes: RSS 100-119 MiB with them, 175-187 without (load average 8;
 * bench/results.md runs the exporter with them).
 */
export const EXPORTER_ENVIRONMENT = ['MALLOC_ARENA_MAX=1', 'MALLOC_MMAP_THRESHOLD_=131072'] as const;
/** What the packaged exporter unit runs with (README and docs/fleet.md say how to change it). */
export const EXPORTER_ARGS = ['exporter', '--enable-stats'] as const;

/**
 * The exporter's unit for a CLI at `cliPath` run by `nodePath`: a
 * long-running service on the default loopback address, with run-time
 * statistics on for as long as it runs (the kernel drops them with it).
 */
export function renderExporterUnit(cliPath: string, nodePath: string): string {
  requireAbsolute(cliPath, nodePath);
  return `# Installed by the bpf-preload package, not enabled: \`systemctl enable --now ${EXPORTER_UNIT_NAME}\` starts it now and at boot.
[Unit]
Description=Prometheus exporter of every BPF program, map and link (bpf-preload)
Documentation=man:bpf-preload(8)
After=network.target

[Service]
Type=simple
# Listens on the loopback address only; add --listen ADDR:PORT in a drop-in
# (systemctl edit) for Prometheus on another host, --holders for pid and comm
# of the processes holding each object.
ExecStart=${execWord(nodePath, true)} ${EXPORTER_NODE_FLAGS.join(' ')} ${execWord(cliPath, false)} ${EXPORTER_ARGS.join(' ')}
Environment=${EXPORTER_ENVIRONMENT.join(' ')}
# SIGTERM finishes the scrapes in flight; exit 0.
KillSignal=SIGTERM
Restart=on-failure
RestartSec=5s
CapabilityBoundingSet=${EXPORTER_CAPABILITIES.join(' ')}
NoNewPrivileges=yes
# BPF objects are charged to RLIMIT_MEMLOCK on kernels before 5.11.
LimitMEMLOCK=infinity
UMask=0077
ProtectSystem=strict
${protectHome(cliPath, nodePath)}
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
${PROTECT_KERNEL}
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
${SANDBOX_TAIL}

[Install]
WantedBy=multi-user.target
`;
}

export interface UnitOptions {
  /** The CLI to run; default: the one running now. */
  cliPath?: string;
  /** The node binary; default: the one running now. */
  nodePath?: string;
  /** Operate on another root file system (as `systemctl --root`): no daemon-reload, no start/stop. */
  root?: string;
  /** Start it now (install) / stop it first (uninstall, which unpins); default true without `root`. */
  now?: boolean;
}

function systemctl(root: string | undefined, args: string[]): void {
  const full = root === undefined ? args : [`--root=${root}`, ...args];
  const r = spawnSync('systemctl', full, { encoding: 'utf8' });
  if (r.error) throw new PreloadError(`systemctl ${full.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) {
    const why = (r.stderr || r.stdout).trim().split('\n').pop() ?? '';
    throw new PreloadError(`systemctl ${full.join(' ')} failed (exit ${r.status}): ${why}`);
  }
}

function unitPath(root: string | undefined): string {
  return join(root ?? '/', UNIT_DIR, UNIT_NAME);
}

/** Whether the file at `path` is a unit install-unit wrote: a plain file with its first line. */
function writtenByInstallUnit(path: string): boolean {
  return lstatSync(path).isFile() && readFileSync(path, 'utf8').split('\n', 1)[0] === ORIGIN['install-unit'];
}

/** As many symlinks as the kernel follows in one path (MAXSYMLINKS) before ELOOP. */
const MAX_SYMLINKS = 40;

/**
 * Why a user other than root could change what runs from `path`: the first
 * thing on the way from / down to the file itself that is not owned by root,
 * or that others may write to (a sticky directory aside: others cannot
 * rename or remove what root owns in it); null if nothing. A symlink on the
 * way counts, and so does every step of where it leads.
 */
export function writableByOthers(path: string, links = 0): string | null {
  const parts = path.split('/').filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const at = `/${parts.slice(0, i).join('/')}`;
    const st = lstatSync(at);
    if (st.uid !== 0) return `${at} belongs to uid ${st.uid}`;
    if (st.isSymbolicLink()) {
      if (links === MAX_SYMLINKS) return `${at} is more than ${MAX_SYMLINKS} symlinks down the way`;
      return writableByOthers(join(resolve(dirname(at), readlinkSync(at)), ...parts.slice(i)), links + 1);
    }
    if (st.isDirectory() && (st.mode & 0o1000) !== 0) continue;
    if (st.mode & 0o002) return `${at} is writable by every user`;
    if (st.mode & 0o020 && st.gid !== 0) return `${at} is writable by group ${st.gid}`;
  }
  return null;
}

/** Refuses a node or CLI that someone other than root could swap for a program of their own, run as root at every boot. */
function checkOnlyRootWrites(what: string, path: string): void {
  let why: string | null;
  try {
    why = writableByOthers(path);
  } catch (err) {
    throw new PreloadError(`${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (why !== null) {
    throw new PreloadError(
      `${what} ${path}: ${why}, so that user could change what the unit runs as root at boot: install it where only root can write, or make root own every directory on the way (not group- or world-writable)`,
    );
  }
}

/** Writes the unit pointing at the CLI and enables it (and starts it unless `now` is false). */
export function installUnit(opts: UnitOptions = {}): string {
  const packaged = join(opts.root ?? '/', PACKAGE_UNIT_DIR, UNIT_NAME);
  if (existsSync(packaged)) {
    throw new PreloadError(`${packaged} is installed by the bpf-preload package, which enables it: install-unit is for npm -g installs`);
  }
  const path = unitPath(opts.root);
  if (existsSync(path) && !writtenByInstallUnit(path)) {
    throw new PreloadError(`${path} exists and was not written by bpf-preload install-unit: left alone; move it away first to install bpf-preload's`);
  }
  const cliPath = opts.cliPath ?? realpathSync(process.argv[1] ?? '');
  const nodePath = opts.nodePath ?? process.execPath;
  checkOnlyRootWrites('node', join(opts.root ?? '/', nodePath));
  checkOnlyRootWrites('the CLI', join(opts.root ?? '/', cliPath));
  const now = opts.now ?? opts.root === undefined;
  const text = renderUnit(cliPath, nodePath);
  mkdirSync(join(path, '..'), { recursive: true });
  // Written beside and renamed, so systemd never reads half a unit.
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, path);
  if (opts.root === undefined) systemctl(undefined, ['daemon-reload']);
  // reenable: links left by an older install (wanted from another target) go.
  systemctl(opts.root, ['reenable', UNIT_NAME]);
  if (now) systemctl(undefined, ['restart', UNIT_NAME]);
  return `installed ${path} (ExecStart=${nodePath} ${cliPath} populate), enabled${now ? ' and started' : ''}`;
}

/** Stops (which unpins), disables and removes the unit; nothing to do if it is not installed. */
export function uninstallUnit(opts: UnitOptions = {}): string {
  const path = unitPath(opts.root);
  if (!existsSync(path)) return `${path} is not installed: nothing to do`;
  if (!writtenByInstallUnit(path)) {
    throw new PreloadError(`${path} was not written by bpf-preload install-unit: left alone`);
  }
  const now = opts.now ?? opts.root === undefined;
  if (now) systemctl(undefined, ['stop', UNIT_NAME]);
  systemctl(opts.root, ['disable', UNIT_NAME]);
  rmSync(path, { force: true });
  if (opts.root === undefined) systemctl(undefined, ['daemon-reload']);
  return `removed ${path}${now ? ' (stopped and unpinned first)' : ''}`;
}
