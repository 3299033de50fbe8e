// docs/fleet.md's Prometheus configuration and rules are what promtool
// accepts, and every metric its rules and table name is one the exporter
// serves.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startExporter } from './lib/prometheus.js';

const doc = readFileSync('docs/fleet.md', 'utf8');
const yamlBlocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);

function promtool(check: string, text: string): { code: number | null; out: string } {
  const dir = mkdtempSync('/tmp/bpfpreloaddocs');
  try {
    const file = join(dir, 'file.yml');
    writeFileSync(file, text);
    const r = spawnSync('promtool', ['check', check, file], { encoding: 'utf8' });
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

t.test('the scrape config and the rules pass promtool', async (t) => {
  const config = yamlBlocks.find((b) => b.startsWith('scrape_configs:'));
  const rules = yamlBlocks.find((b) => b.startsWith('groups:'));
  t.ok(config && rules, 'both are in docs/fleet.md');
  const c = promtool('config', config!);
  t.equal(c.code, 0, c.out);
  const r = promtool('rules', rules!);
  t.equal(r.code, 0, r.out);
  t.match(r.out, /SUCCESS: 8 rules found/);
});

t.test('every bpf_ metric the doc names is served', async (t) => {
  const exporter = await startExporter(t, ['--enable-stats', '--holders']);
  const text = await (await fetch(`${exporter.url}/metrics`)).text();
  const served = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
  // Words of the doc that look like metric names but are kernel or libbpf
  // names, or the prefixes of recording rules (bpf_prog:...).
  const notMetrics = new Set([
    'bpf_enable_stats',
    'bpf_map_sum_elem_count',
    'bpf_map_lookup_percpu_elem',
    'bpf_prog_stats',
    'bpf_stats_enabled',
    'bpf_per_cpu_ptr',
    'bpf_prog',
    'bpf_map',
  ]);
  const named = new Set([...doc.matchAll(/\b(bpf_[a-z_]+)\b/g)].map((m) => m[1]).filter((n) => !notMetrics.has(n)));
  t.ok(named.size > 15, `the doc names ${named.size} metrics`);
  const missing = [...named].filter((n) => !served.has(n));
  t.same(missing, [], 'no metric in docs/fleet.md that the exporter does not serve');
});
