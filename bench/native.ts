// The bench's native side: the system packages it needs (installed with
// apt-get when missing and we are root) and its C helpers, compiled with gcc
// against the system libbpf into a temporary directory.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

let aptUpdated = false;

/** Installs Debian packages; returns false (with the reason on stderr) if it cannot. */
function aptInstall(pkgs: string[], why: string): boolean {
  if (process.getuid?.() !== 0 || !have('apt-get')) {
    console.error(`bench: ${why} needs ${pkgs.join(' ')}: install them as root (apt-get install ${pkgs.join(' ')})`);
    return false;
  }
  console.error(`bench: installing ${pkgs.join(' ')} for ${why} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    aptUpdated = true;
  }
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env,
  });
  return r.status === 0;
}

/** Makes sure gcc, libbpf's headers, bpftool and curl (the exporter's scrapes) are there; throws if they cannot be had. */
export function ensureBuildDeps(): void {
  const missing: string[] = [];
  if (!have('gcc')) missing.push('gcc');
  if (!have('curl')) missing.push('curl');
  if (!existsSync('/usr/include/bpf/libbpf.h')) missing.push('libbpf-dev');
  if (!have('bpftool')) missing.push('bpftool');
  if (missing.length > 0 && !aptInstall(missing, 'the benchmark')) {
    throw new Error(`missing ${missing.join(', ')}: install them (apt-get install ${missing.join(' ')}) and rerun`);
  }
}

/** The SVG-to-PNG converter, installing librsvg2-bin if needed; null if it cannot be had. */
export function pngConverter(): string | null {
  if (have('rsvg-convert')) return 'rsvg-convert';
  return aptInstall(['librsvg2-bin'], 'the PNG plot') && have('rsvg-convert') ? 'rsvg-convert' : null;
}

export interface Helpers {
  /** Runs a command, prints its wall time, CPU time and peak RSS (rusage.c). */
  rusage: string;
  /** The reference C loader (loader.c). */
  loader: string;
  /** Holds N programs and maps loaded (objects.c). */
  objects: string;
  /** The ring buffer producer and C reference consumer (ringbuf.c). */
  ringbuf: string;
}

export function compileHelpers(benchDir: string, outDir: string): Helpers {
  const build = (name: string): string => {
    const out = join(outDir, name);
    const r = spawnSync('gcc', ['-O2', '-Wall', '-o', out, join(benchDir, `${name}.c`), '-lbpf'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`gcc ${name}.c failed:\n${r.stderr}`);
    return out;
  };
  return { rusage: build('rusage'), loader: build('loader'), objects: build('objects'), ringbuf: build('ringbuf') };
}
