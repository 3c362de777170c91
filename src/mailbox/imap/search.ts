// SEARCH (RFC 3501 6.4.4): the whole key set, parsed into a tree and evaluated per message.
// Keys that need the message itself (headers, body, sent dates) load it only when the cheap
// keys (flags, size, dates, sets) have not already decided.
import { imapFlags } from '../maildir-index.js';
import { bodyText, decodeHeaderValue, fieldValue, type MimePart } from '../message-structure.js';
import { inSet, parseSequenceSet, type SequenceSet } from './sequence-set.js';
import { SyntaxError, asString, type Token } from './tokens.js';

export type SearchKey =
  | { k: 'all' }
  | { k: 'flag'; flag: string; set: boolean }
  | { k: 'keyword'; set: boolean }
  | { k: 'new' | 'old' | 'recent' }
  | { k: 'date'; field: 'internal' | 'sent'; op: 'before' | 'on' | 'since'; day: number }
  | { k: 'size'; op: 'larger' | 'smaller'; n: number }
  | { k: 'header'; name: string; value: string }
  | { k: 'body' | 'text'; value: string }
  | { k: 'seq'; set: SequenceSet }
  | { k: 'uid'; set: SequenceSet }
  | { k: 'not'; key: SearchKey }
  | { k: 'or'; a: SearchKey; b: SearchKey }
  | { k: 'and'; keys: SearchKey[] };

export class BadCharsetError extends Error {}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** "1-Feb-1994" → days since the epoch (UTC calendar day). */
export function parseSearchDate(s: string): number {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(s);
  const month = m ? MONTHS.indexOf(m[2]!.toLowerCase()) : -1;
  if (!m || month < 0) throw new SyntaxError(`Invalid date "${s.slice(0, 30)}" (expected e.g. 1-Feb-1994)`);
  const day = Number(m[1]);
  if (day < 1 || day > 31) throw new SyntaxError(`Invalid day in "${s}"`);
  return Math.floor(Date.UTC(Number(m[3]), month, day) / 86_400_000);
}

const FLAG_KEYS: Record<string, [string, boolean]> = {
  ANSWERED: ['\\Answered', true], UNANSWERED: ['\\Answered', false],
  DELETED: ['\\Deleted', true], UNDELETED: ['\\Deleted', false],
  DRAFT: ['\\Draft', true], UNDRAFT: ['\\Draft', false],
  FLAGGED: ['\\Flagged', true], UNFLAGGED: ['\\Flagged', false],
  SEEN: ['\\Seen', true], UNSEEN: ['\\Seen', false],
};

const HEADER_KEYS: Record<string, string> = { BCC: 'bcc', CC: 'cc', FROM: 'from', SUBJECT: 'subject', TO: 'to' };

/**
 * Parses the SEARCH arguments. `star` gives "*" for sequence numbers and for UIDs. Throws
 * SyntaxError (BAD) or BadCharsetError (NO [BADCHARSET]).
 */
export function parseSearch(args: Token[], star: { seq: number; uid: number }): SearchKey {
  let i = 0;
  if (args[0]?.kind === 'atom' && args[0].value.toUpperCase() === 'CHARSET') {
    const cs = asString(args[1], 'charset').toUpperCase();
    if (cs !== 'UTF-8' && cs !== 'US-ASCII') throw new BadCharsetError(cs);
    i = 2;
  }
  const next = (): Token => {
    const t = args[i++];
    if (!t) throw new SyntaxError('Incomplete search key');
    return t;
  };
  const text = (what: string) => asString(next(), what);
  let depth = 0;
  const one = (): SearchKey => {
    const t = next();
    if (t.kind === 'list') {
      if (++depth > 32) throw new SyntaxError('Search keys nested too deeply');
      const saved = args;
      const savedI = i;
      const keys = parseAll(t.items);
      args = saved;
      i = savedI;
      depth--;
      return keys;
    }
    if (t.kind === 'string') throw new SyntaxError('Search key expected');
    const word = t.value.toUpperCase();
    if (/^[0-9*:,]+$/.test(word)) return { k: 'seq', set: parseSequenceSet(word, star.seq) };
    if (FLAG_KEYS[word]) return { k: 'flag', flag: FLAG_KEYS[word]![0], set: FLAG_KEYS[word]![1] };
    if (HEADER_KEYS[word]) return { k: 'header', name: HEADER_KEYS[word]!, value: text(word) };
    switch (word) {
      case 'ALL': return { k: 'all' };
      case 'NEW': return { k: 'new' };
      case 'OLD': return { k: 'old' };
      case 'RECENT': return { k: 'recent' };
      case 'KEYWORD': text('keyword'); return { k: 'keyword', set: true };
      case 'UNKEYWORD': text('keyword'); return { k: 'keyword', set: false };
      case 'BEFORE': case 'ON': case 'SINCE':
        return { k: 'date', field: 'internal', op: word.toLowerCase() as 'before', day: parseSearchDate(text('date')) };
      case 'SENTBEFORE': case 'SENTON': case 'SENTSINCE':
        return { k: 'date', field: 'sent', op: word.slice(4).toLowerCase() as 'before', day: parseSearchDate(text('date')) };
      case 'LARGER': case 'SMALLER': {
        const n = text('size');
        if (!/^\d{1,10}$/.test(n)) throw new SyntaxError(`Invalid number "${n.slice(0, 20)}"`);
        return { k: 'size', op: word.toLowerCase() as 'larger', n: Number(n) };
      }
      case 'HEADER': {
        const name = text('header name').toLowerCase();
        return { k: 'header', name, value: text('header value') };
      }
      case 'BODY': return { k: 'body', value: text('text') };
      case 'TEXT': return { k: 'text', value: text('text') };
      case 'UID': return { k: 'uid', set: parseSequenceSet(text('UID set'), star.uid) };
      case 'NOT': return { k: 'not', key: one() };
      case 'OR': {
        const a = one();
        return { k: 'or', a, b: one() };
      }
      default: throw new SyntaxError(`Unknown search key "${word.slice(0, 30)}"`);
    }
  };
  const parseAll = (tokens: Token[]): SearchKey => {
    args = tokens;
    i = 0;
    const keys: SearchKey[] = [];
    while (i < args.length) keys.push(one());
    if (!keys.length) throw new SyntaxError('Empty search key list');
    return keys.length === 1 ? keys[0]! : { k: 'and', keys };
  };
  const rest = args.slice(i);
  return parseAll(rest);
}

/** What evaluating a key may need beyond flags and numbers. */
export function needsContent(key: SearchKey): boolean {
  switch (key.k) {
    case 'header': case 'body': case 'text': return true;
    case 'date': return key.field === 'sent';
    case 'not': return needsContent(key.key);
    case 'or': return needsContent(key.a) || needsContent(key.b);
    case 'and': return key.keys.some(needsContent);
    default: return false;
  }
}

export interface SearchSubject {
  seq: number;
  uid: number;
  flags: string;
  recent: boolean;
  size: () => Promise<number>;
  mtime: number;
  content: () => Promise<{ buf: Buffer; root: MimePart } | undefined>;
}

const fold = (s: string) => s.toLowerCase();

export async function matches(key: SearchKey, m: SearchSubject): Promise<boolean> {
  switch (key.k) {
    case 'all': return true;
    case 'flag': return imapFlags(m.flags).includes(key.flag) === key.set;
    case 'keyword': return !key.set; // keywords are not stored
    case 'new': return m.recent && !m.flags.includes('S');
    case 'old': return !m.recent;
    case 'recent': return m.recent;
    case 'seq': return inSet(key.set, m.seq);
    case 'uid': return inSet(key.set, m.uid);
    case 'size': {
      const size = await m.size();
      return key.op === 'larger' ? size > key.n : size < key.n;
    }
    case 'date': {
      let day: number;
      if (key.field === 'internal') day = Math.floor(m.mtime / 86_400_000);
      else {
        const c = await m.content();
        const raw = c ? fieldValue(c.root.fields, 'date') : undefined;
        const t = raw ? Date.parse(raw.replace(/\s*\([^)]*\)\s*$/, '')) : NaN;
        if (Number.isNaN(t)) return false;
        day = Math.floor(t / 86_400_000);
      }
      return key.op === 'before' ? day < key.day : key.op === 'on' ? day === key.day : day >= key.day;
    }
    case 'header': {
      const c = await m.content();
      if (!c) return false;
      const want = fold(key.value);
      // HEADER name "" matches every message that has the field.
      return c.root.fields.some((f) => f.key === key.name && (want === '' || fold(decodeHeaderValue(Buffer.from(f.value, 'latin1').toString('utf8'))).includes(want)));
    }
    case 'body': case 'text': {
      const c = await m.content();
      if (!c) return false;
      const want = fold(key.value);
      if (key.k === 'text') {
        const headers = c.root.fields.map((f) => decodeHeaderValue(Buffer.from(f.value, 'latin1').toString('utf8'))).join('\n');
        if (fold(headers).includes(want)) return true;
      }
      return fold(bodyText(c.buf, c.root)).includes(want);
    }
    case 'not': return !(await matches(key.key, m));
    case 'or': return (await matches(key.a, m)) || (await matches(key.b, m));
    case 'and':
      for (const k of key.keys) if (!(await matches(k, m))) return false;
      return true;
  }
}
