// FETCH (RFC 3501 6.4.5, 7.4.2): the data items, the BODY[section]<partial> addressing, and
// ENVELOPE / BODYSTRUCTURE rendered from the parsed MIME tree.
import libmime from 'libmime';
import { envelopeOf, fieldValue, resolvePart, type Envelope, type EnvelopeAddress, type MimePart } from '../message-structure.js';
import { str, type ImapValue } from './encode.js';
import { SyntaxError, type Token } from './tokens.js';

export type FetchItem =
  | { kind: 'UID' | 'FLAGS' | 'INTERNALDATE' | 'RFC822.SIZE' | 'ENVELOPE' | 'BODYSTRUCTURE' | 'BODY' }
  | { kind: 'RFC822' | 'RFC822.HEADER' | 'RFC822.TEXT' }
  | { kind: 'section'; peek: boolean; path: number[]; spec: '' | 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';
      fields: string[]; partial?: { start: number; length: number }; label: string };

export interface FetchRequest {
  items: FetchItem[];
  /** Whether the message content must be read. */
  needsContent: boolean;
  /** Whether the message size must be known. */
  needsSize: boolean;
  /** Fetching this sets \Seen (BODY[...] without PEEK, RFC822, RFC822.TEXT). */
  setsSeen: boolean;
}

const SIMPLE = new Set(['UID', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODYSTRUCTURE', 'BODY', 'RFC822', 'RFC822.HEADER', 'RFC822.TEXT']);
const MACROS: Record<string, string[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};

export function parseFetch(arg: Token | undefined, uid: boolean): FetchRequest {
  if (!arg) throw new SyntaxError('FETCH needs data items');
  const words: string[] = [];
  if (arg.kind === 'list') {
    if (!arg.items.length) throw new SyntaxError('Empty FETCH item list');
    for (const t of arg.items) {
      if (t.kind !== 'atom') throw new SyntaxError('FETCH item expected');
      words.push(t.value);
    }
  } else if (arg.kind === 'atom') {
    const m = MACROS[arg.value.toUpperCase()];
    if (m) words.push(...m);
    else words.push(arg.value);
  } else {
    throw new SyntaxError('FETCH item expected');
  }
  const items: FetchItem[] = [];
  if (uid) items.push({ kind: 'UID' });
  for (const w of words) {
    const up = w.toUpperCase();
    if (SIMPLE.has(up)) {
      if (!(up === 'UID' && uid)) items.push({ kind: up as 'UID' });
      continue;
    }
    items.push(parseSection(w));
  }
  const content = items.some((i) => ['ENVELOPE', 'BODYSTRUCTURE', 'BODY', 'RFC822', 'RFC822.HEADER', 'RFC822.TEXT', 'section'].includes(i.kind));
  return {
    items,
    needsContent: content,
    needsSize: items.some((i) => i.kind === 'RFC822.SIZE'),
    setsSeen: items.some((i) => i.kind === 'RFC822' || i.kind === 'RFC822.TEXT' || (i.kind === 'section' && !i.peek)),
  };
}

function parseSection(w: string): FetchItem {
  const m = /^(BODY|BODY\.PEEK)\[([^\]]*)\](?:<(\d{1,10})\.(\d{1,10})>)?$/i.exec(w);
  if (!m) throw new SyntaxError(`Unknown FETCH item "${w.slice(0, 40)}"`);
  const peek = m[1]!.toUpperCase() === 'BODY.PEEK';
  const inner = m[2]!;
  const fm = /^((?:\d+\.)*)(HEADER\.FIELDS(?:\.NOT)?) \(([^()]*)\)$/i.exec(inner);
  let path: number[] = [];
  let spec: '' | 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';
  let fields: string[] = [];
  const nums = (s: string) => {
    const parts = s.split('.').filter(Boolean);
    if (parts.length > 32) throw new SyntaxError('Section nested too deeply');
    return parts.map((p) => {
      if (!/^[1-9]\d{0,5}$/.test(p)) throw new SyntaxError(`Invalid section part "${p}"`);
      return Number(p);
    });
  };
  if (fm) {
    path = nums(fm[1]!);
    spec = fm[2]!.toUpperCase() as 'HEADER.FIELDS';
    fields = fm[3]!.trim().split(/\s+/).filter(Boolean).map((f) => {
      const name = f.replace(/^"(.*)"$/, '$1');
      if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) throw new SyntaxError(`Invalid header field name "${name.slice(0, 40)}"`);
      return name;
    });
    if (!fields.length) throw new SyntaxError('HEADER.FIELDS needs field names');
    if (fields.length > 200) throw new SyntaxError('Too many header fields');
  } else {
    const sm = /^((?:\d+\.)*\d+)?(?:\.?(HEADER|TEXT|MIME))?$/i.exec(inner);
    if (!sm || (sm[2] && sm[1] === undefined && sm[2].toUpperCase() === 'MIME') || (inner.startsWith('.'))) {
      throw new SyntaxError(`Invalid section "${inner.slice(0, 40)}"`);
    }
    if (sm[1] && sm[2] && !inner.includes(`${sm[1]}.`)) throw new SyntaxError(`Invalid section "${inner.slice(0, 40)}"`);
    path = sm[1] ? nums(sm[1]) : [];
    spec = (sm[2]?.toUpperCase() ?? '') as 'HEADER';
  }
  const partial = m[3] !== undefined ? { start: Number(m[3]), length: Number(m[4]) } : undefined;
  const sectionText = fm ? `${fm[1]}${spec} (${fields.map((f) => f.toUpperCase()).join(' ')})` : inner.toUpperCase();
  return { kind: 'section', peek, path, spec, fields, partial, label: `BODY[${sectionText}]${partial ? `<${partial.start}>` : ''}` };
}

// --- section data ------------------------------------------------------------------------------

/** The header lines of buf[start, end) whose names are (or, with `not`, are not) in `names`. */
export function filterHeader(buf: Buffer, start: number, end: number, names: string[], not: boolean): Buffer {
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  const text = buf.toString('latin1', start, end);
  const lines = text.split('\r\n');
  const out: string[] = [];
  let keep = false;
  for (const line of lines) {
    if (line === '') continue;
    if (line[0] === ' ' || line[0] === '\t') {
      if (keep) out.push(line);
      continue;
    }
    const colon = line.indexOf(':');
    const name = (colon > 0 ? line.slice(0, colon) : line).trim().toLowerCase();
    keep = colon > 0 && wanted.has(name) !== not;
    if (keep) out.push(line);
  }
  return Buffer.from(out.map((l) => `${l}\r\n`).join('') + '\r\n', 'latin1');
}

/** The bytes a BODY[section] names (before the partial range); undefined for a missing part. */
export function sectionData(buf: Buffer, root: MimePart, item: Extract<FetchItem, { kind: 'section' }>): Buffer | undefined {
  const part = item.path.length ? resolvePart(root, item.path) : root;
  if (!part) return undefined;
  // HEADER / TEXT of a part address the message inside a message/rfc822 part.
  const msg = item.path.length && (item.spec === 'HEADER' || item.spec === 'TEXT' || item.spec.startsWith('HEADER.')) ? part.message : part;
  switch (item.spec) {
    case '': return item.path.length ? buf.subarray(part.bodyStart, part.bodyEnd) : buf;
    case 'MIME': return buf.subarray(part.headerStart, part.headerEnd);
    case 'HEADER': return msg ? buf.subarray(msg.headerStart, msg.headerEnd) : undefined;
    case 'TEXT': return msg ? buf.subarray(msg.bodyStart, msg.bodyEnd) : undefined;
    default: return msg ? filterHeader(buf, msg.headerStart, msg.headerEnd, item.fields, item.spec === 'HEADER.FIELDS.NOT') : undefined;
  }
}

export function applyPartial(data: Buffer, partial: { start: number; length: number } | undefined): Buffer {
  if (!partial) return data;
  if (partial.start >= data.length) return Buffer.alloc(0);
  return data.subarray(partial.start, partial.start + partial.length);
}

// --- ENVELOPE and BODYSTRUCTURE ------------------------------------------------------------------

const raw = (s: string | null) => (s === null ? null : str(Buffer.from(s, 'latin1')));

function addresses(list: EnvelopeAddress[] | null): ImapValue {
  if (!list) return null;
  return list.map((a) => [raw(a.name), null, raw(a.mailbox), raw(a.host)]);
}

export function envelopeValue(env: Envelope): ImapValue {
  return [raw(env.date), raw(env.subject), addresses(env.from), addresses(env.sender), addresses(env.replyTo),
    addresses(env.to), addresses(env.cc), addresses(env.bcc), raw(env.inReplyTo), raw(env.messageId)];
}

/** A parameter value for the wire: non-ASCII (RFC 2231-decoded) text goes back as an RFC 2047 word. */
function paramValue(v: string): ImapValue {
  return /[^\x20-\x7e]/.test(v) ? str(libmime.encodeWords(v, 'Q', 0)) : str(v);
}

function paramList(params: Readonly<Record<string, string>>, skip?: string): ImapValue {
  const entries = Object.entries(params).filter(([k]) => k !== skip);
  if (!entries.length) return null;
  return entries.flatMap(([k, v]) => [str(k.toUpperCase()), paramValue(v)]);
}

function disposition(p: MimePart): ImapValue {
  const v = fieldValue(p.fields, 'content-disposition');
  if (!v) return null;
  const parsed = libmime.parseHeaderValue(v);
  const params: Record<string, string> = {};
  for (const [k, val] of Object.entries(parsed.params)) params[k.toLowerCase()] = String(val);
  return [str(parsed.value.trim().toLowerCase() || 'attachment'), paramList(params)];
}

function language(p: MimePart): ImapValue {
  const v = fieldValue(p.fields, 'content-language');
  if (!v) return null;
  const langs = v.split(',').map((s) => s.trim()).filter(Boolean);
  return langs.length === 1 ? str(langs[0]!) : langs.map((l) => str(l));
}

/** BODYSTRUCTURE (`extended`) or BODY of a part. */
export function bodyStructure(buf: Buffer, p: MimePart, extended: boolean): ImapValue {
  const f = (n: string) => {
    const v = fieldValue(p.fields, n);
    return v === undefined ? null : raw(v);
  };
  if (p.parts) {
    const out: ImapValue[] = p.parts.length ? p.parts.map((c) => bodyStructure(buf, c, extended)) : [[str('TEXT'), str('PLAIN'), null, null, null, str('7BIT'), 0, 0]];
    out.push(str(p.subtype.toUpperCase()));
    if (extended) out.push(paramList(p.params), disposition(p), language(p), f('content-location'));
    // A multipart's children are written one after another, not as a list of lists.
    return out;
  }
  const out: ImapValue[] = [
    str(p.type.toUpperCase()), str(p.subtype.toUpperCase()), paramList(p.params),
    f('content-id'), f('content-description'),
    str((fieldValue(p.fields, 'content-transfer-encoding') ?? '7BIT').trim().toUpperCase() || '7BIT'),
    p.bodyEnd - p.bodyStart,
  ];
  if (p.message) out.push(envelopeValue(envelopeOf(p.message.fields)), bodyStructure(buf, p.message, extended), p.lines);
  else if (p.type === 'text') out.push(p.lines);
  if (extended) out.push(f('content-md5'), disposition(p), language(p), f('content-location'));
  return out;
}

/** "17-Jul-1996 02:44:25 +0000" */
export function internalDate(ms: number): string {
  const d = new Date(ms);
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}-${mon}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** APPEND's date-time ("17-Jul-1996 02:44:25 -0700", day may be space-padded). */
export function parseDateTime(s: string): Date | undefined {
  const m = /^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(s);
  if (!m) return undefined;
  const month = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'].indexOf(m[2]!.toLowerCase());
  if (month < 0) return undefined;
  const offset = (Number(m[8]) * 60 + Number(m[9])) * (m[7] === '-' ? -1 : 1);
  const t = Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])) - offset * 60_000;
  return Number.isNaN(t) ? undefined : new Date(t);
}

