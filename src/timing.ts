// BPF_PRELOAD_TIMING=1: how long each phase took (milliseconds since the
// process started), to see where boot time goes. The runner marks its phases
// here; the CLI prints them (src/cli/main.ts) to stderr.
/** The variable that turns it on. */
export const TIMING_ENV = 'BPF_PRELOAD_TIMING';
const enabled = !!process.env[TIMING_ENV];
const marks: [string, number][] = [];

/** Records that `phase` just ended. */
export function mark(phase: string): void {
  if (enabled) marks.push([phase, performance.now()]);
}

/** A line per phase marked so far (none unless turned on). */
export function timingLines(): string[] {
  let prev = 0;
  return marks.map(([phase, at]) => {
    const line = `timing: ${phase.padEnd(16)} ${(at - prev).toFixed(1).padStart(6)} ms  (at ${at.toFixed(1)})\n`;
    prev = at;
    return line;
  });
}
