// What goes into every guest on top of the base root file system: the
// project laid out as `npm install -g` would (built CLI, koffi with the
// guest architecture's native module), this machine's node where the guest
// runs the same architecture and has no usable nodejs of its own, the unit
// installed and enabled by src/unit.ts, and the in-guest check with its BPF
// fixture (BPF bytecode is the same for every architecture). Packed as a
// second cpio archive; the kernel unpacks concatenated archives one over the other.
import { build } from 'esbuild';
import { chmodSync, copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packCpio } from './rootfs.mjs';
import { sh } from './util.mjs';

export const GUEST_PREFIX = '/usr/lib/node_modules/bpf-preload';
export const GUEST_CLI = `${GUEST_PREFIX}/dist/bpf-preload.js`;
export const GUEST_NODE = '/usr/bin/node';

/** Bundles src/unit.ts for the harness's own use (it is TypeScript; this runs as plain node). */
export async function loadUnitModule(repo, workDir) {
  const out = join(workDir, 'unit.mjs');
  await build({ entryPoints: [join(repo, 'src/unit.ts')], outfile: out, bundle: true, platform: 'node', format: 'esm', logLevel: 'warning' });
  return import(pathToFileURL(out).href);
}

/** Host node must find its shared libraries in the guest (same Debian release: it does). */
function checkNodeLibs(nodeBin, guestLibs) {
  const needed = sh('ldd', [nodeBin])
    .split('\n')
    .map((l) => /^\s*(\S+\.so\S*) =>/.exec(l)?.[1])
    .filter(Boolean);
  const missing = needed.filter((lib) => !guestLibs.includes(lib));
  if (missing.length) throw new Error(`${nodeBin} needs ${missing.join(', ')}, which the guest root file system lacks`);
}

/**
 * Builds the payload archive for `arch` (an ARCHES entry) in `workDir` and
 * gives its path. `repo` is the checkout; its dist/bpf-preload.js must exist
 * (the harness builds it). `guestLibs`: the shared libraries of the base root
 * file system.
 */
export async function buildPayload({ repo, workDir, arch, guestLibs, unit }) {
  const stage = join(workDir, `payload-${arch.deb}`);
  rmSync(stage, { recursive: true, force: true });
  const prefix = join(stage, GUEST_PREFIX);
  mkdirSync(join(prefix, 'dist'), { recursive: true });
  mkdirSync(join(stage, 'usr/bin'), { recursive: true });

  if (arch.node === 'host') {
    const nodeBin = realpathSync(process.execPath);
    checkNodeLibs(nodeBin, guestLibs);
    copyFileSync(nodeBin, join(stage, GUEST_NODE));
    chmodSync(join(stage, GUEST_NODE), 0o755);
  }

  copyFileSync(join(repo, 'package.json'), join(prefix, 'package.json'));
  copyFileSync(join(repo, 'dist/bpf-preload.js'), join(stage, GUEST_CLI));
  chmodSync(join(stage, GUEST_CLI), 0o755);
  symlinkSync(relative(join(stage, 'usr/bin'), join(stage, GUEST_CLI)), join(stage, 'usr/bin/bpf-preload'));
  // koffi ships prebuilt modules for every platform; the guest needs its own.
  const koffi = join(prefix, 'node_modules/koffi');
  cpSync(join(repo, 'node_modules/koffi'), koffi, { recursive: true });
  const builds = join(koffi, 'build/koffi');
  if (!existsSync(join(builds, arch.koffi, 'koffi.node'))) throw new Error(`koffi has no prebuilt module for ${arch.deb} (${builds}/${arch.koffi}/koffi.node)`);
  for (const d of readdirSync(builds)) if (d !== arch.koffi) rmSync(join(builds, d), { recursive: true, force: true });
  for (const d of ['src', 'vendor', 'doc']) rmSync(join(koffi, d), { recursive: true, force: true });

  // The in-guest check, bundled with the project's libbpf bindings (koffi stays external).
  const testDir = join(prefix, 'boottest');
  await build({
    entryPoints: [join(repo, 'test/boot/guest/check.ts')],
    outfile: join(testDir, 'check.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['koffi'],
    logLevel: 'warning',
  });
  sh('clang', [
    '-O2', '-g', '-target', 'bpf', `-I/usr/include/${sh('uname', ['-m']).trim()}-linux-gnu`,
    '-c', join(repo, 'test/boot/guest/attach.bpf.c'), '-o', join(testDir, 'attach.bpf.o'),
  ]);

  // The project's unit, written and enabled the way `bpf-preload install-unit` does it.
  unit.installUnit({ root: stage, cliPath: GUEST_CLI, nodePath: GUEST_NODE, now: false });
  const wants = join(stage, 'etc/systemd/system', `${unit.WANTED_BY}.wants`, unit.UNIT_NAME);
  // An absolute link into the guest's /etc: dangling here, so lstat, not exists.
  if (!lstatSync(wants, { throwIfNoEntry: false })?.isSymbolicLink()) throw new Error(`installUnit did not enable the unit (no ${wants})`);
  // The test's own unit.
  const units = join(stage, 'etc/systemd/system');
  copyFileSync(join(repo, 'test/boot/guest/bpf-preload-boottest.service'), join(units, 'bpf-preload-boottest.service'));
  mkdirSync(join(units, 'multi-user.target.wants'), { recursive: true });
  symlinkSync('../bpf-preload-boottest.service', join(units, 'multi-user.target.wants/bpf-preload-boottest.service'));

  const out = join(workDir, `payload-${arch.deb}.cpio`);
  await packCpio(stage, out);
  rmSync(stage, { recursive: true, force: true });
  return out;
}
