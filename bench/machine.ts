// The facts a reader needs to weigh the figures: CPU, kernel, versions, date.
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';

export interface Machine {
  date: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  libbpf: string;
  bpftool: string;
  runnerVersion: string;
  runnerBytes: number;
  /** 1-minute load average when the bench started. */
  loadStart: string;
}

/** The 1-minute load average, as the kernel prints it. */
export function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
  } catch {
    return 'unknown';
  }
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split('\n')[0] : 'unknown';
}

export function describeMachine(runner: string): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpu;
  } catch {
    // keep os.cpus()' answer
  }
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpu,
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    libbpf: firstLine('dpkg-query', ['-W', '-f', '${Version}', 'libbpf1']),
    bpftool: firstLine('bpftool', ['version']),
    runnerVersion: firstLine(process.execPath, [runner, '--version']),
    runnerBytes: statSync(runner).size,
    loadStart: loadAverage(),
  };
}
