// The MIME structure of a stored message with the byte offsets IMAP needs: BODY[1.2.MIME],
// BODY[2.HEADER], partial ranges and RFC822.SIZE all address exact bytes of the file, and
// BODYSTRUCTURE reports each part's size and line count. The streaming parsers installed
// (mailsplit, postal-mime) give decoded content or rebuilt nodes but not these offsets, so the
// splitting is done here; header values (Content-Type parameters with RFC 2231 continuations,
// encoded words) are parsed with libmime, addresses with nodemailer's addressparser.
//
// Bounded on hostile input: nesting depth, number of parts and header fields are capped; past a
// cap the rest is treated as one opaque leaf part, never an error.
import { createRequire } from 'node:module';
import libmime from 'libmime';
import type { HeaderField } from '../protocol/headers.js';

const require = createRequire(import.meta.url);
const addressparser = require('nodemailer/lib/addressparser') as (s: string) => ParsedAddress[];

interface ParsedAddress { name: string; address?: string; group?: ParsedAddress[] }

export const MAX_DEPTH = 24;
export const MAX_PARTS = 500;
export const MAX_FIELDS = 1000;

/**
 * A stored part's header field: the one HeaderField type (src/protocol/headers.ts) without the
 * raw bytes (the offsets above address those); `value` unfolded as stored, not decoded.
 */
export type MimeHeaderField = Pick<HeaderField, 'name' | 'key' | 'value'>;

export interface MimePart {
  readonly headerStart: number;
  /** End of the header block, including the blank line that ends it. */
  readonly headerEnd: number;
  readonly bodyStart: number;
  readonly bodyEnd: number;
  readonly fields: readonly MimeHeaderField[];
  /** Lower case, e.g. "text", "plain". */
  readonly type: string;
  readonly subtype: string;
  readonly params: Readonly<Record<string, string>>;
  readonly parts?: readonly MimePart[];
  /** The encapsulated message of a message/rfc822 part. */
  readonly message?: MimePart;
  /** CRLF count of the body (text/* and message/rfc822 report it). */
  readonly lines: number;
}

const CRLF2 = Buffer.from('\r\n\r\n');

/** The message with every line ending CRLF (files written by Dovecot or by hand may use LF). */
export function toCrlf(buf: Buffer): Buffer {
  let bare = false;
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) {
    if (i === 0 || buf[i - 1] !== 13) {
      bare = true;
      break;
    }
  }
  if (!bare) return buf;
  const out = Buffer.allocUnsafe(buf.length * 2);
  let o = 0;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (c === 10 && (i === 0 || buf[i - 1] !== 13)) out[o++] = 13;
    out[o++] = c;
  }
  return out.subarray(0, o);
}

function countLines(buf: Buffer, start: number, end: number): number {
  let n = 0;
  for (let i = buf.indexOf(10, start); i >= 0 && i < end; i = buf.indexOf(10, i + 1)) n++;
  // A last line without CRLF still counts as a line.
  if (end > start && buf[end - 1] !== 10) n++;
  return n;
}

/** The header fields of buf[start, end): unfolded, at most MAX_FIELDS. */
export function parseFields(buf: Buffer, start: number, end: number): MimeHeaderField[] {
  const text = buf.toString('latin1', start, end);
  const out: MimeHeaderField[] = [];
  let cur: string | undefined;
  const push = () => {
    if (cur === undefined || out.length >= MAX_FIELDS) return;
    const colon = cur.indexOf(':');
    if (colon > 0) {
      const name = cur.slice(0, colon).trim();
      if (/^[\x21-\x39\x3b-\x7e]+$/.test(name)) out.push({ name, key: name.toLowerCase(), value: cur.slice(colon + 1).trim() });
    }
  };
  for (const line of text.split('\r\n')) {
    if (line === '') continue;
    if ((line[0] === ' ' || line[0] === '\t') && cur !== undefined) cur += ' ' + line.trimStart();
    else {
      push();
      cur = line;
    }
  }
  push();
  return out;
}

export function fieldValue(fields: readonly MimeHeaderField[], lname: string): string | undefined {
  return fields.find((f) => f.key === lname)?.value;
}

/** Parses the message (CRLF line ends) into its MIME tree. */
export function parseStructure(buf: Buffer): MimePart {
  const budget = { parts: 0 };
  return parseEntity(buf, 0, buf.length, undefined, 0, budget);
}

function parseEntity(buf: Buffer, start: number, end: number, parentDefault: string | undefined, depth: number,
  budget: { parts: number }): MimePart {
  budget.parts++;
  let headerEnd: number;
  let bodyStart: number;
  if (buf[start] === 13 && buf[start + 1] === 10) {
    headerEnd = start + 2;
    bodyStart = start + 2;
  } else {
    const blank = buf.indexOf(CRLF2, start);
    if (blank < 0 || blank + 4 > end) {
      headerEnd = end;
      bodyStart = end;
    } else {
      headerEnd = blank + 4;
      bodyStart = blank + 4;
    }
  }
  const fields = parseFields(buf, start, Math.min(headerEnd, end));
  const ctRaw = fieldValue(fields, 'content-type');
  let type = 'text';
  let subtype = 'plain';
  let params: Record<string, string> = {};
  if (ctRaw) {
    const parsed = libmime.parseHeaderValue(ctRaw);
    const m = /^([a-z0-9!#$&^_.+-]+)\/([a-z0-9!#$&^_.+-]+)$/i.exec(parsed.value.trim());
    if (m) {
      type = m[1]!.toLowerCase();
      subtype = m[2]!.toLowerCase();
      params = stringParams(parsed.params);
    } else if (parentDefault) {
      [type, subtype] = parentDefault.split('/') as [string, string];
    } else {
      params = stringParams(parsed.params);
    }
  } else if (parentDefault) {
    [type, subtype] = parentDefault.split('/') as [string, string];
  }
  if (type === 'text' && !params.charset && !ctRaw) params.charset = 'us-ascii';
  const base = { headerStart: start, headerEnd, bodyStart, bodyEnd: end, fields, type, subtype, params };
  const canNest = depth < MAX_DEPTH && budget.parts < MAX_PARTS;
  if (type === 'multipart' && params.boundary && canNest) {
    const parts = splitMultipart(buf, bodyStart, end, params.boundary, subtype === 'digest' ? 'message/rfc822' : 'text/plain', depth, budget);
    return { ...base, parts, lines: 0 };
  }
  if (type === 'message' && (subtype === 'rfc822' || subtype === 'global') && canNest) {
    const message = parseEntity(buf, bodyStart, end, undefined, depth + 1, budget);
    return { ...base, message, lines: countLines(buf, bodyStart, end) };
  }
  return { ...base, lines: type === 'text' ? countLines(buf, bodyStart, end) : 0 };
}

function stringParams(p: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(p)) out[k.toLowerCase()] = Array.isArray(v) ? String(v[0]) : String(v);
  return out;
}

/** The body parts of a multipart entity: between "--boundary" lines, up to "--boundary--". */
function splitMultipart(buf: Buffer, start: number, end: number, boundary: string, childDefault: string, depth: number,
  budget: { parts: number }): MimePart[] {
  const delim = Buffer.from(`--${boundary}`, 'latin1');
  // Positions of delimiter lines: [lineStart, afterLine, isClose]; the CRLF before a delimiter
  // belongs to it (RFC 2046 5.1.1), so a part ends where that CRLF begins.
  const marks: { partEnd: number; next: number; close: boolean }[] = [];
  let i = start;
  while (i < end) {
    const at = buf.indexOf(delim, i);
    if (at < 0 || at >= end) break;
    const lineStart = at === start || (buf[at - 1] === 10 && buf[at - 2] === 13);
    if (!lineStart) {
      i = at + 1;
      continue;
    }
    const afterDelim = at + delim.length;
    const close = buf[afterDelim] === 45 && buf[afterDelim + 1] === 45;
    let eol = buf.indexOf('\r\n', afterDelim, 'latin1');
    // Only transport padding may follow the boundary on its line.
    const rest = buf.toString('latin1', afterDelim + (close ? 2 : 0), eol < 0 || eol > end ? end : eol);
    if (!/^[ \t]*$/.test(rest)) {
      i = at + 1;
      continue;
    }
    eol = eol < 0 || eol >= end ? end : eol + 2;
    marks.push({ partEnd: at === start ? at : at - 2, next: eol, close });
    if (close) break;
    i = eol;
  }
  const parts: MimePart[] = [];
  for (let k = 0; k < marks.length; k++) {
    const m = marks[k]!;
    if (m.close) break;
    const partEnd = k + 1 < marks.length ? marks[k + 1]!.partEnd : end;
    if (budget.parts >= MAX_PARTS) break;
    parts.push(parseEntity(buf, m.next, Math.max(m.next, partEnd), childDefault, depth + 1, budget));
  }
  return parts;
}

/**
 * The part a section path ("1.2.3" as [1,2,3]) names, as RFC 3501 6.4.5 numbers them: the
 * parts of a multipart, through message/rfc822 parts into their message; part 1 of a
 * non-multipart message is its body. Undefined when there is no such part.
 */
export function resolvePart(root: MimePart, path: readonly number[]): MimePart | undefined {
  let node = root;
  for (let i = 0; i < path.length; i++) {
    const n = path[i]!;
    if (i > 0 && node.message) node = node.message;
    else if (i > 0 && !node.parts) return undefined;
    if (node.parts) {
      const child = node.parts[n - 1];
      if (!child) return undefined;
      node = child;
    } else if (n !== 1) {
      return undefined;
    }
  }
  return node;
}

// ---------------------------------------------------------------------------------------------
// Envelope and addresses (raw header text, as RFC 3501 7.4.2 wants it: not decoded)

export interface EnvelopeAddress {
  name: string | null;
  adl: null;
  mailbox: string | null;
  host: string | null;
}

export interface Envelope {
  date: string | null;
  subject: string | null;
  from: EnvelopeAddress[] | null;
  sender: EnvelopeAddress[] | null;
  replyTo: EnvelopeAddress[] | null;
  to: EnvelopeAddress[] | null;
  cc: EnvelopeAddress[] | null;
  bcc: EnvelopeAddress[] | null;
  inReplyTo: string | null;
  messageId: string | null;
}

export function parseAddresses(value: string | undefined): EnvelopeAddress[] | null {
  if (value === undefined || value.trim() === '') return null;
  let list: ParsedAddress[];
  try {
    list = addressparser(value.slice(0, 16_384));
  } catch {
    return null;
  }
  const out: EnvelopeAddress[] = [];
  const one = (a: ParsedAddress) => {
    const addr = a.address ?? '';
    const at = addr.lastIndexOf('@');
    out.push({
      name: a.name ? a.name : null,
      adl: null,
      mailbox: at >= 0 ? addr.slice(0, at) : addr || null,
      host: at >= 0 ? addr.slice(at + 1) : null,
    });
  };
  for (const a of list.slice(0, 1000)) {
    if (a.group) {
      // RFC 3501: a group is a start marker (NIL NIL "name" NIL), its members, an end marker.
      out.push({ name: null, adl: null, mailbox: a.name || '', host: null });
      for (const m of a.group) one(m);
      out.push({ name: null, adl: null, mailbox: null, host: null });
    } else {
      one(a);
    }
  }
  return out.length ? out : null;
}

export function envelopeOf(fields: readonly MimeHeaderField[]): Envelope {
  const v = (n: string) => fieldValue(fields, n) ?? null;
  const from = parseAddresses(fieldValue(fields, 'from'));
  return {
    date: v('date'),
    subject: v('subject'),
    from,
    sender: parseAddresses(fieldValue(fields, 'sender')) ?? from,
    replyTo: parseAddresses(fieldValue(fields, 'reply-to')) ?? from,
    to: parseAddresses(fieldValue(fields, 'to')),
    cc: parseAddresses(fieldValue(fields, 'cc')),
    bcc: parseAddresses(fieldValue(fields, 'bcc')),
    inReplyTo: v('in-reply-to'),
    messageId: v('message-id'),
  };
}

// ---------------------------------------------------------------------------------------------
// Decoded text (SEARCH BODY / TEXT)

function decodeQp(s: string): Buffer {
  const bytes: number[] = [];
  const text = s.replace(/=\r?\n/g, '');
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(text.charCodeAt(i) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

export function decodeCharset(data: Buffer, charset: string | undefined): string {
  const cs = (charset ?? 'utf-8').toLowerCase();
  try {
    return new TextDecoder(cs === 'us-ascii' ? 'utf-8' : cs).decode(data);
  } catch {
    return data.toString('latin1');
  }
}

/** The decoded text of every text/* leaf part (for SEARCH BODY), at most `limit` characters. */
export function bodyText(buf: Buffer, root: MimePart, limit = 4 * 1024 * 1024): string {
  const out: string[] = [];
  let total = 0;
  const walk = (p: MimePart) => {
    if (total >= limit) return;
    if (p.parts) return p.parts.forEach(walk);
    if (p.message) return walk(p.message);
    if (p.type !== 'text' && p.type !== 'message') return;
    const raw = buf.subarray(p.bodyStart, p.bodyEnd);
    const cte = (fieldValue(p.fields, 'content-transfer-encoding') ?? '').trim().toLowerCase();
    const bytes = cte === 'base64' ? Buffer.from(raw.toString('latin1'), 'base64') : cte === 'quoted-printable' ? decodeQp(raw.toString('latin1')) : raw;
    const s = decodeCharset(bytes, p.params.charset);
    out.push(s);
    total += s.length;
  };
  walk(root);
  return out.join('\n').slice(0, limit);
}

/** Header values with encoded words decoded (for SEARCH HEADER / FROM / SUBJECT...). */
export function decodeHeaderValue(value: string): string {
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

// ---------------------------------------------------------------------------------------------
// A bounded cache of parsed structures: BODYSTRUCTURE and section fetches of a message are
// asked for again and again (clients fetch the structure, then parts).

export class StructureCache {
  private readonly map = new Map<string, { part: MimePart; weight: number }>();
  private weight = 0;

  constructor(private readonly maxWeight = 32 * 1024 * 1024, private readonly maxEntries = 5000) {}

  get(key: string): MimePart | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    this.map.delete(key);
    this.map.set(key, e);
    return e.part;
  }

  set(key: string, part: MimePart, headerBytes: number): void {
    const weight = 256 + headerBytes;
    const old = this.map.get(key);
    if (old) {
      this.weight -= old.weight;
      this.map.delete(key);
    }
    this.map.set(key, { part, weight });
    this.weight += weight;
    while ((this.weight > this.maxWeight || this.map.size > this.maxEntries) && this.map.size > 1) {
      const [k, e] = this.map.entries().next().value as [string, { weight: number }];
      this.map.delete(k);
      this.weight -= e.weight;
    }
  }
}

/** Header bytes held by a structure (its weight in the cache). */
export function headerBytes(p: MimePart): number {
  let n = p.headerEnd - p.headerStart;
  if (p.parts) for (const c of p.parts) n += headerBytes(c);
  if (p.message) n += headerBytes(p.message);
  return n;
}
