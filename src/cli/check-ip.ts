// `portcullis check-ip IP`: what the gateway would decide about a client at connect, and why.
// It runs the same connect-stage checks, through the same resolver and local zone mirrors,
// with the same weights as the SMTP path; only the state-store checks (brute-force) are left out.
import net from 'node:net';
import type { Config } from '../config/schema.js';
import { builtinChecks, builtinSymbols } from '../gateway/checks.js';
import { CheckRunner } from '../pipeline/runner.js';
import { buildPolicy } from '../gateway/policy.js';
import type { SymbolAction } from '../pipeline/actions.js';
import { replyLine } from '../protocol/reply.js';
import { spamSymbols } from '../checks/spam-engine.js';
import type { ConnectionFacts, ScoredSymbol } from '../checks/types.js';
import type { Resolver } from '../dns/types.js';
import { NetworkSet } from '../net/cidr.js';
import { silentLogger } from '../log.js';

export interface IpVerdict {
  ip: string;
  trusted: boolean;
  symbols: ScoredSymbol[];
  score: number;
  dnsblSum: number;
  refused?: { reply: string; when: 'rcpt' | 'connect' };
  tarpitMs: number;
  /** What the connect-time refusals do under this configuration's policy.actions. */
  actions: { DNSBL_LISTED: SymbolAction; EARLY_TALKER: SymbolAction };
}

export async function checkIp(config: Config, resolver: Resolver, dnsServers: number, ip: string): Promise<IpVerdict> {
  if (!net.isIP(ip)) throw new Error(`"${ip}" is not an IP address`);
  const trusted = new NetworkSet(config.relay.trusted_networks).has(ip);
  // Without bruteForce: that state lives in the running gateway's store (`auth status IP`).
  const checks = builtinChecks({ config, resolver, ownAddresses: [], owns: () => false }, dnsServers).filter((c) => c.stage === 'connect');
  const builtin = builtinSymbols(config);
  const { policy } = buildPolicy(config, [...builtin, ...spamSymbols(config)]);
  // The decision as the gateway takes it outside observe mode: what would be refused is shown as refused.
  const runner = new CheckRunner(checks, { ...policy, observe: false }, silentLogger());
  const facts: ConnectionFacts = {
    sessionId: 'check-ip', listener: 'mx', listenerKind: 'mx', remoteAddress: ip, remotePort: 0,
    localAddress: '0.0.0.0', localPort: 25, trustedNetwork: trusted, esmtp: true,
  };
  const outcome = await runner.run('connect', { conn: facts });
  const score = Math.round(outcome.symbols.reduce((n, s) => n + s.score, 0) * 100) / 100;
  // The lists' own weights: the symbols of the dnsbl group that carry one (DNSBL_<NAME>, DNSWL_<NAME>).
  const lists = new Set(config.dnsbl.lists.length ? builtin.filter((d) => d.group === 'dnsbl' && d.weight !== undefined).map((d) => d.name) : []);
  const dnsblSum = outcome.symbols.filter((s) => lists.has(s.name)).reduce((n, s) => n + s.score, 0);
  const t = config.tarpit;
  const verdict: IpVerdict = {
    ip, trusted, symbols: outcome.symbols, score, dnsblSum,
    tarpitMs: !trusted && t.delay && score >= t.score ? t.delay : 0,
    actions: { DNSBL_LISTED: policy.actions.of('DNSBL_LISTED'), EARLY_TALKER: policy.actions.of('EARLY_TALKER') },
  };
  if (outcome.demand) {
    const r = outcome.demand.reply;
    verdict.refused = { reply: replyLine(r), when: outcome.demand.kind === 'tempfail' ? 'connect' : 'rcpt' };
  }
  return verdict;
}

export function describeIpVerdict(v: IpVerdict, config: Config): string {
  const lines = [`client ${v.ip}${v.trusted ? ' (trusted network: DNS lists, rDNS, greeting delay, tarpit and limits do not apply)' : ''}`];
  if (!v.symbols.length) lines.push('  no symbols');
  for (const s of v.symbols) lines.push(`  ${s.name.padEnd(22)} ${String(s.score).padStart(6)}  ${s.reason}`);
  lines.push(`connection score ${v.score}`);
  if (config.dnsbl.lists.length) {
    lines.push(`DNS list sum ${v.dnsblSum} (threshold ${config.dnsbl.threshold}: DNSBL_LISTED, action ${v.actions.DNSBL_LISTED})`);
  }
  if (v.refused) {
    lines.push(v.refused.when === 'rcpt'
      ? `decision: REFUSE — every RCPT except role addresses gets: ${v.refused.reply}`
      : `decision: TEMPFAIL at connect — ${v.refused.reply}`);
  } else lines.push('decision: ACCEPT (content checks decide the message)');
  if (v.tarpitMs) lines.push(`tarpit: every reply waits ${v.tarpitMs} ms (score ≥ tarpit.score ${config.tarpit.score})`);
  if (config.greeting.delay && !v.trusted) lines.push(`greeting delay: ${config.greeting.delay} ms on first contact (early talkers: EARLY_TALKER, action ${v.actions.EARLY_TALKER})`);
  return lines.join('\n');
}

