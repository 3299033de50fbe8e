// What every in-guest check shares: the settings the harness wrote, the
// console protocol the host harness reads (`BOOTTEST: PASS name`,
// `BOOTTEST: FAIL name: why`, `BOOTTEST: INFO ...`), and reading the files as
// a user would.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { DEFAULT_BPFFS as BPFFS } from '../../../src/preload/transaction/bpffs.js';
import { MAPS_HEADER_COMPAT, PROGS_HEADER } from '../../lib/listing.js';
import { run } from '../../../harness/command.mjs';

export const PROGS = `${BPFFS}/progs.debug`;
export const MAPS = `${BPFFS}/maps.debug`;

/** What the harness (test/boot/lib/payload.mjs) installed, from build/deb-layout.ts. */
export interface Settings {
  package: string;
  version: string;
  upgradeVersion: string;
  /** The same package rebuilt with upgradeVersion, beside this script. */
  upgradeDeb: string;
  /** The package's command, its node, and its unit file. */
  cli: string;
  node: string;
  unitPath: string;
  /** The version of the root file system's nodejs package. */
  nodejsVersion: string;
}
export const settings = JSON.parse(readFileSync(new URL('./boottest.json', import.meta.url), 'utf8')) as Settings;

let passed = 0;
let failed = 0;
/** The counts so far, for the DONE line. */
export const counts = () => ({ passed, failed });
export const emit = (line: string) => writeSync(1, `BOOTTEST: ${line}\n`);
export const info = (line: string) => emit(`INFO ${line}`);
export function check(name: string, ok: boolean, why = ''): boolean {
  if (ok) passed++;
  else failed++;
  emit(ok ? `PASS ${name}` : `FAIL ${name}: ${why.replaceAll('\n', ' | ')}`);
  return ok;
}
export function attempt(name: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    check(name, false, `threw: ${(err as Error).message}`);
  }
}

/** `cat FILE`, as a user would: iterator files are read start to end, never seeked. */
export function cat(path: string): { ok: boolean; text: string; why: string } {
  const r = run('cat', [path]);
  return { ok: r.code === 0, text: r.stdout, why: r.stderr.trim() || `exit ${r.code}` };
}

/**
 * Reads both files with cat in a loop until told to stop, as a user's
 * script might; a read counts as good when cat succeeds and the text starts
 * with the file's header. Returns how to stop it and get the counts.
 * `progs` and `maps`: the files, /sys/fs/bpf's by default.
 */
export function startReader(
  dir: string,
  progs = PROGS,
  maps = MAPS,
): { started: () => boolean; stop: () => Promise<{ good: number; bad: number; errors: string }> } {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const script = `
    good=0 bad=0
    while [ ! -e "$DIR/stop" ]; do
      for f in "$PROGS" "$MAPS"; do
        if out=$(cat "$f" 2>>"$DIR/errors") && case "$out" in "$PROGS_HEADER"* | "$MAPS_HEADER"*) true ;; *) false ;; esac; then
          good=$((good + 1))
        else
          bad=$((bad + 1)); echo "$f: $(printf %s "$out" | head -n 1)" >>"$DIR/errors"
        fi
      done
      [ -e "$DIR/started" ] || : >"$DIR/started"
    done
    echo "$good $bad"
  `;
  const child = spawn('sh', ['-c', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, DIR: dir, PROGS: progs, MAPS: maps, PROGS_HEADER, MAPS_HEADER: MAPS_HEADER_COMPAT },
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return {
    started: () => existsSync(`${dir}/started`),
    stop: async () => {
      writeFileSync(`${dir}/stop`, '');
      await exited;
      const [good, bad] = out.trim().split(' ').map(Number);
      const errors = existsSync(`${dir}/errors`) ? readFileSync(`${dir}/errors`, 'utf8').trim() : '';
      rmSync(dir, { recursive: true, force: true });
      return { good: good ?? 0, bad: bad ?? -1, errors };
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
