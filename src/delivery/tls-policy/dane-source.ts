// Whether DANE applies to an MX host (RFC 7672 2.2): only when the chain of DNS answers that led
// to it is DNSSEC-validated — the domain's MX RRset (or, with no MX, the domain's own addresses),
// the host's address records, and the TLSA RRset at _25._tcp.<host>. An insecure step anywhere
// means "no DANE" (and MTA-STS may apply). A TLSA lookup that fails once the rest is secure means
// the host must not be used (2.2: the failure may be an attacker hiding the records).
import type { Resolver, TlsaRecord } from '../../dns/types.js';
import { isUsableTlsa } from './dane.js';

export type DaneLookup =
  | { readonly kind: 'none'; readonly reason: string }
  /** Secure TLSA records; `usable` may be empty (then: encryption without authentication). */
  | { readonly kind: 'tlsa'; readonly records: readonly TlsaRecord[]; readonly usable: readonly TlsaRecord[] }
  | { readonly kind: 'failed'; readonly reason: string };

export async function daneFor(resolver: Resolver, domain: string, mxHost: string): Promise<DaneLookup> {
  const mx = await resolver.lookup(domain, 'MX');
  if (mx.status === 'ok') {
    if (mx.secure !== true) return { kind: 'none', reason: `MX of ${domain} not DNSSEC-validated` };
  } else if (mx.status === 'error') {
    return { kind: 'none', reason: `MX of ${domain}: ${mx.reason}` };
  } else if (mxHost !== domain) {
    return { kind: 'none', reason: `${domain} has no MX records and ${mxHost} is not its implicit MX` };
  }
  let addressSecure = false;
  for (const type of ['A', 'AAAA'] as const) {
    const a = await resolver.lookup(mxHost, type);
    if (a.status === 'ok' && a.secure === true) {
      addressSecure = true;
      break;
    }
  }
  if (!addressSecure) return { kind: 'none', reason: `addresses of ${mxHost} not DNSSEC-validated` };
  const name = `_25._tcp.${mxHost}`;
  const tlsa = await resolver.lookup(name, 'TLSA');
  switch (tlsa.status) {
    case 'ok':
      if (tlsa.secure !== true) return { kind: 'none', reason: `TLSA of ${name} not DNSSEC-validated` };
      return { kind: 'tlsa', records: tlsa.records, usable: tlsa.records.filter(isUsableTlsa) };
    case 'nodata':
    case 'nxdomain':
      return { kind: 'none', reason: `no TLSA records at ${name}` };
    case 'error':
      return { kind: 'failed', reason: `TLSA lookup of ${name} failed in a signed zone: ${tlsa.reason}` };
  }
}
