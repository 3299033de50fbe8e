// Part 3: ring buffer consumers. One BPF producer (test/fixtures/ringprod.bpf.c
// run with BPF_PROG_TEST_RUN by ringbuf.c in a process of its own) emits
// 64-byte records numbered in sequence; the C reference consumer (libbpf's
// ring_buffer__poll, also ringbuf.c) and the library's APIs, in this process,
// each consume the same number, raw or decoded by the producer's generated
// skeleton (bench/ringprod.skel.ts). Every consumer checks the sequence: a
// record lost, duplicated or altered fails the bench. Rates are records per second
// of the consumer process's CPU time (user + system), which waiting does not
// use. Then: the lateness of a 10 ms interval in this process while it waits
// on an idle ring and while records flow at about 1M/s, and RSS growth over
// a long run.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { BpfObject, DecodedRecords, RingBuffer, mapInfo, progInfo } from '../src/libbpf/index.js';
import { RingprodRecords, type RingprodRecord } from './ringprod.skel.js';
import { intervalLateness as lateness, type Lateness } from '../harness/lateness.js';
import { onCleanup } from './cleanup.js';
import { summarize, type Summary } from './stats.js';

export interface RingSetup {
  /** bench/ringbuf.c, compiled. */
  helper: string;
  /** The producer object (dist/fixtures/ringprod.bpf.o). */
  object: string;
  /** Records per throughput run. */
  records: number;
  /** Throughput runs per consumer. */
  rounds: number;
  /** Records of the RSS run. */
  rssRecords: number;
}

export interface Consumer {
  id: 'c' | 'raw' | 'buffer' | 'await' | 'decoded';
  label: string;
  /** The fraction of C's rate the issue asks for, if any. */
  target?: number;
}

export const CONSUMERS: Consumer[] = [
  { id: 'c', label: 'C libbpf `ring_buffer__poll` (reference)' },
  { id: 'raw', label: '`rb.runRaw((data, offset, size) => …)`', target: 1 / 10 },
  { id: 'buffer', label: '`rb.run((record) => …)`' },
  { id: 'await', label: '`for await (const record of rb)`', target: 1 / 25 },
  { id: 'decoded', label: "`for await (const ev of skel.ringbuf('records', 'record'))`, decoded", target: 1 / 20 },
];

export interface RingResult {
  records: number;
  rounds: number;
  /** Records per CPU second, per consumer id. */
  rates: Record<Consumer['id'], Summary>;
  /** With no consumer at all: what the machine's scheduling alone costs. */
  baseline: Lateness;
  idle: Lateness;
  flowing: Lateness & { rate: number };
  rss: { records: number; startMiB: number; peakMiB: number; growthMiB: number };
}

const RECORD_SIZE = 64;
const FLOW_RATE = 1_000_000;

/** Checks sequence numbers: each record one more than the last (the first sets the base). */
class Sequence {
  count = 0;
  errors = 0;
  #next = -1;
  check(seq: number, size: number): void {
    if ((this.#next >= 0 && seq !== this.#next) || size !== RECORD_SIZE) this.errors++;
    this.#next = (seq + 1) >>> 0;
    this.count++;
  }
  /** A decoded record: its sequence number, and its last fill byte as the producer makes it (altered?). */
  checkDecoded(ev: RingprodRecord): void {
    const seq = Number(ev.seq & 0xffffffffn);
    this.check(seq, ev.fill[47] === ((seq + 47) & 0xff) ? RECORD_SIZE : -1);
  }
  assert(what: string, total: number): void {
    if (this.errors > 0 || this.count !== total) {
      throw new Error(`${what}: ${this.count} records of ${total}, ${this.errors} out of sequence or of the wrong size`);
    }
  }
}

/** Runs the helper; resolves with its last line of output once it exits 0. */
function helper(path: string, args: string[], onReady?: () => void): Promise<string> {
  const child = spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const release = onCleanup(`ring buffer helper ${args[0]}`, () => child.kill('SIGKILL'));
  let last = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line === 'ready') onReady?.();
    else last = line;
  });
  return new Promise((resolve, reject) => {
    child.on('close', (code) => {
      release();
      if (code === 0) resolve(last);
      else reject(new Error(`ringbuf ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
    });
  });
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

export async function runRingBuffer(s: RingSetup, log: (msg: string) => void): Promise<RingResult> {
  const obj = BpfObject.openFile(s.object);
  const release = onCleanup('ring buffer producer object', () => obj.close());
  try {
    obj.load();
    const progId = String(progInfo(obj.program('produce').fd).id);
    const mapFd = obj.map('records').fd;
    const mapId = String(mapInfo(mapFd).id);
    const produce = (total: number, rate = 0) => helper(s.helper, ['produce', progId, String(total), String(rate)]);

    /** One library run: the producer starts, `consume` takes `total` records, closing `rb` at the last. */
    const library = async (id: Consumer['id'], total: number): Promise<{ cpuUs: number; seq: Sequence }> => {
      const seq = new Sequence();
      const rb = new RingBuffer(mapFd, 'records');
      const produced = produce(total);
      const cpu0 = cpuUs();
      const done = () => {
        if (seq.count === total) rb.close();
      };
      if (id === 'raw') {
        await rb.runRaw((data, offset, size) => {
          seq.check(data.readUInt32LE(offset), size);
          done();
        });
      } else if (id === 'buffer') {
        await rb.run((record) => {
          seq.check(record.readUInt32LE(0), record.length);
          done();
        });
      } else if (id === 'await') {
        for await (const record of rb) {
          seq.check(record.readUInt32LE(0), record.length);
          done();
        }
      } else {
        // What skel.ringbuf('records', 'record') makes, on the object loaded from s.object.
        for await (const ev of new DecodedRecords(rb, RingprodRecords.record)) {
          seq.checkDecoded(ev);
          done();
        }
      }
      const used = cpuUs() - cpu0;
      await produced;
      seq.assert(CONSUMERS.find((c) => c.id === id)!.label, total);
      return { cpuUs: used, seq };
    };

    const c = async (total: number): Promise<number> => {
      let produced: Promise<string> | undefined;
      const out = await helper(s.helper, ['consume', mapId, String(total)], () => {
        produced = produce(total);
      });
      await produced;
      const [records, cpu, , errors] = out.split(' ').map(Number);
      if (records !== total || errors !== 0) throw new Error(`C consumer: ${records} records of ${total}, ${errors} out of sequence`);
      return cpu;
    };

    // One unrecorded warm-up run each (JIT, page faults of the ring), then interleaved rounds.
    const samples: Record<Consumer['id'], number[]> = { c: [], raw: [], buffer: [], await: [], decoded: [] };
    for (let round = 0; round <= s.rounds; round++) {
      for (const consumer of CONSUMERS) {
        const cpu = consumer.id === 'c' ? await c(s.records) : (await library(consumer.id, s.records)).cpuUs;
        if (round > 0) samples[consumer.id].push(s.records / (cpu / 1e6));
      }
      if (round > 0) log(`ring buffer: round ${round}: ${CONSUMERS.map((k) => `${k.id} ${(samples[k.id].at(-1)! / 1e6).toFixed(2)}M/s`).join(', ')}`);
    }

    // Nothing at all for 2 s: the machine's own share of the lateness.
    const baseline = await lateness(() => new Promise((resolve) => setTimeout(resolve, 2000)));
    log(`ring buffer: baseline interval lateness p99 ${baseline.p99.toFixed(2)} ms`);

    // An idle ring: the consumer waits (off the main thread) for 2 s.
    const idle = await lateness(async () => {
      const rb = new RingBuffer(mapFd, 'records');
      setTimeout(() => rb.close(), 2000);
      for await (const _ of rb) throw new Error('a record on an idle ring');
    });
    log(`ring buffer: idle interval lateness p99 ${idle.p99.toFixed(2)} ms`);

    // Records flowing at about 1M/s for 3 s, taken with for await.
    let flowRate = 0;
    const flowing = await lateness(async () => {
      const total = 3 * FLOW_RATE;
      const seq = new Sequence();
      const rb = new RingBuffer(mapFd, 'records');
      const produced = helper(s.helper, ['produce', progId, String(total), String(FLOW_RATE)]);
      const t0 = performance.now();
      for await (const record of rb) {
        seq.check(record.readUInt32LE(0), record.length);
        if (seq.count === total) rb.close();
      }
      flowRate = total / ((performance.now() - t0) / 1000);
      await produced;
      seq.assert('flowing run', total);
    });
    log(`ring buffer: flowing (${(flowRate / 1e6).toFixed(2)}M/s) interval lateness p99 ${flowing.p99.toFixed(2)} ms`);

    // RSS over a long for-await run, sampled every 50 ms.
    const startRss = process.memoryUsage.rss();
    let peakRss = startRss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50);
    try {
      await library('await', s.rssRecords);
    } finally {
      clearInterval(sampler);
    }
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    const MiB = 2 ** 20;
    log(`ring buffer: RSS ${(startRss / MiB).toFixed(1)} → peak ${(peakRss / MiB).toFixed(1)} MiB over ${s.rssRecords} records`);

    return {
      records: s.records,
      rounds: s.rounds,
      rates: Object.fromEntries(CONSUMERS.map((k) => [k.id, summarize(samples[k.id])])) as Record<Consumer['id'], Summary>,
      baseline,
      idle,
      flowing: { ...flowing, rate: flowRate },
      rss: { records: s.rssRecords, startMiB: startRss / MiB, peakMiB: peakRss / MiB, growthMiB: (peakRss - startRss) / MiB },
    };
  } finally {
    release();
  }
}
