// HELO/EHLO checks that need to know who we are or ask the DNS (the syntax ones are in
// helo-syntax.ts). Scored, never rejecting on their own:
//  - HELO_CLAIMS_OURS: a stranger greets with our host name, one of our domains, or our own
//    address literal — a classic forgery (Postfix sites do it with check_helo_access);
//  - HELO_NO_RESOLVE: the HELO name has no A, AAAA or MX record (Postfix
//    reject_unknown_helo_hostname, scored here); a DNS error is HELO_DNS_TEMPFAIL (0).
// Trusted networks and authenticated clients are never judged by their greeting.
import net from 'node:net';
import type { Check, ConnectionFacts } from '../types.js';
import type { Resolver } from '../../dns/types.js';
import type { Logger } from '../../log.js';
import { parseIp, sameIp } from '../../net/ip-names.js';

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/i;

export interface HeloIdentity {
  /** Our host name (config.hostname). */
  readonly hostname: string;
  /** Our local domains (config.domains). */
  readonly domains: readonly string[];
  /** Our own addresses besides the one the client connected to (e.g. the listeners' and the MX's). */
  readonly addresses?: readonly string[];
}

/** The HELO argument, lower case, without a trailing dot; literal or bare IP extracted. */
function parseHelo(helo: string | undefined): { name: string; ip?: string } {
  const name = (helo ?? '').trim().toLowerCase().replace(/\.$/, '');
  const literal = /^\[(?:ipv6:)?([^\]]+)\]$/.exec(name);
  if (literal && parseIp(literal[1]!)) return { name, ip: literal[1]! };
  if (net.isIP(name)) return { name, ip: name };
  return { name };
}

const exempt = (conn: ConnectionFacts) => conn.trustedNetwork || conn.authUser !== undefined;

const shown = (helo: string) => helo.replace(/[^\x21-\x7e]/g, '?').slice(0, 64);

/** HELO_CLAIMS_OURS: our host name, one of our domains, or our address, from a stranger. */
export function heloClaimsOurs(identity: HeloIdentity): Check<'helo'> {
  const hostname = identity.hostname.toLowerCase().replace(/\.$/, '');
  const domains = new Set(identity.domains.map((d) => d.toLowerCase().replace(/\.$/, '')));
  const addresses = identity.addresses ?? [];
  return {
    name: 'helo_claims_ours',
    stage: 'helo',
    run({ conn }) {
      if (exempt(conn) || !conn.helo) return {};
      const { name, ip } = parseHelo(conn.helo);
      let claim: string | undefined;
      if (ip) {
        // A client on our own machine may truthfully use our address (it is its own too).
        const ours = [conn.localAddress, ...addresses].some((a) => sameIp(a, ip));
        if (ours && !sameIp(ip, conn.remoteAddress)) claim = `our own address ${ip}`;
      } else if (name === hostname) claim = 'our host name';
      else if (domains.has(name)) claim = 'our domain';
      if (!claim) return {};
      return { symbols: [{ name: 'HELO_CLAIMS_OURS', reason: `HELO ${shown(name)} from ${conn.remoteAddress} claims to be us (${claim})` }] };
    },
  };
}

export interface HeloDnsOptions {
  /** DNS failures are logged here (event "helo_dns_tempfail"). */
  readonly logger?: Logger;
  /** The check's budget in the runner: above timeout × attempts of the resolver. Default 10 s. */
  readonly timeoutMs?: number;
}

/**
 * HELO_NO_RESOLVE: a host name with no A, AAAA or MX record (asked at once). Address literals,
 * bare IPs and names that are not host names are left to helo_syntax.
 */
export function heloNoResolve(resolver: Resolver, options: HeloDnsOptions = {}): Check<'helo'> {
  return {
    name: 'helo_no_resolve',
    stage: 'helo',
    timeoutMs: options.timeoutMs ?? 10_000,
    async run({ conn }) {
      if (exempt(conn)) return {};
      const { name, ip } = parseHelo(conn.helo);
      if (ip || !HOSTNAME.test(name)) return {};
      const answers = await Promise.all((['A', 'AAAA', 'MX'] as const).map((t) => resolver.lookup(name, t)));
      if (answers.some((a) => a.status === 'ok')) return {};
      const error = answers.find((a) => a.status === 'error');
      if (error?.status === 'error') {
        options.logger?.warn({ event: 'helo_dns_tempfail', helo: name, err: error.reason }, 'HELO name lookup failed');
        return { symbols: [{ name: 'HELO_DNS_TEMPFAIL', reason: `lookup of HELO ${name} failed: ${error.reason}` }] };
      }
      const why = answers.some((a) => a.status === 'nxdomain') ? 'the name does not exist' : 'no A, AAAA or MX record';
      return { symbols: [{ name: 'HELO_NO_RESOLVE', reason: `HELO ${name} does not resolve: ${why}` }] };
    },
  };
}
