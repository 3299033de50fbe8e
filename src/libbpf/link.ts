// A BPF link created by attaching a program. Pinning it in a bpffs is what
// keeps it alive after this process exits.
import { callInt } from './call.js';
import { native, type Pointer } from './native.js';

/** What the runner needs of a link, however it was made (BpfLink, FdLink). */
export interface PinnableLink {
  readonly name: string;
  readonly fd: number;
  pin(path: string): void;
  destroy(): void;
}

export class BpfLink implements PinnableLink {
  #ptr: Pointer | null;
  readonly name: string;

  /** @internal Wraps a struct bpf_link * returned by an attach call. */
  constructor(ptr: Pointer, name: string) {
    this.#ptr = ptr;
    this.name = name;
  }

  get fd(): number {
    return native().bpf_link__fd(this.#live());
  }

  /** Pins the link at `path`, which must be on a bpffs. */
  pin(path: string): void {
    const ptr = this.#live();
    callInt(`pin link ${this.name} at ${path}`, () => native().bpf_link__pin(ptr, path));
  }

  /**
   * Releases this process's hold on the link. A pinned link stays attached;
   * an unpinned one is detached by the kernel when its last fd closes.
   */
  destroy(): void {
    if (this.#ptr === null) return;
    const ptr = this.#ptr;
    this.#ptr = null;
    native().bpf_link__destroy(ptr);
  }

  [Symbol.dispose](): void {
    this.destroy();
  }

  #live(): Pointer {
    if (this.#ptr === null) throw new Error(`link ${this.name} used after destroy`);
    return this.#ptr;
  }
}
