// The data-stage URI check: extracts the message's URIs, looks their domains up in the local
// lists and the configured DNS lists, and runs the phishing heuristics.
//
// Symbols: URIBL_<LIST>[_<RESULT>] (scored with the list's weight), URI_LOCAL_BLOCK,
// URI_LOCAL_ALLOW (every linked domain is on an allow list), the heuristics (heuristics.ts),
// URIBL_TEMPFAIL (a list could not be asked: DNS error, refusal answer; 0 by default).
//
// Bounds (a message of 10,000 links costs what one of 20 does): at most max_uris URIs, at
// most max_domains names looked up (links before text, in message order: the links a reader
// clicks are the ones that matter), at most max_queries DNS questions, and an internal
// deadline below the runner's budget so that the answers in hand are still reported.
import type { Check, SymbolHit } from '../types.js';
import type { Resolver } from '../../dns/types.js';
import type { Logger } from '../../log.js';
import type { ParsedMessage } from '../../mime/text.js';
import type { UriConfig } from './config.js';
import { DomainLists } from './domain-list.js';
import { extractUris, type ExtractedUri } from './extract.js';
import { uriHeuristics } from './heuristics.js';
import { hostInfo, isAtOrUnder, type HostInfo } from './host.js';
import { ask, compileUriLists, queryList, type CompiledUriList, type ListResult } from './uribl.js';

/**
 * Domains never looked up: so common in ham that a listing would be a list's mistake, and
 * querying them for every message spends the budget on nothing. Short on purpose (SpamAssassin
 * ships ~200 in uridnsbl_skip_domain): every entry is a domain a spammer cannot register a
 * subdomain of through a free service. Operators add theirs in uri.skip_domains.
 */
export const BUILTIN_SKIP_DOMAINS: readonly string[] = [
  'w3.org', 'example.com', 'example.net', 'example.org', 'google.com', 'gmail.com', 'microsoft.com', 'outlook.com',
  'office.com', 'apple.com', 'icloud.com', 'yahoo.com', 'amazon.com', 'facebook.com', 'linkedin.com', 'twitter.com',
  'x.com', 'youtube.com', 'wikipedia.org', 'mozilla.org', 'apache.org', 'schemas.microsoft.com', 'w3c.org', 'ietf.org',
];

export interface UriCheckDeps {
  readonly resolver: Resolver;
  readonly config: UriConfig;
  /** The gateway's own domains (config.domains, relay domains): never looked up, never "foreign". */
  readonly ownDomains: readonly string[];
  readonly logger?: Logger;
  /** The runner's budget for the check (default 10 s); answers are collected until 80 % of it. */
  readonly timeoutMs?: number;
  /** Preloaded local lists (tests); by default built from block_files/allow_files and watched. */
  readonly blockLists?: DomainLists;
  readonly allowLists?: DomainLists;
}

export interface UriFindings {
  readonly uris: readonly ExtractedUri[];
  readonly symbols: SymbolHit[];
  /** Names looked up, and what each list said (check-uri shows it). */
  readonly lookups: { name: string; list: string; answer: string }[];
  readonly skipped: { name: string; why: string }[];
}

export type UriCheck = Check<'data'> & {
  /** Findings for already-extracted URIs (the check and `check-uri` share this). */
  inspect(msg: ParsedMessage | undefined, uris: readonly ExtractedUri[], deadline?: number): Promise<UriFindings>;
  /** Stops watching the list files. */
  close(): void;
};

/** Throws at construction (start-up) on an invalid list or an unreadable list file. */
export function uriCheck(deps: UriCheckDeps): UriCheck {
  const { config, resolver, logger } = deps;
  const lists = compileUriLists(config.lists);
  const block = deps.blockLists ?? DomainLists.start(config.block_files, { logger });
  const allow = deps.allowLists ?? DomainLists.start(config.allow_files, { logger });
  const timeoutMs = deps.timeoutMs ?? 10_000;
  const skip = [...new Set([...deps.ownDomains, ...config.skip_domains, ...BUILTIN_SKIP_DOMAINS].map((d) => d.toLowerCase().replace(/\.$/, '')))];
  const own = deps.ownDomains.map((d) => d.toLowerCase().replace(/\.$/, ''));
  const isSkipped = (info: HostInfo) => !info.isIp && skip.some((d) => isAtOrUnder(info.host, d));
  const isAllowed = (info: HostInfo) => !!allow.match(info);
  const exempt = (info: HostInfo) => isAllowed(info) || (!info.isIp && own.some((d) => isAtOrUnder(info.host, d))) || isSkipped(info);

  async function inspect(msg: ParsedMessage | undefined, uris: readonly ExtractedUri[], deadline = Date.now() + timeoutMs * 0.8): Promise<UriFindings> {
    const symbols: SymbolHit[] = [];
    const lookups: UriFindings['lookups'] = [];
    const skipped: UriFindings['skipped'] = [];
    const candidates = uris.filter((u) => config.check_email_domains || !u.email);

    // Local lists first: they cost nothing.
    const blocked: string[] = [];
    const webInfos: HostInfo[] = [];
    for (const u of candidates) {
      const info = hostInfo(u.host);
      if (!info) continue;
      if (!u.email) webInfos.push(info);
      if (isAllowed(info)) continue;
      const m = block.match(info);
      if (m) blocked.push(`${u.host} (${m.entry} in ${m.file})`);
    }
    if (blocked.length) symbols.push({ name: 'URI_LOCAL_BLOCK', reason: named('listed locally', blocked) });
    // Only when every linked domain is allowed: one allowed link beside a spammy one is no
    // reason to lower the score (spammers add a bank's link for that).
    if (webInfos.length && webInfos.every(isAllowed)) {
      symbols.push({ name: 'URI_LOCAL_ALLOW', reason: named('every link is on an allow list', webInfos.map((i) => i.domain)) });
    }

    // The names to ask about, in order, deduplicated, within max_domains.
    const domains: string[] = [];
    const ips: string[] = [];
    const seen = new Set<string>();
    for (const u of candidates) {
      const info = hostInfo(u.host);
      if (!info || seen.has(info.domain)) continue;
      seen.add(info.domain);
      if (isAllowed(info)) skipped.push({ name: info.domain, why: 'allow list' });
      else if (isSkipped(info)) skipped.push({ name: info.domain, why: 'skip list' });
      else if (!info.isIp && !info.knownSuffix) skipped.push({ name: info.domain, why: 'unknown top-level domain' });
      else if (domains.length + ips.length >= config.max_domains) skipped.push({ name: info.domain, why: `beyond max_domains ${config.max_domains}` });
      else (info.isIp ? ips : domains).push(info.domain);
    }

    let budget = config.max_queries;
    const failed: string[] = [];
    const hits = new Map<string, { result: ListResult; what: string[] }>();
    const record = (list: CompiledUriList, subject: string, shown: string, answer: Awaited<ReturnType<typeof queryList>>) => {
      if (answer.kind === 'failed') {
        failed.push(`${list.zone} (${subject}): ${answer.reason}`);
        lookups.push({ name: subject, list: list.zone, answer: `unknown: ${answer.reason}` });
      } else if (answer.kind === 'clean') lookups.push({ name: subject, list: list.zone, answer: 'not listed' });
      else {
        lookups.push({ name: subject, list: list.zone, answer: `${answer.codes.join(', ')} ${answer.results.map((r) => r.symbol).join(' ')}` });
        for (const r of answer.results) {
          const h = hits.get(r.symbol) ?? { result: r, what: [] };
          h.what.push(`${shown} in ${list.zone} (${answer.codes.join(', ')})`);
          hits.set(r.symbol, h);
        }
      }
    };
    const jobs: Promise<void>[] = [];
    const spend = () => (budget > 0 ? (budget--, true) : false);
    for (const list of lists) {
      const subjects = list.type === 'domain' ? domains : ips;
      for (const s of subjects) {
        if (!spend()) break;
        jobs.push(queryList(resolver, list, s).then((a) => record(list, s, s, a)));
      }
      if (list.type === 'ip' && list.resolve) {
        for (const d of domains) jobs.push(resolveAndQuery(list, d));
      }
    }
    async function resolveAndQuery(list: CompiledUriList, domain: string): Promise<void> {
      let addrs: string[] = [];
      if (list.resolve === 'a') {
        if (!spend()) return;
        const a = await ask(resolver, domain, 'A');
        if (a.status === 'ok') addrs = a.records;
      } else {
        if (!spend()) return;
        const ns = await ask(resolver, domain, 'NS');
        if (ns.status !== 'ok') return;
        for (const n of ns.records.slice(0, 2)) {
          if (!spend()) break;
          const a = await ask(resolver, n, 'A');
          if (a.status === 'ok') addrs.push(...a.records);
        }
      }
      await Promise.all([...new Set(addrs)].slice(0, 4).map(async (ip) => {
        if (!spend()) return;
        record(list, ip, `${domain} (${list.resolve === 'a' ? 'address' : 'name server'} ${ip})`, await queryList(resolver, list, ip));
      }));
    }
    if (budget <= 0) logger?.info({ event: 'uribl_budget', max_queries: config.max_queries }, 'URI list query budget spent');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      Promise.all(jobs).then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), Math.max(0, deadline - Date.now())))),
    ]);
    clearTimeout(timer);
    if (timedOut) failed.push(`lookups still unanswered at 80 % of the check's ${timeoutMs} ms budget`);

    for (const [symbol, h] of hits) symbols.push({ name: symbol, score: h.result.weight, reason: named('listed', h.what) });
    if (msg) symbols.push(...uriHeuristics({ msg, uris, exempt, shorteners: config.shorteners }));
    if (failed.length) {
      logger?.warn({ event: 'uribl_tempfail', lists: failed.slice(0, 10) }, 'URI list lookup failed');
      symbols.push({ name: 'URIBL_TEMPFAIL', reason: named('could not ask', failed).slice(0, 400) });
    }
    return { uris, symbols, lookups, skipped };
  }

  return {
    name: 'uri',
    stage: 'data',
    timeoutMs,
    inspect,
    close() {
      if (!deps.blockLists) block.close();
      if (!deps.allowLists) allow.close();
    },
    async run({ message }) {
      if (!config.enabled) return {};
      // The deadline counts from the start: parsing a large message spends the same budget.
      const deadline = Date.now() + timeoutMs * 0.8;
      const msg = await message.content();
      const uris = extractUris(msg, { maxUris: config.max_uris, redirectors: config.redirectors });
      const found = await inspect(msg, uris, deadline);
      return { symbols: found.symbols };
    },
  };
}

function named(what: string, items: readonly string[]): string {
  const uniq = [...new Set(items)];
  return `${what}: ${uniq.slice(0, 3).join('; ')}${uniq.length > 3 ? ` (and ${uniq.length - 3} more)` : ''}`;
}
