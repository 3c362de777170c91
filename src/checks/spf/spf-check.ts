// SPF (RFC 7208) as pipeline checks, at the MAIL stage:
// - "spf": the MAIL FROM identity; for the null sender, the HELO identity (postmaster@<helo>,
//   RFC 7208 s2.4). Emits SPF_<RESULT>; SPF_FAIL carries its refusal (550 5.7.23, RFC 7372, with
//   the domain's explanation), which the actions layer sends (SPF_FAIL: reject by default; the
//   session applies MAIL-stage rejects at RCPT). The result is also a fact (facts.spf) for DMARC
//   and the allow lists.
// - "spf_helo" (spf.helo): the HELO identity on its own (RFC 7208 s2.3), SPF_HELO_<RESULT>,
//   scored only (facts.spfHelo). Not run for the null sender, where "spf" already checked that identity.
// Both add an Authentication-Results method (RFC 8601) and a Received-SPF trace field (RFC 7208
// s9.1). Neither runs for authenticated clients or trusted networks: SPF judges the path of
// inbound mail, and our own users' mail does not come by that path.
import type { Check, CheckResult, ConnectionFacts, SpfResult, SymbolHit } from '../types.js';
import type { SpfConfig } from './config.js';
import type { Resolver } from '../../dns/types.js';
import { reply, type Reply } from '../../protocol/reply.js';
import { evaluateSpf, type SpfIdentity, type SpfOptions, type SpfOutcome } from './evaluate.js';

export type { SpfConfig };

export interface SpfDeps {
  readonly resolver: Resolver;
  /** This host's name (receiver= in Received-SPF, the %{r} macro). */
  readonly hostname: string;
  readonly config: SpfConfig;
  /** Evaluation options; budgetMs defaults to 20 s (RFC 7208 s4.6.4). */
  readonly options?: SpfOptions;
}

const DEFAULT_BUDGET_MS = 20_000;

/** The SPF checks for this configuration (none when spf.enabled is false). */
export function spfChecks(deps: SpfDeps): (Check<'mail'>)[] {
  if (!deps.config.enabled) return [];
  return deps.config.helo ? [spfCheck(deps), spfHeloCheck(deps)] : [spfCheck(deps)];
}

const skip = (conn: ConnectionFacts): boolean => !!conn.authUser || conn.trustedNetwork;

export function spfCheck(deps: SpfDeps): Check<'mail'> {
  const budget = deps.options?.budgetMs ?? DEFAULT_BUDGET_MS;
  return {
    name: 'spf',
    stage: 'mail',
    // Our own budget ends the evaluation with "temperror" first; the runner's is the backstop.
    timeoutMs: budget + 2_000,
    async run({ conn, sender }) {
      if (skip(conn)) return {};
      const outcome = await evaluateSpf(deps.resolver, {
        ip: conn.remoteAddress, sender, helo: conn.helo ?? '', hostname: deps.hostname,
      }, { ...deps.options, budgetMs: budget });
      return spfCheckResult(outcome);
    },
  };
}

export function spfHeloCheck(deps: SpfDeps): Check<'mail'> {
  const budget = deps.options?.budgetMs ?? DEFAULT_BUDGET_MS;
  return {
    name: 'spf_helo',
    stage: 'mail',
    timeoutMs: budget + 2_000,
    async run({ conn, sender }) {
      if (skip(conn) || !sender || !conn.helo) return {};
      const outcome = await evaluateSpf(deps.resolver, {
        ip: conn.remoteAddress, sender, helo: conn.helo, hostname: deps.hostname, identity: 'helo',
      }, { ...deps.options, budgetMs: budget });
      // The HELO identity is scored, never refused on its own (see the file comment).
      return spfCheckResult(outcome, 'SPF_HELO');
    },
  };
}

/**
 * What a check reports for an outcome: the symbol (SPF_FAIL of the MAIL identity carrying its
 * refusal), the fact, the Authentication-Results method and the Received-SPF field.
 */
export function spfCheckResult(o: SpfOutcome, prefix = 'SPF'): CheckResult {
  const symbol = spfSymbol(o, prefix);
  const helo = prefix === 'SPF_HELO';
  const fact = { result: o.result as SpfResult, domain: spfDomain(o) };
  return {
    symbols: [o.result === 'fail' && !helo ? { ...symbol, reply: spfReject(o) } : symbol],
    facts: helo ? { spfHelo: fact } : { spf: fact },
    authResults: [authResult(o)],
    trace: [receivedSpf(o)],
  };
}

/** The identity's domain, as DMARC aligns it: MAIL FROM's, or the HELO name checked in its place. */
function spfDomain(o: SpfOutcome): string {
  return o.domain.replace(/^\[.*\]$/, '').toLowerCase();
}

/** e.g. { name: 'SPF_FAIL', reason: 'example.org does not permit 192.0.2.9: "-all" in the record of example.org' }. */
export function spfSymbol(o: SpfOutcome, prefix = 'SPF'): SymbolHit {
  return { name: `${prefix}_${o.result.toUpperCase()}`, reason: clean(symbolReason(o), 300) };
}

function symbolReason(o: SpfOutcome): string {
  const who = o.identity === 'helo' ? `HELO ${o.helo}` : o.domain;
  switch (o.result) {
    case 'pass':
      return `${who} permits ${o.ip}: ${decidingTerm(o)}`;
    case 'fail':
      return `${who} does not permit ${o.ip}: ${decidingTerm(o)}; ${o.explanationSource === 'exp' ? 'explanation' : 'default explanation'}: ${o.explanation}`;
    case 'softfail':
      return `${who} does not permit ${o.ip} but asks for no refusal (softfail): ${decidingTerm(o)}`;
    case 'neutral':
      return `${who} makes no statement about ${o.ip}: ${decidingTerm(o)}`;
    case 'none':
      return `${who} publishes no SPF record${o.problem ? ` (${o.problem})` : ''}`;
    case 'temperror':
      return `${who}: temporary error: ${o.problem ?? 'unknown'}`;
    case 'permerror':
      return `${who}: permanent error: ${o.problem ?? 'unknown'}`;
  }
}

/** The deciding term in words: '"-all" in the record of example.org (via redirect from a.example)'. */
export function decidingTerm(o: SpfOutcome): string {
  const d = o.decision;
  if (!d) return 'deciding term undetermined';
  const via = d.redirectedFrom.length ? ` (via redirect from ${d.redirectedFrom.join(', ')})` : '';
  return d.term ? `"${d.term.text}" in the record of ${d.domain}${via}` : `no term matched in the record of ${d.domain}${via} (default neutral)`;
}

/** RFC 8601 method result: "spf=pass smtp.mailfrom=example.org" or "spf=none smtp.helo=mx.example.net". */
export function authResult(o: SpfOutcome): string {
  return o.identity === 'helo' ? `spf=${o.result} smtp.helo=${pvalue(o.helo || 'unknown')}` : `spf=${o.result} smtp.mailfrom=${pvalue(o.domain)}`;
}

/** RFC 7208 s9.1 Received-SPF field, unfolded, without CRLF. */
export function receivedSpf(o: SpfOutcome): string {
  const pairs: [string, string][] = [
    ['client-ip', o.ip],
    ['envelope-from', o.sender],
    ['helo', o.helo || 'unknown'],
    ['receiver', o.receiver],
    ['identity', o.identity],
  ];
  if (o.decision?.term) pairs.push(['mechanism', o.decision.term.text]);
  if (o.problem && (o.result === 'permerror' || o.result === 'temperror' || o.result === 'none')) pairs.push(['problem', o.problem]);
  const kv = pairs.map(([k, v]) => `${k}=${headerValue(v)};`).join(' ');
  return `Received-SPF: ${o.result} (${commentText(o.comment)}) ${kv}`;
}

/** 550 5.7.23 (RFC 7372 "SPF validation failed") with the domain's explanation. */
export function spfReject(o: SpfOutcome): Reply {
  const who = o.identity === 'helo' ? `<> (HELO ${o.helo})` : `<${o.sender}>`;
  return reply(550, '5.7.23', clean(`Error: SPF check failed for ${who} from ${o.ip}: ${o.explanation ?? 'not a permitted sender'}`, 400));
}

/** Printable ASCII only, bounded: text from DNS and from the client ends in replies and headers. */
function clean(s: string, max: number): string {
  const t = s.replace(/[^\x20-\x7e]+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 3)}...` : t;
}

const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;

/** dot-atom as is, anything else as a quoted-string (RFC 5322). */
function headerValue(v: string): string {
  const t = clean(v, 255);
  return DOT_ATOM.test(t) ? t : `"${t.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** RFC 8601 pvalue: a domain-ish token as is, else a quoted-string. */
function pvalue(v: string): string {
  const t = clean(v, 255);
  return /^[A-Za-z0-9._@-]+$/.test(t) ? t : `"${t.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** RFC 5322 comment text: "(", ")" and "\" escaped. */
function commentText(s: string): string {
  return clean(s, 400).replace(/[()\\]/g, (c) => `\\${c}`);
}

export type { SpfIdentity, SpfOutcome };
