// What `npm run bench` measures and where it writes, from arguments or the
// environment (arguments win). Small values make the smoke test fast.
import { resolve } from 'node:path';

export interface BenchOptions {
  /** Measured rounds of the cold-runner comparison. */
  rounds: number;
  /** Unrecorded rounds before those (page cache, CPU frequency, lazy kernel state). */
  warmup: number;
  /** Measured rounds of each read-path command at each size. */
  readRounds: number;
  /** How many programs and maps the read path loads, each. */
  sizes: number[];
  /** Directory that gets results.md and the plot. */
  out: string;
  /** The runner bundle. */
  runner: string;
  /** The iterators object the C reference loader opens. */
  object: string;
  /** Whether to convert the SVG plot to PNG (installs rsvg-convert if missing). */
  png: boolean;
  /** Which parts run (default all): the cold runner, the read path, the ring buffer consumers, the exporter's scrape. */
  only: Section[];
  /** Records per ring buffer throughput run. */
  ringRecords: number;
  /** Measured throughput runs per ring buffer consumer. */
  ringRounds: number;
  /** Records of the ring buffer RSS run. */
  ringRssRecords: number;
  /** The ring buffer producer object. */
  ringObject: string;
  /** Exporter scrapes at the largest size before its RSS is read. */
  rssScrapes: number;
}

export const SECTIONS = ['cold', 'read', 'ring', 'scrape'] as const;
export type Section = (typeof SECTIONS)[number];

export const USAGE = `usage: npm run bench -- [--rounds N] [--warmup N] [--read-rounds N] [--sizes N,N,...]
                        [--out DIR] [--runner FILE] [--object FILE] [--no-png]
                        [--only cold,read,ring,scrape] [--ring-records N] [--ring-rounds N]
                        [--ring-rss-records N] [--ring-object FILE] [--rss-scrapes N]
  environment: BENCH_ROUNDS, BENCH_WARMUP, BENCH_READ_ROUNDS, BENCH_SIZES, BENCH_OUT,
               BENCH_RUNNER, BENCH_OBJECT, BENCH_PNG=0, BENCH_ONLY, BENCH_RING_RECORDS,
               BENCH_RING_ROUNDS, BENCH_RING_RSS_RECORDS, BENCH_RING_OBJECT, BENCH_RSS_SCRAPES`;

function count(name: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
  return n;
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv, repo: string): BenchOptions {
  const raw: Record<string, string | undefined> = {
    rounds: env.BENCH_ROUNDS,
    warmup: env.BENCH_WARMUP,
    'read-rounds': env.BENCH_READ_ROUNDS,
    sizes: env.BENCH_SIZES,
    out: env.BENCH_OUT,
    runner: env.BENCH_RUNNER,
    object: env.BENCH_OBJECT,
    png: env.BENCH_PNG,
    only: env.BENCH_ONLY,
    'ring-records': env.BENCH_RING_RECORDS,
    'ring-rounds': env.BENCH_RING_ROUNDS,
    'ring-rss-records': env.BENCH_RING_RSS_RECORDS,
    'ring-object': env.BENCH_RING_OBJECT,
    'rss-scrapes': env.BENCH_RSS_SCRAPES,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--no-png') {
      raw.png = '0';
      continue;
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m || !(m[1] in raw) || m[1] === 'png') throw new Error(`unknown argument ${arg}\n${USAGE}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
    raw[m[1]] = value;
  }
  const sizes = (raw.sizes ?? '100,1000,10000').split(',').map((s) => count('--sizes', s.trim().replace(/_/g, ''), 1));
  const only = (raw.only ?? SECTIONS.join(',')).split(',').map((s) => s.trim());
  const unknown = only.filter((s) => !(SECTIONS as readonly string[]).includes(s));
  if (unknown.length > 0) throw new Error(`--only takes ${SECTIONS.join(', ')}, not ${unknown.join(', ')}\n${USAGE}`);
  return {
    rounds: count('--rounds', raw.rounds ?? '30', 1),
    warmup: count('--warmup', raw.warmup ?? '5', 0),
    readRounds: count('--read-rounds', raw['read-rounds'] ?? '11', 1),
    sizes: [...new Set(sizes)].sort((a, b) => a - b),
    out: resolve(raw.out ?? resolve(repo, 'bench')),
    runner: resolve(raw.runner ?? resolve(repo, 'dist/bpf-preload.js')),
    object: resolve(raw.object ?? resolve(repo, 'dist/bpf/iterators.bpf.o')),
    png: raw.png !== '0',
    only: SECTIONS.filter((s) => only.includes(s)),
    ringRecords: count('--ring-records', (raw['ring-records'] ?? '2000000').replace(/_/g, ''), 1),
    ringRounds: count('--ring-rounds', raw['ring-rounds'] ?? '5', 1),
    ringRssRecords: count('--ring-rss-records', (raw['ring-rss-records'] ?? '10000000').replace(/_/g, ''), 1),
    ringObject: resolve(raw['ring-object'] ?? resolve(repo, 'dist/fixtures/ringprod.bpf.o')),
    rssScrapes: count('--rss-scrapes', raw['rss-scrapes'] ?? '1000', 1),
  };
}
