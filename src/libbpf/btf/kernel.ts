// Questions about the running kernel's own BTF (/sys/kernel/btf/vmlinux).
import { callPtr } from '../sys/call.js';
import { native } from '../sys/native.js';
import { BTF_KIND_FUNC } from '../sys/uapi.js';

/** Whether the kernel's BTF describes a function of this name (e.g. a kfunc). */
export function kernelHasFunction(name: string): boolean {
  const n = native();
  const btf = callPtr('load kernel BTF', () => n.btf__load_vmlinux_btf());
  try {
    return n.btf__find_by_name_kind(btf, name, BTF_KIND_FUNC) > 0;
  } finally {
    n.btf__free(btf);
  }
}
