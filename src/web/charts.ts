// Server-rendered SVG charts for the dashboard: no chart library and no script. Every number
// and label goes through the template helper (html.ts), so a symbol name cannot inject markup.
import { html, type SafeHtml } from './html.js';

/** The actions the chart colours (class `a-<action>` in console.css's swatches); others are "other". */
export const ACTIONS = ['deliver', 'tag', 'junk', 'quarantine', 'reject', 'tempfail'] as const;
const COLOURS: Record<string, string> = {
  deliver: '#3a7bd5', tag: '#e0a030', junk: '#b56bd6', quarantine: '#16a085', reject: '#c0392b', tempfail: '#7f8c8d', other: '#34495e',
};

const bucket = (action: string) => (ACTIONS as readonly string[]).includes(action) ? action : 'other';

/** Stacked bars: one per hour, one segment per action. */
export function hourlyChart(hours: readonly { hour: number; counts: Record<string, number> }[]): SafeHtml {
  const W = 720, H = 200, pad = 28;
  const totals = hours.map((h) => Object.values(h.counts).reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...totals);
  const bw = (W - pad) / Math.max(1, hours.length);
  const bars = hours.map((h, i) => {
    let y = H - pad;
    const segs: SafeHtml[] = [];
    const merged: Record<string, number> = {};
    for (const [a, n] of Object.entries(h.counts)) merged[bucket(a)] = (merged[bucket(a)] ?? 0) + n;
    for (const a of [...ACTIONS, 'other']) {
      const n = merged[a];
      if (!n) continue;
      const hgt = (n / max) * (H - pad - 10);
      y -= hgt;
      segs.push(html`<rect x="${(pad + i * bw + 1).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${hgt.toFixed(1)}" fill="${COLOURS[a]}"><title>${new Date(h.hour).toISOString().slice(11, 16)} UTC: ${n} ${a}</title></rect>`);
    }
    const label = i % 3 === 0 ? html`<text x="${(pad + i * bw + bw / 2).toFixed(1)}" y="${H - 10}" font-size="10" text-anchor="middle" fill="#5b6576">${new Date(h.hour).toISOString().slice(11, 13)}h</text>` : '';
    return html`${segs}${label}`;
  });
  return html`<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Messages per hour by action, last ${hours.length} hours">
<line x1="${pad}" y1="${H - pad}" x2="${W}" y2="${H - pad}" stroke="#aab3c2"/>
<text x="2" y="14" font-size="10" fill="#5b6576">${max}</text>
${bars}
</svg>
<p class="legend">${[...ACTIONS, 'other'].map((a) => html`<span><i class="swatch sw-${a}"></i>${a}</span>`)}</p>`;
}

/** Horizontal bars for a ranked list (top symbols, DNS-list hits). */
export function barList(rows: readonly { name: string; count: number }[], emptyText: string): SafeHtml {
  if (!rows.length) return html`<p class="muted">${emptyText}</p>`;
  const W = 720, row = 20, labelW = 260;
  const max = Math.max(1, ...rows.map((r) => r.count));
  const H = rows.length * row + 4;
  return html`<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="ranked counts">
${rows.map((r, i) => html`<text x="0" y="${i * row + 14}" font-size="12" fill="#1d2430">${r.name}</text>
<rect x="${labelW}" y="${i * row + 3}" width="${Math.max(1, ((W - labelW - 60) * r.count) / max).toFixed(1)}" height="${row - 6}" fill="#3a7bd5"/>
<text x="${(labelW + ((W - labelW - 60) * r.count) / max + 6).toFixed(1)}" y="${i * row + 14}" font-size="12" fill="#5b6576">${r.count}</text>`)}
</svg>`;
}
