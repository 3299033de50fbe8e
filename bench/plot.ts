// The plots. The read path: time for one full listing against objects listed, on
// log-log axes (a straight line of slope 1 is linear growth), iterator files
// against bpftool, programs and maps side by side. The ring buffer: records per
// CPU second of each consumer. The exporter: one scrape against bpftool's
// JSON listings, per object count. Plain SVG, drawn here.
import { METHODS, type Kind, type SizeResult } from './readpath.js';
import { CONSUMERS, type RingResult } from './ringbuf.js';
import type { ScrapeSize } from './scrape.js';
import type { Summary } from './stats.js';

const W = 960;
const H = 460;
const PANEL_W = 390;
const PANEL_H = 300;
const TOP = 80;
const LEFT = [80, 545];

const STYLE: Record<string, { color: string; dash: string }> = {
  cat: { color: '#1f77b4', dash: '' },
  read: { color: '#1f77b4', dash: '6 4' },
  show: { color: '#d62728', dash: '' },
  json: { color: '#d62728', dash: '6 4' },
};
const styleOf = (id: string) => STYLE[id.endsWith('json') ? 'json' : id.endsWith('show') ? 'show' : id.endsWith('cat') ? 'cat' : 'read'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/`/g, '');

/** Log10 domain around the data, padded so points sit inside the frame. */
function logDomain(values: number[]): [number, number] {
  const logs = values.filter((v) => v > 0 && Number.isFinite(v)).map(Math.log10);
  if (logs.length === 0) return [0, 1];
  const lo = Math.min(...logs);
  const hi = Math.max(...logs);
  const pad = Math.max(0.12, (hi - lo) * 0.06);
  return [lo - pad, hi + pad];
}

/** Decades inside the domain; the domain's ends when it spans none. */
function decades([lo, hi]: [number, number]): number[] {
  const out: number[] = [];
  for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) out.push(e);
  return out.length > 0 ? out : [lo, hi];
}

function fmtTick(exp: number, unit: string): string {
  const v = +(10 ** exp).toPrecision(2);
  if (unit === 'ms') return v >= 1000 ? `${v / 1000} s` : `${v} ms`;
  return v >= 1000 ? `${(v / 1000).toLocaleString('en-US')}k` : `${v}`;
}

/** Where a log-log frame puts a value, and its box, decade grid, ticks and x label. */
interface LogFrame {
  px(x: number): number;
  py(y: number): number;
  svg: string[];
}

/** A log-log frame of `width` by `height` at (`left`, `top`): x a count, y milliseconds. */
function logLogFrame(left: number, top: number, width: number, height: number, xd: [number, number], yd: [number, number], xLabel: string): LogFrame {
  const px = (x: number) => left + ((Math.log10(x) - xd[0]) / (xd[1] - xd[0])) * width;
  const py = (y: number) => top + height - ((Math.log10(Math.max(y, 10 ** yd[0])) - yd[0]) / (yd[1] - yd[0])) * height;
  const svg = [`<rect x="${left}" y="${top}" width="${width}" height="${height}" fill="none" stroke="#444"/>`];
  for (const e of decades(xd)) {
    const x = px(10 ** e);
    svg.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + height}" stroke="#ddd"/>`);
    svg.push(`<text x="${x}" y="${top + height + 18}" text-anchor="middle">${fmtTick(e, '')}</text>`);
  }
  for (const e of decades(yd)) {
    const y = py(10 ** e);
    svg.push(`<line x1="${left}" y1="${y}" x2="${left + width}" y2="${y}" stroke="#ddd"/>`);
    svg.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end">${fmtTick(e, 'ms')}</text>`);
  }
  svg.push(`<text x="${left + width / 2}" y="${top + height + 40}" text-anchor="middle">${esc(xLabel)}</text>`);
  return { px, py, svg };
}

/** One series in a frame: medians joined, min–max bars, a dot (with its figure) per point. */
function seriesSvg(f: LogFrame, points: { x: number; t: Summary }[], color: string, dash: string, label: string): string[] {
  const pts = points.map((p) => [f.px(p.x), f.py(p.t.median)] as const);
  const out: string[] = [];
  if (pts.length > 1) {
    out.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" stroke-dasharray="${dash}" points="${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`,
    );
  }
  points.forEach((p, i) => {
    const [x, y] = pts[i];
    out.push(`<line x1="${x}" y1="${f.py(p.t.min)}" x2="${x}" y2="${f.py(p.t.max)}" stroke="${color}"/>`);
    out.push(`<circle cx="${x}" cy="${y}" r="3.5" fill="${color}"><title>${esc(label)}: ${p.t.median.toFixed(2)} ms at ${p.x}</title></circle>`);
  });
  return out;
}

function panel(sizes: SizeResult[], kind: Kind, left: number): string[] {
  const methods = METHODS.filter((m) => m.kind === kind);
  const xd = logDomain(sizes.map((s) => s.seen[kind]));
  const yd = logDomain(sizes.flatMap((s) => methods.flatMap((m) => [s.times[m.id].min, s.times[m.id].max])));
  const noun = kind === 'progs' ? 'programs' : 'maps';
  const frame = logLogFrame(left, TOP, PANEL_W, PANEL_H, xd, yd, `${noun} listed`);
  const out = [`<text x="${left + PANEL_W / 2}" y="${TOP - 10}" text-anchor="middle" font-weight="bold">${noun}</text>`, ...frame.svg];
  for (const m of methods) {
    const st = styleOf(m.id);
    out.push(
      ...seriesSvg(
        frame,
        sizes.map((s) => ({ x: s.seen[kind], t: s.times[m.id] })),
        st.color,
        st.dash,
        m.label,
      ),
    );
  }
  return out;
}

export function renderPlot(sizes: SizeResult[], subtitle: string): string {
  const legend = [
    ['cat', 'iterator file, cat (process)'],
    ['read', 'iterator file, read in-process'],
    ['show', 'bpftool … show'],
    ['json', 'bpftool --json … show'],
  ].map(([id, label], i) => {
    const st = STYLE[id];
    const x = 80 + i * 220;
    const y = H - 22;
    return `<line x1="${x}" y1="${y}" x2="${x + 30}" y2="${y}" stroke="${st.color}" stroke-width="2" stroke-dasharray="${st.dash}"/><text x="${x + 36}" y="${y + 4}">${esc(label)}</text>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Time for one full listing (median, min–max bars; log-log)</text>`,
    `<text x="${W / 2}" y="42" text-anchor="middle" fill="#555">${esc(subtitle)}</text>`,
    ...panel(sizes, 'progs', LEFT[0]),
    ...panel(sizes, 'maps', LEFT[1]),
    ...legend,
    '</svg>',
    '',
  ].join('\n');
}

/**
 * The ring buffer plot: records per CPU second of each consumer, median with
 * min–max whiskers, on a log axis, with the issue's targets as fractions of
 * C's median.
 */
export function renderRingPlot(r: RingResult, subtitle: string): string {
  const w = 960;
  const left = 330;
  const right = w - 40;
  const top = 70;
  const row = 46;
  const h = top + CONSUMERS.length * row + 70;
  const values = CONSUMERS.flatMap((k) => [r.rates[k.id].min, r.rates[k.id].max]);
  const c = r.rates.c.median;
  const [lo, hi] = logDomain([...values, c / 30]);
  const px = (x: number) => left + ((Math.log10(x) - lo) / (hi - lo)) * (right - left);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${w / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Ring buffer: records per second of consumer CPU (median, min–max; log)</text>`,
    `<text x="${w / 2}" y="42" text-anchor="middle" fill="#555">${esc(subtitle)}</text>`,
  ];
  for (const e of decades([lo, hi])) {
    const x = px(10 ** e);
    out.push(`<line x1="${x}" y1="${top - 8}" x2="${x}" y2="${top + CONSUMERS.length * row}" stroke="#ddd"/>`);
    const v = +(10 ** e).toPrecision(2);
    out.push(`<text x="${x}" y="${top + CONSUMERS.length * row + 18}" text-anchor="middle">${v >= 1e6 ? `${v / 1e6}M` : `${v / 1e3}k`}/s</text>`);
  }
  CONSUMERS.forEach((k, i) => {
    const s = r.rates[k.id];
    const y = top + i * row + row / 2;
    const color = k.id === 'c' ? '#7f7f7f' : '#1f77b4';
    out.push(`<text x="${left - 10}" y="${y + 4}" text-anchor="end">${esc(k.label)}</text>`);
    out.push(
      `<rect x="${left}" y="${y - 12}" width="${Math.max(1, px(s.median) - left)}" height="24" fill="${color}"><title>${(s.median / 1e6).toFixed(2)}M/s</title></rect>`,
    );
    out.push(`<line x1="${px(s.min)}" y1="${y}" x2="${px(s.max)}" y2="${y}" stroke="#000"/>`);
    out.push(`<text x="${px(s.median) + 6}" y="${y - 14}">${(s.median / 1e6).toFixed(2)}M/s</text>`);
    if (k.target) {
      const x = px(c * k.target);
      out.push(`<line x1="${x}" y1="${y - 16}" x2="${x}" y2="${y + 16}" stroke="#d62728" stroke-width="2" stroke-dasharray="4 3"/>`);
    }
  });
  out.push(
    `<line x1="${left}" y1="${h - 22}" x2="${left + 30}" y2="${h - 22}" stroke="#d62728" stroke-width="2" stroke-dasharray="4 3"/><text x="${left + 36}" y="${h - 18}">target (a fraction of C's median)</text>`,
    '</svg>',
    '',
  );
  return out.join('\n');
}

/**
 * The exporter plot: one scrape (curl's wall time), its collection, and
 * bpftool's two JSON listings, against the programs (and as many maps)
 * loaded; median with min–max bars, log-log, and the 100 ms target.
 */
export function renderScrapePlot(sizes: ScrapeSize[], subtitle: string): string {
  const w = 620;
  const h = 470;
  const left = 90;
  const top = 70;
  const pw = 480;
  const ph = 300;
  const series = [
    { label: 'exporter: GET /metrics (curl)', color: '#1f77b4', dash: '', pick: (z: ScrapeSize) => z.scrape },
    { label: 'exporter: collecting', color: '#1f77b4', dash: '6 4', pick: (z: ScrapeSize) => z.collect },
    { label: 'bpftool -j prog show + map show', color: '#d62728', dash: '', pick: (z: ScrapeSize) => z.bpftool },
  ];
  const xd = logDomain(sizes.map((z) => z.n));
  const yd = logDomain([...sizes.flatMap((z) => series.flatMap((s) => [s.pick(z).min, s.pick(z).max])), 100]);
  const frame = logLogFrame(left, top, pw, ph, xd, yd, 'programs and maps loaded (each)');
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${w / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Exporter: one scrape vs bpftool (median, min–max; log-log)</text>`,
    `<text x="${w / 2}" y="42" text-anchor="middle" fill="#555">${esc(subtitle)}</text>`,
    ...frame.svg,
  ];
  const target = frame.py(100);
  out.push(`<line x1="${left}" y1="${target}" x2="${left + pw}" y2="${target}" stroke="#2ca02c" stroke-width="1.5" stroke-dasharray="4 3"/>`);
  out.push(`<text x="${left + pw - 4}" y="${target - 5}" text-anchor="end" fill="#2ca02c">target: a scrape under 100 ms at 10,000</text>`);
  for (const s of series)
    out.push(
      ...seriesSvg(
        frame,
        sizes.map((z) => ({ x: z.n, t: s.pick(z) })),
        s.color,
        s.dash,
        s.label,
      ),
    );
  series.forEach((s, i) => {
    const y = h - 50 + i * 16;
    out.push(
      `<line x1="${left}" y1="${y}" x2="${left + 30}" y2="${y}" stroke="${s.color}" stroke-width="2" stroke-dasharray="${s.dash}"/><text x="${left + 36}" y="${y + 4}">${esc(s.label)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}
