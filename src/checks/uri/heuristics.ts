// Phishing and obfuscation heuristics over the links of a message. Each finding is a symbol;
// weights are in conf/scores.yaml. Every symbol fires at most once per message, its reason
// naming the first few offending hosts.
import type { ParsedMessage } from '../../mime/text.js';
import type { SymbolHit } from '../types.js';
import type { ExtractedUri } from './extract.js';
import { scanText } from './extract.js';
import { hostInfo, isAtOrUnder, lookalikeReason, type HostInfo } from './host.js';

/** Well-known URL shorteners (SpamAssassin's url_shortener list, the most used part of it). */
export const BUILTIN_SHORTENERS: readonly string[] = [
  'bit.ly', 'bitly.com', 'tinyurl.com', 't.co', 'goo.gl', 'ow.ly', 'is.gd', 'buff.ly', 'rebrand.ly', 'cutt.ly',
  'shorturl.at', 'tiny.cc', 'rb.gy', 't.ly', 's.id', 'bl.ink', 'v.gd', 'soo.gd', 'shorte.st', 'adf.ly', 'clck.ru',
  'qr.ae', 'lnkd.in', 'trib.al', 'x.co', 'u.to', 'urlz.fr', 'short.gy', 'page.link', 'tiny.one', 'shorturl.com',
];

// Click-tracking hosts of e-mail service providers: a newsletter's anchor text shows the
// advertiser's URL while the href goes through the ESP's tracker. Not a phish.
const TRACKERS: readonly string[] = [
  'list-manage.com', 'mailchimp.com', 'mcsv.net', 'rs6.net', 'sendgrid.net', 'mandrillapp.com', 'exacttarget.com',
  'mailgun.org', 'sparkpostmail.com', 'hubspotlinks.com', 'hs-sites.com', 'createsend1.com', 'cmail19.com', 'cmail20.com',
  'awstrack.me', 'mkt.com', 'constantcontact.com', 'campaign-archive.com', 'klaviyo.com', 'click.icptrack.com',
];

export interface HeuristicsInput {
  readonly msg: ParsedMessage;
  readonly uris: readonly ExtractedUri[];
  /** Hosts that never count (allow lists, own domains, skip list). */
  readonly exempt: (info: HostInfo) => boolean;
  readonly shorteners: readonly string[];
}

const MAX_NAMED = 3;

function once(name: string, items: string[], what: string): SymbolHit[] {
  if (!items.length) return [];
  const uniq = [...new Set(items)];
  const more = uniq.length > MAX_NAMED ? ` (and ${uniq.length - MAX_NAMED} more)` : '';
  return [{ name, reason: `${what}: ${uniq.slice(0, MAX_NAMED).join(', ')}${more}` }];
}

/** All heuristic symbols for a message. */
export function uriHeuristics(input: HeuristicsInput): SymbolHit[] {
  const { msg, uris, exempt } = input;
  const web = uris.filter((u) => !u.email);
  const counts = (u: ExtractedUri) => {
    const info = hostInfo(u.host);
    return !!info && !exempt(info);
  };
  const linked = web.filter((u) => !u.flags.includes('unlinked') && counts(u));
  const hits: SymbolHit[] = [];

  hits.push(...once('PHISH_LINK_MISMATCH', linkMismatches(msg, web, exempt), 'link text shows one domain, the link goes to another'));
  hits.push(...once('URI_NUMERIC_IP', linked.filter((u) => u.flags.includes('ip') && !u.flags.includes('redirect-target') && isPublicIp(u.host)).map((u) => u.host), 'link to a bare IP address'));
  hits.push(...once('URI_OBFUSCATED_IP', linked.filter((u) => u.flags.includes('encoded-ip')).map((u) => `${hostOf(u.raw)} = ${u.host}`), 'IP address written as an integer, hex or octal'));
  hits.push(...once('URI_USERINFO_TRICK', linked.filter((u) => u.flags.includes('userinfo') && /^https?:/.test(u.url)).map((u) => `${userOf(u.url)}@ goes to ${u.host}`), 'user name before the host disguises it'));
  hits.push(...once('URI_IDN_LOOKALIKE', linked.map((u) => {
    const why = lookalikeReason(u.host);
    return why ? `${u.host} (${why})` : '';
  }).filter(Boolean), 'host imitates another in look-alike letters'));
  const shorteners = [...new Set([...BUILTIN_SHORTENERS, ...input.shorteners])];
  hits.push(...once('URI_SHORTENER', linked.filter((u) => shorteners.some((s) => isAtOrUnder(u.host, s))).map((u) => u.host), 'URL shortener hides the destination'));
  hits.push(...once('HTML_FORM_FOREIGN', formForeign(msg, web, exempt), 'form asking for a password or card posts to another domain than the sender\'s'));
  const scripted = scriptLinks(msg);
  hits.push(...once('URI_JAVASCRIPT_LINK', scripted.js, 'link runs script'));
  hits.push(...once('URI_DATA_LINK', scripted.data, 'link opens an embedded data: document'));
  return hits;
}

/**
 * Anchors whose text shows a URL or host name while the href's registrable domain differs.
 * Not a mismatch: "click here" (no host in the text), the same organisation under another TLD
 * (paypal.co.uk / paypal.com), an href that redirects to the shown domain, a tracker of an
 * e-mail service provider, an exempt (allowed, own, skipped) href host.
 */
export function linkMismatches(msg: ParsedMessage, web: readonly ExtractedUri[], exempt: (info: HostInfo) => boolean): string[] {
  const out: string[] = [];
  for (const link of msg.links) {
    if (link.tag !== 'a' || !link.text || !/[.]/.test(link.text)) continue;
    const hrefUri = web.find((u) => u.source === 'html' && u.tag === 'a' && u.raw === link.url && !u.via);
    if (!hrefUri) continue;
    const href = hostInfo(hrefUri.host);
    if (!href || exempt(href) || TRACKERS.some((t) => isAtOrUnder(href.host, t))) continue;
    const targets = web.filter((u) => u.via === hrefUri.url).map((u) => hostInfo(u.host)).filter((x): x is HostInfo => !!x);
    for (const c of scanText(link.text.slice(0, 500))) {
      if (c.email) continue;
      // Shown as an address, not named as a brand: "Walmart.com" or "ODP.NET" in a newsletter's
      // link text is a name; "www.paypal.com", "https://…" and lower-case hosts are addresses.
      if (!/^[a-z]+:/i.test(c.raw) && !/^www\d*\./i.test(c.raw) && /[A-Z]/.test(c.raw)) continue;
      const shown = shownHost(c.raw);
      if (!shown || shown.isIp !== href.isIp && shown.isIp) continue;
      const same = (h: HostInfo) => h.domain === shown.domain || (!h.isIp && !shown.isIp && h.orgLabel === shown.orgLabel);
      if (same(href) || targets.some(same)) continue;
      out.push(`"${link.text.slice(0, 60)}" → ${href.host}`);
      break;
    }
  }
  return out;
}

function shownHost(raw: string): HostInfo | undefined {
  const s = raw.replace(/^hxxp/i, 'http').replace(/\[\.\]|\(\.\)/g, '.');
  try {
    const u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `http://${s}`);
    const info = hostInfo(u.hostname);
    return info && (info.isIp || info.knownSuffix) ? info : undefined;
  } catch {
    return undefined;
  }
}

// A form that asks for credentials or card data. Newsletters of 2002-era ham carry search and
// subscribe forms by the dozen; what phishing adds is a password or card field.
const CREDENTIAL_INPUT = /<input\b[^>]{0,300}?(?:type\s*=\s*["']?password|name\s*=\s*["']?[\w-]{0,20}(?:pass|pwd|pin\b|card|cvv|cvc|ssn|account))/i;

/** Credential forms posting to a registrable domain other than the From: domain's. */
function formForeign(msg: ParsedMessage, web: readonly ExtractedUri[], exempt: (info: HostInfo) => boolean): string[] {
  const forms = web.filter((u) => u.tag === 'form' && !u.via);
  if (!forms.length || !CREDENTIAL_INPUT.test(msg.rawBody.slice(0, 1 << 20))) return [];
  const from = /@([^\s>@]+)>?\s*$/.exec(msg.header('from')[0] ?? '')?.[1];
  const fromDomain = from ? hostInfo(from)?.domain : undefined;
  return forms.filter((u) => {
    const info = hostInfo(u.host);
    return !!info && !exempt(info) && info.domain !== fromDomain;
  }).map((u) => u.host);
}

/** javascript:/vbscript: and data: URLs in links (not in images, where data: is ordinary). */
function scriptLinks(msg: ParsedMessage): { js: string[]; data: string[] } {
  const js: string[] = [];
  const data: string[] = [];
  for (const l of msg.links) {
    if (!['a', 'area', 'form', 'iframe', 'frame', 'embed'].includes(l.tag)) continue;
    // Browsers ignore tabs, newlines and leading spaces/controls: "java&#9;script:" runs.
    const u = l.url.replace(/[\x00-\x20]+/g, '').toLowerCase();
    if (/^(?:java|vb)script:/.test(u)) js.push(`<${l.tag}> ${u.slice(0, 40)}`);
    else if (u.startsWith('data:')) data.push(`<${l.tag}> ${u.slice(0, 40)}`);
  }
  return { js, data };
}

function isPublicIp(ip: string): boolean {
  return !/^(?:10\.|127\.|192\.168\.|172\.(?:1[6-9]|2\d|3[01])\.|169\.254\.|0\.|::1$|f[cd]|fe80:)/i.test(ip);
}

function hostOf(raw: string): string {
  return /^[a-z]+:[/\\]*(?:[^@/\\?#]*@)?([^/\\?#:]*)/i.exec(raw)?.[1] ?? raw;
}

function userOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).username);
  } catch {
    return '?';
  }
}
