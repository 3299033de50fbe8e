// SIGTERM, SIGINT and SIGHUP (a systemd stop timeout, Ctrl-C, a closed
// terminal) must not cut a transaction in half. While a run changes a
// directory, these are caught instead of killing the process: the run is
// synchronous, so a JavaScript handler can only run once it has committed or
// rolled back and returned, and the process then exits with its usual code
// and message. Outside that (waiting for a lock, between two bpffs of
// --all) nothing is half done, and the default action ends the process at
// once. (SIGKILL cannot be caught: that is what the trail is for.)
const HELD = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

const wait = () => {};

/** Until disposed, the three signals wait for the run to finish. */
export function holdSignals(): Disposable {
  for (const sig of HELD) process.on(sig, wait);
  return {
    [Symbol.dispose]() {
      // With its last listener gone, a signal's default action is back.
      for (const sig of HELD) process.removeListener(sig, wait);
    },
  };
}
