// `bpf-preload exporter`: the HTTP server. /metrics is one collection per
// request (synchronous, so scrapes never interleave and a signal can only
// arrive between them), written into a body from a pool and sent with its
// length, gzipped (on the thread pool) when the scraper takes gzip, as
// Prometheus does; / is a page linking to it. Malformed requests get
// their status from node:http (431 for oversized headers, 408 for a request
// that never completes) and the server keeps serving.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeSync } from 'node:fs';
import { gzip } from 'node:zlib';
import { ErrnoError, enableRunTimeStats } from '../libbpf/index.js';
import { PreloadError } from '../errors.js';
import { Collector, type Snapshot } from './collect.js';
import { loadExporterIterators, type ExporterIterators } from './iterators.js';
import { CONTENT_TYPE, Exposition, negotiate, type ExporterCounters } from './metrics.js';
import { BodyPool } from './body.js';
import { formatListen, type ListenAddress } from './address.js';

export const METRICS_PATH = '/metrics';
/** Largest request header block accepted (bytes); more gets 431. */
export const MAX_HEADER_BYTES = 8192;
/** A request whose headers or body take longer than this gets 408 and is closed (ms). */
export const REQUEST_TIMEOUT_MS = 5000;
/**
 * zlib's fastest level: measured on a 5.5 MB body (10,000 programs and
 * maps), 8.6 ms for 349 KiB; level 6 takes twice as long for 2% less.
 */
const GZIP_LEVEL = 1;
/** How long SIGTERM waits for responses still being written before exiting anyway (ms). */
const DRAIN_TIMEOUT_MS = 10_000;

export interface ExporterOptions {
  listen: ListenAddress;
  enableStats: boolean;
  holders: boolean;
  /** Called once listening (the CLI prints where). */
  onListening?: (url: string) => void;
  /** Called with a one-line reason when the server cannot go on (bind failure); the exporter has released everything. */
  onFatal?: (line: string) => void;
}

const PAGE = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>bpf-preload exporter</title></head>
<body><h1>bpf-preload exporter</h1>
<p>Every BPF program, map and link on this host, as Prometheus metrics: <a href="${METRICS_PATH}">${METRICS_PATH}</a>.</p>
</body></html>
`;

export interface RunningExporter {
  readonly server: Server;
  /** Stops accepting, finishes the responses in flight, releases the iterators and the statistics fd. */
  stop(): Promise<void>;
}

/**
 * Loads the iterators (and takes the statistics fd) synchronously, so a
 * failure there is the caller's exception; then listens.
 */
export function startExporter(opts: ExporterOptions): RunningExporter {
  const statsFd = opts.enableStats ? takeStatsFd() : null;
  let iters: ExporterIterators;
  try {
    iters = loadExporterIterators({ holders: opts.holders });
  } catch (err) {
    if (statsFd !== null) closeSync(statsFd);
    throw err;
  }
  const collector = new Collector(iters, statsFd !== null);
  const counters: ExporterCounters = { scrapes: 0, errors: 0 };
  const bodies = new BodyPool();
  const exposition = new Exposition();
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    iters[Symbol.dispose]();
    if (statsFd !== null) closeSync(statsFd);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/' && path !== METRICS_PATH) return reply(res, 404, 'text/plain; charset=utf-8', `${path}: not found; metrics are at ${METRICS_PATH}\n`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return reply(res, 405, 'text/plain; charset=utf-8', `${req.method}: not allowed; use GET\n`);
    }
    if (path === '/') return reply(res, 200, 'text/html; charset=utf-8', PAGE, req.method === 'HEAD');
    const format = negotiate(req.headers.accept);
    let snapshot: Snapshot;
    try {
      snapshot = collector.collect();
    } catch (err) {
      counters.errors++;
      return reply(res, 500, 'text/plain; charset=utf-8', `collecting failed: ${(err as Error).message}\n`);
    }
    counters.scrapes++;
    counters.errors += snapshot.malformed + (snapshot.statsDenied ? 1 : 0);
    const body = bodies.take();
    exposition.write(snapshot, counters, format, body);
    const bytes = body.bytes;
    const headers = { 'Content-Type': CONTENT_TYPE[format], Vary: 'Accept-Encoding' };
    if (req.method === 'GET' && acceptsGzip(req.headers['accept-encoding'])) {
      // On libuv's thread pool: the next request is served meanwhile.
      gzip(bytes, { level: GZIP_LEVEL }, (err, packed) => {
        bodies.give(body);
        if (err) {
          counters.errors++;
          return reply(res, 500, 'text/plain; charset=utf-8', `compressing failed: ${err.message}\n`);
        }
        res.writeHead(200, { ...headers, 'Content-Encoding': 'gzip', 'Content-Length': packed.length });
        res.end(packed);
      });
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': bytes.length });
    // The body goes back to the pool once the socket is done with its bytes.
    let given = false;
    const give = () => {
      if (!given) bodies.give(body);
      given = true;
    };
    res.once('finish', give).once('close', give);
    res.end(req.method === 'HEAD' ? undefined : bytes);
  };

  const server = createServer(
    { maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 1000 },
    handle,
  );
  server.on('error', (err: NodeJS.ErrnoException) => {
    release();
    opts.onFatal?.(
      `cannot listen on ${formatListen(opts.listen)}: ${err.code ?? err.message}${err.code === 'EADDRINUSE' ? ' (another process has it: pick another --listen)' : ''}`,
    );
  });
  server.listen(opts.listen.port, opts.listen.host, () => opts.onListening?.(`http://${formatListen(opts.listen)}${METRICS_PATH}`));

  const stop = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.closeAllConnections();
      }, DRAIN_TIMEOUT_MS);
      timer.unref();
      server.close(() => {
        clearTimeout(timer);
        release();
        resolve();
      });
      server.closeIdleConnections();
    });
  return { server, stop };
}

/**
 * Whether an Accept-Encoding header takes gzip (Prometheus's always does):
 * named, or x-gzip, with a weight above 0.
 */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    if (coding !== 'gzip' && coding !== 'x-gzip') return false;
    const q = params.find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

function takeStatsFd(): number {
  try {
    return enableRunTimeStats();
  } catch (err) {
    if (err instanceof ErrnoError && (err.code === 'EPERM' || err.code === 'EACCES')) {
      throw new PreloadError(
        `--enable-stats: the kernel refused BPF_ENABLE_STATS (${err.code}): it needs CAP_SYS_ADMIN; leave --enable-stats out to run with CAP_BPF and CAP_PERFMON alone`,
      );
    }
    throw err;
  }
}

function reply(res: ServerResponse, status: number, type: string, body: string, headOnly = false): void {
  const bytes = Buffer.from(body);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': bytes.length });
  res.end(headOnly ? undefined : bytes);
}
