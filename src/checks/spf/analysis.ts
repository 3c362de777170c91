// Which term of which record decided an SPF result. mailauth returns the result and the top
// record only; the Received-SPF "mechanism=" key, the symbol reasons, the explainer and the
// choice of exp= record (RFC 7208 s6.2: the record in force after redirects, never an included
// one) need the deciding term. It is found by replaying the evaluation over the DNS answers
// mailauth received (the trace), with mailauth's own macro expansion so that the names match
// the ones it asked for. Nothing is asked again; an answer missing from the trace makes the
// analysis give up ("undetermined") rather than guess.
import net from 'node:net';
import { createRequire } from 'node:module';
import type { DnsStep } from './spf-resolver.js';
import { canonicalName } from './spf-resolver.js';
import { parseSpfRecord, selectSpfRecords, type Mechanism, type ParsedRecord, type Qualifier } from './record.js';
import { bindDomainMacro, dottedIp } from './macro.js';

type MailauthMacro = (input: string, values: { sender: string; ip: string; helo: string; mta: string }) => string;
const mailauthMacro = createRequire(import.meta.url)('mailauth/lib/spf/macro.js') as MailauthMacro;

export interface AnalysisInput {
  readonly steps: readonly DnsStep[];
  /** The sender mailauth evaluated (postmaster@helo for the HELO identity). */
  readonly sender: string;
  readonly ip: string;
  readonly helo: string;
  readonly receiver: string;
}

/** The record whose term decided, and the term (undefined: no term matched, the default "neutral"). */
export interface Decision {
  readonly domain: string;
  readonly record: string;
  readonly parsed: ParsedRecord;
  readonly term?: Mechanism;
  /** Domains whose redirect= led to `domain`, in order. */
  readonly redirectedFrom: readonly string[];
}

const MAX_DEPTH = 12;

export function analyse(input: AnalysisInput, domain: string): Decision | undefined {
  const answers = new Map<string, DnsStep>();
  for (const s of input.steps) answers.set(`${s.type} ${s.name}`, s);
  const isV6 = net.isIPv6(input.ip);
  const client = net.isIPv6(input.ip) ? 'ipv6' : 'ipv4';
  const expand = (spec: string) => mailauthMacro(spec, { sender: input.sender, ip: input.ip, helo: input.helo, mta: input.receiver });

  const recordOf = (d: string): { text: string; parsed: ParsedRecord } | undefined => {
    const step = answers.get(`TXT ${canonicalName(d)}`);
    if (step?.outcome !== 'ok') return undefined;
    const spf = selectSpfRecords(step.records as string[][]);
    if (spf.length !== 1) return undefined;
    // As spf-resolver.ts handed it to mailauth: %{d} bound to the record's own domain.
    const parsed = parseSpfRecord(bindDomainMacro(spf[0]!, canonicalName(d)));
    return parsed.ok ? { text: spf[0]!, parsed: parsed.record } : undefined;
  };

  const inNetwork = (addr: string, network: string, bits: number | undefined): boolean => {
    const family = net.isIPv6(network) ? 'ipv6' : 'ipv4';
    if (family !== client || net.isIPv6(addr) !== isV6) return false;
    const list = new net.BlockList();
    list.addSubnet(network, bits ?? (family === 'ipv6' ? 128 : 32), family);
    return list.check(addr, family);
  };

  /** Addresses of `name` of the client's family: undefined when not in the trace or failed. */
  const addresses = (name: string): string[] | undefined => {
    const step = answers.get(`${isV6 ? 'AAAA' : 'A'} ${canonicalName(name)}`);
    if (!step || step.outcome === 'error') return undefined;
    return step.outcome === 'ok' ? (step.records as string[]) : [];
  };

  const matches = (m: Mechanism, current: string, depth: number): boolean | undefined => {
    const cidr = isV6 ? m.cidr6 : m.cidr4;
    switch (m.name) {
      case 'all':
        return true;
      case 'ip4':
      case 'ip6':
        return inNetwork(input.ip, m.network!, m.name === 'ip4' ? m.cidr4 : m.cidr6);
      case 'a': {
        const target = m.domainSpec ? canonicalName(expand(m.domainSpec.toLowerCase())) : current;
        const list = addresses(target);
        return list && list.some((a) => inNetwork(input.ip, a, cidr));
      }
      case 'mx': {
        const target = m.domainSpec ? canonicalName(expand(m.domainSpec.toLowerCase())) : current;
        const step = answers.get(`MX ${target}`);
        if (!step || step.outcome === 'error') return undefined;
        if (step.outcome !== 'ok') return false;
        const hosts = [...(step.records as { exchange: string; priority: number }[])].sort((a, b) => a.priority - b.priority);
        for (const h of hosts) {
          if (!h.exchange) continue; // a null MX (RFC 7505), which mailauth skips
          const list = addresses(h.exchange);
          if (!list) return undefined;
          if (list.some((a) => inNetwork(input.ip, a, cidr))) return true;
        }
        return false;
      }
      case 'exists': {
        const step = answers.get(`A ${canonicalName(expand(m.domainSpec!))}`);
        if (!step || step.outcome === 'error') return undefined;
        return step.outcome === 'ok' && (step.records?.length ?? 0) > 0;
      }
      case 'ptr': {
        const reverse = isV6 ? `${dottedIp(input.ip).split('.').reverse().join('.')}.ip6.arpa` : `${input.ip.split('.').reverse().join('.')}.in-addr.arpa`;
        const step = answers.get(`PTR ${canonicalName(reverse)}`);
        if (!step || step.outcome === 'error') return undefined;
        if (step.outcome !== 'ok') return false;
        const target = canonicalName(m.domainSpec ? expand(m.domainSpec) : current);
        for (const name of (step.records as string[]).slice(0, 10)) {
          const n = canonicalName(name);
          const list = addresses(n);
          if (!list?.some((a) => inNetwork(input.ip, a, undefined))) continue;
          if (n === target || n.endsWith(`.${target}`)) return true;
        }
        return false;
      }
      case 'include': {
        const sub = decide(canonicalName(expand(m.domainSpec!)), depth + 1, []);
        if (!sub) return undefined;
        return sub.term?.qualifier === '+';
      }
    }
  };

  const decide = (current: string, depth: number, redirectedFrom: string[]): Decision | undefined => {
    if (depth > MAX_DEPTH) return undefined;
    const rec = recordOf(current);
    if (!rec) return undefined;
    for (const m of rec.parsed.mechanisms) {
      const hit = matches(m, current, depth);
      if (hit === undefined) return undefined;
      if (hit) return { domain: current, record: rec.text, parsed: rec.parsed, term: m, redirectedFrom };
    }
    if (rec.parsed.redirect) {
      const target = canonicalName(expand(rec.parsed.redirect));
      return decide(target, depth + 1, [...redirectedFrom, current]);
    }
    return { domain: current, record: rec.text, parsed: rec.parsed, redirectedFrom };
  };

  return decide(canonicalName(domain), 0, []);
}

/** The result a decision stands for: the qualifier of its term, or "neutral" without one. */
export function decisionResult(d: Decision): 'pass' | 'fail' | 'softfail' | 'neutral' {
  const q: Qualifier = d.term?.qualifier ?? '?';
  return q === '+' ? 'pass' : q === '-' ? 'fail' : q === '~' ? 'softfail' : 'neutral';
}
