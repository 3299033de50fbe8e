// A consumer of BPF ring buffers (BPF_MAP_TYPE_RINGBUF) through libbpf's
// ring_buffer__new / poll / consume. Each record reaches the JS callback as
// a copy, synchronously, inside poll() or consume(); a callback returning
// false (or a call to stop()) ends delivery after the record in hand.
import { callPtr, callSys } from './call.js';
import { ClosedError } from './error.js';
import { native, type Pointer } from './native.js';

/** Receives one record; return false to stop the poll or consume running. */
export type RecordHandler = (record: Buffer) => boolean | void;

// The sample callback's return value: libbpf stops consuming at a negative one
// and hands it back from poll/consume.
const STOP = -125; // -ECANCELED
const EINTR = 4;

export class RingBuffer implements Disposable {
  #ptr: Pointer | null;
  #callback: Pointer | null;
  #stopped = false;
  #delivered = 0;
  #error: unknown = null;
  readonly name: string;

  /** Consumes the ring buffer map behind `mapFd`; `name` is for messages. */
  constructor(mapFd: number, onRecord: RecordHandler, name = `map fd ${mapFd}`) {
    this.name = name;
    const n = native();
    this.#callback = n.registerSample((_ctx: Pointer, data: Pointer, size: number) => {
      this.#delivered++;
      try {
        if (onRecord(n.copyOut(data, size)) === false) this.#stopped = true;
      } catch (err) {
        // An exception must not unwind through libbpf: poll() rethrows it.
        this.#error = err;
        this.#stopped = true;
      }
      return this.#stopped ? STOP : 0;
    });
    try {
      this.#ptr = callPtr(`open ring buffer ${name}`, () => n.ring_buffer__new(mapFd, this.#callback, null, null));
    } catch (err) {
      n.unregister(this.#callback);
      this.#callback = null;
      throw err;
    }
  }

  /**
   * Waits up to `timeoutMs` (-1: no limit) for records and delivers those
   * available; returns how many. Blocks the thread while it waits. Once
   * stopped, returns 0 at once.
   */
  poll(timeoutMs: number): number {
    const ptr = this.#live();
    return this.#run('poll', () => native().ring_buffer__poll(ptr, timeoutMs));
  }

  /** Delivers every record already there, without waiting; returns how many. */
  consume(): number {
    const ptr = this.#live();
    return this.#run('consume', () => native().ring_buffer__consume(ptr));
  }

  /**
   * Polls (`pollMs` at a time), letting the event loop run between polls,
   * until stopped, `signal` aborts, or a handler throws (then rejects).
   */
  async run(options: { pollMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    const pollMs = options.pollMs ?? 100;
    while (!this.#stopped && !options.signal?.aborted) {
      this.poll(pollMs);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Stops delivery: after the record in hand, and for every later poll/consume. */
  stop(): void {
    this.#live();
    this.#stopped = true;
  }

  /** Whether stop() was called or a handler returned false or threw. */
  get stopped(): boolean {
    this.#live();
    return this.#stopped;
  }

  #run(what: string, fn: () => number): number {
    if (this.#stopped) return 0;
    this.#delivered = 0;
    const ret = fn();
    if (this.#error !== null) {
      const err = this.#error;
      this.#error = null;
      throw err;
    }
    // EINTR: a signal arrived while waiting; what came before it is delivered.
    if (ret !== STOP && ret !== -EINTR) callSys(`${what} ring buffer ${this.name}`, () => ret);
    return this.#delivered;
  }

  /** Frees the consumer; the map lives on with its other holders. */
  close(): void {
    if (this.#ptr === null) return;
    const n = native();
    n.ring_buffer__free(this.#ptr);
    this.#ptr = null;
    if (this.#callback !== null) n.unregister(this.#callback);
    this.#callback = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #live(): Pointer {
    if (this.#ptr === null) throw new ClosedError(`ring buffer ${this.name}`);
    return this.#ptr;
  }
}
