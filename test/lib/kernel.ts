// Facts read from the running kernel and bpftool, for assertions.
import { type BpftoolLink, type BpftoolProg, bpftoolJson, bpftoolProgs } from './bpftool.js';

export { type BpftoolMap, type BpftoolProg, bpftoolMaps, bpftoolProgs } from './bpftool.js';

/** Polls until `pred` holds (the kernel frees programs asynchronously), up to `ms`. */
export async function eventually(pred: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (pred()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The highest program id the kernel has handed out so far. */
export const lastProgId = () => Math.max(0, ...bpftoolProgs().map((p) => p.id));

/**
 * Our iterator programs loaded after `sinceId` that nothing keeps for a
 * reason: not behind a link that is pinned anywhere (bpftool --bpffs looks in
 * every mounted bpffs) or held by a process, and not held by a process
 * themselves. Anything listed is a leak: loaded until reboot.
 */
export function strayPrograms(sinceId: number): BpftoolProg[] {
  return ourPrograms(sinceId, () => false);
}

/**
 * Our iterator programs loaded after `sinceId`, less those that something
 * outside the test keeps: a link pinned at a path for which `mine(path)` is
 * false, or a process. What is left are the programs pinned where the test
 * looks, and strays; other tests or runs on the machine do not count.
 */
export function ourPrograms(sinceId: number, mine: (path: string) => boolean): BpftoolProg[] {
  const links = bpftoolJson<BpftoolLink[]>(['--bpffs', 'link', 'show']);
  const elsewhere = new Set(links.filter((l) => l.pinned?.some((p) => !mine(p)) || l.pids?.length).map((l) => l.prog_id));
  return bpftoolProgs().filter((p) => p.id > sinceId && /^dump_bpf_/.test(p.name ?? '') && !elsewhere.has(p.id) && !p.pids?.length);
}
