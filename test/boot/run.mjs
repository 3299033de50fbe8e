#!/usr/bin/env node
// `npm run test:boot`: boots Debian's cloud kernels (lib/kernels.mjs: 5.10,
// 6.1, 6.12 and the newest on x86-64, 6.12 on arm64), and two kernels built
// here from Debian's 6.12 and 6.1 sources with the kernel's own BPF preload
// (lib/kbuild.mjs: 6.12-preload, 6.1-preload), under qemu with a Debian
// root file system of the kernel's architecture (Debian's own nodejs and
// libbpf1), into which this project's .deb was installed with apt (its
// maintainer scripts enable the unit), and reads the in-guest checks
// (test/boot/guest/check.ts) off each serial console. Ends with `N passed, N failed`; exits non-zero on
// any failure.
//
//   node test/boot/run.mjs [KERNEL...]     e.g. `node test/boot/run.mjs 6.12 arm64-6.12`
//   node test/boot/run.mjs --install-host-tools   installs what the boot test
//       needs on the host with apt-get, and exits (`npm run deps` runs it; the
//       boot test itself installs nothing: it names what is missing)
//
// Environment:
//   BPF_PRELOAD_BOOT_CACHE       cache directory (default /var/cache/bpf-preload-boot)
//   BPF_PRELOAD_BOOT_REFRESH=1   look for newer kernel packages than the cached ones
//   BPF_PRELOAD_BOOT_NO_BUILD=1  use dist/bpf-preload.js as it is instead of `npm run build`
//   BPF_PRELOAD_BOOT_JOBS        guests at once (default 2)
//   BPF_PRELOAD_BOOT_TIMEOUT     seconds per x86-64 guest (default 420; arm64 guests get 2.5 times that)
//   BPF_PRELOAD_BOOT_VERBOSE=1   print every INFO line the guests send
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { ARCHES, HOST_ARCH, binfmtName } from './lib/arch.mjs';
import { BUILD_HEADERS, BUILD_TOOLS, buildKernel } from './lib/kbuild.mjs';
import { KERNELS, fetchKernel, kernelProblems } from './lib/kernels.mjs';
import { buildPayload, loadTsModule } from './lib/payload.mjs';
import { boot } from './lib/qemu.mjs';
import { baseRootfs } from './lib/rootfs.mjs';
import { CACHE, StepError, has, retry, say, sh, step } from './lib/util.mjs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const installHostTools = process.argv[2] === '--install-host-tools';
const wanted = process.argv.slice(installHostTools ? 3 : 2);
const kernels = wanted.length ? KERNELS.filter((k) => wanted.includes(k.id)) : KERNELS;
if (kernels.length !== (wanted.length || KERNELS.length)) {
  console.error(`boot: unknown kernel in ${wanted.join(' ')}; known: ${KERNELS.map((k) => k.id).join(' ')}`);
  process.exit(2);
}
const jobs = Number(process.env.BPF_PRELOAD_BOOT_JOBS ?? 2);
const timeoutMs = Number(process.env.BPF_PRELOAD_BOOT_TIMEOUT ?? 420) * 1000;

let passed = 0;
let failed = 0;
function result(ok, name, why = '') {
  if (ok) passed++;
  else failed++;
  console.log(ok ? `  PASS ${name}` : `  FAIL ${name}: ${why}`);
}

const strip = (s) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1bc|\r/g, '');
function showLog(path, lines = 80) {
  if (!existsSync(path)) return console.log(`  | (no console log at ${path})`);
  const text = strip(readFileSync(path, 'utf8')).split('\n').slice(-lines);
  console.log(`  | --- last ${text.length} lines of the guest console (${path}) ---`);
  for (const l of text) console.log(`  | ${l}`);
}

/** Host tools; installed from Debian's archive by --install-host-tools (CI machines start without them). */
async function hostTools() {
  // debootstrap, cpio archives with root-owned files, and apt all need root.
  if (process.getuid?.() !== 0) throw new Error('the boot test must run as root (debootstrap, apt-get, root-owned guest files)');
  // The package build (build/package.ts) needs dpkg-dev and llvm's tools.
  const need = {
    debootstrap: 'debootstrap',
    cpio: 'cpio',
    clang: 'clang',
    unshare: 'util-linux',
    'dpkg-shlibdeps': 'dpkg-dev',
    'llvm-strip': 'llvm',
    'llvm-readelf': 'llvm',
  };
  for (const arch of new Set(kernels.map((k) => ARCHES[k.arch]))) {
    need[arch.qemu.binary] = arch.qemu.package;
    // A foreign root file system is configured through qemu-user (lib/rootfs.mjs).
    if (arch.deb !== HOST_ARCH) Object.assign(need, { [`${binfmtName(arch)}-static`]: 'qemu-user-static', 'update-binfmts': 'binfmt-support' });
  }
  // The kernels with the kernel's own preload are compiled here (lib/kbuild.mjs).
  if (kernels.some((k) => k.source)) Object.assign(need, BUILD_TOOLS);
  const missing = [
    ...new Set(
      Object.entries(need)
        .filter(([cmd]) => !has(cmd))
        .map(([, pkg]) => pkg),
    ),
  ];
  if (kernels.some((k) => k.source))
    missing.push(
      ...Object.entries(BUILD_HEADERS)
        .filter(([file]) => !existsSync(file))
        .map(([, pkg]) => pkg),
    );
  if (!has('systemd-analyze')) missing.push('systemd');
  if (!missing.length) return;
  if (!installHostTools) throw new Error(`missing ${missing.join(' ')}: run npm run deps as root (it runs apt-get install ${missing.join(' ')})`);
  say(`installing ${missing.join(' ')} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await retry('apt-get install', () => {
    sh('apt-get', ['update', '-qq'], { env });
    sh('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env });
  });
}

/** systemd accepts the unit src/cli/unit.ts renders (install-unit writes it). */
function unitChecks(unit) {
  // verify checks ExecStart's binary exists; point it at this machine's node.
  const tmp = join(CACHE, 'run', unit.UNIT_NAME);
  writeFileSync(tmp, unit.renderUnit(join(repo, 'dist/bpf-preload.js'), process.execPath));
  let why = '';
  try {
    const out = sh('systemd-analyze', ['verify', tmp], { stdio: ['ignore', 'pipe', 'pipe'] });
    if (out.trim()) why += `${tmp}: ${out.trim()} `;
  } catch (err) {
    why += `${tmp}: ${err.log ?? err.message} `;
  }
  result(why === '', 'host unit-systemd-analyze-verify', why);
}

/**
 * The package's Depends for koffi's libraries come from this machine's
 * symbols files (build/shlibdeps.ts); the architecture's own, in its root
 * file system, must give the same.
 */
function dependsMatchTarget(shlibdeps, layout, arch, base) {
  const module = join(repo, 'node_modules/koffi/build/koffi', layout.KOFFI_DIR_OF_ARCH[arch.deb], 'koffi.node');
  let built;
  let target;
  try {
    built = shlibdeps.libraryDepends(module).join(', ');
    target = shlibdeps.libraryDepends(module, { admindir: join(base.dir, 'var/lib/dpkg'), arch: arch.deb }).join(', ');
  } catch (err) {
    return result(false, `host ${arch.deb} depends-match-target-symbols`, err.message);
  }
  result(built === target, `host ${arch.deb} depends-match-target-symbols`, `from this machine: ${built}; from ${arch.deb}'s own symbols files: ${target}`);
}

async function bootKernel(kernel, info, initrd, logDir) {
  const id = kernel.id;
  const arch = ARCHES[kernel.arch];
  const { problems } = kernelProblems(info, kernel.arch);
  if (problems.length) {
    return { id, info, lines: [], fatal: `${info.pkg} cannot run the boot test: ${problems.join('; ')}` };
  }
  const log = join(logDir, `${id}.console.log`);
  rmSync(log, { force: true });
  const append = [
    `console=${arch.console.device}`,
    'rdinit=/lib/systemd/systemd',
    'panic=-1',
    'quiet',
    'loglevel=4',
    `boottest.cur_entries=${kernel.curEntries ? 1 : 0}`,
    `boottest.light=${kernel.light ? 1 : 0}`,
    // Built here with the kernel's own preload: the guest compares ours with its files.
    `boottest.preload=${kernel.source ? 1 : 0}`,
  ].join(' ');
  const smp = Number(process.env.BPF_PRELOAD_BOOT_SMP ?? 1);
  let r;
  let text = '';
  // A console with not one line on it (not even the kernel's) is qemu or the
  // host failing, never the project: that gets one more try.
  for (let attempt = 1; attempt <= 2; attempt++) {
    say(`${id}: booting ${info.pkg} ${info.version}${attempt > 1 ? ' (again: the console stayed empty)' : ''}`);
    r = await boot({ arch, kernel: info.vmlinuz, initrd, append, log, timeoutMs: timeoutMs * arch.timeoutScale, smp });
    text = existsSync(log) ? strip(readFileSync(log, 'utf8')) : '';
    if (text.trim() || r.timedOut) break;
  }
  const lines = [...text.matchAll(/BOOTTEST: (PASS|FAIL|INFO|DONE) ?(.*)/g)].map((m) => ({ kind: m[1], text: m[2] }));
  say(`${id}: guest ran ${r.seconds.toFixed(1)}s`);
  let fatal = '';
  if (r.timedOut) fatal = `timed out after ${(timeoutMs * arch.timeoutScale) / 1000}s (step: guest boot and checks)`;
  else if (!lines.some((l) => l.kind === 'DONE')) {
    const qemuSaid = existsSync(`${log}.qemu`) ? readFileSync(`${log}.qemu`, 'utf8').trim().replaceAll('\n', ' | ') : '';
    fatal = `qemu exited (${r.code}) before the checks finished (step: guest boot and checks)${qemuSaid ? `; qemu said: ${qemuSaid}` : ''}`;
  }
  return { id, info, lines, fatal, log, seconds: r.seconds };
}

function report(kernel, res) {
  const took = res.seconds === undefined ? '' : `, ${res.seconds.toFixed(1)}s`;
  console.log(`\nkernel ${kernel.id} (${kernel.arch}${res.info ? ` ${res.info.pkg} ${res.info.version}` : ''}${took}):`);
  let bad = false;
  for (const l of res.lines) {
    if (l.kind === 'PASS') result(true, `${kernel.id} ${l.text}`);
    else if (l.kind === 'FAIL') {
      bad = true;
      const [name, ...why] = l.text.split(': ');
      result(false, `${kernel.id} ${name}`, why.join(': '));
    } else if (l.kind === 'INFO' && process.env.BPF_PRELOAD_BOOT_VERBOSE) console.log(`    ${l.text}`);
  }
  const infos = res.lines.filter((l) => l.kind === 'INFO' && !l.text.startsWith('  ') && !/\.debug\|/.test(l.text));
  for (const l of infos) console.log(`    ${l.text}`);
  if (res.fatal) {
    bad = true;
    result(false, `${kernel.id} boot`, res.fatal);
  } else result(true, `${kernel.id} boot`);
  if (bad && res.log) {
    // The unit's own messages and the files' contents, then the console's end.
    for (const l of res.lines.filter((x) => x.kind === 'INFO' && (x.text.startsWith('  ') || /\.debug\|/.test(x.text)))) {
      console.log(`    ${l.text}`);
    }
    showLog(res.log);
  }
}

async function main() {
  // The build scripts and the modules loaded below read package.json from the checkout.
  process.chdir(repo);
  const work = join(CACHE, 'run');
  const logDir = join(CACHE, 'logs');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  mkdirSync(logDir, { recursive: true });

  await step('host tools', hostTools);
  const unit = await step('unit module', () => loadTsModule(repo, work, 'src/cli/unit.ts'));
  const layout = await step('package layout', () => loadTsModule(repo, work, 'build/deb-layout.ts'));
  const bundle = await step('bundle options', () => loadTsModule(repo, work, 'build/bundle-options.ts'));
  const shlibdeps = await step('shlibdeps', () => loadTsModule(repo, work, 'build/shlibdeps.ts'));
  unitChecks(unit);
  // The guests get what the checkout builds to now, never a stale dist/.
  await step('build project (npm run build)', () => {
    if (!process.env.BPF_PRELOAD_BOOT_NO_BUILD) sh('npm', ['run', '-s', 'build'], { cwd: repo });
    if (!existsSync(join(repo, 'dist/bpf-preload.js'))) throw new Error('no dist/bpf-preload.js');
  });
  // One root file system and payload per architecture, built side by side and
  // while the kernels download; each guest boots as soon as its own is ready.
  const initrds = new Map();
  for (const name of new Set(kernels.map((k) => k.arch))) {
    const arch = ARCHES[name];
    const ready = (async () => {
      const base = await step(`root file system ${arch.suite} ${name} (debootstrap)`, () => baseRootfs(arch));
      dependsMatchTarget(shlibdeps, layout, arch, base);
      const payload = await step(`package ${name} (build/package.ts, apt-get install in a chroot)`, () =>
        buildPayload({ repo, workDir: work, arch, base, layout, bundle }),
      );
      say(`${name}: ${layout.PACKAGE} ${payload.settings.version} installed on nodejs ${payload.settings.nodejsVersion}; package layer ${payload.sizeKiB} KiB`);
      const initrd = join(work, `initrd-${name}.cpio`);
      await step(`initrd ${name}`, async () => {
        const out = createWriteStream(initrd);
        for (const part of [base.cpio, payload.cpio]) await pipeline(createReadStream(part), out, { end: false });
        out.end();
        await new Promise((r) => out.on('close', () => r(undefined)));
      });
      return initrd;
    })();
    // Waited for by that architecture's guests; a failure is reported on each of them.
    ready.catch(() => {});
    initrds.set(name, ready);
  }
  const done = new Set();
  for (const [name, ready] of initrds)
    ready.then(
      () => done.add(name),
      () => done.add(name),
    );
  const infos = new Map();
  for (const k of kernels) {
    const what = k.source ? `kernel ${k.id} (built from ${k.source}, cached)` : `fetch kernel ${k.id}`;
    infos.set(k.id, await step(what, () => (k.source ? buildKernel(k) : fetchKernel(k))));
  }

  const results = new Map();
  // Slowest guests first, so the last one to finish is a quick one; but never
  // wait for one architecture's root file system while another's is ready.
  const queue = [...kernels].sort((a, b) => ARCHES[b.arch].timeoutScale - ARCHES[a.arch].timeoutScale);
  const next = () => {
    const i = Math.max(
      0,
      queue.findIndex((k) => done.has(k.arch)),
    );
    return queue.splice(i, 1)[0];
  };
  await Promise.all(
    Array.from({ length: Math.max(1, jobs) }, async () => {
      for (let k = next(); k; k = next()) {
        const kernel = k;
        const info = infos.get(kernel.id);
        let initrd;
        try {
          initrd = await initrds.get(kernel.arch);
        } catch (err) {
          results.set(kernel.id, { id: kernel.id, info, lines: [], fatal: err.message });
          continue;
        }
        results.set(
          kernel.id,
          await bootKernel(kernel, info, initrd, logDir).catch((err) => ({
            id: kernel.id,
            info,
            lines: [],
            fatal: `qemu: ${err.message}`,
          })),
        );
      }
    }),
  );
  for (const k of kernels) report(k, results.get(k.id));
  rmSync(work, { recursive: true, force: true });
}

if (installHostTools) {
  try {
    await hostTools();
    process.exit(0);
  } catch (err) {
    console.error(`boot: ${err.message}`);
    process.exit(1);
  }
}
try {
  await main();
} catch (err) {
  const stepName = err instanceof StepError ? err.step : 'harness';
  result(false, `step "${stepName}"`, err.message);
  if (err.log) for (const l of String(err.log).split('\n')) console.log(`  | ${l}`);
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
