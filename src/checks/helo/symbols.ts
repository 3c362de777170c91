// The symbols of the HELO checks (helo-syntax.ts, helo-dns.ts); weights in conf/scores.yaml.
import { declare } from '../registry.js';

export const HELO_SYMBOLS = declare('helo', {
  HELO_BARE_IP: 'HELO 192.0.2.1 instead of [192.0.2.1]',
  HELO_IP_MISMATCH: "HELO [literal] that is not the client's address",
  HELO_IP_LITERAL: 'HELO [literal] matching the client',
  HELO_NOT_FQDN: 'HELO name without a dot, or not a host name at all',
  HELO_CLAIMS_OURS: 'a stranger greets with our host name, one of our domains or our address',
  HELO_NO_RESOLVE: 'HELO name with no A, AAAA or MX record',
  HELO_DNS_TEMPFAIL: 'the HELO name lookup failed',
});
