// IP addresses as DNS names, and DNS-list return codes.
// - reverseName: the labels a DNS list is queried with (RFC 5782 s2.1 for IPv4, s2.4 for IPv6:
//   32 nibbles, least significant first), ptrName: the same under in-addr.arpa / ip6.arpa.
// - Return-code filters as postscreen_dnsbl_sites writes them ("127.0.0.[4..7;9]") plus dash
//   ranges ("127.0.0.4-7"), compiled once into a matcher.
import net from 'node:net';

export type IpFamily = 4 | 6;

/** An address in canonical form: IPv4 dotted quad, or IPv6 as 16 bytes. */
export interface ParsedIp {
  readonly family: IpFamily;
  /** 4 or 16 bytes. */
  readonly bytes: readonly number[];
}

const MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/**
 * Parses an IPv4 or IPv6 address (a zone "%eth0" is dropped); an IPv4-mapped IPv6 address
 * (::ffff:192.0.2.1) is the IPv4 address. Undefined when the text is not an address.
 */
export function parseIp(text: string): ParsedIp | undefined {
  const addr = text.replace(/%.*$/, '');
  const mapped = MAPPED.exec(addr);
  if (mapped) return parseIp(mapped[1]!);
  const family = net.isIP(addr);
  if (family === 4) return { family: 4, bytes: addr.split('.').map(Number) };
  if (family !== 6) return undefined;
  const bytes = ipv6Bytes(addr);
  if (!bytes) return undefined;
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return { family: 4, bytes: bytes.slice(12) };
  }
  return { family: 6, bytes };
}

/** The address in canonical text: dotted quad, or IPv6 compressed per RFC 5952. */
export function formatIp(ip: ParsedIp): string {
  if (ip.family === 4) return ip.bytes.join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((ip.bytes[i]! << 8) | ip.bytes[i + 1]!);
  // The longest run of two or more zero groups becomes "::" (the first one on a tie).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The same address? Compares canonical forms, so "::ffff:192.0.2.1" equals "192.0.2.1". */
export function sameIp(a: string, b: string): boolean {
  const pa = parseIp(a);
  const pb = parseIp(b);
  return !!pa && !!pb && pa.family === pb.family && pa.bytes.every((x, i) => x === pb.bytes[i]);
}

/**
 * The query labels of an address, most specific first: "2.0.0.127" for 127.0.0.2, and the
 * 32 nibbles of an IPv6 address ("1.0.0.0…8.b.d.0.1.0.0.2" for 2001:db8::1). A DNS list is
 * asked for `${reverseName(ip)}.${zone}`. Undefined when the text is not an address.
 */
export function reverseName(text: string): string | undefined {
  const ip = parseIp(text);
  if (!ip) return undefined;
  if (ip.family === 4) return [...ip.bytes].reverse().join('.');
  const nibbles: string[] = [];
  for (const b of ip.bytes) nibbles.push((b >> 4).toString(16), (b & 15).toString(16));
  return nibbles.reverse().join('.');
}

/** The name whose PTR record names the address: …in-addr.arpa or …ip6.arpa. */
export function ptrName(text: string): string | undefined {
  const ip = parseIp(text);
  const rev = reverseName(text);
  if (!ip || !rev) return undefined;
  return `${rev}.${ip.family === 4 ? 'in-addr.arpa' : 'ip6.arpa'}`;
}

function ipv6Bytes(addr: string): number[] | undefined {
  let text = addr.toLowerCase();
  const tail: number[] = [];
  const v4 = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (v4) {
    tail.push(...v4[1]!.split('.').map(Number));
    text = `${text.slice(0, v4.index)}0:0`; // stands in for the two groups the IPv4 tail fills
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - head.length - rest.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return undefined;
  const groups = [...head, ...new Array<number>(fill).fill(0), ...rest];
  const bytes: number[] = [];
  for (const g of groups) bytes.push((g >> 8) & 255, g & 255);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Return-code filters

/** Matches the A records of a DNS list answer against the configured return codes. */
export interface CodeMatcher {
  /** The filters as written, for logs ("any 127.0.0.0/8" when none were given). */
  readonly description: string;
  matches(code: string): boolean;
}

type OctetSet = (n: number) => boolean;

/**
 * Parses one filter: four octets, each a number ("2"), a dash range ("4-7"), or postscreen's
 * bracket form, a ";"-separated list of numbers and ".." ranges ("[4..7]", "[2;4;10..11]").
 * Returns the reason when the text is not a filter.
 */
export function parseCodeFilter(text: string): { ok: true; test: (code: string) => boolean } | { ok: false; error: string } {
  const octets = splitOctets(text.trim());
  if (!octets) return { ok: false, error: `"${text}" is not a return code filter (e.g. 127.0.0.2, 127.0.0.4-7, 127.0.0.[4..7])` };
  const sets: OctetSet[] = [];
  for (const o of octets) {
    const set = parseOctet(o);
    if (typeof set === 'string') return { ok: false, error: `"${text}": ${set}` };
    sets.push(set);
  }
  return {
    ok: true,
    test(code: string) {
      if (net.isIP(code) !== 4) return false;
      const parts = code.split('.').map(Number);
      return sets.every((s, i) => s(parts[i]!));
    },
  };
}

/** Whether a configuration value is a valid return-code filter (for the schema). */
export function isValidCodeFilter(text: string): boolean {
  return parseCodeFilter(text).ok;
}

/**
 * Compiles a list of filters: a code matches when any filter matches. No filters means "any
 * answer in 127.0.0.0/8 except 127.255.255.0/24" — the range lists use to say "query refused"
 * (Spamhaus: 127.255.255.252 typo in the zone, .254 public resolver, .255 rate limited), which
 * must not count as a listing. Throws on an invalid filter, naming it.
 */
export function compileCodeMatcher(filters: readonly string[]): CodeMatcher {
  if (!filters.length) {
    return { description: 'any 127.0.0.0/8', matches: (code) => isListingCode(code) };
  }
  const tests = filters.map((f) => {
    const p = parseCodeFilter(f);
    if (!p.ok) throw new Error(p.error);
    return p.test;
  });
  return { description: filters.join(', '), matches: (code) => tests.some((t) => t(code)) };
}

/** 127.0.0.0/8 minus 127.255.255.0/24: the answers a list gives for a listing. */
export function isListingCode(code: string): boolean {
  return net.isIP(code) === 4 && code.startsWith('127.') && !code.startsWith('127.255.255.');
}

/** 127.255.255.0/24: the list refused the query (wrong resolver, rate limit, zone typo). */
export function isRefusalCode(code: string): boolean {
  return net.isIP(code) === 4 && code.startsWith('127.255.255.');
}

/** Splits on the dots outside brackets; undefined unless there are exactly four parts. */
function splitOctets(text: string): string[] | undefined {
  const parts: string[] = [];
  let cur = '';
  let depth = 0;
  for (const ch of text) {
    if (ch === '[') depth++;
    else if (ch === ']') depth--;
    if (depth < 0 || depth > 1) return undefined;
    if (ch === '.' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) return undefined;
  parts.push(cur);
  return parts.length === 4 ? parts : undefined;
}

function parseOctet(o: string): OctetSet | string {
  let m: RegExpExecArray | null;
  if ((m = /^(\d{1,3})$/.exec(o))) {
    const n = octet(m[1]!);
    return typeof n === 'string' ? n : (x) => x === n;
  }
  if ((m = /^(\d{1,3})-(\d{1,3})$/.exec(o))) return range(m[1]!, m[2]!);
  if ((m = /^\[([^\]]*)\]$/.exec(o))) {
    const items = m[1]!.split(';');
    const sets: OctetSet[] = [];
    for (const item of items) {
      const r = /^(\d{1,3})(?:\.\.(\d{1,3}))?$/.exec(item.trim());
      if (!r) return `"[${m[1]}]" is not a list of numbers and ranges such as [4..7;9]`;
      const set = range(r[1]!, r[2] ?? r[1]!);
      if (typeof set === 'string') return set;
      sets.push(set);
    }
    return (x) => sets.some((s) => s(x));
  }
  return `"${o}" is not a number (0-255), a range a-b or a list [a..b;c]`;
}

function octet(t: string): number | string {
  const n = Number(t);
  return n <= 255 ? n : `${t} is greater than 255`;
}

function range(a: string, b: string): OctetSet | string {
  const lo = octet(a);
  const hi = octet(b);
  if (typeof lo === 'string') return lo;
  if (typeof hi === 'string') return hi;
  if (lo > hi) return `the range ${a}-${b} is empty`;
  return (x) => x >= lo && x <= hi;
}
