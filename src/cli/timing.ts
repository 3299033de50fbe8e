// BPF_PRELOAD_TIMING=1 prints how long each phase took (milliseconds since
// the process started) to stderr, to see where boot time goes.
/** The variable that turns it on. */
export const TIMING_ENV = 'BPF_PRELOAD_TIMING';
const enabled = !!process.env[TIMING_ENV];
const marks: [string, number][] = [];

/** Records that `phase` just ended. */
export function mark(phase: string): void {
  if (enabled) marks.push([phase, performance.now()]);
}

export function reportTiming(): void {
  if (!enabled) return;
  let prev = 0;
  for (const [phase, at] of marks) {
    process.stderr.write(`timing: ${phase.padEnd(16)} ${(at - prev).toFixed(1).padStart(6)} ms  (at ${at.toFixed(1)})\n`);
    prev = at;
  }
}
