// A TLS-RPT aggregate report (RFC 8460): the JSON of section 4.4 for one recipient domain and
// one UTC day, gzip'd (application/tlsrpt+gzip, section 5), its file name (5.1), the `_smtp._tls`
// TXT record that says where it goes (3), and the mail that carries it (5.3).
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { rfc5322Date } from '../../protocol/date.js';
import type { DayAggregate, PolicyAggregate } from './tlsrpt-aggregate.js';

export interface ReportIdentity {
  /** "organization-name". */
  readonly organization: string;
  /** "contact-info". */
  readonly contact: string;
  /** The submitter: our host name (file name, TLS-Report-Submitter). */
  readonly submitter: string;
}

export interface BuiltReport {
  readonly domain: string;
  readonly reportId: string;
  readonly json: TlsRptJson;
  readonly gzip: Buffer;
  readonly filename: string;
}

export interface TlsRptJson {
  'organization-name': string;
  'date-range': { 'start-datetime': string; 'end-datetime': string };
  'contact-info': string;
  'report-id': string;
  policies: {
    policy: { 'policy-type': string; 'policy-string': string[]; 'policy-domain': string; 'mx-host': string[] };
    summary: { 'total-successful-session-count': number; 'total-failure-session-count': number };
    'failure-details'?: Record<string, string | number>[];
  }[];
}

/** The report of `domain` for the aggregate's day; undefined when nothing was counted. */
export function buildReport(day: DayAggregate, domain: string, who: ReportIdentity): BuiltReport | undefined {
  const policies = day.domains[domain];
  if (!policies || Object.keys(policies).length === 0) return undefined;
  const start = Date.parse(`${day.date}T00:00:00Z`);
  const end = start + 86_400_000 - 1000;
  const reportId = `${day.date}.${domain}.${crypto.randomBytes(6).toString('hex')}@${who.submitter}`;
  const json: TlsRptJson = {
    'organization-name': who.organization,
    'date-range': { 'start-datetime': iso(start), 'end-datetime': iso(end) },
    'contact-info': who.contact,
    'report-id': reportId,
    policies: Object.values(policies).map(policyEntry),
  };
  return {
    domain, reportId, json,
    gzip: zlib.gzipSync(Buffer.from(JSON.stringify(json))),
    // 5.1: sender!policy-domain!begin-timestamp!end-timestamp[!unique-id].json.gz
    filename: `${who.submitter}!${domain}!${start / 1000}!${Math.floor(end / 1000)}!${reportId.split('.')[2]!.split('@')[0]}.json.gz`,
  };
}

function policyEntry(p: PolicyAggregate): TlsRptJson['policies'][number] {
  const entry: TlsRptJson['policies'][number] = {
    policy: { 'policy-type': p.policy.type, 'policy-string': [...p.policy.strings], 'policy-domain': p.policy.policyDomain, 'mx-host': [...p.policy.mxHost] },
    summary: { 'total-successful-session-count': p.success, 'total-failure-session-count': p.failure },
  };
  const details = Object.values(p.details).map((d) => {
    const out: Record<string, string | number> = { 'result-type': d.resultType };
    if (d.sendingMtaIp) out['sending-mta-ip'] = d.sendingMtaIp;
    if (d.receivingMxHostname) out['receiving-mx-hostname'] = d.receivingMxHostname;
    if (d.receivingIp) out['receiving-ip'] = d.receivingIp;
    out['failed-session-count'] = d.count;
    if (d.reason) out['failure-reason-code'] = d.reason;
    return out;
  });
  if (details.length) entry['failure-details'] = details;
  return entry;
}

function iso(t: number): string {
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export type Rua = { readonly kind: 'mailto'; readonly address: string } | { readonly kind: 'https'; readonly url: string };

/**
 * The `_smtp._tls.<domain>` TXT records (RFC 8460 3): exactly one starting with v=TLSRPTv1,
 * whose rua= lists mailto: and https: URIs, comma-separated. Other URI schemes are ignored.
 */
export function parseTlsRptRecord(records: readonly string[]): { ok: true; rua: Rua[] } | { ok: false; reason: string } {
  const ours = records.filter((r) => /^v=TLSRPTv1\s*(;|$)/.test(r));
  if (ours.length !== 1) return { ok: false, reason: ours.length ? `${ours.length} v=TLSRPTv1 records` : 'no v=TLSRPTv1 record' };
  let rua: string | undefined;
  for (const field of ours[0]!.split(';').slice(1)) {
    const m = /^\s*([A-Za-z0-9_.-]+)\s*=\s*(.*?)\s*$/.exec(field);
    if (!m) {
      if (field.trim() === '') continue;
      return { ok: false, reason: `malformed field "${field.trim()}"` };
    }
    if (m[1] === 'rua') rua = m[2];
  }
  if (!rua) return { ok: false, reason: 'no rua' };
  const out: Rua[] = [];
  for (const uri of rua.split(',').map((u) => u.trim()).filter(Boolean)) {
    if (/^mailto:/i.test(uri)) {
      const address = decodeURIComponent(uri.slice(7).split('?')[0]!);
      if (/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(address)) out.push({ kind: 'mailto', address });
    } else if (/^https:\/\//i.test(uri)) {
      try {
        out.push({ kind: 'https', url: new URL(uri).toString() });
      } catch { /* not a URL: ignored */ }
    }
  }
  if (out.length === 0) return { ok: false, reason: `no usable mailto: or https: URI in rua=${rua}` };
  return { ok: true, rua: out };
}

/** The report as mail (RFC 8460 5.3): multipart/report; report-type="tlsrpt", the gzip attached. */
export function reportMessage(report: BuiltReport, who: ReportIdentity, from: string, to: string, date = new Date()): Buffer {
  const boundary = `----=_tlsrpt_${crypto.randomBytes(12).toString('hex')}`;
  const base64 = report.gzip.toString('base64').replace(/.{1,76}/g, (l) => `${l}\r\n`);
  const lines = [
    `From: ${from}`,
    `Date: ${rfc5322Date(date)}`,
    `To: ${to}`,
    `Subject: Report Domain: ${report.domain}\r\n Submitter: ${who.submitter}\r\n Report-ID: <${report.reportId}>`,
    `TLS-Report-Domain: ${report.domain}`,
    `TLS-Report-Submitter: ${who.submitter}`,
    `Message-ID: <${crypto.randomUUID()}@${who.submitter}>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type="tlsrpt";\r\n boundary="${boundary}"`,
    '',
    'This is a multipart message in MIME format.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset="us-ascii"',
    'Content-Transfer-Encoding: 7bit',
    '',
    `This is an aggregate TLS report from ${who.submitter} for ${report.domain}, ${report.json['date-range']['start-datetime']} to ${report.json['date-range']['end-datetime']}.`,
    '',
    `--${boundary}`,
    'Content-Type: application/tlsrpt+gzip',
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment;\r\n filename="${report.filename}"`,
    '',
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n${base64}--${boundary}--\r\n`);
}
