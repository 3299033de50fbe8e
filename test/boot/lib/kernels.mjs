// The kernel matrix, and fetching each kernel from Debian's archive with an
// apt state of our own (own sources list, lists and cache under CACHE/apt), so
// the machine's apt configuration is neither used nor changed.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE, retry, say, sh } from './util.mjs';

const MIRROR = process.env.BPF_PRELOAD_BOOT_MIRROR ?? 'http://deb.debian.org';

/**
 * The kernels booted. `curEntries`: whether maps.debug must carry the
 * cur_entries column (the kfunc bpf_map_sum_elem_count exists from 6.6 on).
 */
export const KERNELS = [
  { id: '5.10', from: 'bullseye', pattern: /^linux-image-5\.10\.0-(\d+)-cloud-amd64$/, curEntries: false },
  { id: '6.1', from: 'bookworm', pattern: /^linux-image-6\.1\.0-(\d+)-cloud-amd64-unsigned$/, curEntries: false },
  { id: '6.12', from: 'bookworm', pattern: /^linux-image-6\.12\.(\d+)\+deb12-cloud-amd64-unsigned$/, curEntries: true },
];

const APT = join(CACHE, 'apt');
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const SUITES = [
  ['debian', 'bullseye'],
  ['debian-security', 'bullseye-security'],
  ['debian', 'bookworm'],
  ['debian', 'bookworm-updates'],
  ['debian-security', 'bookworm-security'],
];

function aptOptions() {
  return [
    '-o', `Dir::State=${APT}/state`,
    '-o', `Dir::Cache=${APT}/cache`,
    '-o', `Dir::Etc::SourceList=${APT}/sources.list`,
    '-o', 'Dir::Etc::SourceParts=/nonexistent',
    '-o', 'Dir::Etc::Preferences=/nonexistent',
    '-o', 'Dir::Etc::PreferencesParts=/nonexistent',
    '-o', 'Acquire::Retries=3',
    '-o', 'APT::Sandbox::User=root',
  ];
}

let updated = false;
async function aptUpdate() {
  if (updated) return;
  mkdirSync(join(APT, 'state/lists/partial'), { recursive: true });
  mkdirSync(join(APT, 'cache/archives/partial'), { recursive: true });
  const sources = SUITES.map(([archive, suite]) => `deb [signed-by=${KEYRING}] ${MIRROR}/${archive} ${suite} main\n`);
  writeFileSync(join(APT, 'sources.list'), sources.join(''));
  await retry('apt-get update (kernel sources)', () => {
    const out = sh('apt-get', [...aptOptions(), 'update']);
    // apt exits 0 when some index could not be fetched; that is a failure here.
    const bad = out.split('\n').filter((l) => /^(Err:|W: Failed|E: )/.test(l));
    if (bad.length) throw new Error(bad.join('; '));
  });
  updated = true;
}

/** Package names for a kernel, newest ABI first. */
function candidates(kernel) {
  const names = sh('apt-cache', [...aptOptions(), 'pkgnames', 'linux-image-'])
    .split('\n')
    .filter((n) => kernel.pattern.test(n));
  const abi = (n) => Number(kernel.pattern.exec(n)[1]);
  if (names.length === 0) return [];
  // A name can linger in the lists without a version to install (superseded ABIs).
  const policy = sh('apt-cache', [...aptOptions(), 'policy', ...names]);
  const installable = new Set([...policy.matchAll(/^(\S+):\n\s+Installed: .*\n\s+Candidate: (\S+)/gm)].filter((m) => m[2] !== '(none)').map((m) => m[1]));
  return names.filter((n) => installable.has(n)).sort((a, b) => abi(b) - abi(a));
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
  if (names.length === 0) throw new Error(`no package matching ${kernel.pattern} in ${kernel.from}`);
  const pkg = names[0];
  const dl = join(CACHE, 'kernels', `${kernel.id}.download`);
  rmSync(dl, { recursive: true, force: true });
  mkdirSync(dl, { recursive: true });
  await retry(`download ${pkg}`, () => sh('apt-get', [...aptOptions(), 'download', pkg], { cwd: dl }));
  const deb = readdirSync(dl).find((f) => f.endsWith('.deb'));
  const version = sh('dpkg-deb', ['--field', join(dl, deb), 'Version']).trim();
  sh('sh', ['-c', `dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" ./boot`, 'x', join(dl, deb), dl]);
  const boot = readdirSync(join(dl, 'boot'));
  const pick = (prefix) => {
    const f = boot.find((n) => n.startsWith(prefix));
    if (!f) throw new Error(`${pkg} has no /boot/${prefix}*`);
    return join(dl, 'boot', f);
  };
  const staged = join(CACHE, 'kernels', `${kernel.id}.new`);
  rmSync(staged, { recursive: true, force: true });
  mkdirSync(staged);
  renameSync(pick('vmlinuz-'), join(staged, 'vmlinuz'));
  renameSync(pick('config-'), join(staged, 'config'));
  const info = { pkg, version, vmlinuz: join(dir, 'vmlinuz'), config: join(dir, 'config') };
  writeFileSync(join(staged, 'kernel.json'), JSON.stringify(info, null, 2));
  rmSync(dl, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  renameSync(staged, dir);
  say(`kernel ${kernel.id}: ${pkg} ${version}`);
  return info;
}

/** What the kernel's build config says about the features the boot test needs, or why it cannot work. */
export function kernelProblems(info) {
  const config = readFileSync(info.config, 'utf8');
  const set = (opt) => new RegExp(`^${opt}=y$`, 'm').test(config);
  const problems = [];
  if (!set('CONFIG_BPF_SYSCALL')) problems.push('CONFIG_BPF_SYSCALL is not set: no bpf() at all');
  if (!set('CONFIG_DEBUG_INFO_BTF')) problems.push('CONFIG_DEBUG_INFO_BTF is not set: no kernel BTF, so BPF iterators cannot load');
  if (!set('CONFIG_BLK_DEV_INITRD')) problems.push('CONFIG_BLK_DEV_INITRD is not set: the root file system is an initramfs');
  if (!set('CONFIG_SERIAL_8250_CONSOLE')) problems.push('CONFIG_SERIAL_8250_CONSOLE is not set: no serial console to read results from');
  return { problems, preload: set('CONFIG_BPF_PRELOAD'), btf: set('CONFIG_DEBUG_INFO_BTF') };
}
