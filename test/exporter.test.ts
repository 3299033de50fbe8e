// bpf-preload exporter against the real kernel and a real Prometheus
// (Debian's prometheus package): what Prometheus stores after scraping it,
// what promtool says of its output, run-time statistics that never touch the
// sysctl and stop with the exporter, scrapes while objects come and go,
// concurrent scrapes, malformed requests, and SIGTERM.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { connect } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { BpfObject, FdMap, mapInfo, mapUpdate, progInfo, progRunStatsById } from '../src/libbpf/index.js';
import { MAX_HEADER_BYTES, REQUEST_TIMEOUT_MS } from '../src/exporter/server.js';
import { runCli } from './lib/cli.js';
import { bpftoolMaps, readAgreeing } from './lib/kernel.js';
import { fixture, loadFixture } from './lib/fixtures.js';
import { promtoolCheck, startExporter, startPrometheus } from './lib/prometheus.js';

const FIXTURE_PROG = 'selftest_tp_btf_task_newtask';
const FIXTURE_HASH = 'selftest_hash';
const INSERTED = 7;
const STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of an exposition (either format); comments skipped. */
function samples(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** Internal consistency of one scrape; returns the problems found. */
function inconsistencies(text: string): string[] {
  const s = samples(text);
  const problems: string[] = [];
  const info = (name: string) => new Set(s.filter((x) => x.name === name).map((x) => x.labels.id));
  const progs = info('bpf_prog_info');
  const maps = info('bpf_map_info');
  const links = info('bpf_link_info');
  const seen = new Set<string>();
  for (const x of s) {
    const key = `${x.name}${JSON.stringify(x.labels)}`;
    if (seen.has(key)) problems.push(`duplicate series ${key}`);
    seen.add(key);
    if (x.name.startsWith('bpf_prog_') && !x.name.startsWith('bpf_prog_holder') && !progs.has(x.labels.id)) problems.push(`${key} without bpf_prog_info`);
    if (x.name.startsWith('bpf_map_') && !x.name.startsWith('bpf_map_holder') && !maps.has(x.labels.id)) problems.push(`${key} without bpf_map_info`);
  }
  const objects = (kind: string) => s.find((x) => x.name === 'bpf_exporter_objects' && x.labels.kind === kind)?.value;
  if (objects('prog') !== progs.size) problems.push(`objects{prog} ${objects('prog')} but ${progs.size} programs`);
  if (objects('map') !== maps.size) problems.push(`objects{map} ${objects('map')} but ${maps.size} maps`);
  if (objects('link') !== links.size) problems.push(`objects{link} ${objects('link')} but ${links.size} links`);
  return problems;
}

const statsSysctl = () => readFileSync(STATS_SYSCTL, 'utf8').trim();
/** Makes the fixture's task_newtask program run: each fork is one run. */
const fork = (n: number) => {
  for (let i = 0; i < n; i++) spawnSync('true');
};

/** The selftest fixture loaded, its tp_btf program attached, INSERTED elements in its hash map. */
function loadSelftest(t: Test) {
  const { obj } = loadFixture(t, 'selftest', (prog) => prog.name === FIXTURE_PROG);
  const hash = obj.map(FIXTURE_HASH);
  for (let k = 0; k < INSERTED; k++) {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(k);
    mapUpdate(hash.fd, key, Buffer.alloc(hash.valueSize));
  }
  return { obj, hash };
}

/** progs.debug's attached column for program `id`, from `bpf-preload show progs` (the same bytes as the file). */
function progsDebugAttached(id: number): string | undefined {
  const r = runCli(['show', 'progs']);
  if (r.code !== 0) throw new Error(`show progs: ${r.stderr}`);
  for (const line of r.stdout.split('\n').slice(1)) {
    const m = /^\s*(\d+) (\S+)\s+(.*)$/.exec(line);
    if (m && Number(m[1]) === id) return m[3].trimEnd();
  }
  return undefined;
}

t.test('Prometheus scrapes the exporter: run counter, map entries, attach target; promtool finds no problem', async (t) => {
  t.equal(statsSysctl(), '0', 'the sysctl is off before the test (otherwise nothing here proves the fd works)');
  loadSelftest(t);
  const exporter = await startExporter(t, ['--enable-stats', '--holders']);
  const prom = await startPrometheus(t, `127.0.0.1:${exporter.port}`);

  // The fixture's series, as Prometheus stored them.
  let progId = '';
  const end0 = Date.now() + 20_000;
  while (!progId && Date.now() < end0) {
    const r = await prom.query(`bpf_prog_info{name="${FIXTURE_PROG}"}`);
    if (r.length === 1) progId = r[0].metric.id;
    else await new Promise((res) => setTimeout(res, 250));
  }
  t.ok(progId, "Prometheus has the fixture program's info series");
  const info = (await prom.query(`bpf_prog_info{id="${progId}"}`))[0].metric;
  t.equal(info.type, 'tracing', "type by libbpf's name");
  t.match(info.tag, /^[0-9a-f]{16}$/, 'tag');
  t.equal(info.attached, progsDebugAttached(Number(progId)), 'attach target as progs.debug shows it');
  t.equal(info.attached, 'task_newtask');
  t.equal((await prom.query('up{job="bpf"}'))[0]?.value[1], '1', 'every scrape parsed (Prometheus asked for OpenMetrics)');

  const runs = async () => Number((await prom.query(`bpf_prog_runs_total{id="${progId}"}`))[0]?.value[1] ?? NaN);
  const before = await runs();
  t.ok(Number.isFinite(before), `a run counter is there (${before})`);
  fork(20);
  let after = before;
  const end = Date.now() + 15_000;
  while (after < before + 20 && Date.now() < end) {
    await new Promise((res) => setTimeout(res, 500));
    after = await runs();
  }
  t.ok(after >= before + 20, `the run counter went from ${before} to ${after} after 20 forks`);
  const time = Number((await prom.query(`bpf_prog_run_time_seconds_total{id="${progId}"}`))[0]?.value[1]);
  t.ok(time > 0, `run time in seconds (${time})`);
  t.equal(statsSysctl(), '0', 'the sysctl stayed 0 while the counters moved');

  const mapInfo = await prom.query(`bpf_map_info{name="${FIXTURE_HASH}"}`);
  t.equal(mapInfo.length, 1, "the hash map's info series");
  const mapId = mapInfo[0].metric.id;
  t.equal(mapInfo[0].metric.type, 'hash');
  t.equal((await prom.query(`bpf_map_entries{id="${mapId}"}`))[0]?.value[1], String(INSERTED), 'current entries are what the test inserted');
  t.equal((await prom.query(`bpf_map_max_entries{id="${mapId}"}`))[0]?.value[1], '16');
  const arrayId = (await prom.query('bpf_map_info{name="selftest_array"}'))[0].metric.id;
  t.same(await prom.query(`bpf_map_entries{id="${arrayId}"}`), [], 'an array, which the kernel does not count, has no entries series (absent, not 0)');

  const holders = await prom.query(`bpf_prog_holder_info{id="${progId}"}`);
  t.ok(
    holders.some((h) => h.metric.pid === String(process.pid) && h.metric.comm === 'node'),
    'the test process holds the program (--holders)',
  );

  const text = await (await fetch(`${exporter.url}/metrics`)).text();
  t.same(promtoolCheck(text), { code: 0, output: '' }, 'promtool check metrics: zero problems');
  t.same(inconsistencies(text), [], 'the scrape is internally consistent');
  t.equal(statsSysctl(), '0', 'the sysctl is still 0');
});

t.test("run counters from the iterator agree with bpf_prog_info's; maps' memlock bytes are fdinfo's", async (t) => {
  const { obj, hash } = loadSelftest(t);
  const progId = progInfo(obj.program(FIXTURE_PROG).fd).id;
  const mapId = mapInfo(hash.fd).id;
  const exporter = await startExporter(t, ['--enable-stats']);
  fork(10);
  // Forks anywhere on the machine run the program, so the scrape's counters
  // lie between bpf_prog_info's just before and just after it.
  const before = progRunStatsById(progId)!;
  const text = await (await fetch(`${exporter.url}/metrics`)).text();
  const after = progRunStatsById(progId)!;
  const value = (name: string, id: number) => samples(text).find((x) => x.name === name && x.labels.id === String(id))?.value ?? NaN;
  const runs = value('bpf_prog_runs_total', progId);
  t.ok(before.runCount >= 10n, `the program ran (${before.runCount})`);
  t.ok(runs >= Number(before.runCount) && runs <= Number(after.runCount), `runs ${runs} within [${before.runCount}, ${after.runCount}]`);
  const seconds = value('bpf_prog_run_time_seconds_total', progId);
  t.ok(seconds >= Number(before.runTimeNs) / 1e9 && seconds <= Number(after.runTimeNs) / 1e9, `run time ${seconds} s within bpf_prog_info's`);
  t.equal(value('bpf_prog_recursion_misses_total', progId), Number(after.recursionMisses), 'recursion misses');

  const fdinfo = /^memlock:\s+(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${hash.fd}`, 'utf8'));
  t.ok(fdinfo, 'fdinfo has a memlock line');
  t.equal(value('bpf_map_memlock_bytes', mapId), Number(fdinfo![1]), "the hash map's memlock bytes are what fdinfo shows");
  const maps = samples(text)
    .filter((x) => x.name === 'bpf_map_info')
    .map((x) => x.labels.id);
  const memlock = new Set(
    samples(text)
      .filter((x) => x.name === 'bpf_map_memlock_bytes')
      .map((x) => x.labels.id),
  );
  // A map freed between the iterator's listing and the read of its fdinfo
  // has none (something else on the machine may free one at any time): a map
  // without memlock bytes must be gone by now.
  const alive = new Set(bpftoolMaps().map((m) => String(m.id)));
  t.same(
    maps.filter((id) => !memlock.has(id) && alive.has(id)),
    [],
    'every map has memlock bytes, but one freed during the scrape',
  );
  t.same(promtoolCheck(text), { code: 0, output: '' }, 'promtool check metrics: zero problems');
});

t.test('OpenMetrics when asked, the text format otherwise; HEAD and / work', async (t) => {
  const exporter = await startExporter(t);
  const om = await fetch(`${exporter.url}/metrics`, { headers: { Accept: 'application/openmetrics-text;version=1.0.0,text/plain;q=0.5' } });
  t.equal(om.headers.get('content-type'), 'application/openmetrics-text; version=1.0.0; charset=utf-8');
  const omText = await om.text();
  t.ok(omText.endsWith('# EOF\n'), 'ends with # EOF');
  t.match(omText, /^# TYPE bpf_prog info$/m, 'info type');
  t.match(omText, /^# TYPE bpf_exporter_scrapes counter$/m, 'counter family named without _total');
  t.match(omText, /^bpf_exporter_scrapes_total 1$/m);
  const plain = await fetch(`${exporter.url}/metrics`);
  t.equal(plain.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const text = await plain.text();
  t.notMatch(text, /# EOF/);
  t.match(text, /^# TYPE bpf_prog_info gauge$/m);
  t.notMatch(text, /bpf_prog_runs_total/, 'no run counters without --enable-stats while the sysctl is 0');
  t.match(text, /^bpf_exporter_run_stats_enabled 0$/m);
  const head = await fetch(`${exporter.url}/metrics`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(await head.text(), '');
  const page = await fetch(`${exporter.url}/`);
  t.equal(page.status, 200);
  t.match(await page.text(), /<a href="\/metrics">/);
});

/** GET with these headers, the body as sent (node:http does not decompress). */
function rawGet(url: string, headers: Record<string, string>): Promise<{ headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

/** The lines of an exposition that do not move from one scrape to the next (no counters, no timings). */
const steadyLines = (text: string): string[] => text.split('\n').filter((l) => !/^bpf_exporter_(scrapes_total|scrape_duration_seconds|errors_total) /.test(l));

/**
 * Two scrapes' steady lines, less the series of objects only one of them saw:
 * something else on the machine may load or free an object between two
 * scrapes (libbpf's own probe map, libbpf_det_bind, lives a few milliseconds
 * in every process that loads an object).
 */
function commonLines(a: string, b: string): [string[], string[]] {
  const ids = (text: string) => new Set([...text.matchAll(/\{id="(\d+)"/g)].map((m) => m[1]));
  const [inA, inB] = [ids(a), ids(b)];
  const keep = (l: string) => {
    const id = /\{id="(\d+)"/.exec(l)?.[1];
    return id === undefined || (inA.has(id) && inB.has(id));
  };
  return [steadyLines(a).filter(keep), steadyLines(b).filter(keep)];
}

t.test('gzip when the scraper takes it (as Prometheus does), the same exposition; identity otherwise', async (t) => {
  const exporter = await startExporter(t);
  const url = `${exporter.url}/metrics`;
  // A gzipped scrape, then a plain one: the same exposition, but for objects
  // that came or went in between (commonLines), and for values that moved
  // (a map's entries, say): a pair that differs is taken again, up to 5
  // times. A gzip path that changed the exposition differs every time.
  const { result, attempts: pairs } = await readAgreeing(
    async () => {
      const packed = await rawGet(url, { 'Accept-Encoding': 'gzip' });
      const unpacked = gunzipSync(packed.body).toString();
      const plain = await rawGet(url, { 'Accept-Encoding': 'identity' });
      return { packed, unpacked, plain, compared: commonLines(unpacked, plain.body.toString()) };
    },
    (r) => r.compared[0].join('\n') === r.compared[1].join('\n'),
  );
  const { packed, unpacked, plain, compared } = result;
  t.equal(packed.headers['content-encoding'], 'gzip');
  t.equal(packed.headers.vary, 'Accept-Encoding');
  t.equal(Number(packed.headers['content-length']), packed.body.length, 'Content-Length is the compressed size');
  t.equal(plain.headers['content-encoding'], undefined, 'identity asked: not compressed');
  t.equal(Number(plain.headers['content-length']), plain.body.length);
  t.ok(packed.body.length * 2 < plain.body.length, `compressed ${packed.body.length} bytes, plain ${plain.body.length}`);
  t.same(compared[0], compared[1], `the same exposition (pair ${pairs} of at most 5)`);
  t.ok(
    ['bpf_prog_info{', 'bpf_map_info{', 'bpf_link_info{'].every((series) => compared[0].some((l) => l.startsWith(series))),
    `${compared[0].length} lines compared, programs', maps' and links' among them`,
  );
  t.match(unpacked, new RegExp(`^bpf_exporter_scrapes_total ${2 * pairs - 1}$`, 'm'), 'the gzipped scrape was counted as a scrape');
  const refused = await rawGet(url, { 'Accept-Encoding': 'gzip;q=0, identity' });
  t.equal(refused.headers['content-encoding'], undefined, 'gzip;q=0: not compressed');
  const om = await rawGet(url, { 'Accept-Encoding': 'deflate, x-gzip;q=0.5', Accept: 'application/openmetrics-text;version=1.0.0' });
  t.equal(om.headers['content-encoding'], 'gzip', 'x-gzip with a weight');
  t.ok(gunzipSync(om.body).toString().endsWith('# EOF\n'), 'OpenMetrics, gzipped');
});

t.test('without --enable-stats and after SIGKILL of the exporter, run counters stop moving', async (t) => {
  const { obj } = loadSelftest(t);
  const id = progInfo(obj.program(FIXTURE_PROG).fd).id;
  const exporter = await startExporter(t, ['--enable-stats']);
  const count = () => progRunStatsById(id)!.runCount;
  const start = count();
  fork(5);
  t.ok(count() >= start + 5n, 'counting while the exporter holds its fd');
  t.equal(statsSysctl(), '0');
  exporter.child.kill('SIGKILL');
  t.equal((await exporter.exited).signal, 'SIGKILL');
  // The kernel drops the fd with the process; stats go off with the last holder.
  const stopped = count();
  fork(5);
  t.equal(count(), stopped, 'no runs counted once the exporter is gone');
});

t.test('every scrape succeeds and is consistent while programs and maps come and go; 50 at once', async (t) => {
  const exporter = await startExporter(t, ['--holders']);
  let churning = true;
  let loads = 0;
  const churn = (async () => {
    while (churning) {
      const obj = BpfObject.openMem(readFileSync(fixture('selftest')), { name: 'churn' });
      obj.load();
      const m = FdMap.create(1 /* BPF_MAP_TYPE_HASH */, 'churn_map', 4, 8, 4);
      await new Promise((r) => setTimeout(r, 5));
      m.close();
      obj.close();
      loads++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const problems: string[] = [];
  // At least 30 scrapes, and on until the churn has loaded and unloaded 10
  // times: how many loads fit in 30 scrapes is this machine's timing, not the
  // exporter's behaviour (the bound only stops a churn that has stalled).
  for (let i = 0; i < 30 || (loads < 10 && i < 3000); i++) {
    const res = await fetch(`${exporter.url}/metrics`);
    const text = await res.text();
    if (res.status !== 200) problems.push(`scrape ${i}: ${res.status} ${text}`);
    else problems.push(...inconsistencies(text).map((p) => `scrape ${i}: ${p}`));
  }
  churning = false;
  await churn;
  t.ok(loads >= 10, `objects loaded and unloaded during the scrapes (${loads})`);
  t.same(problems, [], 'every scrape 200 and consistent');

  const all = await Promise.all(
    Array.from({ length: 50 }, () => fetch(`${exporter.url}/metrics`).then(async (r) => ({ status: r.status, text: await r.text() }))),
  );
  t.same(
    all.map((r) => r.status),
    Array(50).fill(200),
    '50 concurrent scrapes all 200',
  );
  t.same(
    all.flatMap((r) => inconsistencies(r.text)),
    [],
    'and each consistent',
  );
  const text = all[49].text;
  t.same(promtoolCheck(text), { code: 0, output: '' }, 'promtool on one of them');
});

/** Sends raw bytes and returns what came back before the server closed (or `ms` passed). */
function raw(port: number, request: string, ms = 15_000): Promise<{ response: string; closed: boolean; elapsed: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let response = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ response, closed: false, elapsed: Date.now() - started });
    }, ms);
    socket.on('data', (d) => (response += d.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ response, closed: true, elapsed: Date.now() - started });
    });
    socket.on('error', () => {});
    socket.write(request);
  });
}

t.test('malformed requests get their status, and the exporter keeps serving', async (t) => {
  const exporter = await startExporter(t);
  const unknown = await fetch(`${exporter.url}/nothing`);
  t.equal(unknown.status, 404, 'unknown path');
  const post = await fetch(`${exporter.url}/metrics`, { method: 'POST', body: 'x' });
  t.equal(post.status, 405, 'POST');
  t.equal(post.headers.get('allow'), 'GET, HEAD');
  const big = await raw(exporter.port, `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(MAX_HEADER_BYTES * 2)}\r\n\r\n`);
  t.match(big.response, /^HTTP\/1\.1 431 /, 'oversized headers: 431');
  const slow = await raw(exporter.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n');
  t.ok(slow.closed, `a request that never finishes is closed (after ${slow.elapsed} ms)`);
  t.ok(slow.elapsed >= REQUEST_TIMEOUT_MS - 100 && slow.elapsed < REQUEST_TIMEOUT_MS + 3000, 'at the request timeout');
  t.match(slow.response, /^HTTP\/1\.1 408 /, 'with 408');
  const garbage = await raw(exporter.port, 'NOT HTTP AT ALL\r\n\r\n');
  t.match(garbage.response, /^HTTP\/1\.1 400 /, 'garbage: 400');
  const ok = await fetch(`${exporter.url}/metrics`);
  t.equal(ok.status, 200, 'still serving');
  t.match(await ok.text(), /^bpf_exporter_scrapes_total 1$/m, 'and that was its first scrape');
});

t.test('SIGTERM finishes a scrape in flight and exits 0; bad options are usage errors; a taken port is one line', async (t) => {
  const exporter = await startExporter(t);
  // A request the exporter has begun to receive when SIGTERM arrives: the
  // headers but the last line, the rest only after the signal.
  const socket = connect(exporter.port, '127.0.0.1');
  let response = '';
  socket.on('data', (d) => (response += d.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve) => socket.on('connect', () => resolve()));
  socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n');
  await new Promise((r) => setTimeout(r, 300));
  exporter.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(exporter.child.exitCode, null, 'still running while a request is in flight');
  socket.write('\r\n');
  await closed;
  t.match(response, /^HTTP\/1\.1 200 /, 'the scrape in flight was answered');
  t.match(response, /^bpf_exporter_scrapes_total 1$/m, 'in full');
  t.same(await exporter.exited, { code: 0, signal: null }, 'then exit 0');
  t.equal(exporter.stderr(), '');

  const bad = runCli(['exporter', '--listen', 'localhost']);
  t.equal(bad.code, 2);
  t.equal(bad.stderr, "bpf-preload: --listen takes ADDR:PORT such as 127.0.0.1:10099 or [::1]:10099, not 'localhost'\n");
  const other = runCli(['show', 'progs', '--holders']);
  t.equal(other.code, 2);
  t.equal(other.stderr, "bpf-preload: --holders does not apply to 'show' (see --help)\n");

  const first = await startExporter(t);
  const taken = runCli(['exporter', '--listen', `127.0.0.1:${first.port}`]);
  t.equal(taken.code, 1);
  t.equal(taken.stderr, `bpf-preload: cannot listen on 127.0.0.1:${first.port}: EADDRINUSE (another process has it: pick another --listen)\n`);
});
