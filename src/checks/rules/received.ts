// The Received trust path, as SpamAssassin's Message/Metadata/Received.pm computes it: each
// Received field parsed into a relay (ip, rdns, helo, by, ident, envfrom, id, auth), relays
// walked from the top (our side) down, trusted while each hop is in trusted_networks (or, with
// none configured, while it has a private address or authenticated), internal likewise; the
// four lists as the pseudo-headers X-Spam-Relays-Trusted/-Untrusted/-Internal/-External that
// stock rules match, in SpamAssassin's "[ ip=… rdns=… helo=… … ]" form.
//
// The parser follows Received.pm's order of MTA formats for the common ones (Exim, Postfix,
// sendmail, qmail, Exchange, CommuniGate, Gmail-style); a line none of them reads is skipped,
// as SpamAssassin skips an unparseable one (it then counts for neither list).
import { NetworkSet } from '../../net/cidr.js';

export interface Relay {
  ip: string;
  rdns: string;
  helo: string;
  by: string;
  ident: string;
  envfrom: string;
  id: string;
  auth: string;
  internal: boolean;
  msa: boolean;
  privateIp: boolean;
}

export interface TrustPath {
  readonly trusted: readonly Relay[];
  readonly untrusted: readonly Relay[];
  readonly internal: readonly Relay[];
  readonly external: readonly Relay[];
  /** Received fields that no format read (SpamAssassin's num_relays_unparseable). */
  readonly unparseable: number;
}

/** Networks as SpamAssassin's trusted_networks / internal_networks (empty: inferred). */
export interface TrustConfig {
  readonly trusted?: readonly string[];
  readonly internal?: readonly string[];
}

const V4 = String.raw`(?:1\d\d|2[0-4]\d|25[0-5]|[1-9]\d|\d)\.(?:1\d\d|2[0-4]\d|25[0-5]|[1-9]\d|\d)\.(?:1\d\d|2[0-4]\d|25[0-5]|[1-9]\d|\d)\.(?:1\d\d|2[0-4]\d|25[0-5]|[1-9]\d|\d)`;
const V6 = String.raw`(?:IPv6:|(?<![a-fA-F0-9:]))(?:[a-fA-F0-9]{0,4}:){2,7}(?:[a-fA-F0-9]{1,4}|${V4})?(?![a-fA-F0-9:])`;
const IP = `(?:\\b(?<!:)${V4}\\b|${V6})`;

const PRIVATE_V4 = /^(?:10|127|169\.254|172\.(?:1[6-9]|2\d|3[01])|192\.168|100\.(?:6[4-9]|[7-9]\d|1[01]\d|12[0-7]))\./;
const PRIVATE_V6 = /^(?:::1?|f[cd][0-9a-f]{0,2}:|fe[89ab][0-9a-f]?:)/i;

function isPrivate(ip: string): boolean {
  return PRIVATE_V4.test(ip) || (ip.includes(':') && PRIVATE_V6.test(ip));
}

type Fields = Partial<Pick<Relay, 'ip' | 'rdns' | 'helo' | 'by' | 'ident' | 'envfrom' | 'id'>> & { sub?: string; dns?: boolean };
/** 0: not a relay (skipped); 'fetch': a POP/IMAP fetcher's handover, after which the parse restarts. */
type Pattern = readonly [RegExp, (m: RegExpExecArray) => Fields | 0 | 'fetch' | undefined];
// A taker returning undefined declines: the next format is tried.

const re = (s: string, flags = '') => new RegExp(s.replace(/\{IP\}/g, IP), flags);
// "sub" holds a parenthesised comment from which helo= and ident= are taken (Exim).
const fromSub = (f: Fields): Fields => {
  if (f.sub !== undefined) {
    const h = /helo=(\S+)/.exec(f.sub);
    if (h) f.helo = h[1]!;
    const i = /ident=(\S*)/.exec(f.sub);
    if (i) f.ident = i[1]!;
  }
  return f;
};

/** MTA-specific formats, each tried only when its marker is present (Received.pm's elsif chain). */
const SPECIFIC: readonly (readonly [RegExp, readonly Pattern[]])[] = [
  [/ SMTPSVC/, [
    [re(String.raw`^(\S*) \(\[({IP})\][^)]{0,40}\) by (\S+) with Microsoft SMTPSVC`), (m) => ({ helo: m[1], ip: m[2], by: m[3] })],
    [/^mail pickup service by (\S+) with Microsoft SMTPSVC$/, () => 0],
  ]],
  [/ with (?:Microsoft SMTP Server|mapi id) (?:\([^)]+\) )?\d+\.\d+\.\d+\.\d+(?:$| )/, [
    [re(String.raw`^(\S+) \(\[?({IP})(?:%[A-Z0-9._~-]*)?\]?\) by (\S+) `, 'i'), (m) => ({ helo: m[1], ip: m[2], by: m[3], id: '' })],
  ]],
  [/\(ecelerity\b/, [
    [re(String.raw`^\(\[({IP}):\d+\] helo=(\S+)\) by (\S+) `), (m) => ({ ip: m[1], helo: m[2], by: m[3] })],
    [re(String.raw`^\S+ \(\[({IP}):\d+\]\) by (\S+) `), (m) => ({ ip: m[1], by: m[2] })],
  ]],
  [/Exim/, [
    [/\bwith local(?:-\S+)? /, () => 0],
    [re(String.raw`^\[({IP})\] \((.*?)\) by (\S+) `), (m) => fromSub({ ip: m[1], sub: m[2], by: m[3] })],
    [re(String.raw`^(\S+) \(\[({IP})\](.*?)\) by (\S+) `), (m) => fromSub({ rdns: m[1], ip: m[2], sub: m[3], by: m[4], helo: m[1] })],
    [re(String.raw`^(\S+) \[({IP})\](:\d+)? by (\S+) `), (m) => ({ rdns: m[1], ip: m[2], helo: m[1], by: m[4] })],
    [re(String.raw`^(\S+) \((\S+)\) \[({IP})(?:\.\d+)?\] .*?by (\S+) `), (m) => ({ rdns: m[1], helo: m[2], ip: m[3], by: m[4] })],
  ]],
  [/ \(Postfix\) with/, [
    [re(String.raw`^(\S+) \((\S+) \[({IP})\]\) by (\S+) `), (m) => ({ helo: m[1], rdns: m[2], ip: m[3], by: m[4], dns: true })],
    [re(String.raw`^(\S+) \((\S+)\[({IP})\]\) by (\S+) `), (m) => ({ helo: m[1], rdns: m[2], ip: m[3], by: m[4], dns: true })],
  ]],
];

/** The generic formats, in Received.pm's order. */
const GENERIC: readonly Pattern[] = [
  [re(String.raw`^({IP}) \(\[{IP}\]\) by (\S+)`), (m) => (/\bwith HTTP\b/.test(m.input) ? { ip: m[1], by: m[2] } : undefined)],
  [re(String.raw`^(\S+) \((\S+) \[({IP})\].*\) by (\S+) \(`), (m) => (/ by \S+ \(qmail-\S+\) with /.test(m.input) ? undefined : identRdns({ helo: m[1], rdns: m[2], ip: m[3], by: m[4], dns: true }))],
  [re(String.raw`^(\S+) \((\S+) \[({IP})\]\) by (\S+) with \S+ \(`), (m) => ({ helo: m[1], rdns: m[2], ip: m[3], by: m[4], dns: true })],
  [re(String.raw`^(\S+) \(\[({IP})\] helo=(\S+)\) by (\S+) with `), (m) => ({ rdns: m[1], ip: m[2], helo: m[3], by: m[4] })],
  [re(String.raw`^(\S+) \(<unknown\S*>\[({IP})\]\) by (\S+) `), (m) => ({ helo: m[1], ip: m[2], by: m[3] })],
  [re(String.raw`^(\S+) \((\S+\.\S+)\[({IP})\]\) by (\S+) `), (m) => ({ helo: m[1], rdns: m[2], ip: m[3], by: m[4], dns: true })],
  [re(String.raw`^(\S+) \((\S*)@\[({IP})\].*\) by (\S+) \(`), (m) => ({ helo: m[1], ident: m[2], ip: m[3], by: m[4], dns: true })],
  [re(String.raw`^(\S+) \((?:HELO|EHLO) (\S*)\) \(({IP})\) by (\S+) \(qpsmtpd/\S+\) with (?:ESMTP|SMTP)`), (m) => ({ rdns: m[1], helo: m[2], ip: m[3], by: m[4] })],
  [re(String.raw`^(\S+) \((?:HELO|EHLO) (\S*)\) \[({IP})\] by (\S+) \([^)]+\) with (?:ESMTP|SMTP)`), (m) => ({ rdns: m[1], helo: m[2], ip: m[3], by: m[4] })],
  // qmail
  [re(String.raw`^(\S+) \((?:HELO|EHLO) ([^ ()]*)\) \((\S*)@\[?({IP})\]?\)( \(envelope-sender <\S+>\))? by (\S+)`), (m) => qmail(m, { rdns: m[1], helo: m[2], ident: m[3], ip: m[4], by: m[6] })],
  [re(String.raw`^(\S+) \((?:HELO|EHLO) ([^ ()]*)\) \(\[?({IP})\]?\)( \(envelope-sender <\S+>\))? by (\S+)`), (m) => qmail(m, { rdns: m[1], helo: m[2], ip: m[3], by: m[5] })],
  [re(String.raw`^(\S+) \((\S*)@\[?({IP})\]?\)( \(envelope-sender <\S+>\))? by (\S+)`), (m) => qmail(m, { rdns: m[1], helo: m[1], ident: m[2], ip: m[3], by: m[5] })],
  [re(String.raw`^(\S+) \(\[?({IP})\]?\)( \(envelope-sender <\S+>\))? by (\S+)`), (m) => qmail(m, { rdns: m[1], helo: m[1], ip: m[2], by: m[4] })],
  [re(String.raw`^\[({IP})\] by (\S+) via HTTP$`), (m) => ({ ip: m[1], by: m[2] })],
  [re(String.raw`^(\S+) \( \[({IP})\]\).*? by (\S+) `), (m) => ({ helo: m[1], ip: m[2], by: m[3] })],
  [re(String.raw`^\((\S+) \[({IP})\]\) by (\S+) `), (m) => ({ helo: m[1], ip: m[2], by: m[3] })],
  [re(String.raw`^\[({IP})\] by (\S+) `), (m) => ({ ip: m[1], by: m[2] })],
  [re(String.raw`^\(\[?({IP})\]?\) by (\S+) `), (m) => ({ ip: m[1], by: m[2] })],
  [re(String.raw`^(\S+) \[({IP})\] by (\S+) \[{IP}\] with `), (m) => ({ helo: m[1], ip: m[2], by: m[3], dns: true })],
  [re(String.raw`^(\S+) \[\(({IP})\)\] by (\S+) \({IP}\) `), (m) => ({ helo: m[1], ip: m[2], by: m[3] })],
  // sendmail
  [re(String.raw`^(\S+) \(\[({IP})\]\) by (\S+) \(`), (m) => ({ helo: m[1], ip: m[2], by: m[3], dns: true })],
  [re(String.raw`^(\S+) \((\S+) \[({IP})\]\).*? by (\S+)\b`), (m) => ({ helo: m[1], rdns: m[2] === m[1] && / \(authenticated\b/.test(m.input) ? m[2] : m[2], ip: m[3], by: m[4], dns: true })],
  [re(String.raw`^(\S+) \(\[({IP})(?:[.:]\d+)?\]\).*? by (\S+) `), (m) => ({ helo: m[1], ip: m[2], by: m[3], dns: true })],
  [/with (?:POP3|IMAP)/, () => 'fetch'],
  [re(String.raw`^(\S+) \((?:HELO|EHLO) ([^)]*)\) \((\S*@)?\[?({IP})\]?\).* by (\S+) `), (m) => ({ rdns: m[1], helo: m[2], ident: (m[3] ?? '').replace(/@$/, ''), ip: m[4], by: m[5], dns: true })],
  [re(String.raw`^(\S+) \((\S*@)?\[?({IP})\]?\).* by (\S+) `), (m) => ({ rdns: m[1], helo: m[1], ident: (m[2] ?? '').replace(/@$/, ''), ip: m[3], by: m[4], dns: true })],
  [re(String.raw`^\[({IP})\] by (\S+) with http for `), (m) => ({ ip: m[1], by: m[2] })],
  [re(String.raw`^(\S+)\(({IP})\) by (\S+) via smap `), (m) => ({ rdns: m[1], ip: m[2], by: m[3], dns: true })],
  [re(String.raw`^(\S+)\(({IP}), (?:HELO|EHLO) (\S*)\) by (\S+) via smap `), (m) => ({ rdns: m[1], ip: m[2], helo: m[3], by: m[4], dns: true })],
  [re(String.raw`^({IP}) by (\S+) \((?:SMTPL|InterScan)\b`), (m) => ({ ip: m[1], by: m[2] })],
  [/^\S+ by \S+ with BSMTP/, () => 0],
  [re(String.raw`^(\S+) \((\S+) \[({IP})\]\) by (\S+) with `), (m) => ({ helo: m[1], rdns: m[2], ip: m[3], by: m[4], dns: true })],
  [re(String.raw`^(\S+) \((?:HELO|EHLO) (\S*)\) \((?:(\S+)@)?({IP}).*?\) by (\S+) with `), (m) => ({ rdns: m[1], helo: m[2], ident: m[3] ?? '', ip: m[4], by: m[5], dns: true })],
  [re(String.raw`^\[({IP})\] \((?:account \S+ )?(?:HELO|EHLO) (\S*)\) by (\S+) \(`), (m) => ({ ip: m[1], helo: m[2], by: m[3] })],
  [re(String.raw`^(\S+) \(\[({IP})\] verified\) by (\S+) \(`), (m) => ({ rdns: m[1], helo: m[1], ip: m[2], by: m[3], dns: true })],
  [re(String.raw`^\(\[({IP})\]\) by (\S+) with `), (m) => ({ ip: m[1], by: m[2] })],
  [re(String.raw`^([^\d]\S+) \(({IP})\) by (\S+) `), (m) => ({ helo: m[1], ip: m[2], by: m[3] })],
  [/^\S+ \(\S+\) by \S+ \(Content Technologies /, () => 0],
  [re(String.raw`^(\S+) \(\[({IP})\] \[(\S+)\]\) by (\S+) with `), (m) => ({ helo: m[1], ip: m[2], by: m[4] })],
  [re(String.raw`^({IP}) by (\S+) with `), (m) => ({ ip: m[1], by: m[2] })],
  [re(String.raw`^(\S+) \((\S+)\[({IP})\]\) by (\S+) `), (m) => ({ helo: m[1], rdns: m[2], ip: m[3], by: m[4], dns: true })],
  [re(String.raw`^\[({IP})\]\S+ \((?:HELO|EHLO) (\S*)\) by (\S+) `), (m) => ({ ip: m[1], helo: m[2], by: m[3] })],
  [re(String.raw`^({IP}) \((?:HELO|EHLO) (\S*)\) by (\S+) `), (m) => ({ ip: m[1], helo: m[2], by: m[3] })],
  [re(String.raw`^(\S+) \[({IP})\] by (\S+) `), (m) => ({ helo: m[1], ip: m[2], by: m[3] })],
  [re(String.raw`^(\S+)\(({IP})\) by (\S+) `), (m) => ({ rdns: m[1], ip: m[2], by: m[3] })],
  [re(String.raw`^(\S+) \(unverified \[({IP})\]\) by (\S+) `), (m) => ({ helo: m[1], ip: m[2], by: m[3] })],
  [re(String.raw`^({IP}) \([A-Za-z][^)]+\) by (\S+) with `), (m) => ({ ip: m[1], by: m[2] })],
  [re(String.raw`^\[({IP})\] \(([^)]+)\) by (\S+) `), (m) => fromSub({ ip: m[1], sub: m[2], by: m[3] })],
  [re(String.raw`^(\S+) \((?:\S+@)?({IP})\) by (\S+) with `), (m) => ({ rdns: m[1], ip: m[2], by: m[3] })],
  [re(String.raw`^X-Originating-IP: ({IP})$`), (m) => ({ ip: m[1], by: '' })],
];

function identRdns(f: Fields): Fields {
  const r = f.rdns ?? '';
  const m = /^(?:IDENT:)?([^@]*)@(.*)$/.exec(r);
  if (m) return { ...f, ident: m[1]!, rdns: m[2]! };
  return f;
}

// qmail writes the reverse name first; a bare IP or "unknown" there means it had none.
function qmail(m: RegExpExecArray, f: Fields): Fields | undefined {
  if (!/^\S+( \((?:HELO|EHLO) \S*\))? \((\S+@)?\[?[^\s)]+\]?\)( \(envelope-sender <\S+>\))? by \S+( \(.+\))* with (.* )?(SMTP|QMQP)(?! id )/.test(m.input)) return undefined;
  if (f.rdns === 'unknown') return { ...f, rdns: '', dns: true };
  return { ...f, dns: true };
}

const DATE_TAIL = /[\s;]+(?:(?:Mon|T(?:ue|hu)|Wed|Fri|S(?:at|un)), )?\d+ (?:J(?:an|u[nl])|Feb|Ma[ry]|A(?:pr|ug)|Sep|Oct|Nov|Dec) \d+ \d+:\d+(?::\d+)? \S+$/;
const AUTH_WITH = / with ((?:ES|L|UTF8S|UTF8L)MTPS?A|ASMTP|HTTP[SU]?)(?: |;|$)/i;
const STRIP = /[\s\0#[\]()<>|]/g;

/** One Received field as a relay; 0 when it is not a TCP handover or no format reads it (counted unparseable when `undefined`). */
export function parseReceived(value: string): Relay | 0 | 'fetch' | undefined {
  let s = value.replace(/\s+/g, ' ').trim();
  while (/\s?;$/.test(s)) s = s.replace(/\s?;$/, '');
  if (!/^\(?from /i.test(s)) return 0;
  if (/\bwith local for\b/.test(s)) return 0;
  const bare = /^from (\S+) by [^\s;]+ ?;/i.exec(s);
  if (bare && !/^\[[\d.]+\]$/.test(bare[1]!)) return 0;
  s = s.replace(DATE_TAIL, '').replace(/\)by /, ') by ');

  const f: Fields = { ip: '', rdns: '', helo: '', by: '', ident: '', id: '' };
  let envfrom: string | undefined;
  const id = / id <?([^\s<>;]{3,})/.exec(s);
  if (id) f.id = id[1]!;
  const helo = /\bhelo=([-A-Za-z0-9.^+_&:=?!@%*$\\/]+)(?:[^-A-Za-z0-9.^+_&:=?!@%*$\\/]|$)/.exec(s)
    ?? /\b(?:HELO|EHLO) ([-A-Za-z0-9.^+_&:=?!@%*$\\/]+)(?:[^-A-Za-z0-9.^+_&:=?!@%*$\\/]|$)/.exec(s);
  if (helo) f.helo = helo[1]!;
  const by = / by (\S+)(?:[^-A-Za-z0-9;.]|$)/.exec(s);
  if (by) f.by = by[1]!;
  let auth = '';
  const aw = / by /.test(s) ? AUTH_WITH.exec(s) : null;
  if (aw) auth = aw[1]!;
  else if (/^from .*?(?:\]\)|\)\]) \(AUTH: (LOGIN|PLAIN|DIGEST-MD5|CRAM-MD5) \S+(?:, .*?)?\) by /.test(s)) auth = /\(AUTH: (\S+)/.exec(s)![1]!;
  else if (/authenticated/.test(s) && /^from .*?(?:\](?: \([^)]*\))?\)|\)\]) .*?\(.*?authenticated.*?\).*? by/.test(s)) auth = 'Sendmail';
  else {
    const pf = /\) \(Authenticated sender: \S+\) by \S+ \(([^)]+)\) with /.exec(s);
    if (pf) auth = pf[1] === 'Postfix' ? 'Postfix' : `Postfix (${pf[1]})`;
    else if (/CommuniGate Pro (HTTP|SMTP|XIMSS|IMAP)/.test(s) && / \(account /.test(s)) auth = 'Communigate';
    else if (/ with Microsoft Exchange Server HTTP-DAV\b/.test(s)) auth = 'HTTP-DAV';
    else {
      const via = / by /.test(s) ? / \(via (HTTP.?)\)(?: |;|$)/i.exec(s) : null;
      if (via) auth = via[1]!;
    }
  }
  if (!/^from /.test(s)) return undefined; // "(from …" and "FROM …" forms are rare: not read here
  s = s.slice(5);
  const env = /(?:return-path:? |envelope-(?:sender|from)[ =])(\S+)\b/i.exec(s);
  if (env) envfrom = env[1];

  let found: Fields | 0 | undefined;
  const specific = SPECIFIC.find(([marker]) => marker.test(s));
  for (const [pattern, take] of [...(specific?.[1] ?? []), ...GENERIC]) {
    const m = pattern.exec(s);
    if (!m) continue;
    const r = take(m);
    if (r === undefined) continue;
    if (r === 0 || r === 'fetch') return r;
    found = r;
    break;
  }
  if (found === undefined) return undefined;
  const r = { ...f, ...Object.fromEntries(Object.entries(found).filter(([, v]) => v !== undefined)) } as Fields;

  let rdns = (r.rdns ?? '').replace(/\.+$/, '');
  if (/^unknown$/i.test(rdns) || rdns.startsWith('[')) rdns = '';
  let ip = (r.ip ?? '').replace(/^ipv6:/i, '').replace(/^\[/, '').replace(/\]$/, '').replace(/%[A-Z0-9._~-]*$/i, '')
    .replace(/^0*:0*:(?:0*:)*ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
  ip = ip.replace(STRIP, '!');
  const clean = (x: string | undefined) => (x ?? '').replace(STRIP, '!');
  return {
    ip,
    rdns: clean(rdns),
    helo: clean(r.helo),
    by: clean((r.by ?? '').replace(/;$/, '')),
    ident: clean(r.ident),
    envfrom: envfrom === undefined ? '' : envfrom.replace(/^\s*<*/, '').replace(/>*\s*$/, '').replace(STRIP, '!'),
    id: r.id ?? '',
    auth,
    internal: false,
    msa: false,
    privateIp: isPrivate(ip),
  };
}

/** SpamAssassin's relay string: "[ ip=… rdns=… helo=… by=… ident=… envfrom=… intl=… id=… auth=… msa=… ]". */
export function relayString(r: Relay): string {
  return `[ ip=${r.ip} rdns=${r.rdns} helo=${r.helo} by=${r.by} ident=${r.ident} envfrom=${r.envfrom} intl=${r.internal ? 1 : 0} id=${r.id} auth=${r.auth} msa=${r.msa ? 1 : 0} ]`;
}

/** SpamAssassin's default originating_ip_headers (10_default_prefs.cf): webmail client addresses, read after the Received fields. */
const ORIGINATING: readonly string[] = ['X-Yahoo-Post-IP', 'X-Originating-IP', 'X-Apparently-From', 'X-SenderIP', 'X-AOL-IP',
  'X-MS-Exchange-CrossTenant-OriginalAttributedTenantConnectingIp'];

/** The trust path of a message from its Received fields (top first, as in the header). */
export function trustPath(receivedValues: readonly string[], config: TrustConfig = {}, headers: readonly (readonly [string, string])[] = []): TrustPath {
  const trustedList = config.trusted ?? [];
  const internalList = config.internal ?? [];
  const userTrust = trustedList.length > 0;
  const userInternal = internalList.length > 0;
  // One configured, the other not: SpamAssassin uses the one for both.
  const trusted = new NetworkSet(['127.0.0.0/8', '::1/128', ...(userTrust ? trustedList : internalList)]);
  const internal = new NetworkSet(['127.0.0.0/8', '::1/128', ...(userInternal ? internalList : trustedList)]);
  const lines = [...receivedValues];
  for (const name of ORIGINATING) {
    // The last field of that name, as SpamAssassin's get_header in scalar context.
    const h = headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).pop();
    const ip = h ? new RegExp(IP).exec(h[1]) : null;
    if (ip) lines.push(`from X-Originating-IP: ${ip[0]}`);
  }
  const out = { trusted: [] as Relay[], untrusted: [] as Relay[], internal: [] as Relay[], external: [] as Relay[], unparseable: 0 };
  let inTrusted = true;
  let inInternal = true;
  let allowFetchMarkers = true;
  for (const line of lines) {
    const relay = parseReceived(line);
    if (relay === undefined) out.unparseable++;
    if (relay === 'fetch') {
      // Mail fetched from a mailbox: what came before is the fetcher's local delivery.
      if (allowFetchMarkers) {
        out.trusted = [];
        out.internal = [];
        out.external = [];
      }
      continue;
    }
    if (!relay) continue;
    if (inTrusted) {
      if (!userTrust && !userInternal) {
        if (!relay.privateIp && !relay.auth) {
          inTrusted = false;
          inInternal = false;
        }
      } else if (!relay.auth && !trusted.has(relay.ip)) {
        inTrusted = false;
        inInternal = false;
      } else if (inInternal && !relay.auth && !internal.has(relay.ip)) {
        inInternal = false;
      }
    }
    relay.internal = inInternal;
    allowFetchMarkers = inTrusted;
    (inTrusted ? out.trusted : out.untrusted).push(relay);
    (inInternal ? out.internal : out.external).push(relay);
  }
  return out;
}

/** The pseudo-header values SpamAssassin puts in the message metadata. */
export function relayHeaders(path: TrustPath): Record<'X-Spam-Relays-Trusted' | 'X-Spam-Relays-Untrusted' | 'X-Spam-Relays-Internal' | 'X-Spam-Relays-External', string> {
  const s = (l: readonly Relay[]) => l.map(relayString).join(' ');
  return {
    'X-Spam-Relays-Trusted': s(path.trusted),
    'X-Spam-Relays-Untrusted': s(path.untrusted),
    'X-Spam-Relays-Internal': s(path.internal),
    'X-Spam-Relays-External': s(path.external),
  };
}
