// The HTML report: one self-contained page (inline CSS, no script, no image, no font, no link
// to anything; a Content-Security-Policy that forbids loading anything), so it can be mailed,
// archived or opened offline. Every piece of foreign text (replies, records) is escaped.
import type { AuditReport } from './audit.js';
import { AREAS, AREA_TITLES, type Finding, type Severity } from './findings.js';

const LABEL: Readonly<Record<Severity, string>> = { critical: 'Critical', warning: 'Warning', info: 'Note', ok: 'Passed' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

const CSS = `
:root { --crit: #b3261e; --warn: #a15c00; --info: #195e8a; --ok: #2e7d32; --line: #ddd; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d1d1d; background: #f6f6f4; }
header { background: #23303b; color: #fff; padding: 24px 32px; }
header h1 { margin: 0 0 6px; font-size: 24px; }
header p { margin: 2px 0; color: #cfd8dc; }
main { padding: 16px 32px 48px; max-width: 1100px; }
.summary { display: flex; gap: 12px; margin: 16px 0 8px; flex-wrap: wrap; }
.count { padding: 10px 16px; border-radius: 8px; color: #fff; min-width: 120px; }
.count b { display: block; font-size: 26px; }
.critical.count { background: var(--crit); } .warning.count { background: var(--warn); }
.info.count { background: var(--info); } .ok.count { background: var(--ok); }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; margin: 18px 0; padding: 4px 18px 12px; }
section h2 { font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 8px; }
.finding { border-left: 5px solid var(--line); padding: 6px 12px; margin: 10px 0; }
.finding.critical { border-color: var(--crit); } .finding.warning { border-color: var(--warn); }
.finding.info { border-color: var(--info); } .finding.ok { border-color: var(--ok); }
.sev { font-weight: 700; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; margin-right: 8px; }
.critical .sev { color: var(--crit); } .warning .sev { color: var(--warn); } .info .sev { color: var(--info); } .ok .sev { color: var(--ok); }
.title { font-weight: 600; }
.target, .code { color: #555; font-size: 13px; }
.code { font-family: ui-monospace, Menlo, Consolas, monospace; }
.fix { margin: 6px 0 2px; }
.fix::before { content: "Fix: "; font-weight: 600; }
pre { background: #f2f2ef; border: 1px solid var(--line); padding: 8px 10px; overflow-x: auto; font-size: 12.5px; white-space: pre-wrap; word-break: break-word; margin: 6px 0; }
details summary { cursor: pointer; color: #444; font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
td, th { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
`;

export function renderHtml(report: AuditReport): string {
  const s = report.summary;
  const sections = AREAS.map((area) => {
    const fs = report.findings.filter((f) => f.area === area);
    if (!fs.length) return '';
    return `<section id="${area}"><h2>${escapeHtml(AREA_TITLES[area])}</h2>\n${fs.map(renderFinding).join('\n')}\n</section>`;
  }).join('\n');
  const targets = report.targets.map((t) =>
    `<tr><td>${escapeHtml(t.source === 'given' ? 'host' : 'MX')}</td><td>${escapeHtml(t.host)}</td><td>${t.priority ?? ''}</td><td>${escapeHtml(t.addresses.join(', ') || 'no address')}</td></tr>`).join('');
  const services = report.services.map((r) =>
    `<tr><td>${escapeHtml(r.host)}</td><td>${escapeHtml(r.address)}</td><td>${escapeHtml(r.service)}/${r.port}</td><td>${r.reachable ? 'open' : 'closed or silent'}</td>` +
    `<td>${escapeHtml(r.tls?.protocol ? `${r.tls.protocol} ${r.tls.cipher ?? ''}` : '')}</td><td>${escapeHtml(r.banner ?? '')}</td></tr>`).join('');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mail security audit of ${escapeHtml(report.domain)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>Mail security audit of ${escapeHtml(report.domain)}</h1>
<p>${escapeHtml(report.started)} · ${(report.durationMs / 1000).toFixed(1)} s · Portcullis audit · exit status ${report.exitStatus}</p>
</header>
<main>
<div class="summary">
<div class="critical count"><b>${s.critical}</b>critical</div>
<div class="warning count"><b>${s.warning}</b>warnings</div>
<div class="info count"><b>${s.info}</b>notes</div>
<div class="ok count"><b>${s.ok}</b>passed</div>
</div>
<section id="hosts"><h2>Hosts</h2>
<table><tr><th>role</th><th>host</th><th>preference</th><th>addresses</th></tr>${targets}</table>
${services ? `<h3>Services</h3><table><tr><th>host</th><th>address</th><th>service</th><th>state</th><th>TLS</th><th>banner</th></tr>${services}</table>` : ''}
</section>
${sections}
</main>
</body>
</html>
`;
}

function renderFinding(f: Finding): string {
  const evidence = escapeHtml(f.evidence);
  const long = f.evidence.split('\n').length > 6 || f.severity === 'ok';
  return `<div class="finding ${f.severity}">
<div><span class="sev">${LABEL[f.severity]}</span><span class="title">${escapeHtml(f.title)}</span></div>
<div class="target">${escapeHtml(f.target)} · <span class="code">${escapeHtml(f.code)}</span></div>
${f.fix ? `<p class="fix">${escapeHtml(f.fix)}</p>` : ''}
${long ? `<details><summary>Evidence</summary><pre>${evidence}</pre></details>` : `<pre>${evidence}</pre>`}
</div>`;
}
