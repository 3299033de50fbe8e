// A consumer of BPF perf buffers (BPF_MAP_TYPE_PERF_EVENT_ARRAY, filled with
// bpf_perf_event_output), for kernels before ring buffers (5.8) and programs
// written for them. Waiting and the ways to take records are stream.ts's.
//
// libbpf's perf_buffer reads the per-CPU buffers: perf_buffer__consume_buffer
// empties one CPU's buffer, calling back (koffi) once per record, and each
// call copies its record out into a Buffer of its own before libbpf moves
// the buffer's tail past it. The records are handed on from JS afterwards, so
// a handler's exception never unwinds through libbpf. A slice reads one CPU's
// buffer at a time, round robin, until it is spent or every buffer is empty;
// one buffer's worth (pageCount pages) can exceed maxMs.
import { constants } from 'node:os';
import { callPtr } from './sys/call.js';
import { LibbpfError } from './error.js';
import { native, type Pointer } from './sys/native.js';
import { CLOCK_EVERY, RecordStream } from './stream.js';

const { ENOENT } = constants.errno;

export interface PerfBufferOptions {
  /** Pages of buffer per CPU, a power of two (default 64: 256 KiB with 4 KiB pages). */
  pageCount?: number;
}

/** Consumes a perf event array map: see RecordStream for the ways to take records. */
export class PerfBuffer extends RecordStream {
  readonly #lost: { count: number };

  /** Consumes the perf event array behind `mapFd`; `name` is for messages and handlers. */
  constructor(mapFd: number, name = `map fd ${mapFd}`, options: PerfBufferOptions = {}) {
    const n = native();
    // Records copied out by the sample callback, not yet handed on.
    const copied: Buffer[] = [];
    let head = 0;
    const lost = { count: 0 };
    const sample = n.registerPerfSample((_ctx: Pointer, _cpu: number, data: Pointer, size: number) => {
      const record = Buffer.allocUnsafe(size);
      if (size > 0) n.copyFrom(record, n.pointerAddress(data), size);
      copied.push(record);
    });
    const onLost = n.registerPerfLost((_ctx: Pointer, _cpu: number, count: number | bigint) => {
      lost.count += Number(count);
    });
    let ptr: Pointer;
    try {
      ptr = callPtr(`open perf buffer ${name}`, () => n.perf_buffer__new(mapFd, options.pageCount ?? 64, sample, onLost, null, null));
    } catch (err) {
      n.unregister(sample);
      n.unregister(onLost);
      throw err;
    }
    const buffers = Number(n.perf_buffer__buffer_cnt(ptr));
    let next = 0;
    super('perf buffer', name, {
      epollFd: n.perf_buffer__epoll_fd(ptr),
      pending: () => head < copied.length,
      consume: (deliver, maxRecords, deadline, state) => {
        let total = 0;
        // Buffers found empty in a row: once all of them, nothing is left.
        let empty = 0;
        while (total < maxRecords && !state.closed) {
          if (head >= copied.length) {
            if (empty >= buffers || performance.now() > deadline) break;
            copied.length = 0;
            head = 0;
            const cpu = next;
            next = (next + 1) % buffers;
            const ret: number = n.perf_buffer__consume_buffer(ptr, cpu);
            // ENOENT: no buffer for that CPU (offline).
            if (ret < 0 && ret !== -ENOENT) throw new LibbpfError(`read perf buffer ${name} of CPU ${cpu}`, -ret);
            empty = copied.length > 0 ? 0 : empty + 1;
            continue;
          }
          if (total % CLOCK_EVERY === CLOCK_EVERY - 1 && performance.now() > deadline) break;
          const record = copied[head++];
          total++;
          deliver(record, 0, record.length, name);
        }
        return total;
      },
      release: () => {
        n.perf_buffer__free(ptr);
        n.unregister(sample);
        n.unregister(onLost);
      },
    });
    this.#lost = lost;
  }

  /**
   * How many records the kernel dropped so far because a CPU's buffer was
   * full. The kernel reports a loss with the next record that fits in that
   * buffer, so the count lags until then.
   */
  get lost(): number {
    this.live();
    return this.#lost.count;
  }
}
