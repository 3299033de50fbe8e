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

/**
 * Takes `read` again, up to `times` in all, until `agree` holds of what it
 * read: for comparing reads of machine-wide state (every program or map
 * loaded), which anything loading or freeing an object in between changes.
 * The comparison itself stays exact: what read wrongly differs every time.
 */
export async function readAgreeing<T>(read: () => T | Promise<T>, agree: (r: T) => boolean, times = 5): Promise<{ result: T; attempts: number }> {
  for (let attempts = 1; ; attempts++) {
    const result = await read();
    if (agree(result) || attempts >= times) return { result, attempts };
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
