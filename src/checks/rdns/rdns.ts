// Reverse DNS hints at connect (Postfix's client name lookup; SpamAssassin RDNS_NONE and
// RDNS_DYNAMIC): the client's PTR names, forward confirmation (a PTR name whose A/AAAA records
// contain the client's address: FCrDNS, RFC 8601 "iprev"), and whether the name looks like a
// generic access-line name. Scored, never rejected: plenty of legitimate senders have
// imperfect reverse DNS.
//
// Symbols: RDNS_NONE (no PTR), RDNS_NOT_FCRDNS (no PTR name resolves back), RDNS_DYNAMIC
// (generic/dynamic name), RDNS_VERIFIED (0: carries the forward-confirmed name),
// RDNS_TEMPFAIL (0: a DNS error; the resolver's own timeout bounds it).
import type { Check, SymbolHit } from '../types.js';
import type { Resolver } from '../../dns/types.js';
import type { Logger } from '../../log.js';
import { formatIp, parseIp, ptrName, sameIp } from '../../net/ip-names.js';
import { classifyHostName, compileDynamicPatterns } from './dynamic-name.js';

import type { RdnsConfig } from './config.js';

/** What the client's address says its name is (Postfix: client_name and its status). */
export type ClientName =
  /** `name` is a PTR name whose forward lookup contains the address. */
  | { readonly status: 'verified'; readonly name: string; readonly names: readonly string[] }
  /** PTR names exist, none resolves back to the address. */
  | { readonly status: 'unverified'; readonly names: readonly string[] }
  /** NXDOMAIN or NODATA for the PTR query. */
  | { readonly status: 'none' }
  /** A lookup failed; `names` holds the PTR names when the PTR query itself answered. */
  | { readonly status: 'tempfail'; readonly reason: string; readonly names: readonly string[] };

/** How many PTR names are forward-checked (a PTR RRset can be long; Postfix uses the first). */
export const MAX_PTR_NAMES = 5;

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/;

/**
 * Finds the client's verified name. Never throws when the resolver keeps its promise of never
 * throwing; its own timeout bounds the time (two rounds: PTR, then A/AAAA of each name at once).
 */
export async function resolveClientName(resolver: Resolver, address: string): Promise<ClientName> {
  const ip = parseIp(address);
  const query = ptrName(address);
  if (!ip || !query) return { status: 'none' };
  const ptr = await resolver.lookup(query, 'PTR');
  if (ptr.status === 'error') return { status: 'tempfail', reason: `PTR lookup of ${query}: ${ptr.reason}`, names: [] };
  if (ptr.status !== 'ok' || !ptr.records.length) return { status: 'none' };
  const names = [...new Set(ptr.records.map((n) => n.toLowerCase().replace(/\.$/, '')))].slice(0, MAX_PTR_NAMES);
  const client = formatIp(ip);
  const type = ip.family === 4 ? 'A' : 'AAAA';
  const forward = await Promise.all(names.map(async (name): Promise<{ name: string; confirms: boolean; error?: string }> => {
    if (!HOSTNAME.test(name)) return { name, confirms: false };
    const fwd = await resolver.lookup(name, type);
    if (fwd.status === 'error') return { name, confirms: false, error: `${type} lookup of ${name}: ${fwd.reason}` };
    return { name, confirms: fwd.status === 'ok' && fwd.records.some((r) => sameIp(r, client)) };
  }));
  const verified = forward.find((f) => f.confirms);
  if (verified) return { status: 'verified', name: verified.name, names };
  const failed = forward.find((f) => f.error);
  if (failed?.error) return { status: 'tempfail', reason: failed.error, names };
  return { status: 'unverified', names };
}

export interface RdnsOptions {
  /** DNS failures are logged here (event "rdns_tempfail"). */
  readonly logger?: Logger;
  /** The check's budget in the runner: above 2 × timeout × attempts of the resolver. Default 10 s. */
  readonly timeoutMs?: number;
}

/**
 * The connect-stage rDNS check. Mx listeners only (a user on the submission port connects from
 * wherever they are), never trusted networks; off when rdns.enabled is false. Throws at
 * construction on an invalid rdns.dynamic_patterns entry.
 */
export function rdns(resolver: Resolver, config: RdnsConfig, options: RdnsOptions = {}): Check<'connect'> {
  const patterns = compileDynamicPatterns(config.dynamic_patterns);
  return {
    name: 'rdns',
    stage: 'connect',
    timeoutMs: options.timeoutMs ?? 10_000,
    async run({ conn }) {
      if (!config.enabled || conn.listenerKind !== 'mx' || conn.trustedNetwork) return {};
      const ip = parseIp(conn.remoteAddress);
      if (!ip) return {};
      const client = formatIp(ip);
      const result = await resolveClientName(resolver, client);
      const symbols: SymbolHit[] = [];
      // RFC 8601 s2.7.3 "iprev": pass when forward-confirmed, fail when not, temperror on DNS trouble.
      const iprev = (r: string, name?: string) => [`iprev=${r} policy.iprev=${client}${name ? ` (${clean(name).replace(/[()\\]/g, '')})` : ''}`];
      switch (result.status) {
        case 'none':
          return { symbols: [{ name: 'RDNS_NONE', reason: `no PTR record for ${client}` }], authResults: iprev('fail') };
        case 'tempfail':
          options.logger?.warn({ event: 'rdns_tempfail', client, err: result.reason }, 'reverse DNS lookup failed');
          symbols.push({ name: 'RDNS_TEMPFAIL', reason: clean(result.reason) });
          break;
        case 'unverified':
          symbols.push({ name: 'RDNS_NOT_FCRDNS', reason: `PTR ${list(result.names)} does not resolve back to ${client}` });
          break;
        case 'verified':
          symbols.push({ name: 'RDNS_VERIFIED', reason: `client name ${clean(result.name)} (forward-confirmed)` });
          break;
      }
      const name = result.status === 'verified' ? result.name : result.names[0];
      if (name) {
        const verdict = classifyHostName(name, client, patterns);
        if (verdict.dynamic) symbols.push({ name: 'RDNS_DYNAMIC', reason: `client name ${clean(name)} looks dynamic or generic: ${verdict.detail}` });
      }
      const outcome = result.status === 'verified' ? 'pass' : result.status === 'unverified' ? 'fail' : 'temperror';
      return { symbols, authResults: iprev(outcome, result.status === 'verified' ? result.name : undefined) };
    },
  };
}

/** PTR data is foreign text: printable ASCII only in reasons and logs, bounded. */
function clean(text: string): string {
  const t = text.replace(/[^\x21-\x7e ]/g, '?');
  return t.length > 300 ? `${t.slice(0, 297)}...` : t;
}

function list(names: readonly string[]): string {
  return names.map(clean).join(', ');
}
