// Which hosts the audit looks at: the domain's MX hosts (RFC 5321 s5.1: without MX records,
// the domain itself is the implicit MX; RFC 7505: a null MX says the domain takes no mail) and
// the hosts given on the command line, each with its addresses. Only these are ever contacted.
import net from 'node:net';
import type { Resolver } from '../dns/types.js';
import { NetworkSet } from '../net/cidr.js';
import { cleanEvidence, type Finding } from './findings.js';

export interface Target {
  /** Lower case, no trailing dot; an address literal for a --host given as an address. */
  readonly host: string;
  readonly source: 'mx' | 'implicit-mx' | 'given';
  readonly priority?: number;
  readonly addresses: readonly string[];
}

export interface TargetResolution {
  readonly targets: readonly Target[];
  readonly findings: readonly Finding[];
  /** The domain takes mail (it has MX hosts, or an implicit MX); false for a null MX or a missing domain. */
  readonly acceptsMail: boolean;
}

export const MAX_HOSTS = 10;
export const MAX_ADDRESSES_PER_HOST = 4;

/** Addresses that the Internet cannot reach: RFC 1918, loopback, link-local, CGNAT, ULA. */
const NOT_PUBLIC = new NetworkSet([
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16',
  '::1/128', '::/128', 'fc00::/7', 'fe80::/10',
]);

export function isPublicAddress(address: string): boolean {
  return !NOT_PUBLIC.has(address);
}

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?$/i;

export function isHostName(text: string): boolean {
  return HOSTNAME.test(text.replace(/\.$/, ''));
}

export async function resolveTargets(resolver: Resolver, domain: string, given: readonly string[] = []): Promise<TargetResolution> {
  const findings: Finding[] = [];
  const hosts: { host: string; source: Target['source']; priority?: number }[] = [];
  let acceptsMail = true;

  const mx = await resolver.lookup(domain, 'MX');
  if (mx.status === 'ok') {
    const records = [...mx.records].sort((a, b) => a.priority - b.priority);
    const evidence = records.map((r) => `${domain}. MX ${r.priority} ${r.exchange || '.'}`).join('\n');
    if (records.length === 1 && (records[0]!.exchange === '' || records[0]!.exchange === '.')) {
      acceptsMail = false;
      findings.push({
        code: 'MX_NULL', area: 'reachability', severity: 'info', target: domain, evidence,
        title: 'The domain publishes a null MX: it accepts no mail (RFC 7505)',
      });
    } else {
      findings.push({ code: 'MX_OK', area: 'reachability', severity: 'ok', target: domain, evidence, title: `${records.length} MX host(s)` });
      for (const r of records) {
        const host = r.exchange.toLowerCase().replace(/\.$/, '');
        if (!host) continue;
        if (net.isIP(host)) {
          findings.push({
            code: 'MX_IS_ADDRESS', area: 'reachability', severity: 'warning', target: domain, evidence,
            title: `An MX record names an address (${host}), not a host name`, fix: 'Point the MX record at a host name that has the address (RFC 5321 s5.1).',
          });
        }
        if (!hosts.some((h) => h.host === host)) hosts.push({ host, source: 'mx', priority: r.priority });
      }
    }
  } else if (mx.status === 'nodata') {
    findings.push({
      code: 'MX_MISSING', area: 'reachability', severity: 'warning', target: domain, evidence: `${domain}. MX: no records (NOERROR, no data)`,
      title: 'No MX record: senders fall back to the domain\'s own address', fix: `Publish an MX record for ${domain} (or a null MX "0 ." if it takes no mail).`,
    });
    hosts.push({ host: domain, source: 'implicit-mx' });
  } else if (mx.status === 'nxdomain') {
    acceptsMail = false;
    findings.push({
      code: 'DOMAIN_MISSING', area: 'reachability', severity: 'critical', target: domain, evidence: `${domain}. MX: NXDOMAIN`,
      title: 'The domain does not exist in the DNS', fix: 'Check the spelling, or register and delegate the domain.',
    });
  } else {
    findings.push({
      code: 'MX_DNS_ERROR', area: 'reachability', severity: 'warning', target: domain, evidence: `${domain}. MX: ${mx.reason}`,
      title: 'The MX lookup failed', fix: 'Check the domain\'s name servers (they must answer for MX over UDP and TCP).',
    });
  }

  for (const g of given) {
    const host = g.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
    if (!hosts.some((h) => h.host === host)) hosts.push({ host, source: 'given' });
  }
  if (hosts.length > MAX_HOSTS) {
    findings.push({
      code: 'TOO_MANY_HOSTS', area: 'reachability', severity: 'info', target: domain,
      evidence: hosts.map((h) => h.host).join('\n'), title: `Only the first ${MAX_HOSTS} of ${hosts.length} hosts are audited`,
    });
    hosts.length = MAX_HOSTS;
  }

  const targets = await Promise.all(hosts.map(async (h): Promise<Target> => {
    if (net.isIP(h.host)) return { ...h, addresses: [h.host] };
    const [a, aaaa] = await Promise.all([resolver.lookup(h.host, 'A'), resolver.lookup(h.host, 'AAAA')]);
    const addresses = [...(a.status === 'ok' ? a.records : []), ...(aaaa.status === 'ok' ? aaaa.records : [])];
    const unique = [...new Set(addresses)].slice(0, MAX_ADDRESSES_PER_HOST);
    if (!unique.length) {
      const errors = [a, aaaa].filter((l) => l.status === 'error').map((l) => (l.status === 'error' ? l.reason : ''));
      findings.push({
        code: errors.length ? 'HOST_DNS_ERROR' : 'HOST_NO_ADDRESS', area: 'reachability',
        severity: errors.length ? 'warning' : h.source === 'given' ? 'warning' : 'critical', target: h.host,
        evidence: cleanEvidence(`${h.host}. A: ${a.status}${a.status === 'error' ? ` (${a.reason})` : ''}\n${h.host}. AAAA: ${aaaa.status}${aaaa.status === 'error' ? ` (${aaaa.reason})` : ''}`),
        title: errors.length ? 'The host\'s address lookup failed' : 'The host has no address',
        fix: errors.length ? 'Check the name servers of the host\'s domain.' : `Publish A/AAAA records for ${h.host} or remove it from the MX records.`,
      });
    }
    for (const addr of unique.filter((x) => !isPublicAddress(x))) {
      findings.push({
        code: 'HOST_PRIVATE_ADDRESS', area: 'reachability', severity: h.source === 'given' ? 'info' : 'warning', target: h.host,
        evidence: `${h.host} → ${addr}`, title: `The host resolves to ${addr}, which the Internet cannot reach`,
        fix: 'Publish the host\'s public address in the DNS.',
      });
    }
    return { ...h, addresses: unique };
  }));
  return { targets, findings, acceptsMail };
}
