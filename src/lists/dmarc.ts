// Whether an author's domain asks receivers to quarantine or reject mail that fails DMARC
// (RFC 7489): then a list's copy, which breaks the author's DKIM signature by its changes and
// comes from our servers, would be refused, and the list puts its own address in From. Looked
// up with the gateway's resolver through mailauth's record finder (organizational domain
// fallback, sp= for subdomains). A lookup that fails counts as strict: rewriting is safe.
import { createRequire } from 'node:module';
import type { Resolver } from '../dns/types.js';

const require = createRequire(import.meta.url);
const getDmarcRecord = require('mailauth/lib/dmarc/get-dmarc-record.js') as (domain: string, resolver: (name: string, type: string) => Promise<unknown[]>) => Promise<false | { p?: string; sp?: string; isOrgRecord?: boolean; rr?: string }>;

export type DmarcStrictness = 'strict' | 'relaxed';

/** Node-style resolve over the gateway's resolver (what mailauth calls). */
function nodeStyle(resolver: Resolver) {
  return async (name: string, type: string): Promise<unknown[]> => {
    const r = await resolver.lookup(name, type as 'TXT');
    if (r.status === 'ok') return r.records.map((x) => (Array.isArray(x) ? [...x] : x));
    const code = r.status === 'nxdomain' ? 'ENOTFOUND' : r.status === 'nodata' ? 'ENODATA' : 'ESERVFAIL';
    throw Object.assign(new Error(`${code} ${name}`), { code });
  };
}

/** strict: p (or sp for a subdomain) is quarantine or reject, or the lookup failed. */
export async function dmarcStrictness(domain: string, resolver: Resolver): Promise<DmarcStrictness> {
  try {
    const rec = await getDmarcRecord(domain.toLowerCase(), nodeStyle(resolver));
    if (!rec) return 'relaxed';
    const policy = (rec.isOrgRecord && rec.sp ? rec.sp : rec.p ?? '').toLowerCase();
    return policy === 'quarantine' || policy === 'reject' ? 'strict' : 'relaxed';
  } catch {
    return 'strict';
  }
}
