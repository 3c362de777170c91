// Is a client's host name a generic one, the kind an access provider gives every customer line
// ("c-73-12-34-56.hsd1.ca.comcast.net", "dsl-189-146-12-34-dyn.example.mx")? Mail servers are
// usually named for what they are ("mail.example.org"); bots on home lines are not. A scored
// hint, never a rejection on its own (SpamAssassin RDNS_DYNAMIC, rspamd HFILTER_HOSTNAME_*).
//
// Rules, first match wins (docs/rdns-helo.md):
//  1. the client's address written in the name: the four IPv4 octets in order or reversed,
//     decimal with "-", "." or "_" between them (zero-padding allowed), twelve zero-padded
//     digits, or eight hex digits; for IPv6 the /64 prefix or the whole address in dashed form,
//     or its 32 hex digits;
//  2. a label word that only access lines carry (dyn, dynamic, dhcp, dialup, pool, ppp, dsl,
//     adsl, cable, broadband, modem, cpe…), in the host part (the registered domain is not
//     looked at: "mail.dyn.com" is a company called Dyn);
//  3. a weaker word (client, host, ip, res, cust, customer, user…) together with at least two
//     of the client's IPv4 octets as numbers in the host part ("cust-34-56.example.net");
//  4. an operator's pattern (rdns.dynamic_patterns, case-insensitive, on the whole name).
// "static" is neither: access providers call their static customer lines "static-…", and a
// static line is where small legitimate mail servers live; such a name is generic only when the
// address is in it (rule 1), which is how most of them are built anyway.
import { formatIp, parseIp } from '../../net/ip-names.js';

export type DynamicVerdict =
  | { readonly dynamic: false }
  | { readonly dynamic: true; readonly rule: 'address' | 'word' | 'pattern'; readonly detail: string };

/** Words only access lines use: one is enough. */
export const DYNAMIC_WORDS: ReadonlySet<string> = new Set([
  'dyn', 'dynamic', 'dynip', 'dhcp', 'dialup', 'dialin', 'dial', 'pool', 'ppp', 'pppoe', 'dsl', 'adsl', 'vdsl',
  'xdsl', 'sdsl', 'cable', 'cablemodem', 'broadband', 'modem', 'cpe', 'hsd', 'ftth',
]);

/** Words that are generic but also appear in server names: only with the address's octets. */
export const GENERIC_WORDS: ReadonlySet<string> = new Set([
  'client', 'clients', 'host', 'ip', 'res', 'resnet', 'cust', 'customer', 'customers', 'user', 'users',
  'mobile', 'wireless', 'nat', 'subscriber',
]);

/** Second-level labels under which a country's registered domains sit (example.co.uk). */
const SECOND_LEVEL = new Set(['co', 'com', 'net', 'org', 'ac', 'gov', 'edu', 'ne', 'or', 'go', 'ad', 'ed', 'gob', 'nom', 'ltd', 'plc', 'sch', 'biz', 'info']);

/** Compiles rdns.dynamic_patterns; throws on an invalid expression, naming it. */
export function compileDynamicPatterns(patterns: readonly string[]): RegExp[] {
  return patterns.map((p, i) => {
    try {
      return new RegExp(p, 'i');
    } catch (err) {
      throw new Error(`rdns.dynamic_patterns[${i}]: "${p}" is not a regular expression: ${(err as Error).message}`);
    }
  });
}

/** Classifies `hostName` (the client's PTR name) for the client address `address`. */
export function classifyHostName(hostName: string, address: string, patterns: readonly RegExp[] = []): DynamicVerdict {
  const name = hostName.toLowerCase().replace(/\.$/, '');
  const ip = parseIp(address);
  const host = hostPart(name);

  if (ip) {
    const form = addressForms(ip.family, ip.bytes).find((f) => f.re.test(name));
    if (form) return { dynamic: true, rule: 'address', detail: `the address is in the name (${form.what})` };
  }

  const words = host.split(/[^a-z]+/).filter(Boolean);
  const strong = words.find((w) => DYNAMIC_WORDS.has(w));
  if (strong) return { dynamic: true, rule: 'word', detail: `label word "${strong}"` };

  const weak = words.find((w) => GENERIC_WORDS.has(w));
  if (weak && ip?.family === 4) {
    const numbers = new Set((host.match(/\d+/g) ?? []).map(Number));
    const octets = ip.bytes.filter((b) => numbers.has(b));
    if (octets.length >= 2) {
      return { dynamic: true, rule: 'word', detail: `label word "${weak}" with octets ${octets.join(', ')} of the address` };
    }
  }

  const pattern = patterns.find((p) => p.test(name));
  if (pattern) return { dynamic: true, rule: 'pattern', detail: `pattern /${pattern.source}/` };
  return { dynamic: false };
}

/** The labels left of the registered domain ("a.b" of a.b.example.org, of a.b.example.co.uk). */
export function hostPart(name: string): string {
  const labels = name.split('.');
  let keep = 2;
  if (labels.length >= 3 && labels[labels.length - 1]!.length === 2 && SECOND_LEVEL.has(labels[labels.length - 2]!)) keep = 3;
  return labels.slice(0, Math.max(0, labels.length - keep)).join('.');
}

interface Form {
  readonly what: string;
  readonly re: RegExp;
}

function addressForms(family: 4 | 6, bytes: readonly number[]): Form[] {
  if (family === 4) {
    const forms: Form[] = [];
    for (const [what, order] of [['in order', bytes], ['reversed', [...bytes].reverse()]] as const) {
      const dec = order.map((b) => `0{0,${3 - String(b).length}}${b}`).join('[-._]');
      const padded = order.map((b) => String(b).padStart(3, '0')).join('');
      const hex = order.map((b) => b.toString(16).padStart(2, '0')).join('');
      forms.push(
        { what: `decimal, ${what}`, re: new RegExp(`(?<!\\d)${dec}(?!\\d)`) },
        { what: `zero-padded decimal, ${what}`, re: new RegExp(`(?<!\\d)${padded}(?!\\d)`) },
        { what: `hexadecimal, ${what}`, re: new RegExp(hex) },
      );
    }
    return forms;
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  const padded = groups.map((g) => g.padStart(4, '0'));
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const dashedPrefix = `(?:${esc(groups.slice(0, 4).join('-'))}|${esc(padded.slice(0, 4).join('-'))})`;
  const compressed = esc(formatIp({ family: 6, bytes }).replace(/:/g, '-'));
  return [
    { what: 'hexadecimal', re: new RegExp(padded.join('')) },
    { what: 'dashed', re: new RegExp(`(?<![0-9a-f-])${compressed}(?![0-9a-f])`) },
    // The customer's /64, dashed: 2a02-8108-1234-5678 (often followed by the rest of the address).
    { what: 'the /64 prefix, dashed', re: new RegExp(`(?<![0-9a-f])${dashedPrefix}(?![0-9a-f])`) },
  ];
}
