// One SPF evaluation (RFC 7208 check_host) for one identity, on the gateway's resolver:
// mailauth decides the result; this module gives it our DNS layer (spf-resolver.ts), a time
// budget, and adds what the gateway reports beside the result: the deciding term
// (analysis.ts), the explanation of a "fail" (exp=, RFC 7208 s6.2), the problem behind an
// error result, and the DNS trace.
import net from 'node:net';
import { spf as mailauthSpf } from 'mailauth/lib/spf/index.js';
import type { Resolver } from '../../dns/types.js';
import { nodeStyleResolver } from './node-style.js';
import { canonicalName, spfResolver, type DnsStep } from './spf-resolver.js';
import { analyse, decisionResult, type Decision } from './analysis.js';
import { isSpfRecord, selectSpfRecords } from './record.js';
import { dottedIp, expandIpv6, expandMacros, MacroError, type MacroContext } from './macro.js';

export type SpfResultName = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'temperror' | 'permerror';
export type SpfIdentity = 'mailfrom' | 'helo';

export const SPF_RESULTS: readonly SpfResultName[] = ['pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror'];

export interface SpfQuery {
  /** The SMTP client's address. */
  readonly ip: string;
  /** MAIL FROM; '' (the null sender) checks the HELO identity as postmaster@<helo> (RFC 7208 s2.4). */
  readonly sender: string;
  readonly helo: string;
  /** This host: the Received-SPF receiver and the %{r} macro. */
  readonly hostname: string;
  /** 'helo' checks postmaster@<helo> whatever the sender (RFC 7208 s2.3). Default 'mailfrom'. */
  readonly identity?: SpfIdentity;
}

export interface SpfOptions {
  /** Budget for the whole evaluation; RFC 7208 s4.6.4 asks for at least 20 s. Default 20 s. */
  readonly budgetMs?: number;
  /** Hard cap on DNS questions per evaluation (mailauth applies the RFC limits below it). */
  readonly maxQueries?: number;
  readonly now?: () => number;
}

export interface SpfOutcome {
  readonly result: SpfResultName;
  readonly identity: SpfIdentity;
  /** The address evaluated: the sender, or postmaster@<helo>. */
  readonly sender: string;
  /** The domain whose policy was evaluated. */
  readonly domain: string;
  readonly ip: string;
  readonly helo: string;
  readonly receiver: string;
  /** RFC 7208 s9.1 comment, e.g. "mx.example.net: domain of a@b.org designates 192.0.2.1 as permitted sender". */
  readonly comment: string;
  /** The SPF record of `domain`, when there is one. */
  readonly record?: string;
  /** The record and term that decided (undefined: none found, an error, or undetermined). */
  readonly decision?: Decision;
  /** Only for "fail": the domain's explanation (exp=) or the default one. */
  readonly explanation?: string;
  readonly explanationSource?: 'exp' | 'default';
  /** For temperror and permerror: what went wrong. */
  readonly problem?: string;
  /** mailauth's counts: DNS-querying terms (limit 10) and void lookups (limit 2). */
  readonly lookups: { readonly count: number; readonly limit: number; readonly void: number };
  /** Every DNS question asked for the result (not those for the explanation). */
  readonly dns: readonly DnsStep[];
  readonly elapsedMs: number;
}

const DEFAULT_BUDGET_MS = 20_000;
const DEFAULT_MAX_QUERIES = 250;
const MAX_EXPLANATION = 256;

/** ::ffff:192.0.2.1 is 192.0.2.1 (RFC 7208 s5: IPv4-mapped addresses are IPv4). */
export function clientIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

/** The default explanation of a "fail" when the domain gives none. */
export function defaultExplanation(domain: string, ip: string): string {
  return `${domain} does not designate ${ip} as a permitted sender`;
}

export async function evaluateSpf(resolver: Resolver, q: SpfQuery, opts: SpfOptions = {}): Promise<SpfOutcome> {
  const now = opts.now ?? Date.now;
  const started = now();
  const budget = opts.budgetMs ?? DEFAULT_BUDGET_MS;
  const ip = clientIp(q.ip.trim());
  const helo = q.helo.trim();
  const identity: SpfIdentity = q.identity === 'helo' || !q.sender ? 'helo' : 'mailfrom';
  let sender = identity === 'helo' ? `postmaster@${helo}` : q.sender.trim();
  // As mailauth normalises it: "@example.org" and "example.org" stand for postmaster@example.org.
  if (!sender.includes('@')) sender = `postmaster@${sender}`;
  else if (sender.startsWith('@')) sender = `postmaster${sender}`;
  const domain = sender.slice(sender.lastIndexOf('@') + 1).toLowerCase();
  const base = { identity, sender, domain, ip, helo, receiver: q.hostname };

  if (!net.isIP(ip)) {
    return { ...base, result: 'none', comment: `${q.hostname}: ${ip} is not an IP address`, problem: 'the client address is not an IP address', lookups: { count: 0, limit: 10, void: 0 }, dns: [], elapsedMs: 0 };
  }

  const tracing = spfResolver(nodeStyleResolver(resolver), { deadline: started + budget, maxQueries: opts.maxQueries ?? DEFAULT_MAX_QUERIES, now });
  let timer: NodeJS.Timeout | undefined;
  type Raw = Awaited<ReturnType<typeof mailauthSpf>>;
  let raw: Raw | undefined;
  let overrun = false;
  try {
    raw = await Promise.race([
      mailauthSpf({ sender, ip, helo, mta: q.hostname, resolver: tracing.resolve as never, maxResolveCount: 10, maxVoidCount: 2 }),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => {
          overrun = true;
          resolve(undefined);
        }, budget + 50);
      }),
    ]);
  } catch (err) {
    // mailauth catches evaluation errors itself; this is a bug in it or in us, not the sender's.
    return { ...base, result: 'temperror', comment: `${q.hostname}: error in processing during lookup of ${sender}`, problem: `internal error: ${(err as Error).message}`, lookups: { count: 0, limit: 10, void: 0 }, dns: [...tracing.steps], elapsedMs: now() - started };
  } finally {
    clearTimeout(timer);
  }
  if (!raw || overrun) {
    const problem = `SPF evaluation took longer than ${budget} ms`;
    return { ...base, result: 'temperror', comment: `${q.hostname}: error in processing during lookup of ${sender}: ${problem}`, problem, lookups: { count: 0, limit: 10, void: 0 }, dns: [...tracing.steps], elapsedMs: now() - started };
  }

  const result = (SPF_RESULTS as string[]).includes(raw.status.result) ? (raw.status.result as SpfResultName) : 'temperror';
  const comment = raw.status.comment ?? `${q.hostname}: ${result}`;
  const lookups = { count: raw.lookups?.count ?? 0, limit: raw.lookups?.limit ?? 10, void: raw.lookups?.void ?? 0 };
  const dns = [...tracing.steps];
  let problem: string | undefined;
  if (result === 'temperror' || result === 'permerror') {
    const marker = `lookup of ${sender}: `;
    const at = comment.indexOf(marker);
    problem = at >= 0 ? comment.slice(at + marker.length) : undefined;
    if (problem === 'DNS timeout' || !problem) problem = tracing.problem() ?? problem ?? 'no detail from the SPF library';
  }

  let decision: Decision | undefined;
  if (result === 'pass' || result === 'fail' || result === 'softfail' || result === 'neutral') {
    try {
      const d = analyse({ steps: dns, sender, ip, helo, receiver: q.hostname }, domain);
      if (d && decisionResult(d) === result) decision = d;
    } catch {
      decision = undefined;
    }
  }

  let explanation: string | undefined;
  let explanationSource: 'exp' | 'default' | undefined;
  if (result === 'fail') {
    const ctx: Omit<MacroContext, 'domain'> = {
      sender, ip, helo, receiver: q.hostname, now,
      validatedName: () => validatedName(resolver, ip, decision?.domain ?? domain, started + budget, now),
    };
    const deciding = decision ? { domain: decision.domain, exp: decision.parsed.exp } : fallbackExpRecord(dns, domain);
    const text = deciding.exp ? await explain(resolver, deciding.exp, { ...ctx, domain: deciding.domain }, started + budget, now) : undefined;
    explanation = text ?? defaultExplanation(domain, ip);
    explanationSource = text ? 'exp' : 'default';
  }

  // The record as published (mailauth saw it with %{d} bound, see spf-resolver.ts).
  const top = dns.find((s) => s.type === 'TXT' && s.name === canonicalName(domain) && s.outcome === 'ok');
  const record = top ? selectSpfRecords(top.records as string[][])[0] ?? raw.rr : raw.rr;
  return { ...base, result, comment, record, decision, explanation, explanationSource, problem, lookups, dns, elapsedMs: now() - started };
}

/**
 * RFC 7208 s6.2: expand the exp= domain-spec, fetch exactly one TXT record, expand its macros.
 * Any problem (macro syntax, DNS error, no or several records, non-ASCII text) means "no
 * explanation". The lookup is not counted against the SPF limits (it happens after the result).
 */
async function explain(resolver: Resolver, spec: string, ctx: MacroContext, deadline: number, now: () => number): Promise<string | undefined> {
  try {
    const name = await expandMacros(spec, ctx, false);
    if (!name || deadline - now() <= 0) return undefined;
    const lookup = await withDeadline(resolver.lookup(name, 'TXT'), deadline - now());
    if (!lookup || lookup.status !== 'ok' || lookup.records.length !== 1) return undefined;
    const template = lookup.records[0]!.join('');
    if (/[^\x20-\x7e]/.test(template)) return undefined;
    const text = await expandMacros(template, ctx, true);
    if (!text || /[^\x20-\x7e]/.test(text)) return undefined;
    return text.length > MAX_EXPLANATION ? `${text.slice(0, MAX_EXPLANATION - 3)}...` : text;
  } catch (err) {
    if (err instanceof MacroError) return undefined;
    throw err;
  }
}

/** When the deciding record is unknown: the top record, or its redirect target if that was fetched. */
function fallbackExpRecord(dns: readonly DnsStep[], domain: string): { domain: string; exp?: string } {
  // Without the analysis, only the top record's own exp= is safe to use when it has no redirect.
  const step = dns.find((s) => s.type === 'TXT' && s.name === canonicalName(domain) && s.outcome === 'ok');
  const text = (step?.records as string[][] | undefined)?.map((r) => r.join('')).find(isSpfRecord);
  const exp = text && !/\sredirect=/i.test(text) ? /\sexp=(\S+)/i.exec(text)?.[1] : undefined;
  return { domain, exp };
}

/** RFC 7208 s7.3 %{p}: a PTR name of the address whose A/AAAA records lead back to it. */
async function validatedName(resolver: Resolver, ip: string, domain: string, deadline: number, now: () => number): Promise<string> {
  const v6 = net.isIPv6(ip);
  const reverse = `${dottedIp(ip).split('.').reverse().join('.')}.${v6 ? 'ip6' : 'in-addr'}.arpa`;
  const ptr = await withDeadline(resolver.lookup(reverse, 'PTR'), deadline - now());
  if (!ptr || ptr.status !== 'ok') return 'unknown';
  const validated: string[] = [];
  for (const name of ptr.records.slice(0, 10)) {
    const a = await withDeadline(resolver.lookup(name, v6 ? 'AAAA' : 'A'), deadline - now());
    if (a?.status === 'ok' && (a.records as string[]).some((r) => sameIp(r, ip))) validated.push(canonicalName(name));
  }
  const d = domain.toLowerCase();
  return validated.find((n) => n === d) ?? validated.find((n) => n.endsWith(`.${d}`)) ?? validated[0] ?? 'unknown';
}

function sameIp(a: string, b: string): boolean {
  if (net.isIPv4(a) && net.isIPv4(b)) return a === b;
  if (!net.isIPv6(a) || !net.isIPv6(b)) return false;
  return expandIpv6(a) === expandIpv6(b);
}

async function withDeadline<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  if (ms <= 0) return undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
