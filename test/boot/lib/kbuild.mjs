// The boot test's reference kernels with the kernel's own BPF preload
// (CONFIG_BPF_PRELOAD=y, CONFIG_BPF_PRELOAD_UMD=y), built here from Debian's
// linux-source-X.Y package: none of Debian's binary kernels has the preload.
// The config is `make tinyconfig`, the kernel's own kvm_guest.config and our
// fragment (test/boot/preload-kernel.config): Debian's cloud config compiles
// thousands of files (most of an hour on two cores), tinyconfig only what the
// guests use. The result is cached under CACHE/kernels/<id>, keyed by the
// source package's version and the recipe (base, fragment, make targets); a
// warm run never rebuilds, nor asks the network.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptUpdate, candidateVersion, download } from './kernels.mjs';
import { CACHE, say, shAsync } from './util.mjs';

export const FRAGMENT = resolve(dirname(fileURLToPath(import.meta.url)), '../preload-kernel.config');
const ARCH = 'x86_64';
/** What goes into the config, in order: a make target, then the fragments merged onto it. */
const BASE = 'tinyconfig';
const MERGED = ['kernel/configs/kvm_guest.config', FRAGMENT];
const IMAGE = 'arch/x86/boot/bzImage';
/** Host commands the build needs, and the Debian package of each. */
export const BUILD_TOOLS = { gcc: 'gcc', make: 'make', flex: 'flex', bison: 'bison', bc: 'bc', pahole: 'dwarves', xz: 'xz-utils', perl: 'perl' };
/** Headers the build needs (objtool, the certificate tools), and their packages. */
export const BUILD_HEADERS = { '/usr/include/libelf.h': 'libelf-dev', '/usr/include/openssl/ssl.h': 'libssl-dev' };

/**
 * The recipe's hash: a change to the fragment, the kernel's own extra
 * options (`kernel.config`), the base or the steps makes a new kernel.
 */
function recipeKey(kernel) {
  const merged = MERGED.map((f) => (f === FRAGMENT ? readFileSync(f, 'utf8') : f));
  if (kernel.config?.length) merged.push(kernel.config.join('\n'));
  const recipe = JSON.stringify({ v: 1, ARCH, BASE, merged, IMAGE });
  return createHash('sha256').update(recipe).digest('hex').slice(0, 12);
}

/** `CONFIG_X=y` lines of the fragment and the kernel's extras that the final .config does not have. */
function lostOptions(kernel, config) {
  const wanted = [...readFileSync(FRAGMENT, 'utf8').split('\n'), ...(kernel.config ?? [])].filter((l) => /^CONFIG_\w+=/.test(l));
  const have = new Set(config.split('\n'));
  return wanted.filter((l) => !have.has(l));
}

/**
 * Gives { vmlinuz, config, pkg, version, recipe, buildSeconds } for `kernel`
 * (a KERNELS entry with `source`, the linux-source package, and `config`,
 * options of that kernel's own on top of the fragment), built when the
 * cache has no build of this recipe; BPF_PRELOAD_BOOT_REFRESH=1 also looks
 * for a newer source package.
 */
export async function buildKernel(kernel) {
  const dir = join(CACHE, 'kernels', kernel.id);
  const meta = join(dir, 'kernel.json');
  const recipe = recipeKey(kernel);
  const cached = existsSync(meta) ? JSON.parse(readFileSync(meta, 'utf8')) : null;
  if (cached?.recipe === recipe && !process.env.BPF_PRELOAD_BOOT_REFRESH) return cached;
  await aptUpdate();
  const version = candidateVersion(kernel.source, kernel.arch);
  if (!version) throw new Error(`no ${kernel.source} in Debian's archive (${kernel.from})`);
  if (cached?.recipe === recipe && cached.version === version) return cached;

  const work = join(CACHE, 'kernels', `${kernel.id}.build`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const deb = (await download([kernel.source], kernel.arch, work)).get(kernel.source);
  say(`${kernel.id}: unpacking ${kernel.source} ${version}`);
  // The package holds usr/src/<name>.tar.xz: the source tree as one archive.
  await shAsync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xO --wildcards "./usr/src/*.tar.xz" | tar -xJ -C "$2"', 'x', deb, work]);
  rmSync(deb);
  const src = join(work, kernel.source);
  if (!existsSync(join(src, 'Makefile'))) throw new Error(`${kernel.source} ${version} unpacked no ${kernel.source}/Makefile`);

  // make's output of a successful build, kept for the curious.
  const log = join(CACHE, 'kernels', `${kernel.id}.build.log`);
  const make = async (args) => {
    try {
      const out = await shAsync('nice', ['-n', '10', 'make', `ARCH=${ARCH}`, ...args], { cwd: src });
      writeFileSync(log, out, { flag: 'a' });
    } catch (err) {
      writeFileSync(log, err.log ?? '', { flag: 'a' });
      const failed = /** @type {Error & { log?: string }} */ (new Error(`${kernel.source} ${version}: ${err.message} (its last lines below)`));
      failed.log = err.log;
      throw failed;
    }
  };
  rmSync(log, { force: true });
  const start = Date.now();
  await make([BASE]);
  const extra = join(work, 'extra.config');
  writeFileSync(extra, (kernel.config ?? []).map((l) => `${l}\n`).join(''));
  await shAsync('scripts/kconfig/merge_config.sh', ['-m', '.config', ...MERGED, extra], { cwd: src, env: { ...process.env, ARCH } });
  await make(['olddefconfig']);
  const config = readFileSync(join(src, '.config'), 'utf8');
  const lost = lostOptions(kernel, config);
  if (lost.length)
    throw new Error(`${kernel.source} ${version} dropped options of ${FRAGMENT} or the kernel's own (their dependencies are missing): ${lost.join(' ')}`);
  say(`${kernel.id}: building ${kernel.source} ${version} (make -j2, log ${log})`);
  await make(['-j2', 'bzImage']);
  const buildSeconds = Math.round((Date.now() - start) / 1000);

  const staged = join(CACHE, 'kernels', `${kernel.id}.new`);
  rmSync(staged, { recursive: true, force: true });
  mkdirSync(staged);
  renameSync(join(src, IMAGE), join(staged, 'vmlinuz'));
  writeFileSync(join(staged, 'config'), config);
  const info = { pkg: kernel.source, version, recipe, buildSeconds, vmlinuz: join(dir, 'vmlinuz'), config: join(dir, 'config') };
  writeFileSync(join(staged, 'kernel.json'), JSON.stringify(info, null, 2));
  rmSync(dir, { recursive: true, force: true });
  renameSync(staged, dir);
  rmSync(work, { recursive: true, force: true });
  say(`kernel ${kernel.id}: built ${kernel.source} ${version} in ${buildSeconds}s`);
  return info;
}
