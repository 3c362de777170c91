// The terminal report: grouped by practice area, worst first; every problem with its target,
// the evidence seen and the fix; checks that passed on one line each (with --verbose, their
// evidence too).
import type { AuditReport } from './audit.js';
import { AREAS, AREA_TITLES, type Finding, type Severity } from './findings.js';

const LABEL: Readonly<Record<Severity, string>> = { critical: 'CRITICAL', warning: 'WARNING', info: 'info', ok: 'ok' };

export interface TextOptions {
  /** Show the evidence of passed checks too. */
  readonly verbose?: boolean;
  /** ANSI colours (for a terminal). */
  readonly color?: boolean;
}

export function renderText(report: AuditReport, opts: TextOptions = {}): string {
  const c = colours(opts.color ?? false);
  const out: string[] = [];
  const s = report.summary;
  out.push(c.bold(`Portcullis audit of ${report.domain}`) + `  (${report.started}, ${(report.durationMs / 1000).toFixed(1)} s)`);
  if (report.targets.length) {
    for (const t of report.targets) {
      out.push(`  ${t.source === 'given' ? 'host' : 'MX'} ${t.host}${t.priority !== undefined ? ` (preference ${t.priority})` : ''}: ${t.addresses.join(', ') || 'no address'}`);
    }
  }
  out.push(`  services probed: ${report.settings.services.map((x) => `${x.service}/${x.port}`).join(', ')}`);
  out.push(`  result: ${s.critical} critical, ${s.warning} warning(s), ${s.info} note(s), ${s.ok} passed — exit status ${report.exitStatus}`);
  for (const area of AREAS) {
    const fs = report.findings.filter((f) => f.area === area);
    if (!fs.length) continue;
    out.push('', c.bold(`== ${AREA_TITLES[area]} ==`));
    for (const f of fs) out.push(...renderFinding(f, opts.verbose ?? false, c));
  }
  out.push('');
  return out.join('\n');
}

function renderFinding(f: Finding, verbose: boolean, c: Colours): string[] {
  const label = c[f.severity](LABEL[f.severity].padEnd(8));
  if (f.severity === 'ok' && !verbose) return [`  ${label}  ${f.title}  — ${f.target}`];
  const lines = [`  ${label}  ${f.title}`, `            at ${f.target}`];
  const evidence = f.evidence.split('\n');
  const shown = verbose ? evidence : evidence.slice(0, 12);
  lines.push(...shown.map((l, i) => `            ${i === 0 ? 'seen:' : '     '} ${l}`));
  if (shown.length < evidence.length) lines.push(`                  … ${evidence.length - shown.length} more line(s) (--json or --html for all)`);
  if (f.fix) lines.push(`            fix:  ${f.fix}`);
  return lines;
}

type Colours = Record<Severity | 'bold', (s: string) => string>;

function colours(on: boolean): Colours {
  const wrap = (code: string) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { critical: wrap('1;31'), warning: wrap('33'), info: wrap('36'), ok: wrap('32'), bold: wrap('1') };
}
