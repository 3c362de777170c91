// What the milter sends the MTA for a message that goes on: the body replacement for the
// attachment rewriter, and the header changes (our verdict fields inserted on top, forged ones
// removed, the Subject tagged) — each only when the MTA granted the action in negotiation.
import { Readable } from 'node:stream';
import type { ScoredSymbol } from '../../checks/types.js';
import type { Thresholds } from '../../pipeline/policy.js';
import { rewriteToBuffer, type RewritePlan } from '../../mime/rewrite.js';
import type { HeaderField } from '../../protocol/headers.js';
import { formatReply, type Reply } from '../../protocol/reply.js';
import { spamFields, VERDICT_FIELD_NAMES } from '../../smtp/trace-headers.js';
import { printable } from '../service.js';
import { F, MAX_PACKET, P, reply } from './codec.js';

/** What the MTA granted in option negotiation. */
export interface Negotiated {
  readonly actions: number;
  readonly protocol: number;
}

/** Postfix sends and takes body chunks of this size. */
const BODY_CHUNK = 65_535;
const VERDICT_HEADERS = new Set(VERDICT_FIELD_NAMES.map((n) => n.toLowerCase()));

/** An SMTP reply as SMFIR_REPLYCODE carries it: the wire form ("550-…" lines) without the last CRLF, no NUL. */
export function replyText(r: Reply): string {
  return formatReply({ ...r, text: r.text.replace(/[\0\r]/g, '') }).replace(/\r\n$/, '').slice(0, MAX_PACKET - 16);
}

export interface BodyReplacement {
  /** SMFIR_REPLBODY packets; none when degraded. */
  readonly packets: Buffer[];
  /** The X-Portcullis-Attachments value. */
  readonly summary: string;
  /** For the log line, as the SMTP path writes them. */
  readonly changes: string[];
  /** Not applied: no CHGBODY, or the rewrite would change the top-level header section (a milter cannot replace it whole). */
  readonly degraded: boolean;
}

/** The attachment rewriter's plan as a body replacement; undefined when there is nothing to rewrite. */
export async function bodyReplacement(n: Negotiated, plan: RewritePlan | undefined, raw: Buffer, headerBlock: Buffer): Promise<BodyReplacement | undefined> {
  if (!plan) return undefined;
  const changes = plan.changes.map((c) => `${c.action} ${JSON.stringify(c.name)}${c.newName ? ` → ${JSON.stringify(c.newName)}` : ''} (${c.reason})`);
  const packets: Buffer[] = [];
  let degraded = !(n.actions & F.CHGBODY);
  if (!degraded) {
    const rewritten = await rewriteToBuffer(Readable.from([raw]), plan);
    if (!rewritten.subarray(0, headerBlock.length).equals(headerBlock)) degraded = true;
    else {
      const body = rewritten.subarray(headerBlock.length);
      packets.push(reply.replBody(body.subarray(0, BODY_CHUNK)));
      for (let pos = BODY_CHUNK; pos < body.length; pos += BODY_CHUNK) packets.push(reply.replBody(body.subarray(pos, pos + BODY_CHUNK)));
    }
  }
  const value = plan.summaryHeader.replace(/^[^:]*:\s*/, '');
  return { packets, summary: degraded ? `${value} (not applied: this MTA allows no such body replacement)` : value, changes, degraded };
}

export interface HeaderAnswer {
  /** Our authserv-id. */
  readonly hostname: string;
  readonly thresholds: Thresholds;
  readonly subjectTag: string;
  /** The header fields as the MTA sent them, in order (for the occurrence indexes of CHGHEADER). */
  readonly received: readonly { readonly name: string; readonly value: string }[];
  readonly headers: readonly HeaderField[];
  readonly symbols: readonly ScoredSymbol[];
  readonly score: number;
  readonly authUser?: string;
  readonly authResults: readonly string[];
  /** Trace fields of the checks ("Received-SPF: …"). */
  readonly trace: readonly string[];
  readonly attachmentSummary?: string;
}

/** Forged verdict fields removed, the Subject tagged, then Authentication-Results and X-Spam-* inserted on top. */
export function headerChanges(n: Negotiated, a: HeaderAnswer): Buffer[] {
  const out: Buffer[] = [];
  const t = a.thresholds;
  // With HDR_LEADSPC the MTA takes the value as written after the colon; lines end in LF (libmilter's convention).
  const value = (v: string) => `${n.protocol & P.HDR_LEADSPC ? ' ' : ''}${v.replace(/\r\n/g, '\n')}`;
  if (n.actions & F.CHGHDRS) {
    // Fields that would speak in our name: removed (an empty value deletes that occurrence).
    const seen = new Map<string, number>();
    const removals: [number, string][] = [];
    for (const h of a.received) {
      const key = h.name.toLowerCase();
      const k = (seen.get(key) ?? 0) + 1;
      seen.set(key, k);
      const ours = VERDICT_HEADERS.has(key) || (key === 'authentication-results' && h.value.trim().split(/[;\s]/, 1)[0]!.toLowerCase() === a.hostname);
      if (ours) removals.push([k, h.name]);
    }
    // From the last occurrence up, so the indexes of those before stay right.
    for (const [k, name] of removals.reverse()) out.push(reply.chgHeader(k, name, ''));
  }
  const subject = a.headers.find((h) => h.key === 'subject');
  if (a.subjectTag && a.score >= t.tag && !(subject?.value ?? '').startsWith(a.subjectTag)) {
    const tagged = `${a.subjectTag} ${subject?.value ?? ''}`.trimEnd();
    if (subject && n.actions & F.CHGHDRS) out.push(reply.chgHeader(1, subject.name, value(tagged)));
    else if (!subject && n.actions & F.ADDHDRS) out.push(reply.addHeader('Subject', value(tagged)));
  }
  if (!(n.actions & F.ADDHDRS)) return out;
  const methods = [...(a.authUser ? [`auth=pass smtp.auth=${printable(a.authUser)}`] : []), ...a.authResults];
  const fields: [string, string][] = [
    ...a.trace.map((f): [string, string] => [f.slice(0, Math.max(0, f.indexOf(':'))), f.slice(f.indexOf(':') + 1).trim()]).filter(([name]) => !!name),
    ['Authentication-Results', `${a.hostname};${methods.length ? methods.map((m) => `\r\n\t${m}`).join(';') : ' none'}`],
    ...spamFields(a.score >= t.tag, a.score, t.tag, a.symbols),
    ...(a.attachmentSummary ? [['X-Portcullis-Attachments', a.attachmentSummary] as [string, string]] : []),
  ];
  // Inserted at the top in reverse, so they read in this order above the message's own fields.
  for (const [name, v] of fields.reverse()) out.push(reply.insHeader(0, name, value(v)));
  return out;
}
