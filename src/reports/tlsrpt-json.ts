// TLS-RPT aggregate reports (RFC 8460 4): JSON, arriving by mail as application/tlsrpt+json or
// application/tlsrpt+gzip (5.3). Read into the figures an administrator asks about: per policy
// domain and policy type, the successful and failed sessions, and the failure kinds.
export class TlsRptReportError extends Error {
  override readonly name = 'TlsRptReportError';
}

export interface TlsRptPolicySummary {
  readonly policyDomain: string;
  readonly policyType: string;
  readonly mxHost?: string;
  readonly success: number;
  readonly failure: number;
  /** "result-type xN" for each failure-details entry, e.g. "certificate-expired x3". */
  readonly failures: readonly string[];
}

export interface TlsRptReport {
  readonly orgName: string;
  readonly reportId: string;
  readonly contact?: string;
  /** Epoch seconds. */
  readonly begin: number;
  readonly end: number;
  readonly policies: readonly TlsRptPolicySummary[];
}

const MAX_POLICIES = 10_000;

const str = (v: unknown) => (typeof v === 'string' ? v : '');
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0);
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const seconds = (v: unknown) => {
  const t = Date.parse(str(v));
  return Number.isFinite(t) ? Math.floor(t / 1000) : 0;
};

export function parseTlsRpt(json: Buffer): TlsRptReport {
  let doc: unknown;
  try {
    doc = JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw new TlsRptReportError(`not JSON: ${(err as Error).message}`);
  }
  const d = obj(doc);
  const reportId = str(d['report-id']);
  if (!reportId || !Array.isArray(d.policies)) throw new TlsRptReportError('no report-id or policies: not a TLS-RPT report');
  const range = obj(d['date-range']);
  const policies = (d.policies as unknown[]).slice(0, MAX_POLICIES).map((p): TlsRptPolicySummary => {
    const pol = obj(obj(p).policy);
    const sum = obj(obj(p).summary);
    const details = Array.isArray(obj(p)['failure-details']) ? (obj(p)['failure-details'] as unknown[]) : [];
    return {
      policyDomain: str(pol['policy-domain']).toLowerCase(),
      policyType: str(pol['policy-type']) || 'no-policy-found',
      ...(str(pol['mx-host']) ? { mxHost: str(pol['mx-host']) } : {}),
      success: num(sum['total-successful-session-count']),
      failure: num(sum['total-failure-session-count']),
      failures: details.slice(0, 100).map((f) => `${str(obj(f)['result-type']) || 'unknown'} x${num(obj(f)['failed-session-count'])}`),
    };
  });
  return {
    orgName: str(d['organization-name']) || '(unnamed)',
    reportId,
    ...(str(d['contact-info']) ? { contact: str(d['contact-info']) } : {}),
    begin: seconds(range['start-datetime']),
    end: seconds(range['end-datetime']),
    policies,
  };
}
