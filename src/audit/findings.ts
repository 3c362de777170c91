// What an audit reports: findings, each with the practice area it belongs to, a severity, the
// exact evidence seen (a server's reply, a DNS record) and the fix in one sentence. A finding
// with severity "ok" is a check that passed, kept so that the report shows what was verified.
//
// Every finding carries a stable code (SMTP_AUTH_BEFORE_TLS, SPF_PASS_ALL, …) so that scripts
// reading `--json` do not depend on the wording (STYLE.md rule 11).

/** The practice areas the report is grouped by, in report order. */
export const AREAS = ['encryption', 'relay', 'sender-auth', 'blocklists', 'naming', 'roles', 'reachability'] as const;
export type Area = (typeof AREAS)[number];

export const AREA_TITLES: Readonly<Record<Area, string>> = {
  encryption: 'Encryption and logins',
  relay: 'Open relay',
  'sender-auth': 'Sender authentication (SPF, DKIM, DMARC)',
  blocklists: 'Blocklists',
  naming: 'Naming (reverse DNS)',
  roles: 'Role addresses',
  reachability: 'Reachability',
};

/** From best to worst. */
export const SEVERITIES = ['ok', 'info', 'warning', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface Finding {
  /** Stable code, e.g. SMTP_AUTH_BEFORE_TLS. */
  readonly code: string;
  readonly area: Area;
  readonly severity: Severity;
  readonly title: string;
  /** What was looked at: "example.org", "mx.example.org [192.0.2.1]:25 (smtp)". */
  readonly target: string;
  /** The exact reply or record seen (may span lines). */
  readonly evidence: string;
  /** The fix in one sentence; absent when there is nothing to fix. */
  readonly fix?: string;
}

export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

export function worstSeverity(findings: readonly Pick<Finding, 'severity'>[]): Severity {
  let worst: Severity = 'ok';
  for (const f of findings) if (severityRank(f.severity) > severityRank(worst)) worst = f.severity;
  return worst;
}

/**
 * The exit status of `portcullis audit`: 0 nothing worse than "info", 3 a warning, 4 something
 * critical. (1 is a runtime error and 2 a usage error, as for every portcullis command.)
 */
export const EXIT_STATUS: Readonly<Record<Severity, number>> = { ok: 0, info: 0, warning: 3, critical: 4 };

export function exitStatusFor(findings: readonly Pick<Finding, 'severity'>[]): number {
  return EXIT_STATUS[worstSeverity(findings)];
}

/** Findings in report order: by area, then worst first, then by target. Stable otherwise. */
export function sortFindings(findings: readonly Finding[]): Finding[] {
  return findings
    .map((f, i) => ({ f, i }))
    .sort((a, b) =>
      AREAS.indexOf(a.f.area) - AREAS.indexOf(b.f.area) ||
      severityRank(b.f.severity) - severityRank(a.f.severity) ||
      a.f.target.localeCompare(b.f.target) ||
      a.i - b.i)
    .map(({ f }) => f);
}

export function countBySeverity(findings: readonly Finding[]): Record<Severity, number> {
  const out: Record<Severity, number> = { ok: 0, info: 0, warning: 0, critical: 0 };
  for (const f of findings) out[f.severity]++;
  return out;
}

/**
 * Foreign text (server replies, DNS records) made safe to print: control characters other than
 * newline and tab become "?", and the whole is bounded.
 */
export function cleanEvidence(text: string, max = 4000): string {
  const t = text.replace(/\r/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '?');
  return t.length > max ? `${t.slice(0, max - 15)}\n… (truncated)` : t;
}
