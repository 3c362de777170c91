// The audit's checks of one address (each MX address; the gateway's own addresses in the
// self-watch): reverse DNS — PTR, forward confirmation, generic names, with the gateway's own
// rdns code — and the configured DNS blocklists, with the gateway's own list compilation and
// return-code filters.
import type { Resolver } from '../dns/types.js';
import { sanitizeTxt, type DnsList } from '../checks/dnsbl/dnsbl.js';
import { resolveClientName } from '../checks/rdns/rdns.js';
import { classifyHostName } from '../checks/rdns/dynamic-name.js';
import { isRefusalCode, reverseName } from '../net/ip-names.js';
import { cleanEvidence, type Finding } from './findings.js';

export async function checkReverseDns(resolver: Resolver, host: string, address: string, patterns: readonly RegExp[] = []): Promise<Finding[]> {
  const target = `${host} [${address}]`;
  const name = await resolveClientName(resolver, address);
  const findings: Finding[] = [];
  switch (name.status) {
    case 'none':
      return [{
        code: 'RDNS_NONE', area: 'naming', severity: 'warning', target, evidence: `PTR of ${address}: none`,
        title: `${address} has no reverse DNS (PTR): many receivers refuse or score mail from it`,
        fix: `Ask the owner of ${address} (your provider) to set its PTR record to ${host}.`,
      }];
    case 'tempfail':
      return [{
        code: 'RDNS_DNS_ERROR', area: 'naming', severity: 'info', target, evidence: cleanEvidence(name.reason),
        title: 'The reverse DNS lookup failed', fix: 'Rerun the audit; if it persists, check the reverse zone\'s name servers.',
      }];
    case 'unverified':
      findings.push({
        code: 'RDNS_NOT_FCRDNS', area: 'naming', severity: 'warning', target, evidence: cleanEvidence(`PTR of ${address}: ${name.names.join(', ')}\nnone of these names resolves back to ${address}`),
        title: `The PTR name of ${address} does not resolve back to it (no forward-confirmed reverse DNS)`,
        fix: `Make the PTR name (${name.names[0]}) have an A/AAAA record for ${address}.`,
      });
      break;
    case 'verified':
      findings.push({
        code: 'RDNS_OK', area: 'naming', severity: 'ok', target, evidence: `PTR of ${address}: ${name.names.join(', ')}\n${name.name} → ${address} (forward-confirmed)`,
        title: `Forward-confirmed reverse DNS: ${name.name}`,
      });
      break;
  }
  const ptr = name.status === 'verified' ? name.name : name.names[0];
  if (ptr) {
    const verdict = classifyHostName(ptr, address, patterns);
    if (verdict.dynamic) {
      findings.push({
        code: 'RDNS_DYNAMIC', area: 'naming', severity: 'warning', target, evidence: `PTR of ${address}: ${ptr} (${verdict.detail})`,
        title: `The reverse DNS name ${ptr} looks like a generic or dynamic address`,
        fix: `Set the PTR of ${address} to a name of your own, such as ${host}: receivers treat generic names as home connections.`,
      });
    }
  }
  return findings;
}

export interface ListingResult {
  readonly list: DnsList;
  readonly status: 'listed' | 'clean' | 'refused' | 'error';
  readonly detail: string;
}

/** Asks every list about one address (A, then TXT for a listing). */
export async function queryLists(resolver: Resolver, lists: readonly DnsList[], address: string): Promise<ListingResult[]> {
  const rev = reverseName(address);
  if (!rev) return [];
  return Promise.all(lists.map(async (list): Promise<ListingResult> => {
    const name = `${rev}.${list.zone}`;
    const a = await resolver.lookup(name, 'A');
    if (a.status === 'error') return { list, status: 'error', detail: `${name}: ${a.reason}` };
    if (a.status !== 'ok') return { list, status: 'clean', detail: `${name}: ${a.status}` };
    const codes = a.records.filter((c) => list.codes.matches(c));
    if (!codes.length) {
      if (a.records.some(isRefusalCode)) return { list, status: 'refused', detail: `${name}: ${a.records.join(', ')} (the list refuses to answer this resolver)` };
      return { list, status: 'clean', detail: `${name}: ${a.records.join(', ')} (not a listing code)` };
    }
    const t = await resolver.lookup(name, 'TXT');
    const why = t.status === 'ok' ? sanitizeTxt(t.records.map((s) => s.join(''))) : '';
    return { list, status: 'listed', detail: `${name}: ${codes.join(', ')}${why ? ` "${why}"` : ''}` };
  }));
}

export async function checkBlocklists(resolver: Resolver, lists: readonly DnsList[], host: string, address: string): Promise<Finding[]> {
  const target = `${host} [${address}]`;
  if (!lists.length) {
    return [{
      code: 'DNSBL_NOT_CHECKED', area: 'blocklists', severity: 'info', target, evidence: 'dnsbl.lists is empty in the configuration',
      title: 'Blocklists not checked: no DNS lists configured', fix: 'Configure dnsbl.lists (e.g. zen.spamhaus.org through your own resolver) and rerun.',
    }];
  }
  return blocklistFindings(host, address, await queryLists(resolver, lists, address));
}

/** The findings of one address's list answers (also used by the gateway's self-watch). */
export function blocklistFindings(host: string, address: string, results: readonly ListingResult[]): Finding[] {
  const target = `${host} [${address}]`;
  const findings: Finding[] = [];
  const blocks = results.filter((r) => r.list.weight > 0);
  for (const r of blocks.filter((x) => x.status === 'listed')) {
    findings.push({
      code: 'DNSBL_LISTED', area: 'blocklists', severity: 'critical', target, evidence: cleanEvidence(r.detail),
      title: `${address} is listed on ${r.list.zone}`, fix: `Find and stop the cause (an infected host, an open relay, a compromised account), then request delisting from ${r.list.zone}.`,
    });
  }
  for (const r of results.filter((x) => x.list.weight < 0 && x.status === 'listed')) {
    findings.push({ code: 'DNSWL_LISTED', area: 'blocklists', severity: 'ok', target, evidence: cleanEvidence(r.detail), title: `${address} is on the allowlist ${r.list.zone}` });
  }
  const unknown = results.filter((x) => x.status === 'error' || x.status === 'refused');
  if (unknown.length) {
    findings.push({
      code: 'DNSBL_UNKNOWN', area: 'blocklists', severity: 'info', target, evidence: cleanEvidence(unknown.map((u) => u.detail).join('\n')),
      title: `${unknown.length} list(s) could not be asked`, fix: 'Use a resolver the lists answer (not a public one) and rerun.',
    });
  }
  const clean = blocks.filter((x) => x.status === 'clean');
  if (clean.length && !findings.some((f) => f.code === 'DNSBL_LISTED')) {
    findings.push({ code: 'DNSBL_CLEAN', area: 'blocklists', severity: 'ok', target, evidence: cleanEvidence(clean.map((c) => c.detail).join('\n')), title: `${address} is on none of ${clean.length} blocklist(s)` });
  }
  return findings;
}
