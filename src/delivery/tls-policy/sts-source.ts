// Which MTA-STS policy applies to a domain now (RFC 8461 3 and 5.1): the `_mta-sts` TXT record
// says whether one exists and its id; the policy is fetched when there is no cached one, when
// the id changed, or when the cached one outlived its max_age. The cache lives in memory and on
// disk (one JSON file per domain under <data_dir>/mta-sts/), so a restart neither refetches
// every policy nor forgets an enforce policy while the domain's HTTPS server is down: a cached
// policy keeps applying while a refresh fails, and when the TXT record has disappeared, until it
// expires (5.1 — this is what keeps a downgrade attacker who strips the TXT record out).
import fs from 'node:fs';
import path from 'node:path';
import type { Resolver } from '../../dns/types.js';
import type { Logger } from '../../log.js';
import type { TlsResultType } from '../outbound-tls.js';
import { parseStsPolicy, parseStsRecord, type StsPolicy } from './sts-parse.js';
import { fetchStsPolicy } from './sts-fetch.js';

export interface StsSourceOptions {
  readonly resolver: Resolver;
  /** The gateway's data directory; the cache goes to <dataDir>/mta-sts/. */
  readonly dataDir: string;
  readonly logger: Logger;
  readonly fetchTimeoutMs: number;
  /** After a failed fetch with nothing cached, wait this long before fetching again. */
  readonly retryAfterMs: number;
  readonly ca?: readonly string[];
  /** HTTPS port of the policy hosts (443; tests may change it). */
  readonly port?: number;
  /** Told of each fetch that failed, for TLS-RPT (sts-policy-fetch-error and friends). */
  readonly onFetchFailure?: (domain: string, result: TlsResultType, reason: string) => void;
  readonly now?: () => number;
}

export interface CachedPolicy {
  readonly domain: string;
  readonly id: string;
  readonly policy: StsPolicy;
  readonly fetchedAt: number;
  readonly expiresAt: number;
}

export type StsLookup =
  /** A policy applies: fetched now or cached. `stale` names a refresh that failed. */
  | { readonly kind: 'policy'; readonly cached: CachedPolicy; readonly stale?: string }
  /** The domain has no MTA-STS policy that we know of. */
  | { readonly kind: 'none'; readonly reason: string }
  /** A TXT record says there is a policy, but none could be had and nothing is cached. */
  | { readonly kind: 'failed'; readonly reason: string; readonly result: TlsResultType };

export interface StsSource {
  lookup(domain: string): Promise<StsLookup>;
}

/** Domains whose policy (or its absence) is remembered in memory. */
const MAX_MEMORY_ENTRIES = 10_000;

export function createStsSource(opts: StsSourceOptions): StsSource {
  const now = opts.now ?? Date.now;
  const dir = path.join(opts.dataDir, 'mta-sts');
  const memory = new Map<string, CachedPolicy | null>();
  const failures = new Map<string, { id: string; until: number; reason: string; result: TlsResultType }>();
  const inflight = new Map<string, Promise<StsLookup>>();

  function fileOf(domain: string): string {
    return path.join(dir, `${domain}.json`);
  }

  function cachedFor(domain: string): CachedPolicy | undefined {
    let entry = memory.get(domain);
    if (entry === undefined) {
      entry = readCache(fileOf(domain), domain, opts.logger);
      // Bounded: the oldest entries go first (they are on disk, read again when needed).
      if (memory.size >= MAX_MEMORY_ENTRIES) memory.delete(memory.keys().next().value!);
      memory.set(domain, entry);
    }
    if (entry && entry.expiresAt <= now()) return undefined;
    return entry ?? undefined;
  }

  function store(entry: CachedPolicy): void {
    memory.delete(entry.domain);
    if (memory.size >= MAX_MEMORY_ENTRIES) memory.delete(memory.keys().next().value!);
    memory.set(entry.domain, entry);
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const tmp = `${fileOf(entry.domain)}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(entry));
      fs.renameSync(tmp, fileOf(entry.domain));
    } catch (err) {
      // The memory copy still serves; the next start fetches again.
      opts.logger.warn({ event: 'mta_sts.cache_write_failed', domain: entry.domain, reason: (err as Error).message }, 'could not write the MTA-STS cache');
    }
  }

  async function refresh(domain: string, id: string, cached: CachedPolicy | undefined): Promise<StsLookup> {
    const failure = (reason: string, result: TlsResultType): StsLookup => {
      opts.onFetchFailure?.(domain, result, reason);
      opts.logger.warn({ event: 'mta_sts.fetch_failed', domain, id, reason, result, cached: cached !== undefined }, 'MTA-STS policy fetch failed');
      // Not tried again under this id for a while, cached policy or not (a down policy host
      // must not cost every message a fetch).
      if (failures.size >= MAX_MEMORY_ENTRIES) failures.delete(failures.keys().next().value!);
      failures.set(domain, { id, until: now() + opts.retryAfterMs, reason, result });
      if (cached) return { kind: 'policy', cached, stale: reason };
      return { kind: 'failed', reason, result };
    };
    const fetched = await fetchStsPolicy(domain, { resolver: opts.resolver, timeoutMs: opts.fetchTimeoutMs, ca: opts.ca, port: opts.port });
    if (!fetched.ok) return failure(fetched.reason, fetched.webpki ? 'sts-webpki-invalid' : 'sts-policy-fetch-error');
    const parsed = parseStsPolicy(fetched.body);
    if (!parsed.ok) return failure(`policy of ${domain}: ${parsed.reason}`, 'sts-policy-invalid');
    const t = now();
    const entry: CachedPolicy = { domain, id, policy: parsed.value, fetchedAt: t, expiresAt: t + parsed.value.maxAge * 1000 };
    failures.delete(domain);
    store(entry);
    opts.logger.info({ event: 'mta_sts.policy', domain, id, mode: entry.policy.mode, mx: entry.policy.mx, max_age: entry.policy.maxAge }, 'MTA-STS policy fetched');
    return { kind: 'policy', cached: entry };
  }

  async function lookup(domain: string): Promise<StsLookup> {
    const cached = cachedFor(domain);
    const txt = await opts.resolver.lookup(`_mta-sts.${domain}`, 'TXT');
    if (txt.status !== 'ok') {
      if (cached) return { kind: 'policy', cached };
      return { kind: 'none', reason: `_mta-sts.${domain} TXT: ${txt.status === 'error' ? txt.reason : txt.status}` };
    }
    const record = parseStsRecord(txt.records.map((chunks) => chunks.join('')));
    if (!record.ok) {
      if (cached) return { kind: 'policy', cached };
      return { kind: 'none', reason: `_mta-sts.${domain} TXT: ${record.reason}` };
    }
    const id = record.value.id;
    if (cached && cached.id === id) return { kind: 'policy', cached };
    const failed = failures.get(domain);
    if (failed && failed.id === id && failed.until > now()) {
      return cached ? { kind: 'policy', cached, stale: failed.reason } : { kind: 'failed', reason: failed.reason, result: failed.result };
    }
    // One fetch per domain at a time; the others wait for its answer.
    let pending = inflight.get(domain);
    if (!pending) {
      pending = refresh(domain, id, cached).finally(() => inflight.delete(domain));
      inflight.set(domain, pending);
    }
    return pending;
  }

  return {
    async lookup(domain) {
      const d = domain.toLowerCase().replace(/\.$/, '');
      // The name becomes a file name: only what a host name can hold.
      if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)+$/.test(d)) return { kind: 'none', reason: `"${domain}" is not a domain name` };
      try {
        return await lookup(d);
      } catch (err) {
        // Never throws (the contract of forHost): an unexpected fault is "no policy known".
        opts.logger.error({ event: 'mta_sts.error', domain: d, reason: (err as Error).message }, 'MTA-STS lookup failed');
        const cached = cachedFor(d);
        return cached ? { kind: 'policy', cached } : { kind: 'none', reason: (err as Error).message };
      }
    },
  };
}

/** A cache file, or null when there is none or it is unusable (then it is fetched again). */
function readCache(file: string, domain: string, logger: Logger): CachedPolicy | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const raw = JSON.parse(text) as Partial<CachedPolicy>;
    // The lines are parsed again rather than trusted: the file may come from an older version.
    const parsed = parseStsPolicy((raw.policy?.lines ?? []).join('\n'));
    if (raw.domain !== domain || typeof raw.id !== 'string' || typeof raw.fetchedAt !== 'number' || typeof raw.expiresAt !== 'number' || !parsed.ok) {
      throw new Error('not a cached policy');
    }
    return { domain, id: raw.id, policy: parsed.value, fetchedAt: raw.fetchedAt, expiresAt: raw.expiresAt };
  } catch (err) {
    logger.warn({ event: 'mta_sts.cache_unreadable', file, reason: (err as Error).message }, 'ignoring an unreadable MTA-STS cache file');
    return null;
  }
}
