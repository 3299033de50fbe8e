// Waiting without an event loop: the runner is synchronous from start to
// end (its signal handlers must not run mid-transaction), so a pause between
// retries, or between polls of a lock, blocks the whole process.

/** Blocks this process for `ms` milliseconds. */
export const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
