// SPF macro expansion (RFC 7208 s7), for explanations: the exp= domain-spec and the explanation
// text it points to. mailauth evaluates the record and expands the macros of mechanisms itself,
// but does not implement exp= (RFC 7208 s6.2), so the gateway does, after mailauth's result.
import net from 'node:net';

export interface MacroContext {
  /** <sender>: local-part@domain (postmaster@<helo> for the HELO identity). */
  readonly sender: string;
  /** <ip>, IPv4-mapped IPv6 already turned into IPv4. */
  readonly ip: string;
  /** <domain>: the domain whose record is being evaluated. */
  readonly domain: string;
  readonly helo: string;
  /** %{r}: the receiving host. */
  readonly receiver: string;
  /** %{t}: seconds since the epoch. */
  readonly now: () => number;
  /** %{p}: the validated domain name of <ip> (RFC 7208 s7.3), "unknown" when there is none. */
  readonly validatedName: () => Promise<string>;
}

export class MacroError extends Error {}

const EXPAND = /%(?:\{([a-z])(\d*)(r?)([.\-+,/_=]*)\}|(%)|(_)|(-))|%/gi;
const DOMAIN_LETTERS = 'slodiphv';
const ALL_LETTERS = 'slodiphvcrt';

/**
 * IPv4 dotted, or IPv6 as 32 dot-separated nibbles (RFC 7208 s7.3 "i"), in the case the address
 * was written in (the RFC 7208 test suite expects "CAFE:BABE::1" to give "...E.B.A.B.E.F.A.C").
 */
export function dottedIp(ip: string): string {
  if (net.isIPv4(ip)) return ip;
  return expandIpv6(ip, true).replace(/:/g, '').split('').join('.');
}

/** The 8 groups of an IPv6 address, 4 hex digits each, lower case unless `keepCase`. */
export function expandIpv6(ip: string, keepCase = false): string {
  let text = keepCase ? ip : ip.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    text = text.slice(0, v4.index) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join(':');
}

/** %{c}: the address in its usual text form (RFC 5952 for IPv6). */
function readableIp(ip: string): string {
  if (net.isIPv4(ip)) return ip;
  const groups = expandIpv6(ip).split(':').map((g) => g.replace(/^0+(?=.)/, ''));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** RFC 3986 unreserved characters stay, everything else is %XX (for upper-case macro letters). */
function urlEscape(s: string): string {
  return [...Buffer.from(s, 'utf8')].map((b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}

async function letterValue(letter: string, ctx: MacroContext): Promise<string> {
  const at = ctx.sender.lastIndexOf('@');
  switch (letter) {
    case 's': return ctx.sender;
    case 'l': return at >= 0 ? ctx.sender.slice(0, at) : 'postmaster';
    case 'o': return at >= 0 ? ctx.sender.slice(at + 1) : ctx.sender;
    case 'd': return ctx.domain;
    case 'i': return dottedIp(ctx.ip);
    case 'p': return ctx.validatedName();
    case 'v': return net.isIPv4(ctx.ip) ? 'in-addr' : 'ip6';
    case 'h': return ctx.helo;
    case 'c': return readableIp(ctx.ip);
    case 'r': return ctx.receiver;
    case 't': return String(Math.floor(ctx.now() / 1000));
    default: throw new MacroError(`unknown macro letter "${letter}"`);
  }
}

/** Applies the transformers of one macro-expand (RFC 7208 s7.3) to a letter's value. */
function transform(value: string, m: RegExpMatchArray): string {
  const [, letter, digits, reverse, delimiters] = m;
  if (digits && Number(digits) === 0) throw new MacroError('macro digit transformer must not be 0');
  let out = value;
  if (digits || reverse || delimiters) {
    let pieces = value.split(new RegExp(`[${(delimiters || '.').replace(/[-\\\]^]/g, '\\$&')}]`));
    if (reverse) pieces = pieces.reverse();
    if (digits) pieces = pieces.slice(-Number(digits));
    out = pieces.join('.');
  }
  return letter === letter!.toUpperCase() ? urlEscape(out) : out;
}

/**
 * Expands a macro-string. `explanation` allows the letters c, r and t and keeps the text as is;
 * otherwise the result is a domain name, truncated from the left to 253 octets (RFC 7208 s7.3)
 * and without a trailing dot. Throws MacroError on a syntax error.
 */
export async function expandMacros(input: string, ctx: MacroContext, explanation: boolean): Promise<string> {
  const letters = explanation ? ALL_LETTERS : DOMAIN_LETTERS;
  const parts: string[] = [];
  let last = 0;
  for (const m of input.matchAll(EXPAND)) {
    parts.push(input.slice(last, m.index));
    last = m.index! + m[0].length;
    if (m[5]) parts.push('%');
    else if (m[6]) parts.push(' ');
    else if (m[7]) parts.push('%20');
    else if (!m[1]) throw new MacroError(`"%" not followed by "{", "%", "_" or "-" in "${input}"`);
    else {
      const letter = m[1].toLowerCase();
      if (!letters.includes(letter)) throw new MacroError(`macro letter "${m[1]}" is not allowed here`);
      parts.push(transform(await letterValue(letter, ctx), m));
    }
  }
  parts.push(input.slice(last));
  const out = parts.join('');
  if (explanation) return out;
  let name = out.replace(/\.$/, '');
  while (name.length > 253 && name.includes('.')) name = name.slice(name.indexOf('.') + 1);
  return name;
}

/**
 * Replaces the %{d} macros of a record with the domain the record belongs to (RFC 7208 s7.3:
 * "d" is the <domain> of the current check_host(), which changes with include: and redirect=).
 * mailauth expands %{d} as the sender's domain everywhere, which is wrong inside included and
 * redirected-to records; binding "d" before mailauth sees the record corrects that. Other
 * macros are left to mailauth. A domain that could itself read as macro syntax (a "%") or
 * split a term (a space) is left alone, as is a record with a macro syntax error (the record
 * check reports those).
 */
export function bindDomainMacro(record: string, domain: string): string {
  if (!/^[\x21-\x24\x26-\x7e]+$/.test(domain) || !/%\{d/i.test(record)) return record;
  try {
    return record.replace(EXPAND, (...args) => {
      const m = args.slice(0, 8) as unknown as RegExpMatchArray;
      return m[1] && m[1].toLowerCase() === 'd' ? transform(domain, m) : m[0];
    });
  } catch {
    return record;
  }
}
