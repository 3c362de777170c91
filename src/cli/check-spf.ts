// `portcullis check-spf IP SENDER HELO`: what the gateway would decide for a client and why,
// from the same evaluation and the same formatting the "spf" and "spf_helo" checks use.
import type { Config } from '../config/schema.js';
import type { Resolver } from '../dns/types.js';
import { NetworkSet } from '../net/cidr.js';
import { shippedWeights } from '../pipeline/weights.js';
import { SymbolRegistry } from '../checks/registry.js';
import { ActionTable, type SymbolAction } from '../pipeline/actions.js';
import { SPF_SYMBOLS } from '../checks/spf/symbols.js';
import { formatReply } from '../protocol/reply.js';
import { evaluateSpf, type SpfIdentity, type SpfOptions, type SpfOutcome } from '../checks/spf/evaluate.js';
import { authResult, receivedSpf, spfReject, spfSymbol } from '../checks/spf/spf-check.js';
import { selectSpfRecords } from '../checks/spf/record.js';

export interface ExplainInput {
  readonly ip: string;
  /** MAIL FROM; '' or '<>' for the null sender. */
  readonly sender: string;
  readonly helo: string;
  /** The receiving host (Received-SPF receiver, %{r}); usually config.hostname. */
  readonly hostname: string;
}

export type ExplainConfig = Pick<Config, 'spf'> & {
  readonly policy?: Partial<Pick<Config['policy'], 'symbols' | 'observe' | 'actions'>>;
  readonly relay?: Pick<Config['relay'], 'trusted_networks'>;
};

export interface IdentityReport {
  readonly identity: SpfIdentity;
  readonly check: 'spf' | 'spf_helo';
  readonly domain: string;
  readonly sender: string;
  readonly result: SpfOutcome['result'];
  /** Every SPF record fetched, in order: the domain's own first. */
  readonly records: { domain: string; record: string }[];
  readonly decidedBy?: { term?: string; domain: string; redirectedFrom: string[] };
  readonly explanation?: string;
  readonly explanationSource?: 'exp' | 'default';
  readonly problem?: string;
  readonly lookups: { count: number; limit: number; void: number; voidLimit: number; queries: number };
  readonly dns: { name: string; type: string; outcome: string; records?: unknown[]; reason?: string; ms: number }[];
  readonly elapsedMs: number;
  readonly receivedSpf: string;
  readonly authenticationResults: string;
  readonly symbol: { name: string; reason: string; weight?: number };
  readonly action: { kind: 'reject'; reply: string; observeOnly: boolean } | { kind: 'score'; weight?: number };
}

export interface ExplainJson {
  readonly ip: string;
  readonly sender: string;
  readonly helo: string;
  readonly enabled: boolean;
  /** What SPF_FAIL does (policy.actions; reject by default). */
  readonly failAction: SymbolAction;
  readonly trustedNetwork: boolean;
  readonly identities: IdentityReport[];
  /** The gateway would refuse the recipients (at RCPT, 550 5.7.23): for a CLI exit status. */
  readonly refused: boolean;
  readonly decision: string;
}

/** Evaluates as the gateway would and explains it; `weights` default to conf/scores.yaml + policy.symbols. */
export async function explainSpf(
  resolver: Resolver,
  input: ExplainInput,
  config: ExplainConfig,
  weights?: ReadonlyMap<string, number>,
  options?: SpfOptions,
): Promise<{ text: string; json: ExplainJson }> {
  const w = weights ?? defaultWeights(config);
  const sender = input.sender === '<>' ? '' : input.sender.replace(/^<(.*)>$/, '$1');
  const trusted = (config.relay?.trusted_networks?.length ?? 0) > 0 && new NetworkSet(config.relay!.trusted_networks).has(input.ip);
  const observe = !!config.policy?.observe;
  const query = { ip: input.ip, sender, helo: input.helo, hostname: input.hostname };

  const failAction = spfFailAction(config);
  const runs: Promise<IdentityReport>[] = [evaluateSpf(resolver, query, options).then((o) => report(o, 'spf', failAction === 'reject' ? 'reject' : 'score', w, observe))];
  if (config.spf.helo && sender) {
    runs.push(evaluateSpf(resolver, { ...query, identity: 'helo' }, options).then((o) => report(o, 'spf_helo', 'score', w, observe)));
  }
  const identities = await Promise.all(runs);
  const decision = decide(identities, config, trusted, observe);
  const refused = config.spf.enabled && !trusted && !observe && identities.some((i) => i.action.kind === 'reject');
  const json: ExplainJson = {
    ip: input.ip, sender, helo: input.helo, enabled: config.spf.enabled, failAction,
    trustedNetwork: trusted, identities, refused, decision,
  };
  return { text: render(json), json };
}

function spfRegistry(): SymbolRegistry | undefined {
  try {
    return new SymbolRegistry(SPF_SYMBOLS, shippedWeights());
  } catch {
    return undefined;
  }
}

/** The SPF symbols' weights with the gateway's precedence: policy.symbols over conf/scores.yaml. */
function defaultWeights(config: ExplainConfig): ReadonlyMap<string, number> | undefined {
  const registry = spfRegistry();
  if (!registry) return undefined;
  return new Map(registry.all().map((s) => [s.name, config.policy?.symbols?.[s.name] ?? s.weight]));
}

/** SPF_FAIL's action as the actions layer resolves it (a name, a glob, group:spf, the default). */
export function spfFailAction(config: ExplainConfig): SymbolAction {
  return new ActionTable(new SymbolRegistry(SPF_SYMBOLS, new Map()), config.policy?.actions ?? {}).of('SPF_FAIL');
}

function report(o: SpfOutcome, check: 'spf' | 'spf_helo', failAction: 'reject' | 'score', w: ReadonlyMap<string, number> | undefined, observe: boolean): IdentityReport {
  const symbol = spfSymbol(o, check === 'spf' ? 'SPF' : 'SPF_HELO');
  const weight = w?.get(symbol.name);
  const records: { domain: string; record: string }[] = [];
  for (const s of o.dns) {
    if (s.type !== 'TXT' || s.outcome !== 'ok') continue;
    for (const r of selectSpfRecords(s.records as string[][])) {
      if (!records.some((x) => x.domain === s.name && x.record === r)) records.push({ domain: s.name, record: r });
    }
  }
  const d = o.decision;
  return {
    identity: o.identity, check, domain: o.domain, sender: o.sender, result: o.result, records,
    decidedBy: d ? { term: d.term?.text, domain: d.domain, redirectedFrom: [...d.redirectedFrom] } : undefined,
    explanation: o.explanation, explanationSource: o.explanationSource, problem: o.problem,
    lookups: { ...o.lookups, voidLimit: 2, queries: o.dns.length },
    dns: o.dns.map((s) => ({ ...s, records: s.records ? [...s.records] : undefined })),
    elapsedMs: o.elapsedMs,
    receivedSpf: receivedSpf(o),
    authenticationResults: authResult(o),
    symbol: { ...symbol, weight },
    action: o.result === 'fail' && failAction === 'reject'
      ? { kind: 'reject', reply: formatReply(spfReject(o)).trimEnd(), observeOnly: observe }
      : { kind: 'score', weight },
  };
}

function decide(ids: IdentityReport[], config: ExplainConfig, trusted: boolean, observe: boolean): string {
  if (!config.spf.enabled) return 'SPF is disabled (spf.enabled: false): the gateway checks nothing; the evaluation above is for information.';
  if (trusted) return 'the client is in relay.trusted_networks: the gateway skips SPF for it (as for authenticated users).';
  const reject = ids.find((i) => i.action.kind === 'reject');
  const scored = ids.map((i) => `${i.symbol.name}${i.symbol.weight === undefined ? '' : ` (${i.symbol.weight >= 0 ? '+' : ''}${i.symbol.weight})`}`).join(', ');
  if (reject && reject.action.kind === 'reject') {
    return observe
      ? `observe mode: would refuse every recipient with "${reject.action.reply}", logs it and accepts instead; symbols ${scored}.`
      : `refuses every recipient at RCPT (except postmaster@ and abuse@) with "${reject.action.reply}" (policy.actions SPF_FAIL: reject, the default).`;
  }
  return `accepts as far as SPF goes and adds ${scored} to the message score (authenticated users and trusted networks are not checked).`;
}

function render(j: ExplainJson): string {
  const lines: string[] = [];
  lines.push(`SPF for client ${j.ip}, MAIL FROM <${j.sender}>, HELO ${j.helo || '(none)'}`);
  for (const r of j.identities) {
    lines.push('');
    const what = r.identity === 'helo' ? `HELO identity (postmaster@${r.domain})` : `MAIL FROM identity (${r.domain})`;
    lines.push(`${what}: ${r.result.toUpperCase()}   [check ${r.check}]`);
    if (!r.records.length) lines.push('  records:      none found');
    r.records.forEach((rec, i) => lines.push(`  ${i === 0 ? 'records:     ' : '             '} ${rec.domain}: "${rec.record}"`));
    if (r.decidedBy) {
      const via = r.decidedBy.redirectedFrom.length ? ` (via redirect from ${r.decidedBy.redirectedFrom.join(', ')})` : '';
      lines.push(`  decided by:   ${r.decidedBy.term ? `"${r.decidedBy.term}" in the record of ${r.decidedBy.domain}${via}` : `no term matched in the record of ${r.decidedBy.domain}${via}: default neutral`}`);
    } else if (['pass', 'fail', 'softfail', 'neutral'].includes(r.result)) {
      lines.push('  decided by:   undetermined (an answer needed to replay the evaluation is missing)');
    }
    if (r.explanation) lines.push(`  explanation:  ${r.explanation} (${r.explanationSource === 'exp' ? "the domain's exp=" : 'default'})`);
    if (r.problem) lines.push(`  problem:      ${r.problem}`);
    lines.push(`  DNS:          ${r.lookups.count} of ${r.lookups.limit} lookups, ${r.lookups.void} of ${r.lookups.voidLimit} void; ${r.lookups.queries} queries in ${r.elapsedMs} ms`);
    for (const s of r.dns) {
      const answer = s.outcome === 'ok' ? (s.records ?? []).map((x) => (Array.isArray(x) ? `"${x.join('')}"` : typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') : s.outcome.toUpperCase();
      lines.push(`    ${s.type.padEnd(5)} ${s.name} -> ${answer.length > 120 ? `${answer.slice(0, 117)}...` : answer}${s.reason ? ` (${s.reason})` : ''}`);
    }
    lines.push(`  ${r.receivedSpf}`);
    lines.push(`  Authentication-Results: <host>; ${r.authenticationResults}`);
    lines.push(`  symbol:       ${r.symbol.name}${r.symbol.weight === undefined ? '' : ` (weight ${r.symbol.weight})`}: ${r.symbol.reason}`);
  }
  lines.push('');
  lines.push(`Gateway: ${j.decision}`);
  return lines.join('\n');
}
