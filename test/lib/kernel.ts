// Facts read from the running kernel and bpftool, for assertions.
import { spawnSync } from 'node:child_process';

export interface BpftoolProg {
  id: number;
  name?: string;
  type: string;
  map_ids?: number[];
}

export interface BpftoolMap {
  id: number;
  name?: string;
  type: string;
  max_entries: number;
}

function bpftoolJson<T>(args: string[]): T {
  const r = spawnSync('bpftool', ['--json', ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`bpftool ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export const bpftoolProgs = () => bpftoolJson<BpftoolProg[]>(['prog', 'show']);
export const bpftoolMaps = () => bpftoolJson<BpftoolMap[]>(['map', 'show']);

/** Polls until `pred` holds (the kernel frees programs asynchronously), up to `ms`. */
export async function eventually(pred: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (pred()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}
