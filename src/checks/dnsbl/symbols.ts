// The symbols of the DNS list check (dnsbl.ts): two fixed ones, and one per configured list,
// DNSBL_<NAME> (weight > 0) or DNSWL_<NAME> (weight < 0), weighted with the list's weight.
import { declare, type SymbolDecl } from '../registry.js';
import { compileLists, type DnsblConfig } from './dnsbl.js';

export const DNSBL_SYMBOLS = declare('dnsbl', {
  DNSBL_LISTED: ['the lists that listed the client sum to dnsbl.threshold: refused at RCPT (554 5.7.1 naming the lists)', 'reject'],
  DNSBL_TEMPFAIL: 'a DNS list could not be asked (timeout, SERVFAIL, 127.255.255.x refusal); the log says which',
});

/** DNSBL_<NAME> / DNSWL_<NAME> of each configured list (throws on a bad list, as the check does). */
export function dnsListSymbols(config: DnsblConfig): SymbolDecl[] {
  return compileLists(config).map((l) => ({
    name: l.symbol, group: 'dnsbl', weight: l.weight,
    description: `${l.weight < 0 ? 'allowlisted' : 'listed'} by ${l.zone} (dnsbl.lists weight ${l.weight})`,
  }));
}
