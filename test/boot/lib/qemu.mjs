// Booting one guest under qemu's software emulation (no KVM on these
// machines), with the serial console going to a log file, a hard timeout, and
// no qemu left behind when the harness exits.
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { track } from './util.mjs';

/**
 * Boots `kernel` on the emulated machine of `arch` (an ARCHES entry) with
 * `initrd` as its root file system and resolves once the guest powers off or
 * `timeoutMs` passes: { code, timedOut, seconds }.
 */
export function boot({ arch, kernel, initrd, append, log, timeoutMs, smp = 1, memMiB = 1536 }) {
  const args = [
    ...arch.qemu.args,
    '-accel',
    'tcg',
    '-smp',
    String(smp),
    '-m',
    String(memMiB),
    '-kernel',
    kernel,
    '-initrd',
    initrd,
    '-append',
    append,
    '-nodefaults',
    '-no-reboot',
    '-display',
    'none',
    '-monitor',
    'none',
    '-nic',
    'none',
    '-serial',
    `file:${log}`,
  ];
  const out = openSync(`${log}.qemu`, 'w');
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const child = track(spawn(arch.qemu.binary, args, { stdio: ['ignore', out, out], detached: true }));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      closeSync(out);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      closeSync(out);
      resolve({ code: code ?? signal, timedOut, seconds: (Date.now() - start) / 1000 });
    });
  });
}
