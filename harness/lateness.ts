// How late a 10 ms interval fires while something runs: what a timer, an
// HTTP server or a Ctrl-C handler in the same process would feel. The ring
// buffer tests (test/libbpf-ringbuf.test.ts) and the bench (bench/ringbuf.ts)
// both measure with it.

export interface Lateness {
  /** Milliseconds past each due time, sorted. */
  late: number[];
  median: number;
  p99: number;
  max: number;
  /** How many times the interval fired. */
  ticks: number;
}

/** Lateness of a 10 ms interval while `during` runs. */
export async function intervalLateness(during: () => Promise<void>): Promise<Lateness> {
  const late: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    late.push(Math.max(0, now - last - 10));
    last = now;
  }, 10);
  try {
    await during();
  } finally {
    clearInterval(timer);
  }
  late.sort((a, b) => a - b);
  const at = (q: number) => late[Math.min(late.length - 1, Math.floor(late.length * q))] ?? NaN;
  return { late, median: at(0.5), p99: at(0.99), max: late[late.length - 1] ?? NaN, ticks: late.length };
}
