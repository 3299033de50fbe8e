// The packaged exporter unit's capability set is the least that works: the
// exporter, run as the unit runs it (its ExecStart arguments) with exactly
// the unit's CapabilityBoundingSet (setpriv), serves run counters and
// holders; without CAP_SYS_ADMIN --enable-stats is refused in one line, and
// CAP_BPF + CAP_PERFMON alone serve everything but the run counters and the
// maps' memlock bytes.
// (That the unit starts under systemd is the boot test's: out of this file.)
import t from 'tap';
import { spawn } from 'node:child_process';
import { EXPORTER_ARGS, EXPORTER_CAPABILITIES, EXPORTER_ENVIRONMENT, EXPORTER_NODE_FLAGS, renderExporterUnit } from '../src/cli/unit.js';
import { CLI, userEnv, withBoundingSet } from './lib/cli.js';
import { freePort } from './lib/prometheus.js';

/** setpriv's --bounding-set for capabilities named as systemd names them. */
const boundingSet = (caps: readonly string[]) => `-all${caps.map((c) => `,+${c.replace(/^CAP_/, '').toLowerCase()}`).join('')}`;

/** Runs the exporter with only `caps`, scrapes it once, stops it; what it printed and served. */
async function withCaps(caps: readonly string[], args: readonly string[]): Promise<{ code: number | null; stderr: string; metrics: string }> {
  const port = await freePort();
  const [cmd, ...argv] = withBoundingSet(boundingSet(caps), ...EXPORTER_NODE_FLAGS, CLI, ...args, '--listen', `127.0.0.1:${port}`);
  const child = spawn(cmd, argv, { env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stderr = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const end = Date.now() + 20_000;
  while (!out.includes('serving') && child.exitCode === null && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  let metrics = '';
  if (child.exitCode === null) {
    metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    child.kill('SIGTERM');
  }
  return { code: await exited, stderr, metrics };
}

t.test(
  "the unit's bounding set is exactly EXPORTER_CAPABILITIES, its ExecStart runs node with EXPORTER_NODE_FLAGS and the CLI with EXPORTER_ARGS, in EXPORTER_ENVIRONMENT",
  async (t) => {
    const unit = renderExporterUnit('/usr/lib/bpf-preload/bpf-preload.mjs', '/usr/bin/node');
    t.match(unit, new RegExp(`^CapabilityBoundingSet=${EXPORTER_CAPABILITIES.join(' ')}$`, 'm'));
    t.match(
      unit,
      new RegExp(`^ExecStart=/usr/bin/node ${EXPORTER_NODE_FLAGS.join(' ')} /usr/lib/bpf-preload/bpf-preload.mjs ${EXPORTER_ARGS.join(' ')}$`, 'm'),
    );
    t.match(unit, new RegExp(`^Environment=${EXPORTER_ENVIRONMENT.join(' ')}$`, 'm'));
  },
);

t.test("with the unit's capabilities alone: run counters and holders", async (t) => {
  const r = await withCaps(EXPORTER_CAPABILITIES, [...EXPORTER_ARGS, '--holders']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.metrics, /^bpf_prog_runs_total\{id="\d+"\} \d+$/m, 'run counters');
  t.match(r.metrics, /^bpf_prog_holder_info\{id="\d+",pid="\d+",comm="[^"]*"\} 1$/m, 'holders');
  t.match(r.metrics, /^bpf_map_memlock_bytes\{id="\d+"\} \d+$/m, "maps' memlock bytes");
  t.match(r.metrics, /^bpf_exporter_errors_total 0$/m, 'no errors');
});

t.test('without CAP_SYS_ADMIN, --enable-stats is one line and exit 1; CAP_BPF + CAP_PERFMON serve the rest', async (t) => {
  const denied = await withCaps(['CAP_BPF', 'CAP_PERFMON'], EXPORTER_ARGS);
  t.equal(denied.code, 1);
  t.equal(
    denied.stderr,
    'bpf-preload: --enable-stats: the kernel refused BPF_ENABLE_STATS (EPERM): it needs CAP_SYS_ADMIN; leave --enable-stats out to run with CAP_BPF and CAP_PERFMON alone\n',
  );
  const plain = await withCaps(['CAP_BPF', 'CAP_PERFMON'], ['exporter', '--holders']);
  t.equal(plain.code, 0, plain.stderr);
  t.match(plain.metrics, /^bpf_prog_info\{/m);
  t.match(plain.metrics, /^bpf_prog_holder_info\{/m);
  t.notMatch(plain.metrics, /bpf_prog_runs_total/);
  t.notMatch(plain.metrics, /bpf_map_memlock_bytes/, "no maps' memlock bytes: fdinfo needs an fd, and opening a map by id needs CAP_SYS_ADMIN");
  t.match(plain.metrics, /^bpf_exporter_errors_total 0$/m, 'and that is no error');
  const none = await withCaps(['CAP_BPF'], ['exporter']);
  t.equal(none.code, 1, 'CAP_BPF alone cannot load the tracing iterators');
  t.match(none.stderr, /^bpf-preload: load BPF object exporter: EPERM/);
});
