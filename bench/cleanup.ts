// Everything the bench mounts, loads or creates registers its undo here, so
// it is undone in reverse order on success, on errors and on Ctrl-C alike.
// Undo steps are synchronous so they can also run from a signal handler.

type Undo = () => void;

const stack: { what: string; undo: Undo }[] = [];
let installed = false;

/** Registers `undo`; returns a function that runs it early (and only once). */
export function onCleanup(what: string, undo: Undo): () => void {
  const entry = { what, undo };
  stack.push(entry);
  if (!installed) {
    installed = true;
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(sig, () => {
        console.error(`bench: ${sig}, cleaning up`);
        cleanupAll();
        process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
      });
    }
  }
  return () => {
    const i = stack.indexOf(entry);
    if (i < 0) return;
    stack.splice(i, 1);
    undo();
  };
}

/** Runs every registered undo, newest first; reports (but survives) failures. */
export function cleanupAll(): void {
  while (stack.length > 0) {
    const { what, undo } = stack.pop()!;
    try {
      undo();
    } catch (err) {
      console.error(`bench: cleanup of ${what} failed: ${(err as Error).message}`);
    }
  }
}
