// The URIs of a message, as SpamAssassin's get_uri_detail_list finds them: the links of the
// HTML parts (resolved against <base href>) and the URLs, www. forms, bare host names and
// e-mail addresses in the rendered text — each unwrapped from the tricks spammers use to hide
// a host from filters that browsers still follow.
//
// Normalisation is the WHATWG URL parser (node:url), the one browsers use, so a host is read
// the way the reader's browser will read it: hex, octal and integer IPv4 forms become dotted
// quads, percent-encoded and full-width host characters are decoded, IDN becomes punycode,
// backslashes are slashes, user-info is split off. What the parser undid is recorded in
// `flags` for the heuristics. The text scanner is ours: no library finds schemeless hosts the
// way SpamAssassin does (known TLD, ThunderBird's delimiters and trailing punctuation).
import type { ParsedMessage } from '../../mime/text.js';
import { hostInfo, type HostInfo } from './host.js';
import { BUILTIN_REDIRECTORS, redirectTargets, type Redirector } from './redirectors.js';

export type UriFlag =
  /** Host written as a dotted-quad or IPv6 literal. */
  | 'ip'
  /** Host written as an integer, hex or octal IPv4 form (http://3232235777/, http://0xC0.0250.1.1/). */
  | 'encoded-ip'
  /** user-info before the host (http://paypal.com@evil.example/). */
  | 'userinfo'
  /** Percent-encoded characters in the host. */
  | 'percent-host'
  /** HTML character references in the URL text (&#46; for "."). */
  | 'entity-encoded'
  /** hxxp://, [.], (.), [dot]: written so that it is not a link. */
  | 'defanged'
  /** Backslashes where slashes belong (http:\\evil.example\). */
  | 'backslash'
  /** A host with non-ASCII or punycode labels. */
  | 'idn'
  /** Found as the target of a redirector (see `via`). */
  | 'redirect-target'
  /** Written without a scheme (www.example.com, example.com/path, an e-mail address). */
  | 'schemeless'
  /** A bare host name MUAs do not turn into a link: only worth a blocklist lookup (SA "unlinked"). */
  | 'unlinked';

export interface ExtractedUri {
  /** Normalised absolute URL (WHATWG serialisation; mailto:address for e-mail addresses). */
  readonly url: string;
  /** ASCII (punycode), lower case, no trailing dot. */
  readonly host: string;
  /** Registrable domain (Public Suffix List, ICANN and private sections), or the IP. */
  readonly domain: string;
  readonly isIp: boolean;
  readonly source: 'html' | 'text';
  /** Anchor text of an HTML link. */
  readonly linkText?: string;
  /** HTML tag the URL came from ('a', 'img', 'form'…). */
  readonly tag?: string;
  /** The URL as written in the message. */
  readonly raw: string;
  /** An e-mail address (mailto: link or address in the text): `host` is the address's domain. */
  readonly email?: boolean;
  readonly flags: readonly UriFlag[];
  /** The redirector URL this one was unwrapped from. */
  readonly via?: string;
}

export interface ExtractOptions {
  /** Most URIs returned (links before text). Default 1000. */
  readonly maxUris?: number;
  /** Most characters of rendered text scanned. Default 256 Ki. */
  readonly maxTextChars?: number;
  /** Redirectors besides the built-in ones. */
  readonly redirectors?: readonly Redirector[];
}

/** SpamAssassin's MAX_URI_LENGTH: longer URLs are cut before parsing. */
export const MAX_URI_LENGTH = 8192;
const DEFAULT_MAX_URIS = 1000;
const DEFAULT_MAX_TEXT = 256 * 1024;
const MAX_REDIRECT_DEPTH = 3;

// Bare "name.ext" words whose extension is also a TLD: in mail they are far more often file
// names than hosts. A bare host with one of these TLDs and no path is not taken.
const FILE_TLDS = new Set(['zip', 'mov', 'md', 'py', 'rs', 'sh', 'pl', 'pm', 'ps', 'so', 'cc', 'cs', 'in', 'ac', 'am', 'ml', 'sc', 'mk', 'do', 'bz', 'gz', 'exe', 'doc', 'pdf', 'txt', 'jpg', 'gif', 'png', 'htm', 'html', 'js', 'ts', 'java', 'c', 'h', 'php', 'asp', 'cfg', 'ini', 'log', 'dat', 'tmp', 'bak', 'csv']);

// Text scanning. Delimiters after ThunderBird (and SpamAssassin's _tbirdurire): a URL runs to
// whitespace, <, >, " or a backquote; the defanged dots "[.]" "(.)" "[dot]" count as dots.
const DOT = String.raw`(?:\.|\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\))`;
const LABEL = String.raw`[\p{L}\p{N}](?:[\p{L}\p{N}_-]{0,61}[\p{L}\p{N}])?`;
const TLD = String.raw`(?:[\p{L}]{2,63}|xn--[a-z0-9-]{1,59})`;
const TAIL = String.raw`[^\s<>"\x60\u00a0]*`;
const TEXT_URI = new RegExp(
  [
    // 1: a URL with a scheme (hxxp is the defanged http)
    String.raw`(?<![\p{L}\p{N}_.-])((?:https?|hxxps?|hXXps?|ftp):[/\\]{0,3}[^\s<>"\x60\u00a0]+)`,
    // 2: mailto: or an address
    String.raw`(?<![\p{L}\p{N}_.+-])((?:mailto:)?[\p{L}\p{N}._%+!#$&'*=?^{|}~-]{1,64}@(?:${LABEL}${DOT})+${TLD})(?![\p{L}\p{N}_-])`,
    // 3: www. and ftp. forms
    String.raw`(?<![\p{L}\p{N}_.@/-])((?:www\d{0,3}|ftp)${DOT}${TAIL})`,
    // 4: a bare host name, optionally with a port and path
    String.raw`(?<![\p{L}\p{N}_.@/:-])((?:${LABEL}${DOT})+${TLD})(?![\p{L}\p{N}_@-])((?:[:/?#]${TAIL})?)`,
  ].join('|'),
  'giu',
);

interface Candidate {
  readonly raw: string;
  readonly source: 'html' | 'text';
  readonly tag?: string;
  readonly linkText?: string;
  /** Flags known before parsing (schemeless, unlinked). */
  readonly flags: UriFlag[];
  readonly base?: string;
  /** An e-mail address found in text. */
  readonly email?: boolean;
}

/**
 * Every URI of the message, HTML links first (then text), deduplicated by normalised URL,
 * redirect targets beside their redirector. Bounded by `maxUris` and `maxTextChars`; never throws.
 */
export function extractUris(msg: ParsedMessage, options: ExtractOptions = {}): ExtractedUri[] {
  // The rules' uri targets and the URI check ask for the same message: extract once.
  const key = JSON.stringify([options.maxUris, options.maxTextChars, options.redirectors]);
  let byOptions = extracted.get(msg);
  if (!byOptions) extracted.set(msg, (byOptions = new Map()));
  let list = byOptions.get(key);
  if (!list) byOptions.set(key, (list = extract(msg, options)));
  return list;
}

const extracted = new WeakMap<ParsedMessage, Map<string, ExtractedUri[]>>();

function extract(msg: ParsedMessage, options: ExtractOptions): ExtractedUri[] {
  const max = options.maxUris ?? DEFAULT_MAX_URIS;
  const redirectors = [...BUILTIN_REDIRECTORS, ...(options.redirectors ?? [])];
  const out: ExtractedUri[] = [];
  const seen = new Map<string, number>();
  const add = (c: Candidate, depth = 0, via?: string) => {
    if (out.length >= max) return;
    const found = normalise(c);
    if (!found) return;
    const key = found.url;
    const at = seen.get(key);
    if (at !== undefined) {
      const prev = out[at]!;
      if (!prev.linkText && c.linkText) out[at] = { ...prev, linkText: c.linkText };
      return;
    }
    const uri: ExtractedUri = { ...found, ...(via ? { via, flags: [...found.flags, 'redirect-target'] } : {}) };
    seen.set(key, out.length);
    out.push(uri);
    if (found.parsed && depth < MAX_REDIRECT_DEPTH) {
      for (const t of redirectTargets(found.parsed, redirectors)) {
        add({ raw: t, source: c.source, tag: c.tag, linkText: c.linkText, flags: [] }, depth + 1, found.url);
      }
    }
  };

  // <base href> resolves relative links, as the reader's mail client does.
  const baseLink = msg.links.find((l) => l.tag === 'base' && /^https?:/i.test(l.url.trim()));
  const base = baseLink?.url.trim();
  for (const link of msg.links) {
    if (out.length >= max) break;
    add({ raw: link.url, source: 'html', tag: link.tag, linkText: link.text || undefined, flags: [], base });
  }

  // The rendered body (HTML preferred in alternatives, as SpamAssassin's "body"), then the
  // plain-text parts that body left out: a link hidden in the plain alternative still counts.
  let budget = options.maxTextChars ?? DEFAULT_MAX_TEXT;
  const texts = [msg.bodyText, ...msg.parts.filter((p) => p.type === 'text/plain' && !msg.bodyText.includes(p.text)).map((p) => p.text)];
  for (const t of texts) {
    if (budget <= 0 || out.length >= max) break;
    const text = t.length > budget ? t.slice(0, budget) : t;
    budget -= text.length;
    for (const c of scanText(text)) {
      if (out.length >= max) break;
      add(c);
    }
  }
  return out;
}

/** The e-mail domains among the URIs (mailto: links and addresses in the text), deduplicated. */
export function emailDomains(list: readonly ExtractedUri[]): string[] {
  return [...new Set(list.filter((u) => u.email).map((u) => u.domain))];
}

/** URI candidates in rendered text, SpamAssassin's way (trailing punctuation trimmed, bare hosts need a known TLD). */
export function* scanText(text: string): Generator<Candidate> {
  // The big Unicode regex costs at every position of the text, and most of a message is
  // prose. No match holds whitespace, and whitespace satisfies every look-around the regex has
  // at a match's edges as the text's ends do; every match holds ".", ":", "@" or a "[dot]"
  // form. So the regex runs only on the whitespace-delimited words holding one of those, with
  // the same matches, in the same order, as on the whole text.
  const trigger = /[.:@]|dot/gi;
  let t: RegExpExecArray | null;
  while ((t = trigger.exec(text))) {
    let start = t.index;
    while (start > 0 && !isSpace(text.charCodeAt(start - 1))) start--;
    let end = trigger.lastIndex;
    while (end < text.length && !isSpace(text.charCodeAt(end))) end++;
    yield* scanWord(start === 0 && end === text.length ? text : text.slice(start, end));
    trigger.lastIndex = end;
  }
}

/** JavaScript's \s (what the regex's [^\s…] and look-arounds treat as a boundary). */
function isSpace(c: number): boolean {
  if (c < 0x80) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

function* scanWord(text: string): Generator<Candidate> {
  TEXT_URI.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = TEXT_URI.exec(text))) {
    if (m[1]) yield { raw: trimTrailing(m[1]), source: 'text', flags: [] };
    else if (m[2]) yield { raw: m[2], source: 'text', flags: [], email: true };
    else if (m[3]) yield { raw: trimTrailing(m[3]), source: 'text', flags: ['schemeless'] };
    else if (m[4]) {
      const host = m[4];
      const path = trimTrailing(m[5] ?? '');
      const labels = host.split(/\.|\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)/i);
      const tld = labels[labels.length - 1]!;
      // "Next.Live" at a missing sentence space: a capitalised TLD is prose, not a host.
      if (/^\p{Lu}\p{Ll}+$/u.test(tld)) continue;
      if (labels.length === 2 && !path && FILE_TLDS.has(tld.toLowerCase())) continue;
      // Version numbers and the like: the TLD must hold a letter (the regex ensures) and the
      // host must be known to the Public Suffix List; checked in normalise() via `unlinked`.
      yield { raw: host + path, source: 'text', flags: ['schemeless', 'unlinked'] };
    }
  }
}

/** ThunderBird's end rules: ")" without "(" ends the URL; trailing punctuation is not part of it. */
function trimTrailing(s: string): string {
  let r = s;
  const close = r.indexOf(')');
  if (close >= 0 && !r.slice(0, close).includes('(')) r = r.slice(0, close);
  return r.replace(/[-~!@#^&*()_+=:;'?,.\]\[{}|]+$/, (tail) => (tail.endsWith(']') && r.includes('[') && !/\[\.?\]$/.test(tail) ? tail : ''));
}

const HTML_REF = /&(?:#(\d{1,7})|#x([0-9a-f]{1,6})|(amp|lt|gt|quot|apos|period|sol|colon));?/gi;
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", period: '.', sol: '/', colon: ':' };

function decodeRefs(s: string): string {
  return s.replace(HTML_REF, (all, dec: string | undefined, hex: string | undefined, name: string | undefined) => {
    if (name) return NAMED[name.toLowerCase()] ?? all;
    const cp = dec !== undefined ? Number(dec) : parseInt(hex!, 16);
    return cp > 0 && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff) ? String.fromCodePoint(cp) : all;
  });
}

interface Normalised extends Omit<ExtractedUri, 'via'> {
  /** The parsed URL (web URIs), for redirector unwrapping. */
  readonly parsed?: URL;
}

/** Parses one candidate into a URI, or undefined when it has no Internet host we can use. */
function normalise(c: Candidate): Normalised | undefined {
  const flags = new Set<UriFlag>(c.flags);
  let s = c.raw.replace(/[\r\n\t]/g, '').trim();
  if (s.length > MAX_URI_LENGTH) s = s.slice(0, MAX_URI_LENGTH);
  if (s.length <= 1) return undefined;

  const decoded = decodeRefs(s);
  if (decoded !== s) flags.add('entity-encoded');
  s = decoded;

  if (c.email || /^mailto:/i.test(s)) return emailUri(s, c, flags);

  // Browsers drop tabs, newlines and leading controls in a scheme ("java\tscript:"); those
  // links are the heuristics' business, not hosts.
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(s)?.[1]?.toLowerCase();
  if (scheme === 'hxxp' || scheme === 'hxxps') {
    s = `http${scheme.endsWith('s') ? 's' : ''}${s.slice(scheme.length)}`;
    flags.add('defanged');
  }
  const undefanged = s.replace(/\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)/gi, '.');
  if (undefanged !== s) flags.add('defanged');
  s = undefanged;

  let absolute: string;
  const sch = /^([a-z][a-z0-9+.-]*):/i.exec(s)?.[1]?.toLowerCase();
  if (sch === 'http' || sch === 'https' || sch === 'ftp') absolute = s;
  else if (sch !== undefined && !/^[a-z0-9.-]+:\d/i.test(s)) return undefined; // javascript:, data:, cid:, news:…
  else if (/^[/\\]{2}/.test(s)) absolute = `http:${s}`;
  else if (c.source === 'html' && c.base) {
    // Relative to <base href>, as the reader's client resolves it.
    if (/^[#?]/.test(s)) return undefined;
    try {
      absolute = new URL(s, c.base).href;
    } catch {
      return undefined;
    }
  } else if (looksLikeHost(s)) {
    absolute = `${/^ftp\./i.test(s) ? 'ftp' : 'http'}://${s}`;
    flags.add('schemeless');
  } else return undefined;

  const authority = /^[a-z]+:[/\\]*([^/\\?#]*)/i.exec(absolute)?.[1] ?? '';
  if (/^[a-z]+:\/{0,2}\\|^[a-z]+:[/\\]*[^/\\?#]*\\/i.test(absolute)) flags.add('backslash');

  let url: URL;
  try {
    url = new URL(absolute);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:' && url.protocol !== 'ftp:') return undefined;
  const info = hostInfo(url.hostname);
  if (!info) return undefined;
  // A bare word that merely looks like a host counts only with a TLD the PSL knows.
  if ((flags.has('schemeless') || flags.has('defanged')) && !info.isIp && !info.knownSuffix) return undefined;
  if (flags.has('unlinked') && info.isIp) return undefined;

  const rawHost = authority.replace(/^.*@/, '').replace(/:\d*$/, '');
  if (url.username || url.password) flags.add('userinfo');
  if (rawHost.includes('%')) flags.add('percent-host');
  if (info.isIp) flags.add(/^(\d{1,3}\.){3}\d{1,3}$/.test(rawHost) || rawHost.startsWith('[') ? 'ip' : 'encoded-ip');
  if (/[^\x00-\x7f]/.test(rawHost) || info.host.split('.').some((l) => l.startsWith('xn--'))) flags.add('idn');

  return {
    url: url.href, host: info.host, domain: info.domain, isIp: info.isIp, source: c.source,
    ...(c.linkText ? { linkText: c.linkText } : {}), ...(c.tag ? { tag: c.tag } : {}),
    raw: c.raw, flags: [...flags], parsed: url,
  };
}

function emailUri(s: string, c: Candidate, flags: Set<UriFlag>): Normalised | undefined {
  let addr = s.replace(/^mailto:/i, '');
  if (/%[0-9a-f]{2}/i.test(addr)) {
    try {
      addr = decodeURIComponent(addr);
    } catch {
      // Broken escapes: take the address as written.
    }
  }
  addr = addr.replace(/[?&].*$/, '').replace(/^.*</, '').replace(/>.*$/, '').trim();
  const at = addr.lastIndexOf('@');
  if (at <= 0) return undefined;
  const domainText = addr.slice(at + 1).replace(/\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)/gi, '.');
  const info: HostInfo | undefined = hostInfo(domainText);
  if (!info || info.isIp || !info.knownSuffix) return undefined;
  if (!/^mailto:/i.test(c.raw)) flags.add('schemeless');
  const local = addr.slice(0, at);
  return {
    url: `mailto:${local}@${info.host}`, host: info.host, domain: info.domain, isIp: false, source: c.source,
    ...(c.linkText ? { linkText: c.linkText } : {}), ...(c.tag ? { tag: c.tag } : {}),
    raw: c.raw, email: true, flags: [...flags],
  };
}

/** "www.x.y/…", "x.y/…", "1.2.3.4/…": a host first, as SpamAssassin adds http:// to. */
function looksLikeHost(s: string): boolean {
  const host = /^([^/\\?#:@]+)/.exec(s)?.[1] ?? '';
  return host.includes('.') && /^[\p{L}\p{N}._-]+$/u.test(host) && !/\.(?:html?|php|aspx?|jsp|cgi|gif|jpe?g|png)$/i.test(host);
}

/**
 * The strings SpamAssassin `uri` rules are matched against, for these URIs (its "cleaned"
 * list): each URI as written, the http:// form of a schemeless one, the written form with
 * %-escapes and character references decoded and backslashes as slashes, the normalised URL,
 * and the normalised URL without user-info. Deduplicated, each cut at MAX_URI_LENGTH.
 */
export function uriStrings(list: readonly ExtractedUri[]): string[] {
  const out = new Set<string>();
  const add = (s: string) => {
    if (s) out.add(s.length > MAX_URI_LENGTH ? s.slice(0, MAX_URI_LENGTH) : s);
  };
  for (const u of list) {
    const raw = u.raw.trim();
    if (u.email) {
      add(/^mailto:/i.test(raw) ? raw : `mailto:${raw}`);
      add(u.url);
      continue;
    }
    add(raw);
    if (u.flags.includes('schemeless') && !/^[a-z][a-z0-9+.-]*:/i.test(raw)) add(`${/^ftp\./i.test(raw) ? 'ftp' : 'http'}://${raw.replace(/^[/\\]+/, '')}`);
    let cooked = decodeRefs(raw).replace(/\\/g, '/');
    if (/%[0-9a-f]{2}/i.test(cooked)) {
      try {
        cooked = decodeURI(cooked.replace(/%(2[3456bcfBCF]|3[abdfABDF]|40)/g, (e) => String.fromCharCode(parseInt(e.slice(1), 16))));
      } catch {
        cooked = cooked.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
      }
    }
    cooked = cooked.replace(/^(https?:)\/{0,2}/i, '$1//');
    add(cooked);
    add(u.url);
    if (u.flags.includes('userinfo')) {
      try {
        const x = new URL(u.url);
        x.username = '';
        x.password = '';
        add(x.href);
      } catch {
        // u.url came from the URL parser; it parses again.
      }
    }
  }
  return [...out];
}
