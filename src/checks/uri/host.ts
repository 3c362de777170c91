// Host names as URI blocklists see them: ASCII (punycode), lower case, no trailing dot, and
// the registrable domain from the Public Suffix List (tldts, ICANN and private sections: the
// private section is what makes evil.blogspot.com its own domain, as SURBL and the Spamhaus
// DBL list it). Plus the script test behind the IDN look-alike heuristic.
import net from 'node:net';
import { domainToASCII, domainToUnicode } from 'node:url';
import { parse } from 'tldts';

export interface HostInfo {
  /** ASCII, lower case, no trailing dot; an IPv6 address without brackets. */
  readonly host: string;
  /** The registrable domain, or the address for an IP. */
  readonly domain: string;
  readonly isIp: boolean;
  /** The top-level suffix is in the list (ICANN or private section), not just the default "*" rule. */
  readonly knownSuffix: boolean;
  /** The label left of the public suffix ("paypal" for www.paypal.co.uk): one organisation across TLDs. */
  readonly orgLabel: string;
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/**
 * Normalises a host (Unicode or ASCII, any case, optional trailing dot or IPv6 brackets) and
 * finds its registrable domain. Undefined for what cannot be an Internet host: empty labels,
 * a leading dot, a single label ("localhost", "intranet"), a bare public suffix ("co.uk").
 */
export function hostInfo(input: string): HostInfo | undefined {
  // Memoised: one message asks for the same host many times (extraction, redirector matching,
  // the URI check, the heuristics), and the Public Suffix lookup is the costly part. The
  // results are frozen, so sharing one object between callers is safe.
  const hit = hostCache.get(input);
  if (hit !== undefined || hostCache.has(input)) return hit;
  const info = computeHostInfo(input);
  if (hostCache.size >= HOST_CACHE_MAX) hostCache.clear();
  hostCache.set(input, info && Object.freeze(info));
  return info;
}

/** Bounded: cleared when full, so a hostile stream of distinct hosts cannot grow it without end. */
const HOST_CACHE_MAX = 10_000;
const hostCache = new Map<string, HostInfo | undefined>();

function computeHostInfo(input: string): HostInfo | undefined {
  let h = input.trim();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (!h || h.length > 253) return undefined;
  if (net.isIP(h)) {
    const ip = h.toLowerCase();
    return { host: ip, domain: ip, isIp: true, knownSuffix: false, orgLabel: ip };
  }
  const ascii = /^[\x21-\x7e]*$/.test(h) ? h.toLowerCase() : domainToASCII(h);
  if (!ascii || ascii.length > 253) return undefined;
  const labels = ascii.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l))) return undefined;
  const p = parse(ascii, { allowPrivateDomains: true, extractHostname: false });
  if (!p.domain) return undefined;
  return { host: ascii, domain: p.domain, isIp: false, knownSuffix: !!(p.isIcann || p.isPrivate), orgLabel: p.domainWithoutSuffix ?? p.domain };
}

/** The registrable domain of a host name (null when it has none), as the PSL test vectors ask. */
export function registrableDomain(host: string | null): string | null {
  if (host === null) return null;
  return hostInfo(host)?.domain ?? null;
}

/** The host and each parent up to and including its registrable domain, most specific first. */
export function hostAndParents(info: HostInfo): string[] {
  if (info.isIp) return [info.host];
  const out = [info.host];
  let h = info.host;
  while (h !== info.domain && h.includes('.')) {
    h = h.slice(h.indexOf('.') + 1);
    out.push(h);
  }
  return out;
}

/** Whether `host` is `domain` or under it. */
export function isAtOrUnder(host: string, domain: string): boolean {
  return host === domain || host.endsWith(`.${domain}`);
}

// Letters from Cyrillic and Greek that render like Latin letters in most fonts, with the letter
// each imitates. A label made only of these (and digits, hyphens) spells a Latin word in a
// foreign script: "аррӏе" for "apple"; the impersonation check reads display names through the
// same table. Deliberately small: the common confusables, not Unicode's whole confusables.txt.
export const LATIN_LOOKALIKES: Readonly<Record<string, string>> = {
  а: 'a', е: 'e', о: 'o', р: 'p', с: 'c', у: 'y', х: 'x', і: 'i', ј: 'j', ѕ: 's', ԁ: 'd', ӏ: 'l', ԛ: 'q', ԝ: 'w', һ: 'h',
  ь: 'b', в: 'b', к: 'k', м: 'm', н: 'h', т: 't',
  А: 'A', В: 'B', Е: 'E', К: 'K', М: 'M', Н: 'H', О: 'O', Р: 'P', С: 'C', Т: 'T', Х: 'X', У: 'Y', І: 'I', Ј: 'J', Ѕ: 'S', Ԍ: 'G',
  α: 'a', ε: 'e', ο: 'o', ρ: 'p', ν: 'v', κ: 'k', τ: 't', υ: 'u', χ: 'x', ι: 'i',
  Α: 'A', Β: 'B', Ε: 'E', Η: 'H', Ι: 'I', Κ: 'K', Μ: 'M', Ν: 'N', Ο: 'O', Ρ: 'P', Τ: 'T', Υ: 'Y', Χ: 'X', Ζ: 'Z',
};
const CONFUSABLE = new Set(Object.keys(LATIN_LOOKALIKES));

/**
 * Why a host looks like another one (an IDN homograph), or undefined: a label mixing Latin
 * letters with Cyrillic or Greek ones, or a label written wholly in look-alike Cyrillic/Greek
 * letters under a TLD that is not in that script (a Russian word under .рф is left alone).
 */
export function lookalikeReason(asciiHost: string): string | undefined {
  if (!asciiHost.includes('xn--')) return undefined;
  const labels = asciiHost.split('.');
  const tld = domainToUnicode(labels[labels.length - 1]!);
  const tldForeign = /[\p{Script=Cyrillic}\p{Script=Greek}]/u.test(tld);
  for (const label of labels.slice(0, -1)) {
    if (!label.startsWith('xn--')) continue;
    const u = domainToUnicode(label);
    if (!u) continue;
    const latin = /\p{Script=Latin}/u.test(u);
    const foreign = [...u].filter((c) => /[\p{Script=Cyrillic}\p{Script=Greek}]/u.test(c));
    if (latin && foreign.length) return `label "${u}" mixes Latin with ${describeScripts(foreign)} letters`;
    const letters = [...u].filter((c) => /\p{L}/u.test(c));
    if (!tldForeign && letters.length && letters.every((c) => CONFUSABLE.has(c))) {
      return `label "${u}" is written in ${describeScripts(letters)} letters that look Latin`;
    }
  }
  return undefined;
}

function describeScripts(chars: string[]): string {
  const s = new Set(chars.map((c) => (/\p{Script=Cyrillic}/u.test(c) ? 'Cyrillic' : 'Greek')));
  return [...s].join('/');
}
