// Message → the set of tokens Bayes counts, in the SpamBayes/SpamAssassin tradition: body words
// as they are (case-folded, plus the original of all-caps words), header facts prefixed by the
// header they came from (a word in the Subject is not the same evidence as one in the body),
// URLs cracked into host and path pieces, HTML and MIME structure as facts. Tokens are
// deduplicated per message (SpamBayes: counting a word once per message works best for
// chi-square combining) and the work is capped: at most `maxBodyChars` of text and `maxTokens`
// distinct tokens per message, so a hostile 20 MB single-line body costs no more than a
// normal long message.
//
// What is left out on purpose: dates and times (Received timestamps, Date) — they teach the
// filter when a corpus was collected, not what spam is; the recipient's own address (every
// message in a mailbox has it); and every field the RECEIVING side adds (RECEIVING_SIDE below:
// upstream filter verdicts, other hosts' Authentication-Results and ARC sets, mailing-list
// fields, our own X-Portcullis-*): they describe the site that collected the mail, not the
// sender, so a model that learned them on one site's mail would not carry over to another's.
import { getDomain } from 'tldts';
import type { ParsedMessage } from '../../mime/text.js';

export interface TokenizeOptions {
  /** Distinct tokens per message at most (header tokens come first). Default 3000. */
  readonly maxTokens?: number;
  /** Characters of body text read at most. Default 200 000. */
  readonly maxBodyChars?: number;
  /** Also emit all-caps words in their original case ("FREE" beside "free"). Default true. */
  readonly capsVariant?: boolean;
  /**
   * The connecting client, at SMTP time: the relay tokens our own Received field will carry
   * in the stored copy, so a message classified at SMTP and later learned from a mailbox gives
   * the same tokens.
   */
  readonly client?: { readonly ip: string; readonly helo?: string };
}

export const MIN_WORD = 3;
export const MAX_WORD = 20;
const MAX_HEADER_CHARS = 2000; // per header value
const MAX_RECEIVED = 8;
const MAX_LINKS = 200;
const MAX_HTML_SCAN = 200_000;

export function tokenize(msg: ParsedMessage, options: TokenizeOptions = {}): string[] {
  const maxTokens = options.maxTokens ?? 3000;
  const out = new Set<string>();
  const add = (t: string): void => {
    if (out.size < maxTokens) out.add(t);
  };
  headerTokens(msg, options.client, add);
  mimeTokens(msg, add);
  // Every text part, both sides of an alternative (SpamBayes does the same): a plain part that
  // says something else than its HTML twin is evidence too; the duplicates fold away.
  const text = joinCapped(msg.parts.map((p) => p.text), options.maxBodyChars ?? 200_000);
  urlTokens(msg, text, add);
  bodyTokens(text, '', options.capsVariant ?? true, add);
  return [...out];
}

type Add = (t: string) => void;

function joinCapped(pieces: readonly string[], max: number): string {
  const out: string[] = [];
  let n = 0;
  for (const p of pieces) {
    if (n >= max) break;
    out.push(p.slice(0, max - n));
    n += p.length + 1;
  }
  return out.join('\n');
}

// Word characters: letters, digits and the marks that make spam words distinct ("$100",
// "50%", "v1agra", "don't"). Everything else separates words.
const SPLIT = /[^\p{L}\p{N}\p{M}$%@'\-_.,!*+&]+/u;
const EDGE = /^[^\p{L}\p{N}$]+|[^\p{L}\p{N}%!]+$/gu;
const NUMBER = /^[$]?[\d.,:\-]+%?$/;
const LETTER = /\p{L}/u;
const UPPER_WORD = /^[\p{Lu}\d$!'\-]+$/u;

/** Body (or header) words; `prefix` marks where they came from ("" for the body). */
export function bodyTokens(text: string, prefix: string, caps: boolean, add: Add): void {
  for (const piece of text.split(SPLIT)) {
    if (!piece) continue;
    const w = piece.replace(EDGE, '');
    if (!w) continue;
    if (/^(https?:|www\.|ftp:)/i.test(w) || w.includes('://')) continue; // cracked by urlTokens
    if (NUMBER.test(w)) {
      add(`${prefix}${numberToken(w)}`);
      continue;
    }
    const at = w.indexOf('@');
    if (at > 0 && at < w.length - 1 && w.indexOf('.', at) > at) {
      const domain = w.slice(at + 1).toLowerCase().replace(/[^a-z0-9.\-]+$/, '');
      add(`${prefix}email:${domain}`);
      const reg = getDomain(domain);
      if (reg && reg !== domain) add(`${prefix}email:${reg}`);
      continue;
    }
    const len = w.length;
    if (len < MIN_WORD) continue;
    if (len > MAX_WORD) {
      // SpamBayes: the fact of a long run and its rough size carries signal, its letters don't.
      add(`${prefix}skip:${w[0]!.toLowerCase()} ${Math.floor(len / 10) * 10}`);
      continue;
    }
    const lower = w.toLowerCase();
    add(prefix + lower);
    if (caps && lower !== w && len >= 4 && UPPER_WORD.test(w) && LETTER.test(w)) add(prefix + w);
    // "free!!!" also counts as "free": the word is the evidence, the bangs are more of it.
    if (/[!.*'\-_]$/.test(lower) || /^[$'\-_]/.test(lower)) {
      const core = lower.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
      if (core.length >= MIN_WORD && core !== lower) add(prefix + core);
    }
  }
}

/** Numbers say little by value; their shape (money, percent, digit count) says more. */
function numberToken(w: string): string {
  const digits = w.replace(/\D/g, '').length;
  const kind = w.startsWith('$') ? 'money' : w.endsWith('%') ? 'pct' : /\d[.,]\d/.test(w) ? 'dec' : 'num';
  return `${kind}:${digits > 6 ? '7+' : digits}`;
}

function headerTokens(msg: ParsedMessage, client: TokenizeOptions['client'], add: Add): void {
  const h = (name: string): string[] => msg.header(name).map((v) => v.slice(0, MAX_HEADER_CHARS));
  // Subject words, prefixed: SpamBayes found them much stronger kept apart from the body's.
  const subject = msg.subject.slice(0, MAX_HEADER_CHARS);
  if (!subject.trim()) add('subject:none');
  bodyTokens(subject, 'subject:', true, add);
  if (/[!?]{2,}/.test(subject)) add('subject:punct-run');
  const letters = subject.replace(/[^\p{L}]/gu, '');
  if (letters.length >= 6 && letters === letters.toUpperCase() && letters !== letters.toLowerCase()) add('subject:all-caps');
  if (/\s{3,}\S+$|\s{10,}/.test(subject)) add('subject:padding');

  for (const [name, values] of [['from', h('from')], ['reply-to', h('reply-to')], ['sender', h('sender')], ['return-path', h('return-path')]] as const) {
    if (!values.length) {
      if (name === 'from' || name === 'reply-to') add(`${name}:none`);
      continue;
    }
    for (const v of values.slice(0, 2)) addressTokens(name, v, add);
  }
  const fromAddr = addresses(h('from')[0] ?? '')[0];
  const replyAddr = addresses(h('reply-to')[0] ?? '')[0];
  if (fromAddr && replyAddr && domainOf(fromAddr) !== domainOf(replyAddr)) add('reply-to:other-domain');

  for (const name of ['to', 'cc'] as const) {
    const values = h(name);
    const n = values.reduce((acc, v) => acc + addresses(v).length, 0);
    add(`${name}:count:${bucket(n, [0, 1, 2, 3, 5, 10, 20])}`);
    if (values.some((v) => /undisclosed|recipient list suppressed/i.test(v))) add(`${name}:undisclosed`);
    if (values.some((v) => /<[^>]*>/.test(v) && /[^\s<]+\s*</.test(v))) add(`${name}:has-name`);
  }

  // Our own Received field (in copies learned from a mailbox) stands for the SMTP client.
  const received = msg.rawHeader('received');
  const ours = received.findIndex((v) => OUR_RECEIVED.test(v));
  const relay = client ?? (ours >= 0 ? ourClient(received[ours]!) : undefined);
  if (relay) clientTokens(relay, add);
  receivedTokens(received.filter((v) => !OUR_RECEIVED.test(v)).slice(0, MAX_RECEIVED), add);

  const mid = h('message-id')[0];
  if (mid === undefined) add('message-id:none');
  else {
    const m = /@([^>\s]+)>?\s*$/.exec(mid);
    if (!m) add('message-id:no-domain');
    else hostTokens('message-id', m[1]!.toLowerCase(), add);
    const local = /<?([^@>]*)@?/.exec(mid)?.[1] ?? '';
    add(`message-id:shape:${shape(local)}`);
  }

  add(`mua:${muaFamily(h('x-mailer')[0] ?? h('user-agent')[0] ?? '', mid ?? '')}`);
  for (const name of ['x-mailer', 'user-agent'] as const) {
    for (const v of h(name).slice(0, 1)) {
      // The program and its major version; build numbers split hairs between identical mailers.
      add(`${name}:${v.toLowerCase().replace(/\s+/g, ' ').replace(/(\d+)(\.\d+)+/g, '$1').slice(0, 60)}`);
      bodyTokens(v, `${name}:`, false, add);
    }
  }
  if (!h('x-mailer').length && !h('user-agent').length) add('x-mailer:none');

  // Which fields are present (their values aside): list software, gateways and bulk mailers
  // each leave their own set. Capped: a forged header can hold a thousand fields.
  const seen = new Set<string>();
  for (const f of msg.headers) {
    if (seen.size >= 60) break;
    if (seen.has(f.key) || RECEIVING_SIDE.test(f.key)) continue;
    seen.add(f.key);
    add(`header:${f.key.slice(0, 40)}`);
  }
  if (!h('date').length) add('date:none');
  else {
    const tz = /([+-]\d{4})\s*(\(.*\))?\s*$/.exec(h('date')[0]!)?.[1];
    if (tz && (Number(tz.slice(1, 3)) > 14 || Number(tz.slice(3)) >= 60)) add('date:bad-zone');
    else if (!tz) add('date:no-numeric-zone');
  }
  if (h('mime-version').length === 0) add('mime-version:none');
  for (const v of h('x-priority').slice(0, 1)) add(`x-priority:${v.trim().slice(0, 1)}`);
  for (const v of h('importance').slice(0, 1)) add(`importance:${v.trim().toLowerCase().slice(0, 10)}`);
  // A bulk sender's own unsubscribe link (no List-Post: not a discussion list's fields), and the
  // RFC 8058 one-click form that big senders must now carry: the sender's, not the list server's.
  if (h('list-unsubscribe').length && !h('list-post').length) {
    add('bulk:unsubscribe');
    if (h('list-unsubscribe-post').length) add('bulk:one-click');
  }
  // Precedence: bulk / junk is the sender's; "list" is what a list server sets.
  for (const v of h('precedence').slice(0, 1)) if (!/^\s*list\b/i.test(v)) add(`precedence:${v.trim().toLowerCase().slice(0, 10)}`);
}

/**
 * The mail program's family from X-Mailer / User-Agent and the Message-ID's form: what wrote the
 * message, without versions (a Thunderbird 115 and a 128 are the same evidence).
 */
function muaFamily(agent: string, mid: string): string {
  const a = agent.toLowerCase();
  const m = mid.toLowerCase();
  const known: [RegExp, string][] = [
    [/outlook|microsoft (office|windows live)|exchange/, 'outlook'], [/thunderbird|icedove|seamonkey/, 'thunderbird'],
    [/apple mail|iphone mail|ipad mail|^ios\b/, 'apple'], [/git-send-email/, 'git'], [/mutt|neomutt/, 'mutt'], [/evolution/, 'evolution'],
    [/roundcube/, 'roundcube'], [/squirrelmail/, 'squirrelmail'], [/kmail|trojita/, 'kde'], [/gnus|emacs/, 'emacs'], [/claws|sylpheed/, 'claws'],
    [/phpmailer/, 'phpmailer'], [/mailchimp|mandrill/, 'mailchimp'], [/sendgrid/, 'sendgrid'], [/zimbra/, 'zimbra'], [/android|k-9|aquamail/, 'android'],
    [/the bat|becky|eudora|pegasus|foxmail|mailbird|em client/, 'desktop-other'],
  ];
  for (const [re, family] of known) if (re.test(a)) return family;
  if (a) return 'other';
  // No agent field: some senders still show in the Message-ID's form.
  if (/@mail\.gmail\.com>?$/.test(m)) return 'gmail';
  if (/@(\w+\.)?(outlook|prod\.outlook|exchange)\.(com|net)>?$|\.prod\.outlook\.com>?$/.test(m)) return 'outlook-web';
  if (/amazonses\.com>?$/.test(m)) return 'amazonses';
  if (/sendgrid|sparkpost|mailgun|mcsv\.net|mailchimp/.test(m)) return 'bulk-service';
  return 'none';
}

const ADDRESS = /[^\s<>"(),;:]+@[^\s<>"(),;:]+/g;

function addresses(v: string): string[] {
  return (v.match(ADDRESS) ?? []).slice(0, 100).map((a) => a.toLowerCase().replace(/\.$/, ''));
}

function domainOf(addr: string): string {
  const d = addr.slice(addr.lastIndexOf('@') + 1);
  return getDomain(d) ?? d;
}

function addressTokens(name: string, v: string, add: Add): void {
  const addrs = addresses(v);
  if (!addrs.length) add(`${name}:no-address`);
  for (const a of addrs.slice(0, 3)) {
    add(`${name}:addr:${a.slice(0, 80)}`);
    const at = a.lastIndexOf('@');
    const local = a.slice(0, at);
    add(`${name}:local-shape:${shape(local)}`);
    hostTokens(name, a.slice(at + 1), add);
  }
  // Display-name words: "Customer Service", a person's name, or none at all.
  const display = v.replace(/<[^>]*>/g, ' ').replace(ADDRESS, ' ').replace(/["()]/g, ' ').trim();
  if (!display) add(`${name}:no-name`);
  else bodyTokens(display, `${name}:name:`, false, add);
}

/** A host's name and its registrable domain, or the /24 and /16 of an address literal. */
function hostTokens(name: string, host: string, add: Add): void {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '').slice(0, 100);
  if (/^\d+\.\d+\.\d+\.\d+$/.test(h)) {
    const p = h.split('.');
    add(`${name}:ip:${p[0]}.${p[1]}.${p[2]}`);
    add(`${name}:ip:${p[0]}.${p[1]}`);
    return;
  }
  add(`${name}:host:${h}`);
  const reg = getDomain(h, { allowPrivateDomains: true });
  if (reg && reg !== h) add(`${name}:domain:${reg}`);
  if (!h.includes('.')) add(`${name}:host-no-dot`);
}

// What the receiving side adds to a delivered copy — the gateway itself, an upstream filter, the
// mailbox host, a mailing list — counted neither at SMTP nor when learned: a model that leaned on
// them would learn the collecting site (docs/bayes.md, "What is ignored"). Received fields are
// read apart (receivedTokens), for the sending side's hosts only.
const RECEIVING_SIDE = new RegExp('^(' + [
  'x-spam(-.*)?', 'x-virus-.*', 'x-crm114-.*', 'x-amavis-.*', 'x-bogosity', 'x-ham-report', 'x-barracuda-.*', 'x-proofpoint-.*', 'x-mimecast-.*',
  'x-forefront-antispam-report', 'x-microsoft-antispam(-.*)?', 'x-ms-exchange-organization-.*', 'x-portcullis-.*',
  'precedence', // its value is read apart: "bulk" is the sender's, "list" the list server's
  'authentication-results', 'x-original-authentication-results', 'arc-.*', 'received-spf', 'received',
  'delivered-to', 'x-original-to', 'x-delivered-to', 'envelope-to', 'x-envelope-to', 'return-path',
  'list-.*', 'x-mailing-list', 'mailing-list', 'x-mailman-.*', 'x-beenthere', 'errors-to', 'x-loop', 'x-original-sender', 'x-google-group-id',
  'x-spam-checked-in-group', 'x-original-recipient', 'x-groupsio-.*', 'x-list-.*', 'x-ml-.*', 'archived-at', 'x-archived-at',
  'message-id-hash', 'x-message-id-hash', 'x-mailfrom', 'x-headers-end', 'x-content-filtered-by',
].join('|') + ')$');
const OUR_RECEIVED = /\(Portcullis\) with /;

function ourClient(v: string): { ip: string; helo?: string } | undefined {
  const m = /^\s*from\s+(\S+)\s+\([^)]*\[(?:IPv6:)?([^\]]+)\]/i.exec(v);
  return m ? { ip: m[2]!, helo: m[1] } : undefined;
}

function clientTokens(c: { ip: string; helo?: string }, add: Add): void {
  const helo = (c.helo ?? '').toLowerCase();
  if (!helo) add('received:helo-none');
  else if (helo.startsWith('[') || /^\d+\.\d+\.\d+\.\d+$/.test(helo)) add('received:helo-literal');
  else hostTokens('received', helo, add);
  if (c.ip.includes(':')) add(`received:ip6:${c.ip.toLowerCase().split(':').slice(0, 3).join(':')}`);
  else hostTokens('received', c.ip, add);
}

/**
 * The relays a message passed: HELO names, reverse names and address prefixes from "from"
 * clauses (the sender side; "by" is our own side and the same for every message). Never the
 * timestamps.
 */
function receivedTokens(values: string[], add: Add): void {
  add(`received:count:${bucket(values.length, [0, 1, 2, 3, 4, 5, 6, 8])}`);
  for (const raw of values) {
    const v = raw.slice(0, MAX_HEADER_CHARS);
    const from = /\bfrom\s+(\S+)(?:\s+\(([^)]*)\))?/i.exec(v);
    if (!from) continue;
    const helo = from[1]!.toLowerCase();
    if (helo.startsWith('[') || /^\d+\.\d+\.\d+\.\d+$/.test(helo)) add('received:helo-literal');
    else hostTokens('received', helo, add);
    const paren = from[2] ?? '';
    for (const name of paren.match(/[a-z0-9][a-z0-9\-]*(\.[a-z0-9\-]+)+/gi) ?? []) {
      if (!/^\d+(\.\d+)+$/.test(name)) hostTokens('received', name, add);
    }
    for (const ip of v.match(/\[(\d+\.\d+\.\d+\.\d+)\]/g) ?? []) hostTokens('received', ip, add);
    if (/unknown|may be forged/i.test(paren)) add('received:rdns-unknown');
  }
}

function mimeTokens(msg: ParsedMessage, add: Add): void {
  const ct = (msg.header('content-type')[0] ?? '').toLowerCase();
  const type = /^\s*([a-z0-9\-]+\/[a-z0-9.+\-]+)/.exec(ct)?.[1] ?? (ct ? 'invalid' : 'none');
  add(`ct:${type}`);
  const charset = /charset\s*=\s*"?([^";\s]+)/.exec(ct)?.[1];
  if (charset) add(`ct:charset:${charset.slice(0, 30)}`);
  const cte = (msg.header('content-transfer-encoding')[0] ?? '').trim().toLowerCase();
  if (cte) add(`cte:${cte.slice(0, 20)}`);
  // The multipart skeleton (which multipart kinds nest here): mail programs and bulk tools each
  // build their own, and it survives a change of site.
  const kinds = new Set<string>();
  const MULTI = /^content-type:\s*multipart\/([a-z0-9-]+)/gim;
  if (type.startsWith('multipart/')) {
    const full = msg.full.slice(0, MAX_HTML_SCAN); // the top header's type is among them
    for (let m = MULTI.exec(full); m && kinds.size < 6; m = MULTI.exec(full)) kinds.add(m[1]!.toLowerCase().slice(0, 20));
    add(`mime:multipart:${[...kinds].sort().join(',')}`);
  }
  // Each part's charset; its type is in the outline below (a token per part type would say
  // "this is HTML" a second time, and correlated tokens make chi-square overconfident).
  for (const p of msg.parts.slice(0, 20)) if (p.charset) add(`part:charset:${p.charset.slice(0, 30)}`);
  // The outline: how many text parts of each kind and whether the HTML stands alone.
  const plain = msg.parts.filter((p) => p.type !== 'text/html').length;
  const html = msg.html.parts;
  add(`mime:text:${bucket(plain, [0, 1, 2])}:html:${bucket(html, [0, 1, 2])}:attach:${bucket(msg.attachments.length, [0, 1, 2])}`);
  if (html) {
    // Images against text as one fact: "many images, little text" is the evidence, and two
    // tokens would count the HTML twice.
    const textChars = msg.parts.reduce((n, p) => n + (p.type === 'text/html' ? p.text.length : 0), 0);
    add(`html:images:${bucket(msg.html.images, [0, 1, 2, 5, 10])}:text:${bucket(textChars, [0, 50, 200, 1000, 5000])}`);
    if (msg.html.invisibleChars > 0) add(`html:invisible:${bucket(msg.html.invisibleChars, [1, 20, 200, 2000])}`);
    htmlTagTokens(msg, add);
  }
  for (const a of msg.attachments.slice(0, 20)) {
    add(`attach:type:${a.contentType.slice(0, 60)}`);
    const ext = /\.([a-z0-9]{1,8})$/i.exec(a.filename)?.[1];
    if (ext) add(`attach:ext:${ext.toLowerCase()}`);
    if (a.filename) bodyTokens(a.filename.replace(/\.[^.]*$/, ''), 'attach:name:', false, add);
    add(`attach:size:${bucket(a.size, [0, 1000, 10_000, 100_000, 1_000_000])}`);
  }
  add(`size:${bucket(msg.size, [0, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 1_000_000])}`);
}

// Tags that mark bulk-mail HTML (font soup, layout tables, forms, scripts) apart from plain
// HTML mail. One summary token, not one per tag: tag tokens all say "this is HTML" at once, and
// chi-square combining treats them as independent evidence, which pushed HTML newsletters
// (hard ham) to spam in cross-validation (docs/bayes.md).
const NOTABLE_TAGS = ['font', 'table', 'img', 'center', 'form', 'script', 'iframe', 'style', 'map', 'input', 'b', 'blink', 'marquee'];

/** The notable tags present, as one token ("html:tags:b,font,table"), and HTML comments. */
function htmlTagTokens(msg: ParsedMessage, add: Add): void {
  let budget = MAX_HTML_SCAN;
  const seen = new Set<string>();
  let comment = false;
  for (const p of msg.parts) {
    if (p.type !== 'text/html' || budget <= 0) continue;
    const src = p.raw.slice(0, budget);
    budget -= src.length;
    const re = /<([a-z][a-z0-9]{0,15})\b/gi;
    for (let m = re.exec(src); m && seen.size < NOTABLE_TAGS.length; m = re.exec(src)) {
      const tag = m[1]!.toLowerCase();
      if (NOTABLE_TAGS.includes(tag)) seen.add(tag);
    }
    comment ||= src.includes('<!--');
  }
  add(`html:tags:${[...seen].sort().join(',') || 'none'}${comment ? ':comment' : ''}`);
}

const URL_IN_TEXT = /\b(?:https?:\/\/|www\.)[^\s<>"'()]{1,500}/gi;

/** Every link (HTML and plain text) cracked into scheme, host, domain and path pieces. */
function urlTokens(msg: ParsedMessage, text: string, add: Add): void {
  const urls: string[] = [];
  for (const l of msg.links) {
    if (urls.length >= MAX_LINKS) break;
    if (l.attr === 'href' || l.attr === 'src' || l.attr === 'action') urls.push(l.url);
  }
  URL_IN_TEXT.lastIndex = 0;
  for (let m = URL_IN_TEXT.exec(text); m && urls.length < MAX_LINKS * 2; m = URL_IN_TEXT.exec(text)) urls.push(m[0]);
  URL_IN_TEXT.lastIndex = 0;
  let n = 0;
  for (const u of urls) {
    const url = u.trim();
    if (/^mailto:/i.test(url)) {
      add('url:mailto');
      const at = url.indexOf('@');
      if (at > 0) hostTokens('url:mailto', url.slice(at + 1).replace(/[?#].*$/, ''), add);
      continue;
    }
    if (/^(cid|#|javascript):?/i.test(url) || !url) continue;
    n++;
    const m = /^(?:([a-z][a-z0-9+.\-]*):)?\/\/([^/?#\s]*)([^?#\s]*)(\?[^#\s]*)?/i.exec(/^www\./i.test(url) ? `http://${url}` : url);
    if (!m) {
      add('url:relative');
      continue;
    }
    add(`url:scheme:${(m[1] ?? 'none').toLowerCase()}`);
    let host = m[2]!.toLowerCase();
    if (host.includes('@')) {
      add('url:userinfo'); // http://paypal.com@evil.example/ — a classic disguise
      host = host.slice(host.lastIndexOf('@') + 1);
    }
    if (/:\d+$/.test(host)) {
      add('url:port');
      host = host.replace(/:\d+$/, '');
    }
    if (/^\d+$|^0x[0-9a-f]+$/i.test(host)) add('url:numeric-host');
    else if (/%[0-9a-f]{2}/i.test(host)) add('url:escaped-host');
    else hostTokens('url', host, add);
    for (const piece of (m[3] ?? '').split(/[/.\-_=&]+/).slice(0, 10)) {
      if (piece.length >= MIN_WORD && piece.length <= MAX_WORD) add(`url:path:${piece.toLowerCase()}`);
      else if (piece.length > MAX_WORD) add(`url:path:skip ${Math.floor(piece.length / 10) * 10}`);
    }
    if (m[4]) add('url:query');
  }
  add(`url:count:${bucket(n, [0, 1, 2, 3, 5, 10, 20])}`);
}

/** "7 → '5-9'": the range of `n` among ascending boundaries. */
function bucket(n: number, bounds: readonly number[]): string {
  for (let i = bounds.length - 1; i >= 0; i--) {
    if (n >= bounds[i]!) return i === bounds.length - 1 ? `${bounds[i]}+` : n === bounds[i] && bounds[i + 1] === bounds[i]! + 1 ? String(n) : `${bounds[i]}-${bounds[i + 1]! - 1}`;
  }
  return `<${bounds[0]}`;
}

/** A string's shape: letters → a, digits → 9, runs collapsed ("ab12x" → "a9a"), capped. */
function shape(s: string): string {
  return s.slice(0, 40).replace(/\p{L}+/gu, 'a').replace(/\d+/g, '9').replace(/[^a9]+/g, '.').slice(0, 12);
}
