// Records as JavaScript objects: the structs a BPF program sends through a
// ring or perf buffer, decoded as they are handed out. `gen skeleton` makes a
// RecordType for each record struct of the object (see objectTypes): its size
// and a decoder written for its layout alone, reads at fixed offsets with no
// walk over a type description per record. A DecodedRecords takes the
// records of a RecordStream through the stream's raw paths (no Buffer per
// record for run() and consume()) and gives each handler or iteration the
// decoded object, a copy like every record of the library.
import type { RecordStream, SliceOptions, StreamOptions } from './stream.js';

/** How to decode one record struct; generated skeletons export one per struct (NAMERecords). */
export interface RecordType<T> {
  /** The struct's C name ("exec_event"), for messages. */
  readonly name: string;
  /** sizeof the struct: a shorter record is refused. */
  readonly size: number;
  /**
   * Each field's offset in the struct, by its C name: for code that reads
   * a few fields of many records where it is, without decoding them all.
   */
  readonly offsets: Readonly<Record<string, number>>;
  /**
   * The struct at `offset`: `bytes` and `view` show the same memory, from
   * the same start (strings and byte arrays are read from `bytes`, numbers
   * from `view`).
   */
  decode(bytes: Buffer, view: DataView, offset: number): T;
}

/** The decoded object of a RecordType. */
export type RecordOf<R> = R extends RecordType<infer T> ? T : never;

/** Receives one decoded record; `source` names the map it came from. */
export type DecodedHandler<T> = (record: T, source: string) => void;

/**
 * The records of a stream (RingBuffer, PerfBuffer), decoded: the same ways
 * to take them (consume, run, for await), closing and aborting.
 */
export class DecodedRecords<T> implements AsyncIterable<T>, Disposable {
  /** The stream the records come from (to wait(), or add() another ring). */
  readonly stream: RecordStream;
  readonly type: RecordType<T>;
  // Views of the memory of the last batch, made once per batch.
  #memory: ArrayBufferLike | null = null;
  #bytes: Buffer = Buffer.alloc(0);
  #view: DataView = new DataView(new ArrayBuffer(0));

  constructor(stream: RecordStream, type: RecordType<T>) {
    this.stream = stream;
    this.type = type;
  }

  /** consume() of the stream, decoded: the records there now, in one bounded slice. */
  consume(onRecord: DecodedHandler<T>, options: SliceOptions = {}): number {
    return this.stream.consumeRaw((data, offset, size, source) => onRecord(this.#decode(data, offset, size), source), options);
  }

  /** run() of the stream, decoded: every record until close() or the signal aborts. */
  run(onRecord: DecodedHandler<T>, options: StreamOptions = {}): Promise<void> {
    return this.stream.runRaw((data, offset, size, source) => onRecord(this.#decode(data, offset, size), source), options);
  }

  /** records() of the stream, decoded: `for await (const ev of decoded.records({ signal }))`. */
  records(options: StreamOptions = {}): AsyncIterableIterator<T> {
    return this.stream.records(options, (record) => this.#decode(record, 0, record.length));
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this.records();
  }

  /** Closes the stream: every wait and iteration ends. */
  close(): void {
    this.stream.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #decode(data: Buffer, offset: number, size: number): T {
    if (size < this.type.size) {
      throw new RangeError(
        `${this.stream.name}: a record of ${size} bytes, but struct ${this.type.name} takes ${this.type.size}: is it the struct this map carries?`,
      );
    }
    // Batches and their records' slices share memory: one view of it serves them all.
    if (data.buffer !== this.#memory) {
      this.#memory = data.buffer;
      this.#bytes = Buffer.from(data.buffer);
      this.#view = new DataView(data.buffer);
    }
    return this.type.decode(this.#bytes, this.#view, data.byteOffset + offset);
  }
}
