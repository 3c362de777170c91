// Impersonation: who the From field claims to be against the address it comes from. Phishing
// and "reward survey" spam of 2022–2026 rarely forge our domain outright (DMARC stops that);
// they put a brand in the display name over a throwaway domain ("BIueCross Ins. PoIicy"
// <x@multiplybkk.com>), write a trusted address into the display name, or register a
// domain one letter away from the real one. Each finding is a symbol with the evidence in its
// reason; the weights are in conf/scores.yaml and the policy decides (docs/phishing.md).
//
// Deliberately conservative where ham lives: a domain whose labels contain the brand's name is
// taken as the brand's own (brands mail from email-marriott.com and the like through their
// ESPs), brands that are also common words or first names count only when the display name is
// the brand alone, and mail from our own domains is left to the sender-ownership check.
import { getDomain, getDomainWithoutSuffix } from 'tldts';
import type { Check, SymbolHit } from '../types.js';
import type { ParsedMessage } from '../../mime/text.js';
import { isAtOrUnder, LATIN_LOOKALIKES } from '../uri/host.js';
import { BUILTIN_BRANDS, type Brand } from './brands.js';

export interface ImpersonationOptions {
  /** Our domains (config.domains and relay domains): impersonated too, and never flagged as senders. */
  readonly ownDomains: readonly string[];
  /** Brands beyond the built-in list (phishing.brands). */
  readonly brands?: readonly Brand[];
  /** Use the built-in brand list (phishing.builtin_brands). */
  readonly builtinBrands?: boolean;
}

/** Words a display name wraps around a brand: "PayPal Security Team" is still just PayPal. */
const SERVICE_WORDS = new Set([
  'support', 'team', 'service', 'services', 'customer', 'customers', 'care', 'account', 'accounts', 'security', 'secure', 'alert', 'alerts',
  'notification', 'notifications', 'notice', 'online', 'bank', 'banking', 'billing', 'rewards', 'reward', 'member', 'members', 'membership',
  'survey', 'surveys', 'feedback', 'department', 'dept', 'center', 'centre', 'help', 'helpdesk', 'desk', 'info', 'update', 'updates',
  'delivery', 'deliveries', 'shipping', 'order', 'orders', 'pay', 'payment', 'payments', 'official', 'inc', 'llc', 'ltd', 'co', 'corp',
  'no-reply', 'noreply', 'mail', 'email', 'verification', 'verify', 'id', 'express', 'store', 'shop', 'club', 'insurance', 'us', 'usa',
  'uk', 'the', 'from', 'your', 'and', '&', 'prize', 'gift', 'winner', 'promotions', 'promo', 'deals', 'offers', 'offer', 'program',
]);

/** Digits and letter pairs that stand in for letters in look-alike names ("paypa1", "rnicrosoft"). */
const LOOKALIKE_SUBSTITUTIONS: readonly [RegExp, string][] = [
  [/0/g, 'o'], [/1/g, 'l'], [/3/g, 'e'], [/5/g, 's'], [/rn/g, 'm'], [/vv/g, 'w'], [/-/g, ''],
];

/**
 * Shared sending domains of e-mail service providers: a brand that mails with one of these in
 * From ("QuickBooks" <x@sendgrid.net>) is unusual but real, and the domain says nothing about
 * who the customer is, so such a From is neither the brand's nor evidence against it.
 */
const ESP_DOMAINS = new Set([
  'sendgrid.net', 'sparkpostmail.com', 'mailgun.org', 'mailgun.net', 'amazonses.com', 'mcsv.net', 'mcdlv.net', 'rsgsv.net',
  'mandrillapp.com', 'mailchimpapp.net', 'exacttarget.com', 'hubspotemail.net', 'constantcontact.com', 'ccsend.com', 'sendinblue.com',
  'brevo.com', 'klaviyomail.com', 'createsend.com', 'cmail19.com', 'cmail20.com', 'postmarkapp.com', 'mailjet.com', 'emarsys.net',
  'bazaarvoice.com', 'bazaarvoice-cgc.com', 'salesforce.com', 'marketo.org', 'mktomail.com', 'pardot.com', 'netsuite.com',
]);

const MAX_NAME = 200;
const MAX_LINKS = 100;
/** Link hosts remembered with their verdict (cleared when full: a bound, not an LRU). */
const HOST_CACHE = 5000;

interface CompiledBrand {
  /** Display-name forms as word lists. */
  readonly names: readonly (readonly string[])[];
  /** Names without spaces or punctuation, for run-together display names and domain labels. */
  readonly compact: readonly string[];
  readonly domains: readonly string[];
  readonly strict: boolean;
  readonly label: string;
}

/** The brands arranged for lookup by a display name's words (built once per check). */
interface BrandIndex {
  /** Non-strict names by their first word. */
  readonly byFirst: ReadonlyMap<string, readonly { readonly brand: CompiledBrand; readonly words: readonly string[] }[]>;
  /** Strict names, their words joined by spaces. */
  readonly strict: ReadonlyMap<string, CompiledBrand>;
  /** Non-strict names of 6 letters or more, run together ("bluecross"). */
  readonly compact: readonly { readonly text: string; readonly brand: CompiledBrand }[];
  /** Names in a script written without spaces (Japanese, Chinese, Korean): found anywhere. */
  readonly unspaced: readonly { readonly text: string; readonly brand: CompiledBrand }[];
}

/** Scripts written without spaces between words: a brand's name there has no word boundary. */
const UNSPACED = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;

function indexBrands(brands: readonly CompiledBrand[]): BrandIndex {
  const byFirst = new Map<string, { brand: CompiledBrand; words: readonly string[] }[]>();
  const strict = new Map<string, CompiledBrand>();
  const compact: { text: string; brand: CompiledBrand }[] = [];
  const unspaced: { text: string; brand: CompiledBrand }[] = [];
  for (const brand of brands) {
    for (const words of brand.names) {
      if (!words.length) continue;
      if (words.some((w) => UNSPACED.test(w))) {
        unspaced.push({ text: words.join(' '), brand });
        continue;
      }
      if (brand.strict) {
        if (!strict.has(words.join(' '))) strict.set(words.join(' '), brand);
        continue;
      }
      const list = byFirst.get(words[0]!) ?? [];
      list.push({ brand, words });
      byFirst.set(words[0]!, list);
    }
    if (!brand.strict) for (const text of brand.compact) if (text.length >= 6 && !UNSPACED.test(text)) compact.push({ text, brand });
  }
  return { byFirst, strict, compact, unspaced };
}

export function impersonationCheck(options: ImpersonationOptions): Check<'data'> {
  const own = options.ownDomains.map((d) => d.toLowerCase().replace(/\.$/, ''));
  const brands = compileBrands([...(options.builtinBrands === false ? [] : BUILTIN_BRANDS), ...(options.brands ?? [])]);
  // Labels a look-alike domain imitates: our domains' and the brands' own, five letters or more
  // (shorter ones are one letter away from too many real names), and the brands' names that
  // are not common words ("targets" or "mortons" is one letter from a brand and no imitation).
  const targets = lookalikeTargets(own, brands);
  const index = indexBrands(brands);
  const cache = new Map<string, { reg: string; imitated?: string }>();
  return {
    name: 'impersonation',
    stage: 'data',
    async run({ message, envelope }) {
      const msg = await message.content();
      const hits = findImpersonation(msg, own, index, targets, cache);
      const recipient = recipientInLink(msg, envelope?.recipients ?? []);
      if (recipient) hits.push({ name: 'LINK_RECIPIENT_FRAGMENT', reason: recipient });
      return { symbols: hits };
    },
  };
}

/** The From and link findings for one message. */
function findImpersonation(
  msg: ParsedMessage, own: readonly string[], brands: BrandIndex, targets: ReadonlyMap<string, string>,
  cache?: Map<string, { reg: string; imitated?: string }>,
): SymbolHit[] {
  const hits: SymbolHit[] = [];
  const from = parseFrom(msg.header('from')[0] ?? '');
  if (!from) return hits;
  const fromReg = getDomain(from.domain) ?? from.domain;
  if (own.some((d) => isAtOrUnder(from.domain, d))) return hits;

  const name = from.name.normalize('NFKC').slice(0, MAX_NAME);
  if (name) {
    const plain = brandIn(name, brands);
    const unmasked = plain ?? brandIn(unmask(name), brands);
    if (unmasked && !ownedBy(unmasked, from.domain, fromReg) && !ESP_DOMAINS.has(fromReg)) {
      hits.push({ name: 'FROM_BRAND_MISMATCH', reason: `From names ${unmasked.label} ("${short(name)}") but the address is at ${fromReg}` });
    }
    if (!plain && unmasked) hits.push({ name: 'FROM_NAME_HOMOGLYPH', reason: `display name "${short(name)}" spells ${unmasked.label} with look-alike characters` });
    const ours = own.find((d) => name.toLowerCase().includes(d));
    if (ours) hits.push({ name: 'FROM_NAME_OUR_DOMAIN', reason: `display name "${short(name)}" names our domain ${ours}; the address is at ${fromReg}` });
    const shown = /[^\s<>"'(),;:]+@([a-z0-9.-]+\.[a-z]{2,})/i.exec(name);
    if (shown) {
      const shownReg = getDomain(shown[1]!.toLowerCase()) ?? shown[1]!.toLowerCase();
      if (shownReg !== fromReg && !ESP_DOMAINS.has(fromReg)) hits.push({ name: 'FROM_NAME_ADDRESS_DIFF', reason: `display name shows ${shown[0]}, the mail is from ${from.address}` });
    }
  }

  const fromLook = lookalike(fromReg, targets);
  if (fromLook) hits.push({ name: 'FROM_LOOKALIKE_DOMAIN', reason: `From domain ${fromReg} imitates ${fromLook}` });
  // Distinct hosts first: a newsletter's fifty links are mostly five hosts, and naming a host's
  // registrable domain is the costly step (memoised across messages in `cache`).
  const hosts = new Set<string>();
  for (const link of msg.links.slice(0, MAX_LINKS)) {
    const host = hostOf(link.url);
    if (host) hosts.add(host);
  }
  for (const host of hosts) {
    // Remembered whatever this message's From: a link to the sender's own domain is no
    // imitation of it, but the same host in another sender's mail may be.
    let known = cache?.get(host);
    if (!known) {
      const reg = getDomain(host) ?? '';
      known = { reg, imitated: reg ? lookalike(reg, targets) : undefined };
      if (cache) {
        if (cache.size >= HOST_CACHE) cache.clear();
        cache.set(host, known);
      }
    }
    if (known.imitated && known.reg !== fromReg) {
      hits.push({ name: 'LINK_LOOKALIKE_DOMAIN', reason: `a link goes to ${known.reg}, which imitates ${known.imitated}` });
      break;
    }
  }
  return hits;
}

/**
 * A link that carries the recipient's address after "#", plainly, URL-encoded or in base64:
 * phishing kits read it there to fill in the victim's login ("…/o365/#alice@example.org"), and
 * the fragment never reaches a web server's logs. Query strings and paths are left alone:
 * newsletters put the address in their unsubscribe and preference links.
 */
export function recipientInLink(msg: ParsedMessage, envelopeRecipients: readonly string[]): string | undefined {
  const to = msg.header('to').join(',').match(/[^\s<>"(),;:]+@[^\s<>"(),;:]+/g) ?? [];
  const recipients = [...new Set([...envelopeRecipients, ...to].map((a) => a.toLowerCase()))].filter((a) => a.length >= 6).slice(0, 20);
  if (!recipients.length) return undefined;
  const forms = recipients.flatMap((a) => [a, encodeURIComponent(a), Buffer.from(a).toString('base64').replace(/=+$/, '')].map((f) => f.toLowerCase()));
  for (const link of msg.links.slice(0, MAX_LINKS)) {
    const url = link.url.trim();
    const hash = url.indexOf('#');
    if (hash < 0 || !/^https?:\/\//i.test(url)) continue;
    const fragment = url.slice(hash + 1).toLowerCase();
    if (forms.some((f) => fragment.includes(f))) return `a link to ${hostOf(url) ?? 'a site'} carries the recipient's address after #`;
  }
  return undefined;
}

export function compileBrands(list: readonly Brand[]): CompiledBrand[] {
  return list.map((b) => {
    const names = b.names.map((n) => words(n.toLowerCase()));
    return {
      names,
      compact: b.names.map(compactOf).filter((c) => c.length >= 3),
      domains: (b.domains ?? []).map((d) => d.toLowerCase()),
      strict: b.strict ?? false,
      label: b.names[0]!,
    };
  });
}

function words(s: string): string[] {
  return s.split(/[^\p{L}\p{N}&'+-]+/u).map((w) => w.replace(/^['-]+|['-]+$/g, '')).filter(Boolean);
}

function compactOf(s: string): string {
  return s.toLowerCase().replace(/[^\p{L}\p{N}]/gu, '');
}

/**
 * The part of a display name that says who sends: "Amazon Benefits at Fidelity" is Fidelity,
 * "Jane Doe (Google)" is Jane Doe (an affiliation, as list mail writes it), while "Support
 * (PayPal)" is still PayPal, because nothing but service words stands outside the brackets.
 */
function sender(name: string): string {
  const at = /\s(?:at|via|from|on behalf of)\s+(.+)$/i.exec(name);
  let s = at ? at[1]! : name;
  const outside = s.replace(/\([^)]*\)|\[[^\]]*\]/g, ' ');
  if (outside !== s && words(outside.toLowerCase()).some((w) => !SERVICE_WORDS.has(w))) s = outside;
  return s;
}

/** The brand a display name names, if any. */
function brandIn(display: string, index: BrandIndex): CompiledBrand | undefined {
  const name = sender(display);
  const lower = name.toLowerCase();
  const w = words(lower);
  if (!w.length) return undefined;
  // As written, then with hyphenated words taken apart ("DHL-Post Office" names DHL; a name
  // written with its hyphen, "T-Mobile", is found in the first pass).
  const split = w.flatMap((x) => (x.includes('-') ? x.split('-').filter(Boolean) : [x]));
  for (const list of split.length === w.length ? [w] : [w, split]) {
    // Only "Chase" or "Chase Online Banking", never "Chase Miller".
    const strict = index.strict.get(list.filter((x) => !SERVICE_WORDS.has(x)).join(' '));
    if (strict) return strict;
    for (let i = 0; i < list.length; i++) {
      for (const n of index.byFirst.get(list[i]!) ?? []) if (containsRun(list.slice(i), n.words)) return n.brand;
    }
  }
  if (UNSPACED.test(lower)) for (const u of index.unspaced) if (lower.includes(u.text)) return u.brand;
  // Run-together names ("BlueCrossInsPolicy", "WellsFargoAlerts"): a long name inside one
  // longer word, so that a short brand is not found inside an unrelated word.
  for (const x of w) {
    if (x.length <= 6) continue;
    for (const c of index.compact) if (x.length > c.text.length && x.includes(c.text)) return c.brand;
  }
  return undefined;
}

function containsRun(w: readonly string[], n: readonly string[]): boolean {
  outer: for (let i = 0; i + n.length <= w.length; i++) {
    for (let j = 0; j < n.length; j++) if (w[i + j] !== n[j]) continue outer;
    return true;
  }
  return false;
}

/**
 * The display name with its look-alike characters read as the letters they imitate: Cyrillic
 * and Greek look-alikes as Latin, a capital I inside a lower-case run as l ("BIueCross",
 * "PoIicy"), digits inside words as the letters they stand for ("Amaz0n", "PayPa1").
 */
export function unmask(name: string): string {
  let s = [...name].map((c) => LATIN_LOOKALIKES[c] ?? c).join('');
  s = s.replace(/(?<=\p{L})I(?=\p{Ll})|(?<=\p{Ll})I(?=\p{Lu}|\b)/gu, 'l');
  s = s.replace(/(?<=\p{L})[01](?=\p{L})|(?<=\p{L}{2})[01]\b/gu, (d) => (d === '0' ? 'o' : 'l'));
  return s;
}

/** Whether the From domain is the brand's: listed, under a listed one, or named after it. */
function ownedBy(b: CompiledBrand, domain: string, reg: string): boolean {
  if (b.domains.some((d) => isAtOrUnder(domain, d))) return true;
  const label = compactOf(getDomainWithoutSuffix(reg) ?? reg);
  return b.compact.some((c) => label.includes(c));
}

/**
 * The labels a look-alike domain imitates, as impersonationCheck builds them (the QR inspector,
 * qr.ts, judges the links in QR codes by them): our domains' and the brands' own, five letters or
 * more, and the names of brands that are not common words.
 */
export function lookalikeTargets(own: readonly string[], brands: readonly CompiledBrand[]): Map<string, string> {
  const targets = new Map<string, string>();
  for (const d of [...own, ...brands.flatMap((b) => b.domains)]) {
    const label = getDomainWithoutSuffix(d);
    if (label && label.length >= 5) targets.set(label, getDomain(d) ?? d);
  }
  for (const b of brands) {
    if (b.strict) continue;
    for (const c of b.compact) if (c.length >= 5 && !targets.has(c)) targets.set(c, b.label);
  }
  return targets;
}

/** The domain a registrable domain imitates (one edit away, or equal once look-alikes are read), or undefined. */
export function lookalike(reg: string, targets: ReadonlyMap<string, string>): string | undefined {
  const label = getDomainWithoutSuffix(reg);
  if (!label || label.length < 4) return undefined;
  if (targets.has(label)) return undefined; // the same name under another suffix: paypal.co.uk is PayPal's
  let unmasked = label;
  for (const [re, to] of LOOKALIKE_SUBSTITUTIONS) unmasked = unmasked.replace(re, to);
  if (unmasked !== label && targets.has(unmasked)) return targets.get(unmasked);
  if (label.length < 6) return undefined;
  for (const [t, domain] of targets) {
    if (t.length >= 6 && Math.abs(t.length - label.length) <= 1 && editDistanceAtMostOne(label, t)) return domain;
  }
  return undefined;
}

/** Damerau–Levenshtein distance ≤ 1 (one insertion, deletion, substitution or swap), in linear time. */
export function editDistanceAtMostOne(a: string, b: string): boolean {
  if (a === b) return false;
  if (a.length > b.length) [a, b] = [b, a];
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  if (a.length === b.length) {
    if (a.slice(i + 1) === b.slice(i + 1)) return true; // substitution
    return a[i] === b[i + 1] && a[i + 1] === b[i] && a.slice(i + 2) === b.slice(i + 2); // swap
  }
  return b.length === a.length + 1 && a.slice(i) === b.slice(i + 1); // insertion
}

function parseFrom(v: string): { name: string; address: string; domain: string } | undefined {
  const angle = /<\s*([^<>\s]+@[^<>\s]+)\s*>/.exec(v);
  const address = (angle?.[1] ?? /[^\s<>"(),;:]+@[^\s<>"(),;:]+/.exec(v)?.[0] ?? '').toLowerCase().replace(/\.$/, '');
  const at = address.lastIndexOf('@');
  if (at < 1) return undefined;
  const domain = address.slice(at + 1).replace(/^\[|\]$/g, '');
  const name = angle ? v.slice(0, angle.index).replace(/^\s*"|"\s*$/g, '').replace(/\\(.)/g, '$1').trim() : '';
  return { name, address, domain };
}

function hostOf(url: string): string | undefined {
  const m = /^(?:https?:)?\/\/(?:[^/?#@]*@)?([^/?#:]+)/i.exec(url.trim());
  return m?.[1]?.toLowerCase().replace(/\.$/, '');
}

function short(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
