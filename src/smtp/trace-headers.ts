// The headers the gateway adds (Received, Authentication-Results, X-Spam-*) and the ones it
// removes from incoming mail because they would otherwise speak in our name: forged
// Authentication-Results for our authserv-id (RFC 8601 s5) and X-Spam-* verdict headers.
import type { HeaderField } from '../protocol/headers.js';
import type { ConnectionFacts, ScoredSymbol } from '../checks/types.js';
import type { Thresholds } from '../pipeline/policy.js';
import { rfc5322Date } from '../protocol/date.js';

/** The "with" protocol keyword of RFC 3848 / RFC 6531. */
export function withProtocol(conn: ConnectionFacts, smtputf8: boolean): string {
  if (!conn.esmtp) return 'SMTP';
  const base = smtputf8 ? 'UTF8SMTP' : 'ESMTP';
  return `${base}${conn.tls ? 'S' : ''}${conn.authUser ? 'A' : ''}`;
}

export interface PrefixInput {
  hostname: string;
  id: string;
  conn: ConnectionFacts;
  recipients: string[];
  smtputf8: boolean;
  authResults: string[];
  /** Trace fields from checks (Received-SPF), placed below our Received. */
  trace?: string[];
  score: number;
  symbols: ScoredSymbol[];
  thresholds: Thresholds;
  now?: Date;
}

// Keep header text to what a header may hold: no CR/LF from client-supplied strings.
const clean = (s: string) => s.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e\u0080-\uffff]/g, '?').slice(0, 255);

export function buildPrefix(p: PrefixInput): Buffer {
  const c = p.conn;
  const ip = c.remoteAddress.includes(':') ? `IPv6:${c.remoteAddress}` : c.remoteAddress;
  let received = `Received: from ${clean(c.helo ?? 'unknown')} (unknown [${ip}])\r\n`;
  if (c.tls) received += `\t(using ${clean(c.tls.protocol)} with cipher ${clean(c.tls.cipher)})\r\n`;
  received += `\tby ${p.hostname} (Portcullis) with ${withProtocol(c, p.smtputf8)} id ${p.id}`;
  // "for" only with a single recipient: listing several would disclose Bcc recipients.
  received += p.recipients.length === 1 ? `\r\n\tfor <${clean(p.recipients[0]!)}>; ${rfc5322Date(p.now ?? new Date())}\r\n` : `;\r\n\t${rfc5322Date(p.now ?? new Date())}\r\n`;
  for (const t of p.trace ?? []) received += `${foldTrace(t)}\r\n`;
  const methods = [...(c.authUser ? [`auth=pass smtp.auth=${clean(c.authUser)}`] : []), ...p.authResults];
  const authResults = `Authentication-Results: ${p.hostname};${methods.length ? methods.map((m) => `\r\n\t${m}`).join(';') : ' none'}\r\n`;
  const xspam = spamFields(p.score >= p.thresholds.tag, p.score, p.thresholds.tag, p.symbols).map(([n, v]) => `${n}: ${v}\r\n`).join('');
  return Buffer.from(received + authResults + xspam, 'utf8');
}

/**
 * The X-Spam-* verdict fields, as SpamAssassin names them: on delivered mail, and in what the scan
 * listeners (src/integrations/) hand back to other mail systems. Values may be folded (CRLF TAB).
 */
export function spamFields(spam: boolean, score: number, required: number, symbols: readonly { name: string; score: number }[]): [name: string, value: string][] {
  const tests = symbols.filter((s) => s.score !== 0).map((s) => `${s.name}=${s.score}`).join(',') || 'none';
  const fields: [string, string][] = [
    ['X-Spam-Status', `${spam ? 'Yes' : 'No'}, score=${score} required=${required}\r\n\ttests=${tests}`],
    ['X-Spam-Score', String(score)],
  ];
  if (spam) fields.push(['X-Spam-Flag', 'YES']);
  return fields;
}

/** Folds a check's trace field at spaces so no line passes 78 characters where it can be helped. */
function foldTrace(field: string): string {
  const words = field.replace(/[\r\n]+/g, ' ').split(' ');
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && line.length + 1 + w.length > 78) {
      lines.push(line);
      line = `\t${w}`;
    } else line = line ? `${line} ${w}` : w;
  }
  lines.push(line);
  return lines.join('\r\n');
}

/** The fields that speak in our name: a message arriving with them has them taken out. */
export const VERDICT_FIELD_NAMES = ['X-Spam-Status', 'X-Spam-Score', 'X-Spam-Flag', 'X-Spam-Level', 'X-Portcullis-Attachments'] as const;
const VERDICT_HEADERS = new Set(VERDICT_FIELD_NAMES.map((n) => n.toLowerCase()));

/** The incoming header section minus the fields that claim to be ours; Subject tagged when asked. */
export function rewriteHeaders(fields: readonly HeaderField[], block: Buffer, hostname: string, subjectTag: string): Buffer {
  const ours = (f: HeaderField) =>
    VERDICT_HEADERS.has(f.key) ||
    (f.key === 'authentication-results' && f.value.split(/[;\s]/, 1)[0]!.toLowerCase() === hostname);
  if (!fields.some(ours) && !subjectTag) return block;
  // Fields are subarrays of the block: copy the block through, replacing only what changes, so
  // lines that are not header fields (and the final blank line) stay exactly as they were.
  const kept: Buffer[] = [];
  let pos = 0;
  for (const f of fields) {
    const start = f.raw.byteOffset - block.byteOffset;
    const retag = subjectTag && f.key === 'subject' && !f.value.startsWith(subjectTag);
    if (!ours(f) && !retag) continue;
    kept.push(block.subarray(pos, start));
    pos = start + f.raw.length;
    if (retag) kept.push(Buffer.from(`${f.name}: ${subjectTag} ${f.raw.toString('latin1').slice(f.name.length + 1).replace(/^\s+/, '')}`, 'latin1'));
  }
  kept.push(block.subarray(pos));
  return Buffer.concat(kept);
}
