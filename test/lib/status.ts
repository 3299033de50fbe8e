// What `bpf-preload status --json` says, as the tests read it, and the count
// of our programs alive that every series ends with.
import { runCli } from './cli.js';
import { eventually, ourPrograms } from './kernel.js';

export interface StatusJson {
  bpffs: string;
  files: { name: string; path: string; state: string; linkId: number | null; progId: number | null; kernelPreload: boolean }[];
  running: number | null;
  interrupted: null | {
    op: string;
    pid: number;
    dir: string;
    mode: string;
    recordedMode: string;
    temporaryPins: string[];
    untrusted: string | null;
    repair: string;
  };
  notOurs: { path: string; what: string; owner: number; why: string }[];
  untrusted: string | null;
}

export function statusOf(dir: string): StatusJson {
  const r = runCli(['status', '--bpffs', dir, '--json']);
  if (r.code !== 0) throw new Error(`status failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusJson;
}

/**
 * Whether exactly the pair pinned in `dir` is alive of our programs loaded
 * after `since` (a pin shows under both the bind mount `dir` and the mount
 * `root` behind it), waiting for the kernel to free replaced ones. Returns
 * the ids found, for the message.
 */
export async function onePairAlive(since: number, dir: string, root: string): Promise<{ ok: boolean; found: number[] }> {
  const pair = new Set(statusOf(dir).files.map((f) => f.progId));
  const mine = (path: string) => path.startsWith(dir + '/') || path.startsWith(root + '/');
  let found: number[] = [];
  const ok = await eventually(() => {
    found = ourPrograms(since, mine).map((p) => p.id);
    return found.length === 2 && found.every((id) => pair.has(id));
  }, 10000);
  return { ok, found };
}
