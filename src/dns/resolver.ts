// The gateway's one resolver (DESIGN.md "dns"): local zone mirrors first, then a cache that
// honours TTLs (negative answers per RFC 2308), then the configured servers — with identical
// questions in flight shared, and a bound on questions in flight so that a DNS outage under
// load costs a quick "error" rather than an ever-growing pile of sockets and timers.
import fs from 'node:fs';
import { parseServer, query, type Answer, type ServerAddress } from './client.js';
import type { Lookup, RRType, Resolver, ZoneAnswerer } from './types.js';

export interface ResolverOptions {
  /** "host[:port]" of recursive servers; empty = the nameservers of /etc/resolv.conf. */
  readonly servers: readonly string[];
  /** Per attempt and server. */
  readonly timeoutMs: number;
  readonly attempts: number;
  readonly maxInflight: number;
  /** 0 disables the cache. */
  readonly cacheEntries: number;
  readonly maxTtlMs: number;
  /** Cap for negative answers, and their lifetime when the server sent no SOA. */
  readonly negativeTtlMs: number;
  /** How long a failed question (timeout, SERVFAIL, REFUSED…) is remembered; 0 = not at all. */
  readonly errorTtlMs?: number;
  /** Local mirrors answered from memory (rbldnsd zones). */
  readonly zones?: readonly ZoneAnswerer[];
  /**
   * The servers validate DNSSEC and the path to them is trusted (loopback): an answer's AD bit
   * then marks it `secure`. Without this, `secure` is never set, whatever the servers say.
   */
  readonly dnssecValidating?: boolean;
  readonly now?: () => number;
}

export interface ResolverStats {
  queries: number;
  cacheHits: number;
  zoneAnswers: number;
  errors: number;
  overloaded: number;
  inflight: number;
  cached: number;
}

export interface GatewayResolver extends Resolver {
  readonly servers: readonly ServerAddress[];
  stats(): ResolverStats;
  clear(): void;
}

interface CacheEntry {
  readonly lookup: Lookup<RRType>;
  readonly expires: number;
}

/** The longest name DNS can carry (RFC 1035 s2.3.4), and the longest label. */
const MAX_NAME = 253;
const MAX_LABEL = 63;

export function createResolver(opts: ResolverOptions): GatewayResolver {
  const servers = (opts.servers.length ? opts.servers : systemServers()).map(parseServer);
  const now = opts.now ?? Date.now;
  const cache = new Map<string, CacheEntry>();
  const inflight = new Map<string, Promise<Lookup<RRType>>>();
  const stats = { queries: 0, cacheHits: 0, zoneAnswers: 0, errors: 0, overloaded: 0 };

  function remember(key: string, lookup: Lookup<RRType>, ttlSeconds: number): void {
    if (opts.cacheEntries <= 0 || ttlSeconds <= 0) return;
    cache.delete(key);
    // Map iteration order is insertion order: the first key is the least recently used.
    if (cache.size >= opts.cacheEntries) cache.delete(cache.keys().next().value!);
    cache.set(key, { lookup, expires: now() + Math.min(ttlSeconds * 1000, opts.maxTtlMs) });
  }

  function fromCache(key: string): Lookup<RRType> | undefined {
    const hit = cache.get(key);
    if (!hit) return undefined;
    const left = hit.expires - now();
    if (left <= 0) {
      cache.delete(key);
      return undefined;
    }
    cache.delete(key);
    cache.set(key, hit);
    stats.cacheHits++;
    const l = hit.lookup;
    return l.status === 'ok' ? { ...l, ttl: Math.ceil(left / 1000), source: 'cache' } : { ...l, source: 'cache' };
  }

  async function ask(name: string, type: RRType, key: string): Promise<Lookup<RRType>> {
    const validating = opts.dnssecValidating ?? false;
    const answer: Answer = await query(name, type, { servers, timeoutMs: opts.timeoutMs, attempts: opts.attempts, dnssec: validating });
    switch (answer.status) {
      case 'ok': {
        const secure = validating && answer.ad ? { secure: true } : {};
        const lookup = { status: 'ok', records: answer.records, ttl: answer.ttl, source: 'dns', ...secure } as Lookup<RRType>;
        remember(key, lookup, answer.ttl);
        return lookup;
      }
      case 'nxdomain':
      case 'nodata': {
        const lookup: Lookup<RRType> = { status: answer.status, source: 'dns' };
        const cap = opts.negativeTtlMs / 1000;
        remember(key, lookup, answer.ttl === undefined ? cap : Math.min(answer.ttl, cap));
        return lookup;
      }
      case 'error': {
        stats.errors++;
        // RFC 2308 s7: a server failure may be cached (at most 5 minutes). A few seconds keep a
        // DNS outage from costing every message its own round of sockets and timeouts.
        const lookup: Lookup<RRType> = { status: 'error', code: answer.code, reason: answer.reason, source: 'dns' };
        remember(key, lookup, (opts.errorTtlMs ?? 0) / 1000);
        return lookup;
      }
    }
  }

  return {
    servers,
    async lookup<T extends RRType>(rawName: string, type: T): Promise<Lookup<T>> {
      stats.queries++;
      const name = rawName.toLowerCase().replace(/\.$/, '');
      if (!validName(name)) return { status: 'error', code: 'invalid', reason: `"${rawName.slice(0, 80)}" is not a valid DNS name`, source: 'dns' };
      if ((type === 'A' || type === 'TXT') && opts.zones) {
        for (const zone of opts.zones) {
          const local = zone.answer(name, type);
          if (local) {
            stats.zoneAnswers++;
            return local as Lookup<T>;
          }
        }
      }
      const key = `${type} ${name}`;
      const cached = fromCache(key);
      if (cached) return cached as Lookup<T>;
      const pending = inflight.get(key);
      if (pending) return (await pending) as Lookup<T>;
      if (inflight.size >= opts.maxInflight) {
        stats.overloaded++;
        return { status: 'error', code: 'overload', reason: `too many DNS queries in flight (${opts.maxInflight})`, source: 'dns' };
      }
      const p = ask(name, type, key).finally(() => inflight.delete(key));
      inflight.set(key, p);
      return (await p) as Lookup<T>;
    },
    stats: () => ({ ...stats, inflight: inflight.size, cached: cache.size }),
    clear: () => cache.clear(),
  };
}

function validName(name: string): boolean {
  if (!name || name.length > MAX_NAME) return false;
  return name.split('.').every((l) => l.length > 0 && l.length <= MAX_LABEL);
}

/** The nameservers of /etc/resolv.conf (127.0.0.1 when it names none, as the resolver library does). */
export function systemServers(file = '/etc/resolv.conf'): string[] {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    // No resolv.conf: the local host, as glibc assumes.
  }
  const servers = [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]!.replace(/%.*$/, ''));
  return servers.length ? servers.map((s) => (s.includes(':') ? `[${s}]` : s)) : ['127.0.0.1'];
}

/** The resolver options of a configuration (`dns:`), for the gateway and the CLI alike. */
export function resolverOptions(dns: {
  servers: string[]; timeout: number; attempts: number; max_inflight: number; cache_entries: number; max_ttl: number; negative_ttl: number; error_ttl: number;
  dnssec_validating?: boolean;
}, zones?: readonly ZoneAnswerer[]): ResolverOptions {
  return {
    servers: dns.servers, timeoutMs: dns.timeout, attempts: dns.attempts, maxInflight: dns.max_inflight,
    cacheEntries: dns.cache_entries, maxTtlMs: dns.max_ttl, negativeTtlMs: dns.negative_ttl, errorTtlMs: dns.error_ttl, zones,
    dnssecValidating: dns.dnssec_validating ?? false,
  };
}
