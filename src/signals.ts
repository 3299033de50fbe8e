// SIGTERM, SIGINT and SIGHUP (a systemd stop timeout, Ctrl-C, a closed
// terminal) must not cut a transaction in half. Once a run holds its lock,
// these are caught instead of killing the process: the run is synchronous,
// so a JavaScript handler can only run once it has committed or rolled back
// and returned, and the process then exits with its usual code and message.
// (SIGKILL cannot be caught: that is what the trail is for.)
const HELD = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

let holding = false;

/** From now on, the three signals wait for the run to finish. */
export function holdSignals(): void {
  if (holding) return;
  holding = true;
  for (const sig of HELD) process.on(sig, () => {});
}
