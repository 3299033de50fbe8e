// BPF links: what attaching a program makes. A link lives while an fd or a
// pin in a bpffs holds it; pinning is what keeps one alive after this
// process exits. Links come from libbpf's attach calls (BpfLink) or from a
// bare fd (FdLink: the light loader's iterators, links opened by id or pin).
import { closeSync, readSync } from 'node:fs';
import { callInt, callSys } from './sys/call.js';
import { ClosedError } from './error.js';
import { linkFdById, linkInfo, objGet, objPin, type LinkInfo } from './info.js';
import { native, type Pointer } from './sys/native.js';
import { BPF_TRACE_ITER } from './sys/uapi.js';

/** What the runner needs of a link, however it was made (BpfLink, FdLink). */
export interface PinnableLink {
  readonly name: string;
  readonly fd: number;
  pin(path: string): void;
  destroy(): void;
}

/** The output of a new iterator on the iterator link behind `linkFd`, read to its end. */
export function readIterator(linkFd: number): Buffer {
  return Buffer.from(new IteratorReader(64 * 1024).read(linkFd));
}

/**
 * Reads iterators again and again into two buffers it keeps and grows,
 * used in turn: for a caller that reads an iterator every few seconds and
 * compares each output with the one before, without allocating megabytes
 * each time.
 */
export class IteratorReader {
  // Made on first use: a reader used once (readIterator) needs one.
  readonly #buffers: (Buffer | undefined)[] = [undefined, undefined];
  #turn = 0;

  constructor(private readonly initialBytes = 64 * 1024) {}

  /**
   * A new iterator's output on the link behind `linkFd`, read to its end.
   * The bytes are this reader's: valid until the read after the next one.
   */
  read(linkFd: number): Buffer {
    const fd = callSys(`create iterator from link fd ${linkFd}`, () => native().bpf_iter_create(linkFd));
    try {
      let buf = (this.#buffers[this.#turn] ??= Buffer.allocUnsafeSlow(Math.max(1, this.initialBytes)));
      let len = 0;
      // An iterator hands out a page or so per read, and cannot seek.
      for (;;) {
        if (len === buf.length) {
          const bigger = Buffer.allocUnsafeSlow(buf.length * 2);
          buf.copy(bigger, 0, 0, len);
          buf = this.#buffers[this.#turn] = bigger;
        }
        const n = readSync(fd, buf, len, buf.length - len, null);
        if (n === 0) break;
        len += n;
      }
      this.#turn ^= 1;
      return buf.subarray(0, len);
    } finally {
      closeSync(fd);
    }
  }
}

/** What every link offers, however it is held. */
export abstract class Link implements PinnableLink, Disposable {
  readonly name: string;

  protected constructor(name: string) {
    this.name = name;
  }

  /** The link's fd; throws after destroy(). */
  abstract get fd(): number;

  /** Pins the link at `path`, which must be on a bpffs. */
  abstract pin(path: string): void;

  /**
   * Releases this process's hold on the link. A pinned link stays attached;
   * an unpinned one is detached by the kernel when its last fd closes.
   */
  abstract destroy(): void;

  /** The kernel's bpf_link_info: id, type, program id. */
  info(): LinkInfo {
    return linkInfo(this.fd);
  }

  /**
   * For an iterator link: runs a new iterator (BPF_ITER_CREATE) and returns
   * all it printed, without pinning anything.
   */
  read(): Buffer {
    return readIterator(this.fd);
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

/** A link made by one of libbpf's attach calls (a struct bpf_link *). */
export class BpfLink extends Link {
  #ptr: Pointer | null;

  /** @internal Wraps a struct bpf_link * returned by an attach call. */
  constructor(ptr: Pointer, name: string) {
    super(name);
    this.#ptr = ptr;
  }

  get fd(): number {
    return native().bpf_link__fd(this.#live());
  }

  pin(path: string): void {
    const ptr = this.#live();
    callInt(`pin link ${this.name} at ${path}`, () => native().bpf_link__pin(ptr, path));
  }

  destroy(): void {
    if (this.#ptr === null) return;
    const ptr = this.#ptr;
    this.#ptr = null;
    native().bpf_link__destroy(ptr);
  }

  #live(): Pointer {
    if (this.#ptr === null) throw new ClosedError(`link ${this.name}`, 'destroy');
    return this.#ptr;
  }
}

/** A link held by a bare fd, which this object owns and closes. */
export class FdLink extends Link {
  #fd: number;

  /** Takes ownership of `fd`, a BPF link fd. */
  constructor(fd: number, name: string) {
    super(name);
    this.#fd = fd;
  }

  /**
   * Creates a link of `attachType` (enum bpf_attach_type) for the program
   * behind `progFd`, to `targetFd` where the type has one (bpf_link_create).
   */
  static create(progFd: number, attachType: number, name: string, targetFd = 0): FdLink {
    const fd = callSys(`attach ${name}`, () => native().bpf_link_create(progFd, targetFd, attachType, null));
    return new FdLink(fd, name);
  }

  /** Creates an iterator link for the iter/ program behind `progFd`. */
  static iterator(progFd: number, name: string): FdLink {
    const fd = callSys(`attach iterator ${name}`, () => native().bpf_link_create(progFd, 0, BPF_TRACE_ITER, null));
    return new FdLink(fd, name);
  }

  /** Opens the link with this id. */
  static fromId(id: number): FdLink {
    return new FdLink(linkFdById(id), `link ${id}`);
  }

  /** Opens the link pinned at `path`. */
  static fromPin(path: string): FdLink {
    return new FdLink(objGet(path), path);
  }

  get fd(): number {
    if (this.#fd < 0) throw new ClosedError(`link ${this.name}`, 'destroy');
    return this.#fd;
  }

  pin(path: string): void {
    objPin(this.fd, path);
  }

  destroy(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    closeSync(fd);
  }
}
