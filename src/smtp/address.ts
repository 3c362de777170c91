// RFC 5321 envelope addresses: the argument of MAIL FROM and RCPT TO.
//
// Hand-written because the address parsers on npm (nodemailer's addressparser, email-addresses)
// parse RFC 5322 *header* addresses, which are a different grammar: they accept display names,
// comments and groups, and are lenient in ways that matter for relay decisions. Here the parse
// is strict and total: a path is either understood exactly or refused with 501.
//
// The relay-safety rule that follows from it: the DOMAIN alone decides where mail goes. The
// local part is an opaque key. It is never re-parsed for "%", "!" or "@" (no percent hack, no
// bang paths, no quoted routing), and account names can never contain those characters, so such
// a local part at one of our domains is simply an unknown user, and at a foreign domain it is
// a relay attempt like any other.
import { domainToASCII } from 'node:url';
import net from 'node:net';

export interface Address {
  /** Local part as received, without the quotes of a quoted string (escapes resolved). */
  readonly local: string;
  /** Domain, lower case, A-labels (punycode), no trailing dot; or an address literal "[...]". */
  readonly domain: string;
  /** True when the local part was a quoted string. */
  readonly quoted: boolean;
  /** True when the domain is an address literal like [192.0.2.1] or [IPv6:2001:db8::1]. */
  readonly literal: boolean;
  /** True when the address needs SMTPUTF8 (non-ASCII local part or U-label domain). */
  readonly utf8: boolean;
  /** The RFC 821 source route that was present and ignored (RFC 5321 s3.6.1, C). */
  readonly sourceRoute: readonly string[];
  /** True when the domain was written with a trailing dot, which we strip. */
  readonly trailingDot: boolean;
}

/** A parsed MAIL/RCPT argument: the path and its ESMTP parameters (keys upper-cased). */
export interface PathArgument {
  /** undefined for the null path "<>" (MAIL FROM only); the bare local part for RCPT TO:<postmaster>. */
  readonly address: Address | undefined;
  readonly postmasterOnly: boolean;
  readonly params: ReadonlyMap<string, string | true>;
}

export type AddressFault = 'syntax' | 'too-long' | 'needs-domain';

export class AddressError extends Error {
  constructor(readonly fault: AddressFault, message: string) {
    super(message);
    this.name = 'AddressError';
  }
}

const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10FFFF}]+$/u;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const NON_ASCII = /[^\x00-\x7f]/;

/** Formats an address for the wire and for logs: local@domain, quoting the local part when needed. */
export function formatAddress(a: Address): string {
  const local = a.quoted || !isDotString(a.local) ? `"${a.local.replace(/(["\\])/g, '\\$1')}"` : a.local;
  return `${local}@${a.domain}`;
}

function isDotString(s: string): boolean {
  return s.length > 0 && s.split('.').every((atom) => ATEXT.test(atom));
}

/**
 * Parses "FROM:<path> params" or "TO:<path> params" (the text after the verb).
 * `keyword` is "FROM" or "TO". Tolerates a space after the colon and a path without angle
 * brackets, as Postfix does with strict_rfc821_envelopes=no; never tolerates stray text.
 */
export function parsePathArgument(arg: string, keyword: 'FROM' | 'TO'): PathArgument {
  const m = new RegExp(`^${keyword}:\\s*`, 'i').exec(arg);
  if (!m) throw new AddressError('syntax', `expected ${keyword}:<address>`);
  let rest = arg.slice(m[0].length);
  let pathText: string;
  if (rest.startsWith('<')) {
    const end = findClosingBracket(rest);
    if (end < 0) throw new AddressError('syntax', 'unterminated <address>');
    pathText = rest.slice(1, end);
    rest = rest.slice(end + 1);
  } else {
    const sp = rest.search(/\s/);
    pathText = sp < 0 ? rest : rest.slice(0, sp);
    rest = sp < 0 ? '' : rest.slice(sp);
    if (!pathText) throw new AddressError('syntax', `expected ${keyword}:<address>`);
  }
  if (rest && !/^\s/.test(rest)) throw new AddressError('syntax', 'text after the address');
  const params = parseParams(rest.trim());
  if (pathText === '') {
    if (keyword === 'TO') throw new AddressError('syntax', 'empty recipient');
    return { address: undefined, postmasterOnly: false, params };
  }
  if (keyword === 'TO' && /^postmaster$/i.test(pathText)) {
    return { address: undefined, postmasterOnly: true, params };
  }
  return { address: parseMailboxPath(pathText), postmasterOnly: false, params };
}

// The closing ">" of the path, skipping quoted strings (a quoted local part may contain ">").
function findClosingBracket(s: string): number {
  let inQuote = false;
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (inQuote) {
      if (c === '\\') i++;
      else if (c === '"') inQuote = false;
    } else if (c === '"') inQuote = true;
    else if (c === '>') return i;
    else if (c === '<') return -1;
  }
  return -1;
}

function parseParams(text: string): Map<string, string | true> {
  const params = new Map<string, string | true>();
  if (!text) return params;
  for (const word of text.split(/\s+/)) {
    const eq = word.indexOf('=');
    const key = (eq < 0 ? word : word.slice(0, eq)).toUpperCase();
    if (!/^[A-Z0-9][A-Z0-9-]*$/.test(key)) throw new AddressError('syntax', `bad parameter "${word}"`);
    if (params.has(key)) throw new AddressError('syntax', `duplicate parameter ${key}`);
    params.set(key, eq < 0 ? true : word.slice(eq + 1));
  }
  return params;
}

/** Parses the inside of <...>: optional source route, then local@domain. */
export function parseMailboxPath(path: string): Address {
  if (Buffer.byteLength(path) > 256) throw new AddressError('too-long', 'address longer than 256 octets');
  const sourceRoute: string[] = [];
  let text = path;
  if (text.startsWith('@')) {
    // A-d-l ":" Mailbox — RFC 5321 says the route SHOULD be ignored; we parse it strictly,
    // drop it, and judge the final mailbox alone.
    const colon = text.indexOf(':');
    if (colon < 0) throw new AddressError('syntax', 'source route without ":"');
    for (const hop of text.slice(0, colon).split(',')) {
      if (!hop.startsWith('@')) throw new AddressError('syntax', 'bad source route');
      sourceRoute.push(parseDomain(hop.slice(1)).domain);
    }
    text = text.slice(colon + 1);
  }
  let local: string;
  let quoted = false;
  let domainText: string;
  if (text.startsWith('"')) {
    let i = 1;
    let value = '';
    for (; i < text.length; i++) {
      const c = text[i]!;
      if (c === '\\') {
        const next = text[i + 1];
        if (next === undefined || next < ' ' || next === '\x7f') throw new AddressError('syntax', 'bad quoted-pair');
        value += next;
        i++;
      } else if (c === '"') break;
      else if (c < ' ' || c === '\x7f') throw new AddressError('syntax', 'control character in local part');
      else value += c;
    }
    if (i >= text.length) throw new AddressError('syntax', 'unterminated quoted local part');
    local = value;
    quoted = true;
    const after = text.slice(i + 1);
    if (!after.startsWith('@')) {
      throw new AddressError('needs-domain', 'address has no domain');
    }
    domainText = after.slice(1);
  } else {
    const at = text.lastIndexOf('@');
    if (at < 0) throw new AddressError('needs-domain', 'address has no domain');
    local = text.slice(0, at);
    domainText = text.slice(at + 1);
    if (!isDotString(local)) throw new AddressError('syntax', 'bad local part');
  }
  if (local.length === 0 && !quoted) throw new AddressError('syntax', 'empty local part');
  if (Buffer.byteLength(local) > 64) throw new AddressError('too-long', 'local part longer than 64 octets');
  const d = parseDomain(domainText);
  const utf8 = NON_ASCII.test(local) || d.utf8;
  return { local, domain: d.domain, quoted, literal: d.literal, utf8, sourceRoute, trailingDot: d.trailingDot };
}

interface ParsedDomain { domain: string; literal: boolean; utf8: boolean; trailingDot: boolean }

/** A domain (U-labels allowed, converted to A-labels) or an address literal. */
export function parseDomain(text: string): ParsedDomain {
  if (text.startsWith('[')) {
    if (!text.endsWith(']')) throw new AddressError('syntax', 'bad address literal');
    const inner = text.slice(1, -1);
    if (net.isIPv4(inner) && /^\d+\.\d+\.\d+\.\d+$/.test(inner)) {
      return { domain: `[${inner}]`, literal: true, utf8: false, trailingDot: false };
    }
    const v6 = /^IPv6:(.+)$/i.exec(inner);
    if (v6 && net.isIPv6(v6[1]!)) return { domain: `[IPv6:${v6[1]!.toLowerCase()}]`, literal: true, utf8: false, trailingDot: false };
    throw new AddressError('syntax', 'unsupported address literal');
  }
  let name = text;
  let trailingDot = false;
  if (name.endsWith('.')) {
    name = name.slice(0, -1);
    trailingDot = true;
  }
  if (!name || name.length > 253) throw new AddressError('syntax', 'bad domain');
  const utf8 = NON_ASCII.test(name);
  // Reject before IDNA mapping anything IDNA would silently rewrite into something else
  // ("%", "/", full-width dots...): only letters, digits, hyphen, dot and non-ASCII letters.
  if (!/^[\p{L}\p{N}\p{M}.-]+$/u.test(name)) throw new AddressError('syntax', 'bad domain');
  const ascii = utf8 ? domainToASCII(name) : name.toLowerCase();
  if (!ascii) throw new AddressError('syntax', 'bad internationalised domain');
  const labels = ascii.split('.');
  if (!labels.every((l) => LABEL.test(l))) throw new AddressError('syntax', 'bad domain');
  if (/^\d+$/.test(labels[labels.length - 1]!)) throw new AddressError('syntax', 'numeric top-level label; use an address literal');
  return { domain: ascii, literal: false, utf8, trailingDot };
}
