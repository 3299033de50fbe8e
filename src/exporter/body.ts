// A response body written as bytes: the exposition of 10,000 programs and
// maps is some 110,000 lines, and writing their digits and the bytes of
// their names straight into one buffer costs a fraction of building strings
// V8 must then collect and node must encode. The buffer is reused from
// scrape to scrape once its response is sent (BodyPool).

const NEWLINE = 0x0a;
const ZERO = 0x30;

export class Body {
  #buf: Buffer;
  #len = 0;

  constructor(capacity: number) {
    this.#buf = Buffer.allocUnsafeSlow(Math.max(capacity, 4096));
  }

  /** The bytes written so far (a view: valid until the body is written to or reused). */
  get bytes(): Buffer {
    return this.#buf.subarray(0, this.#len);
  }

  get capacity(): number {
    return this.#buf.length;
  }

  /** Starts again from empty, keeping the buffer. */
  reset(): void {
    this.#len = 0;
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.#buf.length * 2, this.#len + n));
    this.#buf.copy(bigger, 0, 0, this.#len);
    this.#buf = bigger;
  }

  /** Bytes made once (a metric's name and label opening). */
  raw(b: Uint8Array): void {
    const n = b.length;
    this.#room(n);
    const buf = this.#buf;
    let at = this.#len;
    // A loop beats a call into TypedArray.prototype.set for a few dozen bytes.
    if (n <= 64) for (let i = 0; i < n; i++) buf[at++] = b[i];
    else {
      buf.set(b, at);
      at += n;
    }
    this.#len = at;
  }

  /** A string of characters below 256, one byte each: what the iterators and our own text hold. */
  latin1(s: string): void {
    this.#room(s.length);
    this.#len += this.#buf.write(s, this.#len, 'latin1');
  }

  /** A string that may hold any character (a process's comm). */
  utf8(s: string): void {
    const n = Buffer.byteLength(s);
    this.#room(n);
    this.#len += this.#buf.write(s, this.#len, n, 'utf8');
  }

  newline(): void {
    this.#room(1);
    this.#buf[this.#len++] = NEWLINE;
  }

  /** A non-negative integer up to 2^53, in decimal. */
  uint(n: number): void {
    let digits = 1;
    for (let p = 10; p <= n; p *= 10) digits++;
    this.#room(digits);
    const buf = this.#buf;
    let at = this.#len + digits;
    this.#len = at;
    while (n >= 10) {
      const q = Math.floor(n / 10);
      buf[--at] = ZERO + (n - q * 10);
      n = q;
    }
    buf[at - 1] = ZERO + n;
  }

  /** A 64-bit value, signed or not, exactly (records.ts reads them as u64At and i64At give them). */
  int(v: number | bigint): void {
    if (typeof v === 'number' && v >= 0) this.uint(v);
    else this.latin1(v.toString());
  }

  /** Nanoseconds as seconds, exactly, in decimal: 1500 is 0.0000015. */
  seconds(ns: number | bigint): void {
    let frac: number;
    if (typeof ns === 'number') {
      let whole = Math.floor(ns / 1e9);
      frac = ns - whole * 1e9;
      // The division rounds up just below a whole second past 2^23 seconds.
      if (frac < 0) {
        whole--;
        frac += 1e9;
      }
      this.uint(whole);
    } else {
      this.latin1((ns / 1_000_000_000n).toString());
      frac = Number(ns % 1_000_000_000n);
    }
    if (frac === 0) return;
    let digits = 9;
    let f = frac;
    while (f % 10 === 0) {
      f /= 10;
      digits--;
    }
    this.#room(1 + digits);
    const buf = this.#buf;
    buf[this.#len] = 0x2e;
    let at = this.#len + 1 + digits;
    this.#len = at;
    for (let i = 0; i < digits; i++) {
      const q = Math.floor(f / 10);
      buf[--at] = ZERO + (f - q * 10);
      f = q;
    }
  }
}

/**
 * Bodies to write responses into, each back in the pool once its response
 * has been sent: steady scrapes reuse one buffer rather than map and fault
 * in megabytes each time.
 */
export class BodyPool {
  readonly #free: Body[] = [];
  /** The last body's size, for the next one's first capacity. */
  #lastSize = 64 * 1024;

  take(): Body {
    const body = this.#free.pop() ?? new Body(this.#lastSize + (this.#lastSize >> 3));
    body.reset();
    return body;
  }

  /** Returns `body` once nothing reads its bytes any more. At most two are kept. */
  give(body: Body): void {
    this.#lastSize = body.bytes.length;
    if (this.#free.length < 2) this.#free.push(body);
  }
}
