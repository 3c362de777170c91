// DMARC aggregate reports (RFC 7489 appendix C, and DMARCbis' aggregate format, whose elements
// are the same names in the urn:ietf:params:xml:ns:dmarc-2.0 namespace), read with
// fast-xml-parser. XML safety: a report never needs a document type, so one with <!DOCTYPE or
// <!ENTITY is refused before parsing (no external entities, no "billion laughs"), so only
// XML's predefined entities and character references are decoded; the record count is bounded.
import { XMLParser } from 'fast-xml-parser';
import net from 'node:net';

export class DmarcReportError extends Error {
  override readonly name = 'DmarcReportError';
}

export interface DmarcRecord {
  readonly sourceIp: string;
  readonly count: number;
  /** policy_evaluated: what the reporter did (none, quarantine, reject). */
  readonly disposition: string;
  /** policy_evaluated: the aligned DMARC results ("pass" / "fail"). */
  readonly dkim: string;
  readonly spf: string;
  readonly headerFrom: string;
  readonly envelopeFrom?: string;
  /** auth_results: the raw DKIM and SPF results, "domain=result" each. */
  readonly authDkim: readonly string[];
  readonly authSpf: readonly string[];
}

export interface DmarcAggregate {
  readonly format: 'rfc7489' | 'dmarcbis';
  readonly orgName: string;
  readonly email?: string;
  readonly reportId: string;
  /** Epoch seconds. */
  readonly begin: number;
  readonly end: number;
  readonly domain: string;
  readonly policy: { readonly p?: string; readonly sp?: string; readonly pct?: number; readonly adkim?: string; readonly aspf?: string };
  readonly records: readonly DmarcRecord[];
}

/** Rows read from one report; a larger one is cut, with `truncated` in the store. */
export const MAX_RECORDS = 50_000;

const ARRAYS = new Set(['feedback.record', 'feedback.record.auth_results.dkim', 'feedback.record.auth_results.spf', 'feedback.record.row.policy_evaluated.reason']);

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  processEntities: true,
  // Numeric character references (&#60;) too: a fixed table, nothing that expands.
  htmlEntities: true,
  parseTagValue: false,
  trimValues: true,
  // These may appear once or many times; always arrays, so the code reads one shape.
  isArray: (_name, jpath) => ARRAYS.has(String(jpath)),
});

const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');
const int = (v: unknown): number => {
  const n = Number(text(v));
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : 0;
};
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);
const low = (v: unknown) => text(v).toLowerCase();

export function parseDmarcAggregate(xml: Buffer): DmarcAggregate {
  // Anywhere in the document, not only its head: a DOCTYPE can follow a long comment.
  if (/<!(?:DOCTYPE|ENTITY)/i.test(xml.toString('latin1'))) {
    throw new DmarcReportError('the XML declares a document type or entities, which a DMARC report never does (refused: XXE / entity expansion)');
  }
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(xml.toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new DmarcReportError(`not well-formed XML: ${(err as Error).message.split('\n')[0]}`);
  }
  const feedback = obj(doc.feedback);
  if (!doc.feedback) throw new DmarcReportError('no <feedback> root element: not a DMARC aggregate report');
  const meta = obj(feedback.report_metadata);
  const range = obj(meta.date_range);
  const published = obj(feedback.policy_published);
  const domain = low(published.domain);
  if (!domain) throw new DmarcReportError('policy_published has no domain');
  const reportId = text(meta.report_id);
  if (!reportId) throw new DmarcReportError('report_metadata has no report_id');
  const rows = arr(feedback.record);
  const records: DmarcRecord[] = [];
  for (const r of rows.slice(0, MAX_RECORDS)) {
    const rec = obj(r);
    const row = obj(rec.row);
    const evaluated = obj(row.policy_evaluated);
    const ids = obj(rec.identifiers);
    const auth = obj(rec.auth_results);
    const ip = text(row.source_ip);
    records.push({
      sourceIp: net.isIP(ip) ? ip : '',
      count: int(row.count),
      disposition: low(evaluated.disposition) || 'none',
      dkim: low(evaluated.dkim),
      spf: low(evaluated.spf),
      headerFrom: low(ids.header_from),
      ...(ids.envelope_from ? { envelopeFrom: low(ids.envelope_from) } : {}),
      authDkim: arr(auth.dkim).map((d) => `${low(obj(d).domain)}=${low(obj(d).result)}`),
      authSpf: arr(auth.spf).map((s) => `${low(obj(s).domain)}=${low(obj(s).result)}`),
    });
  }
  const pct = published.pct === undefined ? undefined : int(published.pct);
  return {
    format: feedback.version !== undefined && text(feedback.version).startsWith('2') ? 'dmarcbis' : xml.includes('dmarc-2.0') ? 'dmarcbis' : 'rfc7489',
    orgName: text(meta.org_name) || '(unnamed)',
    ...(meta.email ? { email: text(meta.email) } : {}),
    reportId,
    begin: int(range.begin),
    end: int(range.end),
    domain,
    policy: {
      ...(published.p ? { p: low(published.p) } : {}),
      ...(published.sp ? { sp: low(published.sp) } : {}),
      ...(pct !== undefined ? { pct } : {}),
      ...(published.adkim ? { adkim: low(published.adkim) } : {}),
      ...(published.aspf ? { aspf: low(published.aspf) } : {}),
    },
    records,
  };
}

/** A record whose mail passed DMARC at the reporter (aligned DKIM or aligned SPF). */
export const recordPassed = (r: DmarcRecord) => r.dkim === 'pass' || r.spf === 'pass';
