// Test hook: BPF_PRELOAD_FAILPOINT=<name> makes the named step fail, so the
// tests can prove a failure mid-run leaves the bpffs as it was. No effect
// unless set.
import { PreloadError } from '../../cli/errors.js';

export function failpoint(name: string): void {
  if (process.env.BPF_PRELOAD_FAILPOINT === name) {
    throw new PreloadError(`failure injected at ${name} (BPF_PRELOAD_FAILPOINT)`);
  }
}
