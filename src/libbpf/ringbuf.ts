// A consumer of BPF ring buffers (BPF_MAP_TYPE_RINGBUF) that never blocks
// the event loop and takes no native call per record.
//
// Waiting happens off the main thread: libbpf's ring_buffer (ring_buffer__new,
// ring_buffer__add) gathers the rings' fds into one epoll fd, and poll(2) on
// it runs on libuv's thread pool through koffi's async calls, beside an
// eventfd that close() and an AbortSignal use to end the wait at once.
//
// Consuming happens on the main thread, in bounded slices, straight from the
// ring's pages: each ring is mapped here as libbpf's ringbuf.c maps it (the
// consumer page writable, the producer page and the data pages read-only, the
// data twice over so that a record that wraps is contiguous) and read with the
// protocol of its ringbuf_process_ring: load producer_pos with acquire
// semantics, walk the record headers (also acquire loads) until one is still
// BUSY, store consumer_pos with release semantics. Atomics give those
// orderings on a TypedArray over the mapping. The committed records of a slice
// are copied out in one TypedArray.set into a fresh Buffer before they are
// handed on: no record ever points into the ring, which the producer reuses
// once consumer_pos has passed it, or into a mapping close() has removed.
import { closeSync, readSync, writeSync } from 'node:fs';
import { callInt, callPtr } from './call.js';
import { ClosedError, SysError } from './error.js';
import { mapInfo } from './info.js';
import { MAP_SHARED, PROT_READ, PROT_WRITE, native, type Pointer } from './native.js';

/** Receives one record: a Buffer of its own (a slice of a copy of its batch), valid as long as it is kept. */
export type RecordHandler = (record: Buffer, ring: string) => void;

/**
 * Receives one record as `size` bytes at `offset` of `data`, without an
 * object per record: the fastest way through. `data` is a private copy of a
 * batch of records, shared by the records of the batch; it stays valid, but
 * keeping it keeps the whole batch in memory (`data.subarray(offset, offset +
 * size)` or `Buffer.from(...)` of it keeps less).
 */
export type RawRecordHandler = (data: Buffer, offset: number, size: number, ring: string) => void;

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

// From include/uapi/linux/bpf.h: the header before each record.
const BPF_RINGBUF_BUSY_BIT = 0x80000000;
const BPF_RINGBUF_DISCARD_BIT = 0x40000000;
const BPF_RINGBUF_HDR_SZ = 8;
// <sys/eventfd.h>, <poll.h>
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
const POLLIN = 1;
const POLLFD_SIZE = 8; // struct pollfd { int fd; short events, revents; }
const EAGAIN = 11;
const EINTR = 4;

// One batch copy stays below this unless a single record is larger. Below
// glibc's mmap threshold (128 KiB) batches come from the heap, reusing freed
// ones: a larger one would be a fresh mapping each time, page faults and all
// (about a third of the rate at 1 MiB).
const MAX_BATCH_BYTES = 1 << 16;
const DEFAULT_MAX_RECORDS = 16384;
const DEFAULT_MAX_MS = 2;
// Deliveries between two looks at the clock.
const CLOCK_EVERY = 32;

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** What a slice shares with the rings it reads: scratch arrays, and whether to stop. */
interface SliceScratch {
  /** [offset, size] of each record in its batch copy. */
  offsets: Int32Array;
  /** The ring position after each record. */
  ends: Float64Array;
  /** Set by close(): a handler closed the consumer. */
  closed: boolean;
}

/** One ring buffer map, mapped into this process. */
class Ring {
  readonly name: string;
  readonly #mask: number;
  readonly #page: number;
  readonly #size: number;
  #consumerPage: Pointer;
  #producerPages: Pointer;
  // consumer_pos and producer_pos (unsigned long; positions stay below 2^53)
  readonly #consumerPos: BigInt64Array;
  readonly #producerPos: BigInt64Array;
  // The data pages, twice over, as header words and as bytes.
  readonly #words: Int32Array;
  readonly #bytes: Uint8Array;
  /** consumer_pos as last stored, as a Number. */
  #pos: number;

  constructor(mapFd: number, name: string) {
    const n = native();
    const info = mapInfo(mapFd);
    const BPF_MAP_TYPE_RINGBUF = 27;
    if (info.type !== BPF_MAP_TYPE_RINGBUF) throw new TypeError(`${name} is not a ring buffer map (type ${info.type})`);
    this.name = name;
    this.#page = n.getpagesize();
    this.#size = info.maxEntries;
    this.#mask = this.#size - 1;
    const map = (length: number, prot: number, offset: number, what: string): Pointer => {
      const ptr = n.mmapPointer(null, length, prot, MAP_SHARED, mapFd, offset);
      if (ptr === null || n.pointerAddress(ptr) === 0xffffffffffffffffn) throw new SysError('mmap', `map ${what} of ring buffer ${name}`, n.errno());
      return ptr;
    };
    this.#consumerPage = map(this.#page, PROT_READ | PROT_WRITE, 0, 'consumer page');
    try {
      this.#producerPages = map(this.#page + 2 * this.#size, PROT_READ, this.#page, 'data pages');
    } catch (err) {
      n.munmap(this.#consumerPage, this.#page);
      throw err;
    }
    this.#consumerPos = new BigInt64Array(n.view(this.#consumerPage, 8));
    const pages = n.view(this.#producerPages, this.#page + 2 * this.#size);
    this.#producerPos = new BigInt64Array(pages, 0, 1);
    this.#words = new Int32Array(pages, this.#page, (2 * this.#size) / 4);
    this.#bytes = new Uint8Array(pages, this.#page, 2 * this.#size);
    this.#pos = Number(Atomics.load(this.#consumerPos, 0));
  }

  /** Whether the producer has gone past the consumer. */
  get pending(): boolean {
    return Number(Atomics.load(this.#producerPos, 0)) !== this.#pos;
  }

  /**
   * Delivers committed records, up to `maxRecords` and until `deadline`
   * (performance.now()); returns how many. An exception from `deliver`
   * comes out after consumer_pos has passed the record that threw it.
   * Stops early once `consumer.closed` (a handler closed the consumer).
   */
  consume(deliver: RawRecordHandler, maxRecords: number, deadline: number, scratch: SliceScratch): number {
    const { offsets, ends } = scratch;
    const start = this.#pos;
    const prod = Number(Atomics.load(this.#producerPos, 0));
    if (prod === start) return 0;
    // Walk the headers of what is committed; the copy below comes after these loads.
    let pos = start;
    let count = 0;
    let walked = 0;
    while (pos < prod && walked < maxRecords && pos - start < MAX_BATCH_BYTES) {
      const len = Atomics.load(this.#words, (pos & this.#mask) >> 2);
      if (len & BPF_RINGBUF_BUSY_BIT) break; // reserved, not yet submitted
      const size = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
      const next = pos + ((size + BPF_RINGBUF_HDR_SZ + 7) & ~7);
      if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
        offsets[count * 2] = pos - start + BPF_RINGBUF_HDR_SZ;
        offsets[count * 2 + 1] = size;
        ends[count] = next;
        count++;
      }
      pos = next;
      walked++;
    }
    if (pos === start) return 0;
    const from = start & this.#mask;
    const batch = Buffer.allocUnsafeSlow(pos - start);
    batch.set(this.#bytes.subarray(from, from + (pos - start)));
    let done = 0;
    let consumed = pos;
    try {
      for (; done < count; done++) {
        if (scratch.closed || (done % CLOCK_EVERY === CLOCK_EVERY - 1 && performance.now() > deadline)) {
          if (done > 0) consumed = ends[done - 1]!;
          else consumed = start;
          break;
        }
        const i = done;
        // Counted as consumed before the handler runs, as libbpf does: one that throws is not redelivered.
        consumed = ends[i]!;
        deliver(batch, offsets[i * 2]!, offsets[i * 2 + 1]!, this.name);
      }
      if (done === count) consumed = pos; // trailing discarded records too
    } finally {
      this.#pos = consumed;
      Atomics.store(this.#consumerPos, 0, BigInt(consumed));
    }
    return done;
  }

  unmap(): void {
    const n = native();
    n.munmap(this.#producerPages, this.#page + 2 * this.#size);
    n.munmap(this.#consumerPage, this.#page);
  }
}

/**
 * Records taken from the rings but not yet handed out: an iteration takes a
 * slice at a time, and one that stops early (break) leaves the rest here.
 */
class Queue {
  records: Buffer[] = [];
  rings: string[] = [];
  head = 0;
  clear(): void {
    this.records = [];
    this.rings = [];
    this.head = 0;
  }
}

/**
 * Consumes one or more BPF ring buffer maps. Records are copies: they stay
 * valid after their callback, after the consumer closes and after the object
 * closes. Three ways to take them, fastest first: `consumeRaw()`/`runRaw()`
 * (offsets into a shared batch copy), `consume()`/`run()` (a Buffer per record),
 * `for await (const record of rb)`.
 */
export class RingBuffer implements Disposable, AsyncIterable<Buffer> {
  readonly name: string;
  #ptr: Pointer | null;
  #callback: Pointer | null;
  readonly #rings: Ring[] = [];
  readonly #eventFd: number;
  readonly #pollFds = Buffer.alloc(2 * POLLFD_SIZE);
  #waiting: Promise<boolean> | null = null;
  #slicing = false;
  readonly #queue = new Queue();
  readonly #scratch: SliceScratch = {
    offsets: new Int32Array(2 * DEFAULT_MAX_RECORDS),
    ends: new Float64Array(DEFAULT_MAX_RECORDS),
    closed: false,
  };

  /** Consumes the ring buffer map behind `mapFd`; `name` is for messages and handlers. */
  constructor(mapFd: number, name = `map fd ${mapFd}`) {
    this.name = name;
    const n = native();
    // libbpf calls this only from ring_buffer__poll/consume, which we never call.
    this.#callback = n.registerSample(() => 0);
    try {
      this.#ptr = callPtr(`open ring buffer ${name}`, () => n.ring_buffer__new(mapFd, this.#callback, null, null));
    } catch (err) {
      n.unregister(this.#callback);
      throw err;
    }
    this.#eventFd = n.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (this.#eventFd < 0) {
      const errno = n.errno();
      this.#free();
      throw new SysError('eventfd', `open ring buffer ${name}`, errno);
    }
    try {
      this.#rings.push(new Ring(mapFd, name));
    } catch (err) {
      this.#free();
      throw err;
    }
    this.#pollFds.writeInt32LE(n.ring_buffer__epoll_fd(this.#ptr), 0);
    this.#pollFds.writeInt16LE(POLLIN, 4);
    this.#pollFds.writeInt32LE(this.#eventFd, POLLFD_SIZE);
    this.#pollFds.writeInt16LE(POLLIN, POLLFD_SIZE + 4);
  }

  /** Adds the ring buffer map behind `mapFd` to this consumer (ring_buffer__add): one wait for all. */
  add(mapFd: number, name = `map fd ${mapFd}`): void {
    const ptr = this.#live();
    const ring = new Ring(mapFd, name);
    try {
      callInt(`add ring buffer ${name} to ${this.name}`, () => native().ring_buffer__add(ptr, mapFd, this.#callback, null));
    } catch (err) {
      ring.unmap();
      throw err;
    }
    this.#rings.push(ring);
  }

  /**
   * Delivers the records there now, without waiting, in one bounded slice
   * (see SliceOptions); returns how many. A handler that throws stops the
   * slice: the exception comes out here, and the records after it stay for
   * the next call.
   */
  consume(onRecord: RecordHandler, options: SliceOptions = {}): number {
    this.#live();
    return this.#slice((data, offset, size, ring) => onRecord(data.subarray(offset, offset + size), ring), options);
  }

  /** consume() without a Buffer per record: see RawRecordHandler. */
  consumeRaw(onRecord: RawRecordHandler, options: SliceOptions = {}): number {
    this.#live();
    return this.#slice(onRecord, options);
  }

  /**
   * Resolves true once a record may be there, false when `timeoutMs` runs out
   * or the consumer closes; rejects with the signal's reason if it aborts.
   * The waiting is poll(2) on a libuv thread pool thread, so the event loop
   * runs meanwhile (one thread per RingBuffer waiting: add() rings to one
   * consumer rather than waiting on many).
   */
  wait(options: WaitOptions = {}): Promise<boolean> {
    this.#live();
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    // Records there (or one reserved, not yet submitted): still let the event loop turn once.
    const queued = this.#queue.head < this.#queue.records.length;
    if (queued || this.#rings.some((r) => r.pending)) return yieldToEventLoop().then(() => true);
    const waited = (this.#waiting ??= this.#poll(options.timeoutMs ?? -1));
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
    this.#live();
    return this.#stream((data, offset, size, ring) => onRecord(data.subarray(offset, offset + size), ring), options);
  }

  /** run() without a Buffer per record: see RawRecordHandler. */
  runRaw(onRecord: RawRecordHandler, options: StreamOptions = {}): Promise<void> {
    this.#live();
    return this.#stream(onRecord, options);
  }

  /**
   * The records as an async iterator: `for await (const record of
   * rb.records({ signal }))`. The iteration ends when the consumer closes
   * (records taken from the ring but not yet handed out go with it), throws
   * the signal's reason when it aborts; `break` leaves the consumer open, and
   * the records taken but not handed out go first to whatever consumes next.
   * maxMs bounds the slice including the loop's body.
   */
  records(options: StreamOptions = {}): AsyncIterableIterator<Buffer> {
    this.#live();
    let finished = false;
    let sliced = false;
    // The loop body runs between our next() calls: a slice's time counts it
    // too, so a slow body gets the event loop turning between records as well.
    const maxMs = options.maxMs ?? DEFAULT_MAX_MS;
    let deadline = 0;
    const queue = this.#queue;
    const push = (data: Buffer, offset: number, size: number, ring: string) => {
      queue.records.push(data.subarray(offset, offset + size));
      queue.rings.push(ring);
    };
    const done = (): IteratorResult<Buffer> => ({ done: true, value: undefined });
    const take = (): IteratorResult<Buffer> => ({ done: false, value: queue.records[queue.head++]! });
    const refill = async (): Promise<IteratorResult<Buffer>> => {
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
    const later = async (): Promise<IteratorResult<Buffer>> => {
      await yieldToEventLoop();
      if (finished || this.#closed || queue.head >= queue.records.length) return refill();
      options.signal?.throwIfAborted();
      deadline = performance.now() + maxMs;
      return take();
    };
    const iterator: AsyncIterableIterator<Buffer> = {
      next: () => {
        if (finished || this.#closed) return Promise.resolve(done());
        if (queue.head >= queue.records.length) return refill();
        if (queue.head % CLOCK_EVERY === 0 && performance.now() > deadline) return later();
        return Promise.resolve(take());
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
    this.#scratch.closed = true;
    this.#queue.clear();
    // A poll in flight still uses the fds, a slice (close from a handler)
    // the mappings: whichever is running frees them when it ends.
    if (this.#waiting) this.#wake();
    else if (!this.#slicing) this.#free();
  }

  get #closed(): boolean {
    return this.#scratch.closed;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #live(): Pointer {
    if (this.#closed || this.#ptr === null) throw new ClosedError(`ring buffer ${this.name}`);
    return this.#ptr;
  }

  #slice(deliver: RawRecordHandler, options: SliceOptions): number {
    const maxRecords = options.maxRecords ?? DEFAULT_MAX_RECORDS;
    const scratch = this.#scratch;
    if (scratch.ends.length < maxRecords) {
      scratch.offsets = new Int32Array(2 * maxRecords);
      scratch.ends = new Float64Array(maxRecords);
    }
    const deadline = performance.now() + (options.maxMs ?? DEFAULT_MAX_MS);
    let total = 0;
    this.#slicing = true;
    try {
      // First what an iteration left behind.
      const queue = this.#queue;
      while (queue.head < queue.records.length && total < maxRecords && !this.#closed) {
        const record = queue.records[queue.head]!;
        const ring = queue.rings[queue.head++]!;
        total++;
        deliver(record, 0, record.length, ring);
      }
      // Each ring in turn, each batch re-reading producer_pos, until the slice is spent.
      for (let progress = true; progress && total < maxRecords && !this.#closed; ) {
        progress = false;
        for (const ring of this.#rings) {
          if (total >= maxRecords || this.#closed || performance.now() > deadline) return total;
          const got = ring.consume(deliver, maxRecords - total, deadline, scratch);
          if (got > 0) progress = true;
          total += got;
        }
      }
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
      n.poll.async(this.#pollFds, 2, timeoutMs, (err: unknown, ret: number) => {
        this.#waiting = null;
        this.#drainWake();
        if (this.#closed) {
          this.#free();
          resolve(false);
        } else if (err) reject(err);
        else if (ret < 0 && n.errno() !== EINTR) reject(new SysError('poll', `wait for ring buffer ${this.name}`, n.errno()));
        else resolve(ret > 0 && (this.#pollFds.readInt16LE(6) & POLLIN) !== 0);
      });
    });
  }

  // The eventfd ends a poll in flight (close, abort).
  #wake(): void {
    if (this.#eventFd >= 0 && this.#ptr !== null) writeSync(this.#eventFd, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]));
  }

  #drainWake(): void {
    try {
      readSync(this.#eventFd, Buffer.alloc(8));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).errno !== -EAGAIN && (err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }

  #free(): void {
    if (this.#ptr === null) return;
    const n = native();
    for (const ring of this.#rings.splice(0)) ring.unmap();
    if (this.#ptr !== null) n.ring_buffer__free(this.#ptr);
    this.#ptr = null;
    if (this.#callback !== null) n.unregister(this.#callback);
    this.#callback = null;
    if (this.#eventFd >= 0) closeSync(this.#eventFd);
  }
}
