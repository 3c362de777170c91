// Where mail for a domain goes (RFC 5321 section 5.1): its MX hosts in preference order, with
// the addresses of each, or the reason there is nowhere to go.
//
// - MX records sorted by preference; hosts of equal preference shuffled (5.1: "the sender-SMTP
//   MUST randomize them to spread the load").
// - No MX records (NODATA): the domain itself is the one, implicit, MX (its A/AAAA records).
// - Null MX (RFC 7505: one MX "." of preference 0), or any MX set that is only ".": the domain
//   accepts no mail, a permanent failure with 5.1.10 (RFC 7505 section 4.2). A "." beside real
//   hosts is a broken zone; the real hosts are used and the "." is logged.
// - Mail loops, as Postfix's smtp_addr.c decides them: an MX that is us (our host name, one of
//   our listener addresses, or loopback unless a test allows it) cuts the list at its
//   preference — only better MX hosts than ourselves may take the mail; when nothing is left,
//   "mail for X loops back to myself" (5.4.6).
// - An MX that is a CNAME (RFC 2181 10.3 forbids it) is followed, as Postfix does, and logged.
// - An MX whose name is an IP address is logged and looked up as a name (Postfix: "numeric
//   domain name in resource data of MX record"); a bracketed literal is no host name and skipped.
// - Bounded work: at most maxHosts MX hosts are looked up and at most maxAddresses addresses
//   kept (Postfix: smtp_mx_address_limit), so an enormous MX set costs a bounded number of DNS
//   questions and connection attempts.
import net from 'node:net';
import type { Resolver } from '../dns/types.js';
import type { Logger } from '../log.js';

export interface MxTarget {
  /** The MX host name (lower case, no trailing dot); the domain itself for an implicit MX. */
  readonly host: string;
  readonly preference: number;
  /** Addresses in the order to try them (IPv6 first when preferred). */
  readonly addresses: readonly string[];
  /** True when the domain had no MX records and its own A/AAAA records stand in. */
  readonly implicit: boolean;
}

export type MxPlan =
  | { readonly kind: 'hosts'; readonly hosts: readonly MxTarget[] }
  /** reply: an enhanced status code and a reason ("5.1.10 ...", "4.4.3 ..."). */
  | { readonly kind: 'fail'; readonly permanent: boolean; readonly reply: string };

export interface MxResolveOptions {
  readonly resolver: Resolver;
  /** Our host name (EHLO name): an MX of that name is us. */
  readonly hostname: string;
  /** Addresses we listen on: an MX resolving to one of them is us. */
  readonly ownAddresses: readonly string[];
  /** Tests and lab set-ups only: loopback MX addresses are not taken for ourselves. */
  readonly allowLoopback: boolean;
  readonly maxHosts: number;
  readonly maxAddresses: number;
  readonly ipv6: 'prefer' | 'never';
  /** [0, 1), for shuffling equal preferences (injectable for tests). */
  readonly random?: () => number;
  readonly logger?: Logger;
}

interface Candidate {
  readonly host: string;
  readonly preference: number;
}

export async function resolveMx(domainRaw: string, opts: MxResolveOptions): Promise<MxPlan> {
  const domain = canonical(domainRaw);
  const log = opts.logger;
  const mx = await opts.resolver.lookup(domain, 'MX');
  let candidates: Candidate[];
  let implicit = false;
  switch (mx.status) {
    case 'error':
      return fail(false, `4.4.3 cannot look up the MX records of ${domain}: ${mx.reason}`);
    case 'nxdomain':
      return fail(true, `5.1.2 the domain ${domain} does not exist (NXDOMAIN)`);
    case 'nodata':
      // RFC 5321 5.1: no MX records, the domain's own address records are an implicit MX.
      candidates = [{ host: domain, preference: 0 }];
      implicit = true;
      break;
    case 'ok': {
      const all = mx.records.map((r) => ({ host: canonical(r.exchange), preference: r.priority }));
      const real = all.filter((c) => c.host !== '');
      if (real.length === 0) {
        return fail(true, `5.1.10 ${domain} accepts no mail: it publishes a null MX (RFC 7505)`);
      }
      if (real.length < all.length) {
        log?.warn({ event: 'mx.null_beside_hosts', domain }, `${domain} publishes a null MX "." beside real MX hosts (RFC 7505 forbids it); using the hosts`);
      }
      candidates = real;
      break;
    }
  }

  const ordered = order(candidates, opts.random ?? Math.random);
  // Bounded: an enormous MX set costs at most maxHosts address lookups.
  if (ordered.length > opts.maxHosts) {
    log?.warn({ event: 'mx.truncated', domain, hosts: ordered.length, kept: opts.maxHosts }, `${domain} has ${ordered.length} MX hosts; trying the best ${opts.maxHosts}`);
    ordered.length = opts.maxHosts;
  }
  const me = canonical(opts.hostname);
  const resolved = await Promise.all(ordered.map((c) => addressesOf(c.host, domain, opts)));

  // Loop detection (Postfix smtp_addr.c): the best preference at which we appear ourselves.
  let selfPreference = Infinity;
  ordered.forEach((c, i) => {
    const r = resolved[i]!;
    if (c.host === me || r.addresses.some((a) => isSelf(a, opts))) selfPreference = Math.min(selfPreference, c.preference);
  });

  const hosts: MxTarget[] = [];
  let temporary: string | undefined;
  let permanent: string | undefined;
  let kept = 0;
  ordered.forEach((c, i) => {
    if (c.preference >= selfPreference) return;
    const r = resolved[i]!;
    if (r.temporary) temporary ??= r.temporary;
    if (r.addresses.length === 0) {
      permanent ??= r.problem ?? `${c.host} has no address`;
      return;
    }
    const room = opts.maxAddresses - kept;
    if (room <= 0) return;
    const addresses = r.addresses.slice(0, room);
    kept += addresses.length;
    hosts.push({ host: c.host, preference: c.preference, addresses, implicit });
  });
  if (hosts.length) return { kind: 'hosts', hosts };
  if (selfPreference !== Infinity) {
    // Only MX hosts better than ourselves were left, and none of them has an address.
    if (temporary) return fail(false, `4.4.3 cannot find the addresses of the MX hosts of ${domain}: ${temporary}`);
    return fail(true, `5.4.6 mail for ${domain} loops back to myself`);
  }
  if (temporary) return fail(false, `4.4.3 cannot find the addresses of the MX hosts of ${domain}: ${temporary}`);
  return fail(true, implicit
    ? `5.1.2 ${domain} has neither MX nor address records`
    : `5.4.4 no MX host of ${domain} has an address (${permanent ?? 'none found'})`);
}

interface HostAddresses {
  addresses: string[];
  /** A temporary lookup failure (the host may have addresses we could not learn). */
  temporary?: string;
  /** Why the host has no usable address, when it is not a temporary failure. */
  problem?: string;
}

async function addressesOf(host: string, domain: string, opts: MxResolveOptions): Promise<HostAddresses> {
  const log = opts.logger;
  if (host.startsWith('[') || !/^[a-z0-9_.-]+$/.test(host)) {
    log?.warn({ event: 'mx.invalid_name', domain, mx: host }, `MX host "${host}" of ${domain} is not a host name; skipped`);
    return { addresses: [], problem: `MX host "${host}" is not a host name` };
  }
  if (net.isIP(host)) {
    // Postfix logs "numeric domain name in resource data of MX record" and then looks the
    // string up as a name: an MX must name a host, not an address (RFC 5321 5.1).
    log?.warn({ event: 'mx.numeric_name', domain, mx: host }, `MX host of ${domain} is an IP address (${host}); looked up as a name, not used as an address`);
  }
  const [a, aaaa, cname] = await Promise.all([
    opts.resolver.lookup(host, 'A'),
    opts.ipv6 === 'never' ? undefined : opts.resolver.lookup(host, 'AAAA'),
    opts.resolver.lookup(host, 'CNAME'),
  ]);
  if (cname.status === 'ok' && cname.records.length) {
    log?.warn({ event: 'mx.cname', domain, mx: host, target: cname.records[0] }, `MX host ${host} of ${domain} is an alias (CNAME to ${cname.records[0]}), which RFC 2181 10.3 forbids; following it`);
  }
  const v4 = a.status === 'ok' ? a.records.filter((x) => net.isIPv4(x)) : [];
  const v6 = aaaa?.status === 'ok' ? aaaa.records.filter((x) => net.isIPv6(x)) : [];
  const addresses = [...new Set([...v6, ...v4])];
  const errors = [a, aaaa].filter((l) => l?.status === 'error').map((l) => `${host}: ${(l as { reason: string }).reason}`);
  return {
    addresses,
    temporary: addresses.length === 0 && errors.length ? errors[0] : undefined,
    problem: addresses.length ? undefined : `${host} has no A${opts.ipv6 === 'never' ? '' : '/AAAA'} record`,
  };
}

/** Sorted by preference, equal preferences in random order (Fisher–Yates within each group). */
function order(candidates: Candidate[], random: () => number): Candidate[] {
  const seen = new Set<string>();
  const unique = candidates.filter((c) => (seen.has(c.host) ? false : (seen.add(c.host), true)));
  const sorted = [...unique].sort((x, y) => x.preference - y.preference);
  for (let start = 0; start < sorted.length;) {
    let end = start;
    while (end < sorted.length && sorted[end]!.preference === sorted[start]!.preference) end++;
    for (let i = end - 1; i > start; i--) {
      const j = start + Math.floor(random() * (i - start + 1));
      [sorted[i], sorted[j]] = [sorted[j]!, sorted[i]!];
    }
    start = end;
  }
  return sorted;
}

/** An address that is us: one we listen on, unspecified, or loopback unless tests allow it. */
export function isSelf(address: string, opts: Pick<MxResolveOptions, 'ownAddresses' | 'allowLoopback'>): boolean {
  const a = address.toLowerCase().replace(/^::ffff:(?=\d+\.)/, '');
  if (opts.ownAddresses.some((o) => o.toLowerCase() === a)) return true;
  if (a === '0.0.0.0' || a === '::') return true;
  const loopback = a === '::1' || (net.isIPv4(a) && a.startsWith('127.'));
  return loopback && !opts.allowLoopback;
}

function canonical(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

function fail(permanent: boolean, reply: string): MxPlan {
  return { kind: 'fail', permanent, reply };
}
