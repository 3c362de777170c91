// `portcullis policy port25 --authorized HOST... [--networks CIDR...] [--verify]`: the port-25
// policy of mission area 5 as an nftables ruleset. SMTP (25), submissions (465) and submission
// (587) are allowed only when one end is an authorized mail server, in both directions: a
// compromised desktop can neither send to the world's MX hosts nor run a server of its own, and
// packets that claim to come from a mail port of a host that is no mail server (spoofed traffic
// from dual-homed hosts) are dropped as well. The ruleset is a table of its own
// (inet portcullis_port25) that only drops: an accept in it cannot open what another table
// closes. --verify reads the running ruleset (`nft -j list ruleset`) and names each gap.
// Exit status: 0 printed / no gap, 1 gaps or a fault (named), 2 usage error.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import { createResolver, resolverOptions } from '../dns/resolver.js';
import type { Resolver } from '../dns/types.js';
import { formatIp, parseIp } from '../net/ip-names.js';
import type { Config } from '../config/schema.js';

export const PORT25_USAGE = `usage: portcullis policy port25 --authorized HOST... [--networks CIDR...] [--verify [--ruleset-json FILE]]

Prints an nftables ruleset (table inet portcullis_port25) that allows TCP 25, 465 and 587 only
to and from the authorized mail servers (addresses, networks or host names: A and AAAA are
looked up), inbound, outbound and forwarded. --networks limits the drops to traffic from or to
those networks (the site's own); without it every other host is refused the mail ports.
Load it with "nft -f FILE". --verify compares the running ruleset (nft -j list ruleset, or
--ruleset-json FILE) with it and names each gap.
`;

export const TABLE = 'portcullis_port25';
export const MAIL_PORTS = [25, 465, 587] as const;
const HOOKS = ['input', 'output', 'forward'] as const;

/** One address set of the table: its name, nft type, and the canonical elements. */
interface SetSpec {
  readonly name: string;
  readonly type: 'ipv4_addr' | 'ipv6_addr' | 'inet_service';
  readonly elements: readonly string[];
}

/** One rule: its matches (field and the set it tests) and its verdict. */
interface RuleSpec {
  readonly matches: readonly (readonly [field: string, set: string])[];
  readonly verdict: 'accept' | 'drop';
}

export interface Port25Policy {
  readonly sets: readonly SetSpec[];
  readonly rules: readonly RuleSpec[];
}

/** "192.0.2.7" or "2001:db8::/32" → the canonical "address" or "network/len" (host bits cleared); undefined if invalid. */
export function canonicalNet(text: string): string | undefined {
  const [addr, bits, extra] = text.split('/');
  if (extra !== undefined || !addr) return undefined;
  const ip = parseIp(addr);
  if (!ip || (net.isIP(addr) === 6 && ip.family === 4)) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  if (bits === undefined) return formatIp(ip);
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return undefined;
  const len = Number(bits);
  if (len === max) return formatIp(ip);
  const bytes = ip.bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, len - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
  return `${formatIp({ family: ip.family, bytes })}/${len}`;
}

const family = (canonical: string): 4 | 6 => (canonical.includes(':') ? 6 : 4);

/** The policy for the authorized servers and (optionally) the site's networks, all canonical. */
export function buildPolicy(authorized: readonly string[], networks: readonly string[]): Port25Policy {
  const uniq = (list: readonly string[]) => [...new Set(list)].sort();
  const sets: SetSpec[] = [
    { name: 'mail_ports', type: 'inet_service', elements: MAIL_PORTS.map(String) },
    { name: 'servers4', type: 'ipv4_addr', elements: uniq(authorized.filter((a) => family(a) === 4)) },
    { name: 'servers6', type: 'ipv6_addr', elements: uniq(authorized.filter((a) => family(a) === 6)) },
  ];
  if (networks.length) {
    sets.push({ name: 'networks4', type: 'ipv4_addr', elements: uniq(networks.filter((a) => family(a) === 4)) });
    sets.push({ name: 'networks6', type: 'ipv6_addr', elements: uniq(networks.filter((a) => family(a) === 6)) });
  }
  const rules: RuleSpec[] = [];
  for (const port of ['tcp dport', 'tcp sport']) {
    for (const [proto, set] of [['ip', 'servers4'], ['ip6', 'servers6']] as const) {
      for (const dir of ['saddr', 'daddr']) rules.push({ matches: [[port, '@mail_ports'], [`${proto} ${dir}`, `@${set}`]], verdict: 'accept' });
    }
    if (!networks.length) rules.push({ matches: [[port, '@mail_ports']], verdict: 'drop' });
    else {
      for (const [proto, set] of [['ip', 'networks4'], ['ip6', 'networks6']] as const) {
        for (const dir of ['saddr', 'daddr']) rules.push({ matches: [[port, '@mail_ports'], [`${proto} ${dir}`, `@${set}`]], verdict: 'drop' });
      }
    }
  }
  return { sets, rules };
}

const ruleText = (r: RuleSpec) => `${r.matches.map(([f, s]) => `${f} ${s}`).join(' ')}${r.verdict === 'drop' ? ' counter' : ''} ${r.verdict}`;
const ruleKey = (r: RuleSpec) => `${r.matches.map(([f, s]) => `${f} ${s}`).join(' ')} ${r.verdict}`;

/** The ruleset in nft's file syntax ("nft -f" loads it; "nft -c -f" checks it). */
export function renderRuleset(policy: Port25Policy, comment: string): string {
  const out = [
    `# ${comment}`,
    '# Mail ports 25, 465 and 587 only to and from the authorized mail servers (portcullis policy port25).',
    `# Reloading replaces the table: "nft -f" this file (it deletes the old table first).`,
    `table inet ${TABLE}`,
    `delete table inet ${TABLE}`,
    `table inet ${TABLE} {`,
  ];
  for (const s of policy.sets) {
    const flags = s.type === 'inet_service' ? '' : ' flags interval;';
    const elements = s.elements.length ? ` elements = { ${s.elements.join(', ')} }` : '';
    out.push(`  set ${s.name} { type ${s.type};${flags}${elements} }`);
  }
  for (const hook of HOOKS) {
    out.push('', `  chain ${hook} {`, `    type filter hook ${hook} priority filter; policy accept;`);
    for (const r of policy.rules) out.push(`    ${ruleText(r)}`);
    out.push('  }');
  }
  out.push('}', '');
  return out.join('\n');
}

type Json = Record<string, unknown>;

/** The gaps between the running ruleset (nft -j list ruleset) and the policy, one sentence each. */
export function compareRuleset(policy: Port25Policy, listing: unknown): string[] {
  const items = ((listing as { nftables?: unknown[] })?.nftables ?? []) as Json[];
  const mine = (kind: string) => items.map((i) => i[kind] as Json | undefined).filter((x): x is Json => !!x && x.family === 'inet' && x.table === TABLE);
  if (!items.some((i) => (i.table as Json | undefined)?.family === 'inet' && (i.table as Json).name === TABLE)) {
    return [`table inet ${TABLE} is not loaded: nothing restricts the mail ports (load "portcullis policy port25 …" with nft -f)`];
  }
  const gaps: string[] = [];
  const sets = new Map(mine('set').map((s) => [String(s.name), s]));
  for (const want of policy.sets) {
    const have = sets.get(want.name);
    if (!have) {
      gaps.push(`set ${want.name} is missing`);
      continue;
    }
    const elems = new Set(((have.elem as unknown[] | undefined) ?? []).map(elementText).filter((e): e is string => !!e));
    for (const e of want.elements) if (!elems.has(e)) gaps.push(`set ${want.name} lacks ${e}${want.name.startsWith('servers') ? ' (an authorized server is refused the mail ports)' : ''}`);
    for (const e of elems) if (!want.elements.includes(e)) gaps.push(`set ${want.name} has ${e}, which the policy does not name${want.name.startsWith('servers') ? ' (an unauthorized host may use the mail ports)' : ''}`);
  }
  const chains = mine('chain');
  const rules = mine('rule');
  for (const hook of HOOKS) {
    const chain = chains.find((c) => c.hook === hook && c.type === 'filter');
    if (!chain) {
      gaps.push(`no chain on hook ${hook}: ${hook === 'input' ? 'traffic to this host' : hook === 'output' ? 'traffic from this host' : 'traffic routed through this host'} is not filtered`);
      continue;
    }
    const name = String(chain.name);
    const have = rules.filter((r) => r.chain === name).map(jsonRuleKey);
    const want = policy.rules.map(ruleKey);
    for (const w of want) if (!have.includes(w)) gaps.push(`chain ${name} (hook ${hook}) lacks the rule "${w}"`);
    for (const h of have) if (!want.includes(h)) gaps.push(`chain ${name} (hook ${hook}) has a rule the policy does not: "${h}"`);
    if (chain.policy !== 'accept') gaps.push(`chain ${name} (hook ${hook}) has policy ${String(chain.policy)}: every other packet is dropped too`);
    // Order matters: a drop before the accepts would refuse the authorized servers.
    for (const port of ['tcp dport', 'tcp sport']) {
      const order = have.filter((h) => h.startsWith(port) && want.includes(h));
      const firstDrop = order.findIndex((h) => h.endsWith(' drop'));
      if (firstDrop >= 0 && order.slice(firstDrop).some((h) => h.endsWith(' accept'))) gaps.push(`chain ${name} (hook ${hook}) drops ${port} @mail_ports before it accepts the authorized servers`);
    }
  }
  return gaps;
}

function elementText(e: unknown): string | undefined {
  if (typeof e === 'number') return String(e);
  if (typeof e === 'string') return canonicalNet(e) ?? e;
  const p = (e as { prefix?: { addr: string; len: number } }).prefix;
  if (p) return canonicalNet(`${p.addr}/${p.len}`);
  const r = (e as { range?: [string, string] }).range;
  if (r) return `${r[0]}-${r[1]}`;
  return undefined;
}

function jsonRuleKey(rule: Json): string {
  const parts: string[] = [];
  let verdict = '?';
  for (const x of (rule.expr as Json[] | undefined) ?? []) {
    const m = x.match as { op: string; left: { payload?: { protocol: string; field: string } }; right: unknown } | undefined;
    if (m) {
      const left = m.left.payload ? `${m.left.payload.protocol} ${m.left.payload.field}` : JSON.stringify(m.left);
      parts.push(`${left}${m.op === '==' ? '' : ` ${m.op}`} ${typeof m.right === 'string' ? m.right : JSON.stringify(m.right)}`);
    } else if ('accept' in x) verdict = 'accept';
    else if ('drop' in x) verdict = 'drop';
    else if ('reject' in x) verdict = 'reject';
    else if ('jump' in x || 'goto' in x) verdict = Object.keys(x)[0]!;
  }
  return `${parts.join(' ')} ${verdict}`;
}

/** HOST → its canonical addresses: an address or network as given, a name through A and AAAA. */
async function resolveHost(host: string, resolver: Resolver): Promise<string[]> {
  const direct = canonicalNet(host);
  if (direct) return [direct];
  if (!/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\.?$/i.test(host)) throw new Error(`--authorized "${host}" is neither an address, a network nor a host name`);
  const [a, aaaa] = await Promise.all([resolver.lookup(host, 'A'), resolver.lookup(host, 'AAAA')]);
  const errs = [a, aaaa].filter((l) => l.status === 'error');
  if (errs.length) throw new Error(`--authorized ${host}: DNS lookup failed (${(errs[0] as { reason: string }).reason}); give its addresses instead`);
  const found = [...(a.status === 'ok' ? a.records : []), ...(aaaa.status === 'ok' ? aaaa.records : [])].map((r) => canonicalNet(r)!).filter(Boolean);
  if (!found.length) throw new Error(`--authorized ${host} has no A or AAAA record`);
  return found;
}

export interface Port25Io {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
  readonly resolver?: Resolver;
  /** Runs `nft -j list ruleset` (tests give a listing from a throwaway network namespace). */
  readonly listRuleset?: () => Promise<string>;
}

const runNft = async (): Promise<string> => (await promisify(execFile)('nft', ['-j', 'list', 'ruleset'], { timeout: 15_000, maxBuffer: 64 * 1024 * 1024 })).stdout;

export async function port25Command(argv: readonly string[], config: Pick<Config, 'dns'>, io: Port25Io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let values: { authorized?: string[]; networks?: string[]; verify?: boolean; 'ruleset-json'?: string };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        authorized: { type: 'string', multiple: true }, networks: { type: 'string', multiple: true },
        verify: { type: 'boolean' }, 'ruleset-json': { type: 'string' },
      },
    }));
  } catch (err) {
    io.stderr.write(`policy port25: ${(err as Error).message}\n${PORT25_USAGE}`);
    return 2;
  }
  // "--authorized a b c": parseArgs takes "a" as the option's value and "b", "c" as positionals;
  // each bare word belongs to the list of the option named before it, so both spellings work.
  const authorizedArgs = [...(values.authorized ?? [])];
  const networkArgs = [...(values.networks ?? [])];
  if (positionals.length) {
    // Which list a bare word belongs to: the last option named before it.
    let current: string[] | undefined;
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      if (a === '--authorized') { current = authorizedArgs; i++; continue; }
      if (a === '--networks') { current = networkArgs; i++; continue; }
      if (a === '--ruleset-json') { i++; continue; }
      if (a.startsWith('--')) { current = undefined; continue; }
      if (!current) {
        io.stderr.write(`policy port25: unexpected "${a}"\n${PORT25_USAGE}`);
        return 2;
      }
      current.push(a);
    }
  }
  if (!authorizedArgs.length) {
    io.stderr.write(`policy port25: --authorized names at least one mail server\n${PORT25_USAGE}`);
    return 2;
  }
  const networks: string[] = [];
  for (const n of networkArgs) {
    const c = canonicalNet(n);
    if (!c) {
      io.stderr.write(`policy port25: --networks "${n}" is not an address or network (CIDR)\n`);
      return 1;
    }
    networks.push(c);
  }
  const resolver = io.resolver ?? createResolver(resolverOptions(config.dns));
  const authorized: string[] = [];
  try {
    for (const h of authorizedArgs) authorized.push(...(await resolveHost(h, resolver)));
  } catch (err) {
    io.stderr.write(`policy port25: ${(err as Error).message}\n`);
    return 1;
  }
  const policy = buildPolicy(authorized, networks);
  if (!values.verify) {
    io.stdout.write(renderRuleset(policy, `authorized: ${authorizedArgs.join(' ')}${networkArgs.length ? `; networks: ${networkArgs.join(' ')}` : ''}`));
    return 0;
  }
  let listing: unknown;
  try {
    const file = values['ruleset-json'];
    const text = file ? fs.readFileSync(file, 'utf8') : await (io.listRuleset ?? runNft)();
    listing = JSON.parse(text);
  } catch (err) {
    io.stderr.write(`policy port25: cannot read the running ruleset (nft -j list ruleset needs root and nftables): ${(err as Error).message.split('\n')[0]}\n`);
    return 1;
  }
  const gaps = compareRuleset(policy, listing);
  if (!gaps.length) {
    io.stdout.write(`the running ruleset enforces the port-25 policy (table inet ${TABLE}: ${authorized.length} authorized, ${networks.length || 'all'} network(s))\n`);
    return 0;
  }
  for (const g of gaps) io.stdout.write(`gap: ${g}\n`);
  return 1;
}
