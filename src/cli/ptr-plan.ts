// `portcullis dns ptr-plan CIDR --pattern 'dyn-{a}-{b}-{c}-{d}.pool.example.net' [--forward]`:
// generic PTR records for a dynamic address pool, in zone-file form. The address sits in the
// first label and the rest of the name is the same for the whole pool, so that other sites can
// recognise (and refuse direct mail from) the pool with a plain suffix match on
// ".pool.example.net" — no mid-string wildcards, the point of the DNS hinting proposals
// (draft-msullivan-dnsop-generic-naming-schemes). --forward adds the matching A records, so
// that each name also resolves back to its address (forward-confirmed rDNS).
// IPv4 only: an IPv6 pool (a /64 per customer) cannot be listed name by name; serve such a pool
// from a generating DNS server instead. Exit status: 0 printed, 1 fault (named), 2 usage error.
import { parseArgs } from 'node:util';
import { parseIp, ptrName } from '../net/ip-names.js';

export const PTR_PLAN_USAGE = `usage: portcullis dns ptr-plan CIDR --pattern PATTERN [--forward]

Prints a PTR record for every IPv4 address of CIDR (at most /16), named by PATTERN:
{a} {b} {c} {d} are the address's four numbers, {A} {B} {C} {D} the same zero-padded to three
digits (fixed width). The numbers must all appear, in the first label only; the rest of the
name (e.g. pool.example.net) is the same for the whole pool. --forward adds the A records.
example: portcullis dns ptr-plan 198.51.100.0/24 --pattern 'dyn-{a}-{b}-{c}-{d}.pool.example.net'
`;

/** Pools larger than a /16 would print more than 65,536 records: a generating DNS server fits better. */
const MAX_ADDRESSES = 65_536;

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/** A fault in PATTERN, or undefined when it names every address uniquely with a fixed suffix. */
export function patternFault(pattern: string): string | undefined {
  const name = pattern.replace(/\.$/, '');
  const [first, ...rest] = name.split('.');
  if (!rest.length) return `--pattern "${pattern}" needs a domain after the first label (e.g. dyn-{a}-{b}-{c}-{d}.pool.example.net)`;
  for (const label of rest) {
    if (/[{}]/.test(label)) return `--pattern "${pattern}": the address may appear only in the first label, so that the rest (${rest.join('.')}) is one suffix for the whole pool`;
    if (!LABEL.test(label)) return `--pattern "${pattern}": "${label}" is not a DNS label`;
  }
  const unknown = /\{(?![abcdABCD]\})[^}]*\}/.exec(first!);
  if (unknown) return `--pattern "${pattern}": unknown placeholder ${unknown[0]} (use {a} {b} {c} {d}, or {A} {B} {C} {D} zero-padded)`;
  for (const k of ['a', 'b', 'c', 'd']) {
    if (!first!.includes(`{${k}}`) && !first!.includes(`{${k.toUpperCase()}}`)) return `--pattern "${pattern}" lacks {${k}}: every number of the address must be in the name, or two addresses would share one`;
  }
  if (!LABEL.test(expand(first!, [255, 255, 255, 255])) || !LABEL.test(expand(first!, [0, 0, 0, 0]))) return `--pattern "${pattern}": the first label is not a DNS label once filled in (letters, digits, hyphens; at most 63)`;
  return undefined;
}

function expand(template: string, octets: readonly number[]): string {
  return template.replace(/\{([abcdABCD])\}/g, (_m, k: string) => {
    const i = 'abcd'.indexOf(k.toLowerCase());
    const n = String(octets[i]);
    return k === k.toUpperCase() ? n.padStart(3, '0') : n;
  });
}

/** The addresses of an IPv4 CIDR as numbers, or a fault. */
export function ipv4Range(cidr: string): { first: number; count: number } | string {
  const [addr, bits, extra] = cidr.split('/');
  const ip = addr ? parseIp(addr) : undefined;
  if (!ip || extra !== undefined) return `"${cidr}" is not a network (CIDR, e.g. 198.51.100.0/24)`;
  if (ip.family !== 4) return `"${cidr}" is IPv6: ptr-plan lists IPv4 pools only (an IPv6 pool is too large to list; use a generating DNS server)`;
  const len = bits === undefined ? 32 : /^\d{1,2}$/.test(bits) ? Number(bits) : NaN;
  if (!(len >= 0 && len <= 32)) return `"${cidr}": prefix length must be 0 to 32`;
  const count = 2 ** (32 - len);
  if (count > MAX_ADDRESSES) return `"${cidr}" has ${count} addresses: at most ${MAX_ADDRESSES} (a /16); split the pool`;
  const value = ip.bytes.reduce((v, b) => v * 256 + b, 0);
  return { first: value - (value % count), count };
}

/** The zone-file lines for the pool. */
export function ptrPlan(cidr: string, pattern: string, forward: boolean): string[] | string {
  const fault = patternFault(pattern);
  if (fault) return fault;
  const range = ipv4Range(cidr);
  if (typeof range === 'string') return range;
  const [first, ...rest] = pattern.replace(/\.$/, '').split('.');
  const suffix = rest.join('.').toLowerCase();
  const lines: string[] = [`; generic PTR names for ${cidr}: *.${suffix} is the pool (portcullis dns ptr-plan)`];
  const names: string[] = [];
  for (let n = range.first; n < range.first + range.count; n++) {
    const octets = [Math.floor(n / 16777216) % 256, Math.floor(n / 65536) % 256, Math.floor(n / 256) % 256, n % 256];
    const address = octets.join('.');
    const name = `${expand(first!, octets).toLowerCase()}.${suffix}.`;
    lines.push(`${ptrName(address)}. IN PTR ${name}`);
    if (forward) names.push(`${name} IN A ${address}`);
  }
  return forward ? [...lines, `; forward records (in the ${suffix} zone)`, ...names] : lines;
}

export interface PtrPlanIo {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
}

export function ptrPlanCommand(argv: readonly string[], io: PtrPlanIo = { stdout: process.stdout, stderr: process.stderr }): number {
  let values: { pattern?: string; forward?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: [...argv], allowPositionals: true, options: { pattern: { type: 'string' }, forward: { type: 'boolean' } } }));
  } catch (err) {
    io.stderr.write(`dns ptr-plan: ${(err as Error).message}\n${PTR_PLAN_USAGE}`);
    return 2;
  }
  if (positionals.length !== 1 || !values.pattern) {
    io.stderr.write(`dns ptr-plan: one CIDR and --pattern are needed\n${PTR_PLAN_USAGE}`);
    return 2;
  }
  const out = ptrPlan(positionals[0]!, values.pattern, !!values.forward);
  if (typeof out === 'string') {
    io.stderr.write(`dns ptr-plan: ${out}\n`);
    return 1;
  }
  io.stdout.write(`${out.join('\n')}\n`);
  return 0;
}
