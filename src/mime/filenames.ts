// File names from a part's header fields, every one a mail client might show: the
// Content-Disposition filename (plain, or RFC 2231 filename*= with continuations and a
// charset), the Content-Type name (and name*=), each header occurrence, encoded-words
// decoded. Attackers give a harmless name in one place and a dangerous one in another, and
// clients disagree on which wins, so the policy looks at all of them.
import { createRequire } from 'node:module';

interface Libmime {
  decodeWords(s: string): string;
  parseHeaderValue(s: string): { value: string; params: Record<string, string> };
}
const require = createRequire(import.meta.url);
const libmime = require('libmime') as Libmime;

/** Header bytes as mailsplit keeps them ("binary" strings) to text: UTF-8 when valid, else Latin-1. */
export function headerText(binary: string): string {
  if (!/[\x80-\xff]/.test(binary)) return binary;
  const bytes = Buffer.from(binary, 'latin1');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return binary;
  }
}

/** Splits "type; a=1; b="x;y"" into the value and [key, value] pairs, quotes removed, in order. */
export function splitParams(field: string): { value: string; params: [string, string][] } {
  const params: [string, string][] = [];
  let i = 0;
  const n = field.length;
  const readUntilSemicolon = () => {
    let out = '';
    while (i < n && field[i] !== ';') {
      if (field[i] === '"') {
        i++;
        while (i < n && field[i] !== '"') {
          if (field[i] === '\\' && i + 1 < n) i++;
          out += field[i++];
        }
        i++;
      } else out += field[i++];
    }
    i++;
    return out;
  };
  const value = readUntilSemicolon().trim();
  while (i < n && params.length < 100) {
    const part = readUntilSemicolon();
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    params.push([part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim()]);
  }
  return { value, params };
}

const MAX_NAME = 1024;

/** Decodes encoded-words (RFC 2047) in a header value; a broken one is kept as written. */
export function decodeHeaderWords(s: string): string {
  return decodeWords(s);
}

function decodeWords(s: string): string {
  if (!s.includes('=?')) return s;
  try {
    return libmime.decodeWords(s);
  } catch {
    return s;
  }
}

/** The names one header field carries under `key` ("filename" or "name"). */
function namesIn(params: [string, string][], key: string): string[] {
  const out: string[] = [];
  const segments: { index: number; encoded: boolean; value: string }[] = [];
  for (const [k, v] of params) {
    if (k === key) out.push(decodeWords(v));
    else if (k.startsWith(`${key}*`)) {
      const m = /^\*(\d{1,3})?(\*)?$/.exec(k.slice(key.length));
      if (!m) continue;
      const index = m[1] === undefined ? 0 : Number(m[1]);
      // "filename*=" alone is an encoded value; "filename*0=" is not, "filename*0*=" is.
      const encoded = m[1] === undefined ? true : m[2] === '*';
      segments.push({ index, encoded, value: v });
    }
  }
  if (segments.length) {
    segments.sort((a, b) => a.index - b.index);
    // Let libmime do the charset work: rebuild a field with only these parameters, quoted.
    const rebuilt = segments.map((s) => `${key}*${s.index}${s.encoded ? '*' : ''}="${s.value.replace(/(["\\])/g, '\\$1')}"`).join('; ');
    try {
      const parsed = libmime.parseHeaderValue(`x; ${rebuilt}`).params[key];
      if (parsed) out.unshift(decodeWords(parsed));
    } catch {
      out.unshift(segments.map((s) => s.value).join(''));
    }
  }
  return out;
}

/**
 * Every distinct file name in the header fields, in the order a client is most likely to use
 * them: Content-Disposition filename (RFC 2231 first), then Content-Type name.
 */
export function fileNames(dispositionFields: readonly string[], typeFields: readonly string[]): string[] {
  const names: string[] = [];
  for (const f of dispositionFields) names.push(...namesIn(splitParams(f).params, 'filename'));
  for (const f of typeFields) names.push(...namesIn(splitParams(f).params, 'name'));
  const seen = new Set<string>();
  const out: string[] = [];
  for (const raw of names) {
    // Cut an absurdly long name in the middle: its end (the extension) is what matters.
    const name = raw.length > MAX_NAME ? `${raw.slice(0, 200)}…${raw.slice(-(MAX_NAME - 201))}` : raw;
    if (name === '' || seen.has(name)) continue;
    seen.add(name);
    out.push(name);
  }
  return out;
}

/** The value of a header line ("Content-Type: a/b;\r\n c=d"), unfolded, as text. */
export function fieldValue(line: string): string {
  const colon = line.indexOf(':');
  return headerText(line.slice(colon + 1)).replace(/\r?\n[ \t]/g, ' ').trim();
}

/** A character as U+XXXX, for reports that must show what is invisible. */
export const codePointName = (c: string): string => `<U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}>`;

/** A name as a person should see it in a report: invisible, bidi and control characters escaped. */
export function showName(name: string): string {
  const shown = name.replace(/[\x00-\x1f\x7f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]/g, codePointName);
  return shown.length > 200 ? `${shown.slice(0, 197)}...` : shown;
}
