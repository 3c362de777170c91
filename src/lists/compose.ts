// The copy of a post that the list sends: the content policy (plain text by default: HTML
// reduced to text, attachments removed with a one-line note) and the header handling —
// RFC 2369 List-* fields, RFC 2919 List-Id, RFC 8058 one-click unsubscribe, Precedence: list,
// Reply-To to the author by default, the author's DKIM-Signature and every trace of earlier
// authentication removed (our own signature replaces them), and From rewritten to the list
// ("Alice via Team <team@example.org>") when the author's domain publishes a strict DMARC
// policy, the author kept in Reply-To and X-Original-From.
import { createRequire } from 'node:module';
import PostalMime, { type Email } from 'postal-mime';
import { renderHtml } from '../mime/html-text.js';
import { listId, ownerAddress, requestAddress, bouncesAddress } from './addresses.js';
import type { List } from './store.js';

const require = createRequire(import.meta.url);
const qp = require('nodemailer/lib/qp') as { encode(s: string | Buffer): string; wrap(s: string, len: number): string };
const mimeFuncs = require('nodemailer/lib/mime-funcs') as { encodeWord(s: string, enc: 'Q' | 'B', max?: number): string };

/** Header fields of the post that never go out with a list copy (replaced or stale). */
const DROPPED = new Set([
  'dkim-signature', 'domainkey-signature', 'arc-seal', 'arc-message-signature', 'arc-authentication-results', 'authentication-results',
  'return-path', 'delivered-to', 'x-original-to', 'received-spf', 'sender', 'precedence', 'reply-to', 'x-original-from', 'errors-to',
  'list-id', 'list-help', 'list-subscribe', 'list-unsubscribe', 'list-unsubscribe-post', 'list-post', 'list-owner', 'list-archive',
  'x-portcullis-queue-id', 'x-spam-status', 'x-spam-score', 'x-spam-flag', 'x-portcullis-symbols',
]);
/** Kept from the post when the body is rebuilt as plain text. */
const KEPT_PLAIN = new Set(['from', 'to', 'cc', 'subject', 'date', 'message-id', 'in-reply-to', 'references', 'keywords', 'user-agent']);

export interface RawField {
  readonly key: string;
  /** The whole field as it came, folding kept, without the final CRLF. */
  readonly line: string;
}

/** The header section split into fields, and the body (after the blank line). */
export function splitMessage(raw: Buffer): { fields: RawField[]; body: Buffer } {
  let end = raw.indexOf('\r\n\r\n');
  let sep = 4;
  if (end < 0) {
    end = raw.indexOf('\n\n');
    sep = 2;
  }
  const head = (end < 0 ? raw : raw.subarray(0, end)).toString('latin1');
  const body = end < 0 ? Buffer.alloc(0) : raw.subarray(end + sep);
  const fields = head.split(/\r?\n(?![ \t])/).filter((l) => l.includes(':')).map((line) => ({ key: line.slice(0, line.indexOf(':')).trim().toLowerCase(), line: line.replace(/\r?\n/g, '\r\n') }));
  return { fields, body };
}

export interface Author {
  readonly name: string;
  readonly address: string;
}

/** The body as plain text and the note about what was removed (undefined: nothing was). */
export function plainText(email: Email, maxChars = 1 << 20): { text: string; note?: string } {
  let text = email.text ?? '';
  if (!text.trim() && email.html) text = renderHtml(email.html, maxChars).text;
  text = text.replace(/\r?\n/g, '\n').slice(0, maxChars);
  const files = email.attachments;
  if (!files.length) return { text };
  const names = files.map((a) => a.filename || a.mimeType).slice(0, 5).join(', ');
  const more = files.length > 5 ? `, and ${files.length - 5} more` : '';
  return { text, note: `[The list removed ${files.length} attachment${files.length === 1 ? '' : 's'} (${names}${more}): it sends plain text only.]` };
}

/** A display name as a header phrase: quoted, or an RFC 2047 word when not ASCII. */
function phrase(name: string): string {
  const clean = name.replace(/[\r\n"\\]/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 150);
  return /^[\x20-\x7e]*$/.test(clean) ? `"${clean}"` : mimeFuncs.encodeWord(clean, 'Q', 52);
}

export interface ComposeOptions {
  readonly list: List;
  readonly author: Author;
  /** From becomes the list's own address (the author's domain has a strict DMARC policy). */
  readonly rewriteFrom: boolean;
  /** https://host:port of the console, for the one-click unsubscribe link. */
  readonly webUrl: string;
}

/**
 * The list copy without the per-member fields (List-Unsubscribe with the member's token and
 * List-Unsubscribe-Post come in front, memberCopy()).
 */
export async function composePost(raw: Buffer, opts: ComposeOptions): Promise<Buffer> {
  const { list, author } = opts;
  const { fields, body } = splitMessage(raw);
  const out: string[] = [];
  const listName = list.description || list.address.slice(0, list.address.indexOf('@'));
  out.push(`List-Id: ${phrase(listName)} <${listId(list.address)}>`);
  out.push(list.posting === 'owners' ? 'List-Post: NO' : `List-Post: <mailto:${list.address}>`);
  out.push(`List-Help: <mailto:${requestAddress(list.address)}?subject=help>`);
  out.push(`List-Subscribe: <mailto:${requestAddress(list.address)}?subject=subscribe>`);
  out.push(`List-Owner: <mailto:${ownerAddress(list.address)}>`);
  out.push('Precedence: list');
  out.push(`Sender: <${bouncesAddress(list.address)}>`);
  const origFrom = fields.find((f) => f.key === 'from');
  const origReplyTo = fields.find((f) => f.key === 'reply-to');
  if (opts.rewriteFrom) {
    const name = author.name || author.address.slice(0, author.address.indexOf('@'));
    out.push(`From: ${phrase(`${name} via ${listName}`)} <${list.address}>`);
    if (origFrom) out.push(`X-Original-From:${origFrom.line.slice(origFrom.line.indexOf(':') + 1)}`);
  }
  if (list.reply_to === 'list') out.push(`Reply-To: <${list.address}>`);
  else if (origReplyTo) out.push(origReplyTo.line);
  else out.push(`Reply-To: ${author.name ? `${phrase(author.name)} ` : ''}<${author.address}>`);
  const keep = (f: RawField) => !DROPPED.has(f.key) && !(opts.rewriteFrom && f.key === 'from');
  if (list.content === 'keep') {
    for (const f of fields) if (keep(f)) out.push(f.line);
    return Buffer.concat([Buffer.from(`${out.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
  }
  for (const f of fields) if (keep(f) && KEPT_PLAIN.has(f.key)) out.push(f.line);
  const email = await PostalMime.parse(raw);
  const { text, note } = plainText(email);
  out.push('MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable');
  const whole = note ? `${text.replace(/\n*$/, '')}\n\n${note}\n` : text;
  const encoded = qp.wrap(qp.encode(Buffer.from(whole.replace(/\n/g, '\r\n'), 'utf8')), 76);
  return Buffer.from(`${out.join('\r\n')}\r\n\r\n${encoded.replace(/\r?\n/g, '\r\n')}\r\n`, 'latin1');
}

/** One member's copy: the one-click unsubscribe fields in front (RFC 8058 s3.1). */
export function memberCopy(post: Buffer, list: List, webUrl: string, leaveToken: string): Buffer {
  const head = `List-Unsubscribe: <${webUrl}/list/unsubscribe?token=${leaveToken}>, <mailto:${requestAddress(list.address)}?subject=unsubscribe>\r\n` +
    'List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), post]);
}

/** The author of a post: the first address of From (name and address), lower-cased address. */
export function authorOf(email: Email): Author | undefined {
  const a = email.from;
  if (!a || !('address' in a) || !a.address) return undefined;
  return { name: a.name ?? '', address: a.address.toLowerCase() };
}
