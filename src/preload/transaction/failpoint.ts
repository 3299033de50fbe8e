// Test hook: BPF_PRELOAD_FAILPOINT=<name> makes the named step fail, so the
// tests can prove a failure mid-run leaves the bpffs as it was. No effect
// unless set. The steps (transaction.ts): pin-maps.debug, pin-progs.debug,
// readback, rename-maps.debug, rename-progs.debug, each set by
// test/populate.test.ts; a failure of every system call in between is
// caused with strace instead (test/faults.test.ts, test/transaction.test.ts).
import { PreloadError } from '../../errors.js';

export function failpoint(name: string): void {
  if (process.env.BPF_PRELOAD_FAILPOINT === name) {
    throw new PreloadError(`failure injected at ${name} (BPF_PRELOAD_FAILPOINT)`);
  }
}
