// A consumer of BPF ring buffers (BPF_MAP_TYPE_RINGBUF) that never blocks
// the event loop and takes no native call per record.
//
// Waiting (stream.ts) is poll(2), off the main thread, on the epoll fd of
// libbpf's ring_buffer (ring_buffer__new, ring_buffer__add), which gathers the
// rings' fds; libbpf's own consuming (ring_buffer__poll/consume, a koffi
// callback per record) is never called.
//
// Consuming happens on the main thread, in bounded slices, straight from the
// ring's pages: each ring is mapped here as libbpf's ringbuf.c maps it (the
// consumer page writable, the producer page and the data pages read-only, the
// data twice over so that a record that wraps is contiguous) and read with the
// protocol of its ringbuf_process_ring: load producer_pos with acquire
// semantics, walk the record headers (also acquire loads) until one is still
// BUSY, store consumer_pos with release semantics. Atomics give those
// orderings on a TypedArray over the mapping. The committed records of a batch
// are copied out in one TypedArray.set into a fresh Buffer before they are
// handed on: no record ever points into the ring, which the producer reuses
// once consumer_pos has passed it, or into a mapping close() has removed.
import { callInt, callPtr } from './sys/call.js';
import { SysError } from './error.js';
import { mapInfo } from './info.js';
import { native, type Callback, type Pointer } from './sys/native.js';
import { CLOCK_EVERY, RecordStream, type RawRecordHandler, type StreamState } from './stream.js';
import { BPF_MAP_TYPE_RINGBUF, BPF_RINGBUF_BUSY_BIT, BPF_RINGBUF_DISCARD_BIT, BPF_RINGBUF_HDR_SZ } from './sys/uapi.js';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from './sys/linux.js';

// One batch copy stays below this unless a single record is larger. Below
// glibc's mmap threshold (128 KiB) batches come from the heap, reusing freed
// ones: a larger one would be a fresh mapping each time, page faults and all
// (about a third of the rate at 1 MiB).
const MAX_BATCH_BYTES = 1 << 16;

/** Where a slice notes the records of a batch, shared by the rings of a consumer. */
interface BatchScratch {
  /** [offset, size] of each record in its batch copy. */
  offsets: Int32Array;
  /** The ring position after each record. */
  ends: Float64Array;
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
   * Stops early once `state.closed` (a handler closed the consumer).
   */
  consume(deliver: RawRecordHandler, maxRecords: number, deadline: number, scratch: BatchScratch, state: StreamState): number {
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
        if (state.closed || (done % CLOCK_EVERY === CLOCK_EVERY - 1 && performance.now() > deadline)) {
          if (done > 0) consumed = ends[done - 1]!;
          else consumed = start;
          break;
        }
        const i = done;
        // Counted as consumed before the handler runs, as libbpf does: one that throws is not redelivered.
        consumed = ends[i]!;
        deliver(batch, offsets[i * 2], offsets[i * 2 + 1], this.name);
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
 * Consumes one or more BPF ring buffer maps (see RecordStream for the ways
 * to take records). Three ways, fastest first: `consumeRaw()`/`runRaw()`
 * (offsets into a shared batch copy), `consume()`/`run()` (a Buffer per
 * record), `for await (const record of rb)`.
 */
export class RingBuffer extends RecordStream {
  readonly #ptr: Pointer;
  readonly #callback: Callback;
  readonly #rings: Ring[];

  /** Consumes the ring buffer map behind `mapFd`; `name` is for messages and handlers. */
  constructor(mapFd: number, name = `map fd ${mapFd}`) {
    const n = native();
    // libbpf calls this only from ring_buffer__poll/consume, which we never call.
    const callback = n.registerSample(() => 0);
    let ptr: Pointer;
    const rings: Ring[] = [];
    try {
      ptr = callPtr(`open ring buffer ${name}`, () => n.ring_buffer__new(mapFd, callback, null, null));
    } catch (err) {
      n.unregister(callback);
      throw err;
    }
    try {
      rings.push(new Ring(mapFd, name));
    } catch (err) {
      n.ring_buffer__free(ptr);
      n.unregister(callback);
      throw err;
    }
    const scratch: BatchScratch = { offsets: new Int32Array(0), ends: new Float64Array(0) };
    super('ring buffer', name, {
      epollFd: n.ring_buffer__epoll_fd(ptr),
      pending: () => rings.some((r) => r.pending),
      consume: (deliver, maxRecords, deadline, state) => {
        if (scratch.ends.length < maxRecords) {
          scratch.offsets = new Int32Array(2 * maxRecords);
          scratch.ends = new Float64Array(maxRecords);
        }
        let total = 0;
        // Each ring in turn, each batch re-reading producer_pos, until the slice is spent.
        for (let progress = true; progress && total < maxRecords && !state.closed;) {
          progress = false;
          for (const ring of rings) {
            if (total >= maxRecords || state.closed || performance.now() > deadline) return total;
            const got = ring.consume(deliver, maxRecords - total, deadline, scratch, state);
            if (got > 0) progress = true;
            total += got;
          }
        }
        return total;
      },
      release: () => {
        for (const ring of rings) ring.unmap();
        n.ring_buffer__free(ptr);
        n.unregister(callback);
      },
    });
    this.#ptr = ptr;
    this.#callback = callback;
    this.#rings = rings;
  }

  /** Adds the ring buffer map behind `mapFd` to this consumer (ring_buffer__add): one wait for all. */
  add(mapFd: number, name = `map fd ${mapFd}`): void {
    this.live();
    const ring = new Ring(mapFd, name);
    try {
      callInt(`add ring buffer ${name} to ${this.name}`, () => native().ring_buffer__add(this.#ptr, mapFd, this.#callback, null));
    } catch (err) {
      ring.unmap();
      throw err;
    }
    this.#rings.push(ring);
  }
}
