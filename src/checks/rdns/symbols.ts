// The symbols of the reverse-DNS check (rdns.ts).
import { declare } from '../registry.js';

export const RDNS_SYMBOLS = declare('rdns', {
  RDNS_NONE: "the client's address has no PTR record",
  RDNS_NOT_FCRDNS: 'no PTR name of the client resolves back to its address',
  RDNS_DYNAMIC: "the client's name looks like an access line's (address in the name, dsl/dyn/pool…)",
  RDNS_VERIFIED: 'informational: the forward-confirmed client name, in the reason',
  RDNS_TEMPFAIL: 'a PTR or forward lookup failed',
});
