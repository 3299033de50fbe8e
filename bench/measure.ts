// One measured run of a command, through the rusage helper: exact wall time
// (fork to reap, without Node's spawn overhead), the child's user and system
// CPU time, and its peak RSS, all from wait4().
import { spawnSync } from 'node:child_process';

export interface Sample {
  wallMs: number;
  userMs: number;
  sysMs: number;
  /** user + sys */
  cpuMs: number;
  maxRssKiB: number;
}

export function measure(rusage: string, cmd: string[]): Sample {
  const r = spawnSync(rusage, cmd, { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`rusage ${cmd.join(' ')}: ${r.stderr || r.error?.message}`);
  const [wallNs, userUs, sysUs, rss, status] = r.stdout.trim().split(/\s+/).map(Number);
  if (status !== 0) {
    throw new Error(`${cmd.join(' ')} exited ${status}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
  return {
    wallMs: wallNs / 1e6,
    userMs: userUs / 1e3,
    sysMs: sysUs / 1e3,
    cpuMs: (userUs + sysUs) / 1e3,
    maxRssKiB: rss,
  };
}
