// A and TXT values of zone entries, as rbldnsd reads and expands them (parse_a_txt, txtsubst):
//   ":127.0.0.3:Listed, see http://example.test/$"   A and TXT template
//   ":3:Listed"                                      A shortened to its last octet (127.0.0.3)
//   ":3"                                             A only, TXT from the current default
//   ":3:"                                            A only, no TXT at all
//   "Listed because $"                               TXT only, A from the current default
// In a template "$" is the listed IP (or domain), "$$" a dollar, "$1".."$9" the file's
// substitution variables, and a "$= …" base template wraps every entry's text.
// Text is kept as latin1 strings (one char per byte of the file), so what goes on the wire is
// the file's bytes, as with rbldnsd; ZoneMirror decodes UTF-8 for the checks.
import { ip4, ip4Addr } from './ip4.js';

/** One A value and TXT template, shared by all the entries that use it. */
export interface ZoneValue {
  /** The A record, an unsigned 32-bit address. */
  readonly a: number;
  /** The TXT template ('' for none), latin1. */
  readonly txt: string;
}

/** rbldnsd's built-in default: 127.0.0.2 and no TXT. */
export const DEFAULT_VALUE: ZoneValue = { a: 0x7f000002, txt: '' };

/** Templates longer than this are cut, as rbldnsd does. */
const MAX_TEMPLATE = 255;
/** Expanded TXT text is cut to this many bytes (rbldnsd's txtsubst). */
const MAX_TXT = 254;

/**
 * Parses the value part of an entry or of a ":" default line, buf[pos..end) (already trimmed).
 * `def` supplies what the text leaves out. Returns the value or the reason it is invalid.
 */
export function parseValue(buf: Uint8Array, pos: number, end: number, def: ZoneValue): ZoneValue | string {
  if (pos < end && buf[pos] === 58 /* : */) {
    const p = ip4Addr(buf, pos + 1, end);
    if (p < 0 || ip4.a === 0) return 'invalid A value';
    let a = ip4.a;
    // ":2" means 127.0.0.2: only the last octet of a loopback address.
    if (ip4.bits === 8) a = (a | 0x7f000000) >>> 0;
    let q = skipSpace(buf, p, end);
    if (q < end && buf[q] === 58) {
      q = skipSpace(buf, q + 1, end);
      return { a, txt: latin1(buf, q, Math.min(end, q + MAX_TEMPLATE)) };
    }
    if (q < end) return 'unrecognized value after the A value';
    return { a, txt: def.txt };
  }
  return { a: def.a, txt: latin1(buf, pos, Math.min(end, pos + MAX_TEMPLATE)) };
}

export function skipSpace(buf: Uint8Array, pos: number, end: number): number {
  while (pos < end && (buf[pos] === 32 || buf[pos] === 9)) pos++;
  return pos;
}

export function latin1(buf: Uint8Array, start: number, end: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1');
}

/** The substitution variables of a zone file: $0..$9 and the base template "$=". */
export interface Substitutions {
  readonly vars: readonly (string | undefined)[];
  readonly base: string | undefined;
}

/**
 * Expands a TXT template for one answer (rbldnsd's txtsubst). `listed` is what "$" stands for.
 * Returns '' when there is no TXT to give (no template and no base template).
 */
export function renderTxt(template: string, listed: string, subst: Substitutions): string {
  let txt = template;
  let whole: string; // what "$=" stands for
  if (txt.charCodeAt(0) === 61 /* = */) {
    // "=text" opts an entry out of the base template.
    txt = txt.slice(1);
    whole = txt;
  } else if (subst.base) {
    // In the base template "$=" is the entry's text as written (not expanded), or the listed
    // name when the entry has none; rbldnsd behaves so and answers must not differ.
    whole = txt || listed;
    txt = subst.base;
  } else {
    whole = txt;
  }
  if (txt.indexOf('$') < 0) return txt.length > MAX_TXT ? txt.slice(0, MAX_TXT) : txt;
  let out = '';
  let i = 0;
  while (out.length < MAX_TXT) {
    const d = txt.indexOf('$', i);
    if (d < 0) {
      out += txt.slice(i);
      break;
    }
    out += txt.slice(i, d);
    const c = txt.charCodeAt(d + 1);
    if (c === 36 /* $ */) {
      out += '$';
      i = d + 2;
    } else if (c >= 48 && c <= 57) {
      // An undefined variable stays as written.
      out += subst.vars[c - 48] ?? txt.slice(d, d + 2);
      i = d + 2;
    } else if (c === 61 /* = */) {
      out += whole;
      i = d + 2;
    } else {
      out += listed;
      i = d + 1;
    }
  }
  return out.length > MAX_TXT ? out.slice(0, MAX_TXT) : out;
}
