// DKIM, ARC and DMARC as one data-stage check ("dkim_dmarc_arc"): the message streams once through
// mailauth's DKIM verifier (which also gathers the ARC chain and the From addresses), then the
// ARC chain is validated, then DMARC is evaluated with the DKIM results and the SPF result the
// MAIL stage already found (facts.spf from the "spf" check, declared with `after`: SPF is never
// evaluated twice). The outcomes go on as facts (facts.dkim, facts.dmarc) for the allow lists.
// DMARC_REJECT carries its refusal (550 5.7.1); what DMARC_REJECT and DMARC_QUARANTINE do is the
// actions layer's (reject and junk by default).
//
// One check rather than three, because DMARC needs DKIM's per-signature results and ARC's hops,
// and handing them between checks would need shared per-message state. Each phase ends in a
// result of its own on failure (a DNS error is a temperror, never an exception), so one slow
// zone cannot cost the others their answer.
//
// Not run for authenticated submission or trusted networks: DMARC protects recipients from mail
// that claims a domain it cannot prove; our own users' mail is proven by their login.
import type { AnyCheck, Check, CheckResult, Facts, MessageFacts, SymbolHit } from '../types.js';
import type { Resolver } from '../../dns/types.js';
import type { Logger } from '../../log.js';
import { reply } from '../../protocol/reply.js';
import type { AuthenticationConfig } from './config.js';
import { budgetedResolve } from './budget-resolver.js';
import { unsignedMessage, verifyDkim, type DkimSignature } from './verify-dkim.js';
import { verifyArc, arcOverride, type ArcOutcome, type ArcOverride } from './arc.js';
import { evaluateDmarc, sampleKey, type DmarcOutcome, type Policy } from './dmarc.js';
import { aligned, normal, underDomain } from './domains.js';
import { arcEntry, clean, dkimEntry, dmarcEntry } from './auth-results.js';
import type { DmarcObservation } from '../../reports/dmarc-observation.js';

export interface AuthenticationDeps {
  readonly resolver: Resolver;
  readonly config: AuthenticationConfig;
  /** This host's name (for log lines). */
  readonly hostname: string;
  readonly logger?: Logger;
  /** Overrides config.timeout (the DNS budget of one message). */
  readonly timeoutMs?: number;
  readonly now?: () => number;
  /** Told of each DMARC evaluation against a published record (the aggregate reports we send, src/reports/dmarc-out.ts). */
  readonly onDmarc?: (o: DmarcObservation) => void;
}

const MAX_FROM_DOMAINS = 5;
/** DNS questions per message: keys of every signature, the DMARC records, the ARC seals, np checks. */
const MAX_QUERIES = 80;

/** The checks for this configuration (none when DKIM, DMARC and ARC are all disabled). */
export function authenticationChecks(deps: AuthenticationDeps): AnyCheck[] {
  const c = deps.config;
  if (!c.dkim.enabled && !c.dmarc.enabled && !c.arc.enabled) return [];
  return [authenticationCheck(deps)];
}

export function authenticationCheck(deps: AuthenticationDeps): Check<'data'> {
  const budget = deps.timeoutMs ?? deps.config.timeout;
  return {
    name: 'dkim_dmarc_arc',
    stage: 'data',
    // Reads facts.spf, written by the MAIL-stage SPF check.
    after: ['spf'],
    // Our own budget turns late DNS into temperrors first; the runner's is the backstop.
    timeoutMs: budget + 5_000,
    async run({ conn, envelope, message, facts }) {
      if (conn.authUser || conn.trustedNetwork) return {};
      const now = deps.now ?? Date.now;
      const c = deps.config;
      const { resolve } = budgetedResolve(deps.resolver, { deadline: now() + budget, maxQueries: MAX_QUERIES, now });
      const dkim = isSigned(message) ? await verifyDkim(message.stream(), {
        resolve, maxSignatures: c.dkim.max_signatures, minRsaBits: c.dkim.min_rsa_bits, allowSha1: c.dkim.allow_sha1,
      }) : unsignedMessage(message.headers);
      const arc: ArcOutcome = c.arc.enabled
        ? await verifyArc(dkim.arc, resolve, c.dkim.min_rsa_bits)
        : { result: 'none', instance: 0, reason: '', hops: [] };

      const symbols: SymbolHit[] = [];
      const authResults: string[] = [];
      const found: { dkim?: Facts['dkim']; dmarc?: Facts['dmarc'] } = {};
      if (c.dkim.enabled) {
        const fromDomains = domainsOf(dkim.fromAddresses);
        const valid = dkim.signatures.filter((s) => s.kind === 'valid');
        found.dkim = { valid: valid.map((s) => s.domain), aligned: valid.some((s) => fromDomains.some((f) => aligned(s.domain, f, false))) };
        symbols.push(...dkimSymbols(dkim.signatures, fromDomains));
        authResults.push(...(dkim.signatures.length ? dkim.signatures.map(dkimEntry) : ['dkim=none']));
      }
      if (c.arc.enabled) {
        symbols.push(arcSymbol(arc));
        authResults.push(arcEntry(arc));
      }
      if (c.dmarc.enabled) {
        const header = (k: string) => message.headers.find((h) => h.key === k)?.value;
        const key = sampleKey({ messageId: header('message-id'), from: header('from'), date: header('date'), subject: header('subject') });
        const observe = deps.onDmarc && ((o: DmarcOutcome, decision?: Decision) => deps.onDmarc!(observation(o, decision, {
          at: now(), sourceIp: conn.remoteAddress, sender: envelope.sender, dkim: dkim.signatures, spf: facts?.spf,
        })));
        const d = await dmarcPhase({ deps, dkim: dkim.signatures, fromAddresses: dkim.fromAddresses, spf: facts?.spf, arc, resolve, sampleKey: key, conn: conn.sessionId, observe });
        symbols.push(...d.symbols);
        authResults.push(...d.authResults);
        found.dmarc = d.fact;
      }
      const result: CheckResult = { symbols, authResults, facts: found };
      return result;
    },
  };
}

function domainsOf(addresses: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of addresses) {
    const at = a.lastIndexOf('@');
    const d = at >= 0 ? normal(a.slice(at + 1)) : '';
    if (d && !out.includes(d)) out.push(d);
  }
  return out;
}

const describe = (s: DkimSignature) => clean(`${s.domain || '?'} (s=${s.selector || '?'})${s.reason ? `: ${s.reason}` : ''}`, 200);

export function dkimSymbols(signatures: readonly DkimSignature[], fromDomains: readonly string[]): SymbolHit[] {
  if (!signatures.length) return [{ name: 'DKIM_NONE', reason: 'the message has no DKIM signature' }];
  const out: SymbolHit[] = [];
  const of = (kind: DkimSignature['kind']) => signatures.filter((s) => s.kind === kind);
  const valid = of('valid');
  if (valid.length) {
    out.push({ name: 'DKIM_VALID', reason: clean(valid.map((s) => `${s.domain} (s=${s.selector})${s.unsignedBytes ? ` with ${s.unsignedBytes} unsigned body bytes` : ''}`).join(', ')) });
    const au = valid.find((s) => fromDomains.some((f) => aligned(s.domain, f, false)));
    if (au) out.push({ name: 'DKIM_VALID_AU', reason: clean(`${au.domain} aligned with From ${fromDomains.join(', ')}`) });
  }
  for (const [kind, name] of [['invalid', 'DKIM_INVALID'], ['permfail', 'DKIM_PERMFAIL'], ['tempfail', 'DKIM_TEMPFAIL']] as const) {
    const list = of(kind);
    if (list.length) out.push({ name, reason: clean(list.map(describe).join('; '), 400) });
  }
  return out;
}

function arcSymbol(a: ArcOutcome): SymbolHit {
  if (a.result === 'pass') return { name: 'ARC_PASS', reason: clean(`chain of ${a.instance} validates; newest sealer ${a.hops[0]?.sealer ?? '?'}`) };
  if (a.result === 'fail') return { name: 'ARC_FAIL', reason: clean(`i=${a.instance}: ${a.reason}`) };
  return { name: 'ARC_NONE', reason: 'no ARC chain' };
}

interface DmarcPhase {
  readonly symbols: SymbolHit[];
  readonly authResults: string[];
  readonly fact: NonNullable<Facts['dmarc']>;
}

/** Higher is worse: the From domain whose outcome decides when a message has several. */
function rank(o: DmarcOutcome): number {
  if (o.result === 'fail') return o.applied === 'reject' ? 6 : o.applied === 'quarantine' ? 5 : 4;
  return o.result === 'temperror' ? 3 : o.result === 'none' ? 2 : 1;
}

async function dmarcPhase(p: {
  deps: AuthenticationDeps; dkim: readonly DkimSignature[]; fromAddresses: readonly string[];
  spf: { readonly result: string; readonly domain: string } | undefined; arc: ArcOutcome;
  resolve: Parameters<typeof evaluateDmarc>[0]['resolve']; sampleKey: string; conn: string;
  observe?: (o: DmarcOutcome, decision?: Decision) => void;
}): Promise<DmarcPhase> {
  const c = p.deps.config;
  const domains = domainsOf(p.fromAddresses);
  if (!domains.length) {
    return { symbols: [{ name: 'DMARC_PERMERROR', reason: 'no usable From address: DMARC cannot be evaluated' }], authResults: ['dmarc=permerror (no From address)'], fact: { result: 'permerror', aligned: false } };
  }
  const dkimPass = p.dkim.filter((s) => s.kind === 'valid').map((s) => s.domain);
  const dkimTemp = p.dkim.filter((s) => s.kind === 'tempfail').map((s) => s.domain);
  // RFC 7489 s6.6.1: a From with several domains is evaluated for each of them; the worst decides.
  const outcomes: DmarcOutcome[] = [];
  for (const fromDomain of domains.slice(0, MAX_FROM_DOMAINS)) {
    outcomes.push(await evaluateDmarc({ fromDomain, dkimPass, dkimTemp, spf: p.spf, sampleKey: p.sampleKey, resolve: p.resolve }));
  }
  const worst = outcomes.reduce((a, b) => (rank(b) > rank(a) ? b : a));
  const authResults: string[] = [];
  const symbols: SymbolHit[] = [];
  for (const o of outcomes) {
    if (o.result !== 'fail') {
      authResults.push(o.result === 'pass' ? dmarcEntry(o, 'none') : dmarcEntry(o));
      if (o.result === 'pass') p.observe?.(o);
      continue;
    }
    const decision = enforce(o, p.deps, p.arc);
    p.observe?.(o, decision);
    authResults.push(dmarcEntry(o, decision.disposition, decision.note));
    if (o !== worst) continue;
    symbols.push(decision.symbol);
    if (o.applied !== 'none' || decision.override) {
      p.deps.logger?.info({
        event: 'dmarc', session: p.conn, from_domain: o.fromDomain, policy: o.policy, source: o.source, applied: o.applied,
        sampled_out: o.sampledOut, disposition: decision.disposition,
        ...(decision.override ? { arc_override: decision.override.why } : {}),
        ...(decision.exempt ? { exempt: true } : {}), reason: o.reason,
      }, decision.override ? 'DMARC failure not enforced: trusted ARC sealer vouches' : 'DMARC failure');
    }
  }
  if (worst.result !== 'fail') {
    if (worst.result === 'pass') symbols.push({ name: 'DMARC_PASS', reason: clean(worst.reason) });
    else if (worst.result === 'none') symbols.push({ name: 'DMARC_NA', reason: clean(worst.reason) });
    else symbols.push({ name: 'DMARC_TEMPERROR', reason: clean(worst.reason) });
  }
  const fact: NonNullable<Facts['dmarc']> = {
    result: worst.result, domain: worst.fromDomain, aligned: worst.result === 'pass',
    ...(worst.applied ? { policy: worst.applied } : {}),
  };
  return { symbols, authResults, fact };
}

/** The aggregate-report row of one evaluation (RFC 7489 appendix C: row, identifiers, auth_results). */
function observation(o: DmarcOutcome, decision: Decision | undefined, m: {
  at: number; sourceIp: string; sender: string; dkim: readonly DkimSignature[]; spf?: { readonly result: string; readonly domain: string };
}): DmarcObservation {
  const reasons: DmarcObservation['reasons'][number][] = [];
  if (o.sampledOut && o.policy !== o.applied) reasons.push('sampled_out');
  if (decision?.override) reasons.push('trusted_forwarder');
  if (decision?.exempt) reasons.push('local_policy');
  const at = m.sender.lastIndexOf('@');
  return {
    at: m.at, sourceIp: m.sourceIp, headerFrom: o.fromDomain, envelopeFrom: at >= 0 ? normal(m.sender.slice(at + 1)) : '',
    policyDomain: o.recordDomain ?? o.fromDomain, record: o.record?.raw ?? '',
    disposition: decision?.disposition ?? 'none', reasons,
    dkimAligned: !!o.alignedDkim, spfAligned: !!o.alignedSpf,
    dkim: m.dkim.map((s) => ({ domain: s.domain, selector: s.selector, result: s.result })),
    ...(m.spf ? { spf: { domain: m.spf.domain, result: m.spf.result } } : {}),
  };
}

interface Decision {
  readonly symbol: SymbolHit;
  /** What the domain's policy asks for, as Authentication-Results reports it (the actions layer may do less). */
  readonly disposition: 'none' | 'quarantine' | 'reject';
  readonly note?: string;
  readonly override?: ArcOverride;
  readonly exempt?: boolean;
}

/**
 * What a DMARC failure is here: the symbol (DMARC_REJECT carrying its refusal), and whether the
 * domain's policy is set aside (ARC override, a local exemption: scored only). What the symbol
 * then does is the actions layer's.
 */
export function enforce(o: DmarcOutcome, deps: Pick<AuthenticationDeps, 'config'>, arc: ArcOutcome): Decision {
  const c = deps.config;
  const applied: Policy = o.applied ?? 'none';
  const reason = clean(o.reason, 400);
  if (applied === 'none') {
    return { symbol: { name: 'DMARC_NONE_POLICY', reason }, disposition: 'none', ...(o.policy !== 'none' ? { note: `pct=${o.record?.pct} sampled out` } : {}) };
  }
  const override = c.arc.enabled ? arcOverride(arc, o.fromDomain, c.arc.trusted_sealers) : undefined;
  if (override) {
    return {
      symbol: { name: 'DMARC_ARC_OVERRIDE', reason: clean(`${reason}; not enforced: trusted ARC sealer ${override.why}`, 500) },
      disposition: 'none', note: `arc override: ${override.sealer}`, override,
    };
  }
  const name = applied === 'reject' ? 'DMARC_REJECT' : 'DMARC_QUARANTINE';
  const exempt = c.dmarc.reject_exempt_domains.some((d) => underDomain(o.fromDomain, d));
  if (exempt) {
    return { symbol: { name, reason: clean(`${reason}; ${o.fromDomain} is in dmarc.reject_exempt_domains: scored only`, 500), scoreOnly: true }, disposition: 'none', note: 'local exemption', exempt };
  }
  if (applied === 'reject') return { symbol: { name, reason, reply: dmarcReject(o) }, disposition: 'reject' };
  return { symbol: { name, reason }, disposition: 'quarantine' };
}

/** 550 5.7.1 at the end of DATA, naming the From domain and its policy (never a bounce). */
export function dmarcReject(o: DmarcOutcome) {
  const tag = `${o.source ?? 'p'}=${o.policy ?? 'reject'}`;
  return reply(550, '5.7.1', clean(`Error: message rejected by the DMARC policy of ${o.fromDomain} (${tag}): the From domain ${o.fromDomain} is not authenticated by an aligned DKIM signature or SPF`, 400));
}

/**
 * Whether mailauth's verifier has anything to verify: a DKIM signature or an ARC set. Most mail
 * without either (and the verifier's byte-by-byte header scan costs ≈0.3 ms a message) is answered
 * from the session's own header parse by unsignedMessage().
 */
function isSigned(message: MessageFacts): boolean {
  return message.headers.some((h) => h.key === 'dkim-signature' || h.key.startsWith('arc-'));
}
