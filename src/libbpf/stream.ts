// What every consumer of BPF records shares (RingBuffer, PerfBuffer): waiting
// off the main thread, consuming in bounded slices on it, and the ways to
// take records (callbacks, raw callbacks, for await), closing and aborting.
//
// Waiting is poll(2) on the source's epoll fd (libbpf's, gathering the maps'
// fds) beside an eventfd, run on libuv's thread pool through koffi's async
// calls; close() and an AbortSignal write to the eventfd to end it at once.
// Consuming is the source's: each slice takes at most maxRecords records and
// maxMs of handler time, then the event loop turns before the next.
import { constants } from 'node:os';
import { closeSync, readSync, writeSync } from 'node:fs';
import { ClosedError, SysError } from './error.js';
import { native } from './sys/native.js';

const { EINTR } = constants.errno;

/**
 * Receives one record: a Buffer of its own (a slice of a copy of its batch),
 * valid as long as it is kept; `source` names the map it came from.
 */
export type RecordHandler = (record: Buffer, source: string) => void;

/**
 * Receives one record as `size` bytes at `offset` of `data`, without an
 * object per record: the fastest way through. `data` is a private copy of a
 * batch of records, shared by the records of the batch; it stays valid, but
 * keeping it keeps the whole batch in memory (`data.subarray(offset, offset +
 * size)` or `Buffer.from(...)` of it keeps less).
 */
export type RawRecordHandler = (data: Buffer, offset: number, size: number, source: string) => void;

/** How much one slice of consuming may take before the event loop gets the thread back. */
export interface SliceOptions {
  /** Records per slice, at most (default 16384). */
  maxRecords?: number;
  /** Milliseconds per slice, at most, give or take one record's handling (default 2). */
  maxMs?: number;
}

export interface WaitOptions {
  /** Give up after this long (default: no limit). */
  timeoutMs?: number;
  /** Ends the wait with the signal's reason. */
  signal?: AbortSignal;
}

export interface StreamOptions extends SliceOptions {
  /** Ends the stream: run() and the iteration reject with the signal's reason. */
  signal?: AbortSignal;
}

// <sys/eventfd.h>, <poll.h>
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
const POLLIN = 1;
const POLLFD_SIZE = 8; // struct pollfd { int fd; short events, revents; }

const DEFAULT_MAX_RECORDS = 16384;
const DEFAULT_MAX_MS = 2;
/** Records handed out between two looks at the clock. */
export const CLOCK_EVERY = 32;

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Set by close(); sources check it between records, as a handler may close the stream. */
export interface StreamState {
  closed: boolean;
}

/** What a stream reads: the rings of a RingBuffer, the CPU buffers of a PerfBuffer. */
export interface RecordSource {
  /** Readable when records may be there (libbpf's epoll fd over the maps). */
  readonly epollFd: number;
  /** Whether records are there now, as far as a cheap look tells. */
  pending(): boolean;
  /**
   * Hands out up to `maxRecords` records until `deadline` (performance.now());
   * returns how many. Stops early once `state.closed`.
   */
  consume(deliver: RawRecordHandler, maxRecords: number, deadline: number, state: StreamState): number;
  /** Frees the native side; called once, when no poll or slice uses it. */
  release(): void;
}

/**
 * Records taken from the source but not yet handed out: an iteration takes a
 * slice at a time, and one that stops early (break) leaves the rest here.
 */
class Queue {
  records: Buffer[] = [];
  sources: string[] = [];
  head = 0;
  clear(): void {
    this.records = [];
    this.sources = [];
    this.head = 0;
  }
}

/**
 * Consumes BPF records without ever blocking the event loop: see RingBuffer
 * and PerfBuffer. Records are copies: they stay valid after their callback,
 * after the stream closes and after the object closes.
 */
export abstract class RecordStream implements Disposable, AsyncIterable<Buffer> {
  readonly name: string;
  readonly #kind: string;
  readonly #source: RecordSource;
  readonly #eventFd: number;
  readonly #pollFds = Buffer.alloc(2 * POLLFD_SIZE);
  readonly #state: StreamState = { closed: false };
  readonly #queue = new Queue();
  #waiting: Promise<boolean> | null = null;
  #slicing = false;
  #released = false;

  /** `kind` and `name` are for messages ("ring buffer events"); takes ownership of `source`. */
  protected constructor(kind: string, name: string, source: RecordSource) {
    this.name = name;
    this.#kind = kind;
    this.#source = source;
    const n = native();
    this.#eventFd = n.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (this.#eventFd < 0) {
      const errno = n.errno();
      source.release();
      throw new SysError('eventfd', `open ${kind} ${name}`, errno);
    }
    this.#pollFds.writeInt32LE(source.epollFd, 0);
    this.#pollFds.writeInt16LE(POLLIN, 4);
    this.#pollFds.writeInt32LE(this.#eventFd, POLLFD_SIZE);
    this.#pollFds.writeInt16LE(POLLIN, POLLFD_SIZE + 4);
  }

  /**
   * Delivers the records there now, without waiting, in one bounded slice
   * (see SliceOptions); returns how many. A handler that throws stops the
   * slice: the exception comes out here, and the records after it stay for
   * the next call.
   */
  consume(onRecord: RecordHandler, options: SliceOptions = {}): number {
    this.live();
    return this.#slice((data, offset, size, source) => onRecord(data.subarray(offset, offset + size), source), options);
  }

  /** consume() without a Buffer per record: see RawRecordHandler. */
  consumeRaw(onRecord: RawRecordHandler, options: SliceOptions = {}): number {
    this.live();
    return this.#slice(onRecord, options);
  }

  /**
   * Resolves true once a record may be there, false when `timeoutMs` runs out
   * or the consumer closes; rejects with the signal's reason if it aborts.
   * The waiting is poll(2) on a libuv thread pool thread, so the event loop
   * runs meanwhile (one thread per stream waiting: add() maps to one
   * RingBuffer rather than waiting on many).
   */
  wait(options: WaitOptions = {}): Promise<boolean> {
    this.live();
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    // Records there (or one reserved, not yet submitted): still let the event loop turn once.
    const queued = this.#queue.head < this.#queue.records.length;
    if (queued || this.#source.pending()) return yieldToEventLoop().then(() => true);
    let waited: Promise<boolean>;
    if (this.#waiting === null) waited = this.#waiting = this.#poll(options.timeoutMs ?? -1);
    else if (options.timeoutMs === undefined) waited = this.#waiting;
    else {
      // A poll already in flight (another waiter's) may outlast this one's timeout.
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, options.timeoutMs, false)));
      waited = Promise.race([this.#waiting, timedOut]).finally(() => clearTimeout(timer));
    }
    if (!signal) return waited;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#wake();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      waited.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  /**
   * Calls `onRecord` for every record until close() (then resolves) or the
   * signal aborts (then rejects with its reason) or a handler throws (rejects
   * with that). Waits off the main thread and consumes in slices, turning the
   * event loop between them.
   */
  run(onRecord: RecordHandler, options: StreamOptions = {}): Promise<void> {
    this.live();
    return this.#stream((data, offset, size, source) => onRecord(data.subarray(offset, offset + size), source), options);
  }

  /** run() without a Buffer per record: see RawRecordHandler. */
  runRaw(onRecord: RawRecordHandler, options: StreamOptions = {}): Promise<void> {
    this.live();
    return this.#stream(onRecord, options);
  }

  /**
   * The records as an async iterator: `for await (const record of
   * rb.records({ signal }))`. The iteration ends when the consumer closes
   * (records taken from the maps but not yet handed out go with it), throws
   * the signal's reason when it aborts; `break` leaves the consumer open, and
   * the records taken but not handed out go first to whatever consumes next.
   * maxMs bounds the slice including the loop's body. With `map`, each
   * record is handed out as what `map` makes of it (records.ts decodes so).
   */
  records(options?: StreamOptions): AsyncIterableIterator<Buffer>;
  records<T>(options: StreamOptions, map: (record: Buffer) => T): AsyncIterableIterator<T>;
  records(options: StreamOptions = {}, map?: (record: Buffer) => unknown): AsyncIterableIterator<unknown> {
    this.live();
    let finished = false;
    let sliced = false;
    // The loop body runs between our next() calls: a slice's time counts it
    // too, so a slow body gets the event loop turning between records as well.
    const maxMs = options.maxMs ?? DEFAULT_MAX_MS;
    let deadline = 0;
    const queue = this.#queue;
    const push = (data: Buffer, offset: number, size: number, source: string) => {
      queue.records.push(data.subarray(offset, offset + size));
      queue.sources.push(source);
    };
    const done = (): IteratorResult<unknown> => ({ done: true, value: undefined });
    const take = (): IteratorResult<unknown> => {
      const record = queue.records[queue.head++];
      return { done: false, value: map ? map(record) : record };
    };
    const refill = async (): Promise<IteratorResult<unknown>> => {
      for (;;) {
        if (finished || this.#closed) return done();
        options.signal?.throwIfAborted();
        // Every slice lets the event loop turn: for await alone never would.
        if (sliced) await yieldToEventLoop();
        sliced = true;
        if (finished || this.#closed) continue;
        // Another iterator may have filled the queue meanwhile.
        if (queue.head >= queue.records.length) {
          queue.clear();
          this.#slice(push, options);
        }
        deadline = performance.now() + maxMs;
        if (queue.head < queue.records.length) return take();
        sliced = false;
        await this.wait({ signal: options.signal });
      }
    };
    const later = async (): Promise<IteratorResult<unknown>> => {
      await yieldToEventLoop();
      if (finished || this.#closed || queue.head >= queue.records.length) return refill();
      options.signal?.throwIfAborted();
      deadline = performance.now() + maxMs;
      return take();
    };
    const iterator: AsyncIterableIterator<unknown> = {
      next: () => {
        if (finished || this.#closed) return Promise.resolve(done());
        if (queue.head >= queue.records.length) return refill();
        if (queue.head % CLOCK_EVERY === 0 && performance.now() > deadline) return later();
        try {
          return Promise.resolve(take());
        } catch (err) {
          return Promise.reject(err);
        }
      },
      // What is queued stays for the next iteration, consume() or run().
      return: () => {
        finished = true;
        return Promise.resolve(done());
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** `for await (const record of rb)`: records() without options. */
  [Symbol.asyncIterator](): AsyncIterableIterator<Buffer> {
    return this.records();
  }

  /**
   * Ends every wait and iteration at once and releases the consumer; the
   * maps live on with their other holders. Records already handed out stay valid.
   */
  close(): void {
    if (this.#closed) return;
    this.#state.closed = true;
    this.#queue.clear();
    // A poll in flight still uses the fds, a slice (close from a handler)
    // the mappings: whichever is running frees them when it ends.
    if (this.#waiting) this.#wake();
    else if (!this.#slicing) this.#free();
  }

  get #closed(): boolean {
    return this.#state.closed;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Throws ClosedError once closed. */
  protected live(): void {
    if (this.#closed) throw new ClosedError(`${this.#kind} ${this.name}`);
  }

  #slice(deliver: RawRecordHandler, options: SliceOptions): number {
    const maxRecords = options.maxRecords ?? DEFAULT_MAX_RECORDS;
    const deadline = performance.now() + (options.maxMs ?? DEFAULT_MAX_MS);
    let total = 0;
    this.#slicing = true;
    try {
      // First what an iteration left behind.
      const queue = this.#queue;
      while (queue.head < queue.records.length && total < maxRecords && !this.#closed) {
        if (total % CLOCK_EVERY === CLOCK_EVERY - 1 && performance.now() > deadline) return total;
        const record = queue.records[queue.head];
        const source = queue.sources[queue.head++];
        total++;
        deliver(record, 0, record.length, source);
      }
      if (total < maxRecords && !this.#closed) total += this.#source.consume(deliver, maxRecords - total, deadline, this.#state);
      return total;
    } finally {
      this.#slicing = false;
      if (this.#closed && !this.#waiting) this.#free();
    }
  }

  async #stream(deliver: RawRecordHandler, options: StreamOptions): Promise<void> {
    const { signal } = options;
    for (;;) {
      if (this.#closed) return;
      signal?.throwIfAborted();
      if (this.#slice(deliver, options) > 0) {
        await yieldToEventLoop();
        continue;
      }
      if (this.#closed) return;
      await this.wait({ signal });
    }
  }

  #poll(timeoutMs: number): Promise<boolean> {
    const n = native();
    return new Promise<boolean>((resolve, reject) => {
      n.poll.async(this.#pollFds, 2, timeoutMs, (err: Error | null, ret: number) => {
        this.#waiting = null;
        this.#drainWake();
        if (this.#closed) {
          this.#free();
          resolve(false);
        } else if (err) reject(err);
        else if (ret < 0 && n.errno() !== EINTR) reject(new SysError('poll', `wait for ${this.#kind} ${this.name}`, n.errno()));
        else resolve(ret > 0 && (this.#pollFds.readInt16LE(6) & POLLIN) !== 0);
      });
    });
  }

  // The eventfd ends a poll in flight (close, abort).
  #wake(): void {
    if (!this.#released) writeSync(this.#eventFd, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]));
  }

  #drainWake(): void {
    try {
      readSync(this.#eventFd, Buffer.alloc(8));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }

  #free(): void {
    if (this.#released) return;
    this.#released = true;
    this.#source.release();
    closeSync(this.#eventFd);
  }
}
