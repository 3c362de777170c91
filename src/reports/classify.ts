// What a message that reached a report address is: a complaint (ARF, RFC 5965 and RFC 6650: a
// multipart/report with a message/feedback-report part; or the common non-ARF form, a message
// with the original attached), a DMARC aggregate report (RFC 7489 7.2), a TLS-RPT report
// (RFC 8460), or ordinary mail to a person (bounces, questions), which is left alone.
//
// The message is parsed once with postal-mime (asynchronous and off the SMTP path: reports are
// read after delivery, never before "250"). A report that cannot be read comes back as
// `unparsed` with the reason: it was delivered to the mailbox all the same.
import PostalMime, { type Attachment } from 'postal-mime';
import { parseHeaderBlock, type HeaderField } from '../protocol/headers.js';
import { decodePayload } from './decode.js';
import { parseDmarcAggregate, type DmarcAggregate } from './dmarc-xml.js';
import { parseTlsRpt, type TlsRptReport } from './tlsrpt-json.js';

/** The reported message, as far as the report shows it (often headers only, sometimes redacted). */
export interface OriginalMessage {
  readonly messageId?: string;
  readonly from?: string;
  readonly to?: string;
  readonly subject?: string;
  readonly date?: string;
  /** Queue ids our own Received fields carry ("by HOST (Portcullis) with … id ID"), top first. */
  readonly queueIds: readonly string[];
  /** Envelope sender, when the report states it (Original-Mail-From) or the original's Return-Path. */
  readonly mailFrom?: string;
  /** The id in its List-Id field (RFC 2919: team.example.org), lower case: list mail. */
  readonly listId?: string;
  /** Its List-Unsubscribe field (ours carries the member's own one-click token). */
  readonly unsubscribe?: string;
}

export interface Complaint {
  readonly format: 'arf' | 'forwarded';
  /** ARF Feedback-Type (abuse, fraud, virus, other, not-spam, auth-failure); "abuse" for a forward. */
  readonly feedbackType: string;
  readonly userAgent?: string;
  readonly sourceIp?: string;
  readonly originalRcptTo: readonly string[];
  readonly arrivalDate?: string;
  readonly reportedDomains: readonly string[];
  readonly original: OriginalMessage;
}

/** Who sent the report, and whether our own checks authenticated that (DMARC pass at our MX). */
export interface Reporter {
  readonly address: string;
  readonly domain: string;
  readonly verified: boolean;
  readonly subject: string;
}

export type ClassifiedReport =
  | { readonly kind: 'complaint'; readonly reporter: Reporter; readonly complaint: Complaint }
  | { readonly kind: 'dmarc'; readonly reporter: Reporter; readonly report: DmarcAggregate }
  | { readonly kind: 'tlsrpt'; readonly reporter: Reporter; readonly report: TlsRptReport }
  | { readonly kind: 'unparsed'; readonly reporter: Reporter; readonly type: 'complaint' | 'dmarc' | 'tlsrpt' | 'unknown'; readonly reason: string }
  | { readonly kind: 'none'; readonly reporter: Reporter };

export interface ClassifyOptions {
  /** Our host name: the authserv-id of the Authentication-Results field our MX added. */
  readonly hostname: string;
  /** Largest decompressed aggregate report (bytes). */
  readonly maxReportBytes: number;
}

const DMARC_TYPES = new Set(['application/gzip', 'application/x-gzip', 'application/zip', 'application/x-zip-compressed', 'application/xml', 'text/xml']);
const DMARC_NAME = /\.(?:xml|xml\.gz|gz|zip)$/i;
const TLSRPT_TYPES = new Set(['application/tlsrpt+json', 'application/tlsrpt+gzip']);

export async function classifyReport(raw: Buffer, opts: ClassifyOptions): Promise<ClassifiedReport> {
  const head = headerFields(raw);
  const reporter = reporterOf(head, opts.hostname);
  let email;
  try {
    email = await PostalMime.parse(raw, { forceRfc822Attachments: true, attachmentEncoding: 'arraybuffer', maxNestingDepth: 32 });
  } catch (err) {
    return { kind: 'unparsed', reporter, type: 'unknown', reason: `unreadable MIME: ${(err as Error).message}` };
  }
  const atts = email.attachments;
  const contentType = (head.find((f) => f.key === 'content-type')?.value ?? '').toLowerCase();

  // ARF: the machine-readable part names the report type.
  const feedback = atts.find((a) => a.mimeType === 'message/feedback-report');
  if (feedback || /report-type\s*=\s*"?feedback-report/.test(contentType)) {
    if (!feedback) return { kind: 'unparsed', reporter, type: 'complaint', reason: 'multipart/report of type feedback-report without a message/feedback-report part' };
    const original = atts.find((a) => a.mimeType === 'message/rfc822' || a.mimeType === 'text/rfc822-headers' || a.mimeType === 'message/rfc822-headers');
    return { kind: 'complaint', reporter, complaint: arfComplaint(bytes(feedback), original && bytes(original)) };
  }
  // Delivery reports (bounces) to postmaster@ are not complaints.
  if (/report-type\s*=\s*"?(?:delivery-status|disposition-notification)/.test(contentType)) return { kind: 'none', reporter };

  const tls = atts.find((a) => TLSRPT_TYPES.has(a.mimeType) || /\.json(?:\.gz)?$/i.test(a.filename ?? ''));
  if (tls && (TLSRPT_TYPES.has(tls.mimeType) || head.some((f) => f.key === 'tls-report-domain'))) {
    try {
      return { kind: 'tlsrpt', reporter, report: parseTlsRpt(await decodePayload(bytes(tls), opts.maxReportBytes, '.json')) };
    } catch (err) {
      return { kind: 'unparsed', reporter, type: 'tlsrpt', reason: (err as Error).message };
    }
  }

  const dmarc = atts.find((a) => DMARC_TYPES.has(a.mimeType) || DMARC_NAME.test(a.filename ?? ''));
  if (dmarc && (/report domain:|dmarc/i.test(reporter.subject) || DMARC_NAME.test(dmarc.filename ?? '') || /^(?:application|text)\/xml$/.test(dmarc.mimeType))) {
    try {
      return { kind: 'dmarc', reporter, report: parseDmarcAggregate(await decodePayload(bytes(dmarc), opts.maxReportBytes, '.xml')) };
    } catch (err) {
      return { kind: 'unparsed', reporter, type: 'dmarc', reason: (err as Error).message };
    }
  }

  // The non-ARF complaint: a person or a provider forwards the original as an attachment.
  const forwarded = atts.find((a) => a.mimeType === 'message/rfc822');
  if (forwarded) {
    return {
      kind: 'complaint', reporter,
      complaint: { format: 'forwarded', feedbackType: 'abuse', originalRcptTo: [], reportedDomains: [], original: originalOf(bytes(forwarded)) },
    };
  }
  return { kind: 'none', reporter };
}

function bytes(a: Attachment): Buffer {
  const c = a.content;
  return typeof c === 'string' ? Buffer.from(c, 'utf8') : Buffer.from(c instanceof ArrayBuffer ? new Uint8Array(c) : c);
}

/** The header fields of a message or header-only part, whatever its line endings. */
export function headerFields(raw: Buffer): HeaderField[] {
  const end = raw.indexOf('\n\n') >= 0 && (raw.indexOf('\r\n\r\n') < 0 || raw.indexOf('\n\n') < raw.indexOf('\r\n\r\n')) ? raw.indexOf('\n\n') : raw.indexOf('\r\n\r\n');
  const block = end >= 0 ? raw.subarray(0, end) : raw;
  return parseHeaderBlock(Buffer.from(`${block.toString('latin1').replace(/\r?\n/g, '\r\n')}\r\n`, 'latin1'));
}

const value = (fields: readonly HeaderField[], key: string) => fields.find((f) => f.key === key)?.value;
const all = (fields: readonly HeaderField[], key: string) => fields.filter((f) => f.key === key).map((f) => f.value);
const addrSpec = (v: string | undefined) => {
  if (!v) return undefined;
  const m = /<([^<>]*)>/.exec(v);
  const a = (m ? m[1]! : v).trim().toLowerCase();
  return a || undefined;
};
const decodeWords = (v: string | undefined) => (v === undefined ? undefined : v.length > 998 ? `${v.slice(0, 998)}…` : v);

/** Our queue ids in a message's Received trail (the form src/smtp/trace-headers.ts writes). */
export function portcullisQueueIds(fields: readonly HeaderField[]): string[] {
  const ids: string[] = [];
  for (const r of all(fields, 'received')) {
    const m = /\bby\s+\S+\s+\(Portcullis\)\s+with\s+\S+\s+id\s+([A-Za-z0-9._-]+)/i.exec(r);
    if (m) ids.push(m[1]!);
  }
  return ids;
}

function originalOf(raw: Buffer, mailFrom?: string): OriginalMessage {
  const f = headerFields(raw);
  const messageId = addrSpec(value(f, 'message-id'));
  const returnPath = addrSpec(value(f, 'return-path'));
  const listId = addrSpec(value(f, 'list-id'));
  const unsubscribe = value(f, 'list-unsubscribe')?.slice(0, 2000);
  return {
    ...(messageId ? { messageId } : {}),
    ...(value(f, 'from') ? { from: decodeWords(value(f, 'from')) } : {}),
    ...(value(f, 'to') ? { to: decodeWords(value(f, 'to')) } : {}),
    ...(value(f, 'subject') ? { subject: decodeWords(value(f, 'subject')) } : {}),
    ...(value(f, 'date') ? { date: value(f, 'date') } : {}),
    queueIds: portcullisQueueIds(f),
    ...(mailFrom ?? returnPath ? { mailFrom: mailFrom ?? returnPath } : {}),
    ...(listId ? { listId } : {}),
    ...(unsubscribe ? { unsubscribe } : {}),
  };
}

function arfComplaint(report: Buffer, original: Buffer | undefined): Complaint {
  const f = headerFields(report);
  const mailFrom = addrSpec(value(f, 'original-mail-from'));
  const ip = value(f, 'source-ip')?.trim();
  return {
    format: 'arf',
    feedbackType: (value(f, 'feedback-type') ?? 'other').trim().toLowerCase(),
    ...(value(f, 'user-agent') ? { userAgent: value(f, 'user-agent') } : {}),
    ...(ip ? { sourceIp: ip } : {}),
    originalRcptTo: all(f, 'original-rcpt-to').map(addrSpec).filter((a): a is string => !!a),
    ...(value(f, 'arrival-date') ?? value(f, 'received-date') ? { arrivalDate: value(f, 'arrival-date') ?? value(f, 'received-date') } : {}),
    reportedDomains: all(f, 'reported-domain').map((d) => d.trim().toLowerCase()),
    original: original ? originalOf(original, mailFrom) : { queueIds: [], ...(mailFrom ? { mailFrom } : {}) },
  };
}

/**
 * The report's sender and whether our MX authenticated it: the Authentication-Results field
 * with our own authserv-id (the topmost such: ours is added on top, a forged one below it is
 * not ours) says dmarc=pass for the From domain. Anyone can write "From: feedback@aol.com".
 */
function reporterOf(fields: readonly HeaderField[], hostname: string): Reporter {
  const address = addrSpec(value(fields, 'from')) ?? '';
  const domain = address.includes('@') ? address.slice(address.lastIndexOf('@') + 1) : '';
  const ours = fields.find((f) => f.key === 'authentication-results' && f.value.split(';')[0]!.trim().toLowerCase() === hostname.toLowerCase());
  const dmarcPass = !!ours && !!domain && new RegExp(`\\bdmarc=pass\\b[^;]*header\\.from=${domain.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w.-])`, 'i').test(ours.value);
  return { address, domain, verified: dmarcPass, subject: (value(fields, 'subject') ?? '').slice(0, 300) };
}
