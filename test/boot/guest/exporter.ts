// The exporter in the guest, as the package ships it: its unit (installed,
// not enabled) starts, a client on loopback gets /metrics from the default
// address with run counters and maps' memlock bytes, and the process runs
// with exactly the documented capabilities (EXPORTER_CAPABILITIES), effective
// and bounding. Then the unit is stopped again.
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { DEFAULT_PORT } from '../../../src/exporter/address.js';
import { METRICS_PATH } from '../../../src/exporter/server.js';
import { EXPORTER_CAPABILITIES, EXPORTER_UNIT_NAME as UNIT } from '../../../src/cli/unit.js';
import { run } from '../../../harness/command.mjs';
import { check, info, sleep } from './report.js';
import type { ProgRow } from '../../lib/listing.js';

/** Capability numbers, from <linux/capability.h>, of the names EXPORTER_CAPABILITIES may hold. */
const CAPABILITY_NUMBERS: Record<string, number> = { CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21, CAP_SYS_RESOURCE: 24, CAP_PERFMON: 38, CAP_BPF: 39 };

/** How long the exporter may take to listen once its unit is active (ms). */
const LISTEN_WAIT_MS = 90_000;

/** GET on loopback with node's own client (the guest has no curl). */
function get(path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: DEFAULT_PORT, path, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 10 s')));
    req.on('error', reject);
    req.end();
  });
}

/** progs.debug's attached column as the exporter's `attached` label has it: without trailing blanks. */
const attachedColumn = (row: ProgRow): string => (row.attachProg ? `${row.attachFunc} ${row.attachProg}` : row.attachFunc);
const regexQuote = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function diagnostics(): void {
  for (const line of run('journalctl', ['-b', '--no-pager', '-o', 'cat', '-u', UNIT]).stdout.split('\n').slice(-15)) if (line) info(`  ${line}`);
}

/**
 * `targetId`: a program the check script loaded, which /metrics must list.
 * `fentry`: progs.debug's row of the fentry program attached to it, whose
 * info series must carry the same attach target.
 */
export async function exporterChecks(targetId: number | undefined, fentry?: { id: number; row: ProgRow | undefined }): Promise<void> {
  const start = run('systemctl', ['start', UNIT]);
  const active = run('systemctl', ['is-active', UNIT]).stdout.trim();
  if (
    !check(
      'exporter-unit-starts',
      start.code === 0 && active === 'active',
      `systemctl start ${UNIT}: exit ${start.code} ${start.stderr.trim()}; is-active ${active}`,
    )
  ) {
    diagnostics();
    return;
  }
  try {
    // Listening comes after the unit is active (Type=simple): node starts
    // and libbpf loads the iterators, which takes seconds in a slow guest.
    let scrape: Awaited<ReturnType<typeof get>> | null = null;
    let why = '';
    const started = Date.now();
    while (!scrape && Date.now() - started < LISTEN_WAIT_MS) {
      try {
        scrape = await get(METRICS_PATH);
      } catch (err) {
        why = (err as Error).message;
        await sleep(250);
      }
    }
    info(`exporter: first answer ${((Date.now() - started) / 1000).toFixed(1)} s after the unit was active`);
    const body = scrape?.body ?? '';
    if (fentry)
      info(`exporter: ${new RegExp(`^bpf_prog_info\\{id="${fentry.id}",.*$`, 'm').exec(body)?.[0] ?? `no info series for the fentry program ${fentry.id}`}`);
    const has = (re: RegExp) => re.test(body);
    const missing = [
      [/^bpf_exporter_scrapes_total 1$/m, 'scrapes_total 1'],
      [/^bpf_prog_runs_total\{id="\d+"\} \d+$/m, 'run counters (the unit runs with --enable-stats)'],
      [/^bpf_map_memlock_bytes\{id="\d+"\} \d+$/m, "maps' memlock bytes"],
      [/^bpf_exporter_errors_total 0$/m, 'errors_total 0'],
      ...(targetId === undefined ? [] : [[new RegExp(`^bpf_prog_info\\{id="${targetId}",name="boot_target",`, 'm'), `the fixture program ${targetId}`]]),
      ...(fentry === undefined
        ? []
        : fentry.row === undefined
          ? // A pattern that never matches: progs.debug has no row to compare with.
            [[/(?!)/, `progs.debug's row of the fentry program ${fentry.id}`]]
          : [
              [
                new RegExp(
                  `^bpf_prog_info\\{id="${fentry.id}",name="${fentry.row.name}",[^\\n]*,attached="${regexQuote(attachedColumn(fentry.row))}"\\} 1$`,
                  'm',
                ),
                `the fentry program ${fentry.id} attached to "${attachedColumn(fentry.row)}" as progs.debug says`,
              ],
            ]),
    ].flatMap(([re, what]) => (has(re as RegExp) ? [] : [what as string]));
    if (
      !check(
        'exporter-metrics-on-loopback',
        scrape?.status === 200 && scrape.type.startsWith('text/plain; version=0.0.4') && missing.length === 0,
        scrape
          ? `GET http://127.0.0.1:${DEFAULT_PORT}${METRICS_PATH}: ${scrape.status} ${scrape.type}; missing: ${missing.join(', ')}`
          : `no answer on 127.0.0.1:${DEFAULT_PORT} in ${LISTEN_WAIT_MS / 1000} s: ${why}`,
      )
    )
      diagnostics();

    const pid = run('systemctl', ['show', '-p', 'MainPID', '--value', UNIT]).stdout.trim();
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => new RegExp(`^${name}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1];
    const unknown = EXPORTER_CAPABILITIES.filter((c) => CAPABILITY_NUMBERS[c] === undefined);
    const expected = EXPORTER_CAPABILITIES.reduce((mask, c) => mask | (1n << BigInt(CAPABILITY_NUMBERS[c] ?? 0)), 0n);
    const eff = BigInt(`0x${field('CapEff') ?? '0'}`);
    const bnd = BigInt(`0x${field('CapBnd') ?? '0'}`);
    check(
      'exporter-capabilities',
      unknown.length === 0 && eff === expected && bnd === expected,
      `pid ${pid}: CapEff ${eff.toString(16)}, CapBnd ${bnd.toString(16)}; expected ${expected.toString(16)} (${EXPORTER_CAPABILITIES.join(' ')})${unknown.length ? `; no number for ${unknown.join(' ')}` : ''}`,
    );
  } finally {
    run('systemctl', ['stop', UNIT]);
  }
}
