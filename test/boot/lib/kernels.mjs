// The kernel matrix, and fetching each kernel from Debian's archive with an
// apt state of our own (own sources list, lists and cache under CACHE/apt), so
// the machine's apt configuration is neither used nor changed.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ARCHES } from './arch.mjs';
import { CACHE, retry, say, sh } from './util.mjs';

const MIRROR = process.env.BPF_PRELOAD_BOOT_MIRROR ?? 'http://deb.debian.org';

/**
 * The kernels booted. `pattern` picks the package by name; its group is the
 * version part that varies, and the highest installable one wins. `arch` is a
 * key of ARCHES. `curEntries`: whether maps.debug must carry the cur_entries
 * column (the kfunc bpf_map_sum_elem_count exists from 6.6 on). `light`:
 * whether the light skeleton loads there (on Debian's 5.10 and 6.1 it is left to libbpf).
 * `source`: the kernel is built here from that Debian source package
 * (lib/kbuild.mjs), with the kernel's own BPF preload built in, instead of
 * being one of Debian's binary packages, `config` being options of its own
 * on top of test/boot/preload-kernel.config; the guest then also compares
 * our files with the kernel's.
 */
export const KERNELS = [
  { id: '5.10', arch: 'amd64', from: 'bullseye', pattern: /^linux-image-5\.10\.0-(\d+)-cloud-amd64$/, curEntries: false, light: false },
  { id: '6.1', arch: 'amd64', from: 'bookworm', pattern: /^linux-image-6\.1\.0-(\d+)-cloud-amd64-unsigned$/, curEntries: false, light: false },
  { id: '6.12', arch: 'amd64', from: 'bookworm', pattern: /^linux-image-6\.12\.(\d+)\+deb12-cloud-amd64-unsigned$/, curEntries: true, light: true },
  // Whatever is newest for trixie: 7.3 from trixie-backports when this was written.
  { id: 'newest', arch: 'amd64', from: 'trixie-backports', pattern: /^linux-image-(\d+\.\d+\.\d+)\+deb13-cloud-amd64$/, curEntries: true, light: true },
  { id: '6.12-preload', arch: 'amd64', from: 'bookworm', source: 'linux-source-6.12', curEntries: true, light: true },
  // 6.1: maps.debug without cur_entries, as kernels before 6.6 print it.
  // 6.1's BPF JIT (which fentry's trampolines need) depends on CONFIG_MODULES
  // (its memory came from module_alloc); no module is built or loaded.
  // Its light skeleton loads (checked in the guest): both loaders are compared.
  { id: '6.1-preload', arch: 'amd64', from: 'bookworm', source: 'linux-source-6.1', config: ['CONFIG_MODULES=y'], curEntries: false, light: true },
  { id: 'arm64-6.12', arch: 'arm64', from: 'trixie', pattern: /^linux-image-6\.12\.(\d+)\+deb13-cloud-arm64-unsigned$/, curEntries: true, light: true },
];

const APT = join(CACHE, 'apt');
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const SUITES = [
  ['debian', 'bullseye'],
  ['debian-security', 'bullseye-security'],
  ['debian', 'bookworm'],
  ['debian', 'bookworm-updates'],
  ['debian-security', 'bookworm-security'],
  ['debian', 'trixie'],
  ['debian', 'trixie-updates'],
  ['debian-security', 'trixie-security'],
  ['debian', 'trixie-backports'],
];
const APT_ARCHES = [...new Set(KERNELS.map((k) => ARCHES[k.arch].deb))];

function aptOptions() {
  return [
    '-o',
    `Dir::State=${APT}/state`,
    '-o',
    `Dir::Cache=${APT}/cache`,
    '-o',
    `Dir::Etc::SourceList=${APT}/sources.list`,
    '-o',
    'Dir::Etc::SourceParts=/nonexistent',
    '-o',
    'Dir::Etc::Preferences=/nonexistent',
    '-o',
    'Dir::Etc::PreferencesParts=/nonexistent',
    '-o',
    'Acquire::Retries=3',
    '-o',
    'APT::Sandbox::User=root',
    // Indexes for every architecture booted, whatever this machine's dpkg knows.
    ...APT_ARCHES.flatMap((a) => ['-o', `APT::Architectures::=${a}`]),
  ];
}

let updated = false;
/** Fetches the package lists of SUITES into our own apt state (once per run). */
export async function aptUpdate() {
  if (updated) return;
  mkdirSync(join(APT, 'state/lists/partial'), { recursive: true });
  mkdirSync(join(APT, 'cache/archives/partial'), { recursive: true });
  const sources = SUITES.map(([archive, suite]) => `deb [arch=${APT_ARCHES.join(',')} signed-by=${KEYRING}] ${MIRROR}/${archive} ${suite} main\n`);
  writeFileSync(join(APT, 'sources.list'), sources.join(''));
  await retry('apt-get update (kernel sources)', () => {
    const out = sh('apt-get', [...aptOptions(), 'update']);
    // apt exits 0 when some index could not be fetched; that is a failure here.
    const bad = out.split('\n').filter((l) => /^(Err:|W: Failed|E: )/.test(l));
    if (bad.length) throw new Error(bad.join('; '));
  });
  updated = true;
}

/** Orders "7.3.4" after "6.12.117" and "117" after "99": numbers compared part by part. */
function compareVersions(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** apt's name for a package of `arch` ("name:arm64"), so foreign architectures resolve too. */
const qualified = (name, arch) => `${name}:${ARCHES[arch].deb}`;

/** The version apt would install of package `name` for `arch`, or null. */
export function candidateVersion(name, arch) {
  const m = /^\s+Candidate: (\S+)/m.exec(sh('apt-cache', [...aptOptions(), 'policy', qualified(name, arch)]));
  return m && m[1] !== '(none)' ? m[1] : null;
}

/** Package names for a kernel, newest first. */
function candidates(kernel) {
  const names = sh('apt-cache', [...aptOptions(), 'pkgnames', 'linux-image-'])
    .split('\n')
    .filter((n) => kernel.pattern.test(n));
  const version = (n) => kernel.pattern.exec(n)[1];
  if (names.length === 0) return [];
  // A name can linger in the lists without a version to install (superseded ABIs).
  const policy = sh('apt-cache', [...aptOptions(), 'policy', ...names.map((n) => qualified(n, kernel.arch))]);
  const installable = new Set(
    [...policy.matchAll(/^(\S+?)(?::\S+)?:\n\s+Installed: .*\n\s+Candidate: (\S+)/gm)].filter((m) => m[2] !== '(none)').map((m) => m[1]),
  );
  return names.filter((n) => installable.has(n)).sort((a, b) => compareVersions(version(b), version(a)));
}

/** Downloads packages of `arch` into `dir`; gives the .deb file of each, by package name. */
export async function download(names, arch, dir) {
  await retry(`download ${names.join(' ')}`, () => sh('apt-get', [...aptOptions(), 'download', ...names.map((n) => qualified(n, arch))], { cwd: dir }));
  const debs = readdirSync(dir).filter((f) => f.endsWith('.deb'));
  return new Map(
    names.map((n) => {
      const deb = debs.find((f) => f.startsWith(`${n}_`));
      if (!deb) throw new Error(`apt-get download ${n} left no ${n}_*.deb`);
      return [n, join(dir, deb)];
    }),
  );
}

/**
 * Where a kernel package keeps its image and build config. Debian's older
 * packages carry /boot/vmlinuz-<release> and /boot/config-<release>; the newest
 * split them out of linux-image-<release> (then only a dependency shell) into
 * linux-binary-<release> (usr/lib/modules/<release>/vmlinuz) and
 * linux-base-<release> (usr/lib/modules/<release>/config).
 */
const within = (dir) => (existsSync(dir) ? readdirSync(dir).map((d) => join(dir, d)) : []);
const LAYOUTS = [
  { dirs: (root) => [join(root, 'boot')], vmlinuz: /^vmlinuz-/, config: /^config-/ },
  { dirs: (root) => within(join(root, 'usr/lib/modules')), vmlinuz: /^vmlinuz$/, config: /^config$/ },
];
const SPLIT_PARTS = /^linux-(binary|base)-/;

/** The file under `root` (the packages unpacked) that is the kernel's `which` in either layout, or null. */
function findKernelFile(root, which) {
  for (const layout of LAYOUTS) {
    for (const dir of layout.dirs(root)) {
      const hit = within(dir).find((f) => layout[which].test(basename(f)));
      if (hit) return hit;
    }
  }
  return null;
}

/**
 * Gives { vmlinuz, config, pkg, version } for `kernel`, from the cache when it
 * is there (a cached run needs no network); BPF_PRELOAD_BOOT_REFRESH=1 looks for
 * a newer package first.
 */
export async function fetchKernel(kernel) {
  const dir = join(CACHE, 'kernels', kernel.id);
  const meta = join(dir, 'kernel.json');
  if (existsSync(meta) && !process.env.BPF_PRELOAD_BOOT_REFRESH) return JSON.parse(readFileSync(meta, 'utf8'));
  await aptUpdate();
  const names = candidates(kernel);
  if (names.length === 0) throw new Error(`no package matching ${kernel.pattern} in ${kernel.from} (${kernel.arch})`);
  const pkg = names[0];
  const dl = join(CACHE, 'kernels', `${kernel.id}.download`);
  rmSync(dl, { recursive: true, force: true });
  mkdirSync(dl, { recursive: true });
  const image = (await download([pkg], kernel.arch, dl)).get(pkg);
  const version = sh('dpkg-deb', ['--field', image, 'Version']).trim();
  const debs = [image];
  // A dependency shell: the image and config come from its split-out parts.
  const parts = sh('dpkg-deb', ['--field', image, 'Depends'])
    .split(',')
    .map((d) => d.trim().split(/[\s(]/)[0])
    .filter((d) => SPLIT_PARTS.test(d));
  if (parts.length) debs.push(...(await download(parts, kernel.arch, dl)).values());
  const root = join(dl, 'root');
  mkdirSync(root);
  for (const deb of debs) sh('dpkg-deb', ['--extract', deb, root]);
  const found = {};
  for (const which of ['vmlinuz', 'config']) {
    found[which] = findKernelFile(root, which);
    if (!found[which]) throw new Error(`${pkg}${parts.length ? ` (with ${parts.join(', ')})` : ''} has no kernel ${which}`);
  }
  const staged = join(CACHE, 'kernels', `${kernel.id}.new`);
  rmSync(staged, { recursive: true, force: true });
  mkdirSync(staged);
  renameSync(found.vmlinuz, join(staged, 'vmlinuz'));
  renameSync(found.config, join(staged, 'config'));
  const info = { pkg, version, vmlinuz: join(dir, 'vmlinuz'), config: join(dir, 'config') };
  writeFileSync(join(staged, 'kernel.json'), JSON.stringify(info, null, 2));
  rmSync(dl, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  renameSync(staged, dir);
  say(`kernel ${kernel.id}: ${pkg} ${version}`);
  return info;
}

/** What the kernel's build config says about the features the boot test needs, or why it cannot work. */
export function kernelProblems(info, arch) {
  const config = readFileSync(info.config, 'utf8');
  const set = (opt) => new RegExp(`^${opt}=y$`, 'm').test(config);
  const problems = [];
  if (!set('CONFIG_BPF_SYSCALL')) problems.push('CONFIG_BPF_SYSCALL is not set: no bpf() at all');
  if (!set('CONFIG_DEBUG_INFO_BTF')) problems.push('CONFIG_DEBUG_INFO_BTF is not set: no kernel BTF, so BPF iterators cannot load');
  if (!set('CONFIG_BLK_DEV_INITRD')) problems.push('CONFIG_BLK_DEV_INITRD is not set: the root file system is an initramfs');
  const serial = ARCHES[arch].console.config;
  if (!set(serial)) problems.push(`${serial} is not set: no serial console to read results from`);
  return { problems, preload: set('CONFIG_BPF_PRELOAD'), btf: set('CONFIG_DEBUG_INFO_BTF') };
}
