// The symbols of the SPF checks (spf-check.ts): SPF_<RESULT> for the MAIL FROM identity,
// SPF_HELO_<RESULT> for the HELO identity (scored only).
import { declare } from '../registry.js';

export const SPF_SYMBOLS = declare('spf', {
  SPF_PASS: 'the domain permits the client: proves the path, not the intent',
  SPF_FAIL: ['the domain says the client is not its sender (-all): refused at RCPT, 550 5.7.23 with its explanation', 'reject'],
  SPF_SOFTFAIL: '~all: not permitted, "do not refuse"; forwarding causes some of these',
  SPF_NEUTRAL: '?all: the domain makes no statement',
  SPF_NONE: 'the domain publishes no SPF record',
  SPF_TEMPERROR: "DNS failure or time budget spent: unknown, not the sender's fault",
  SPF_PERMERROR: "the domain's record is broken (syntax, too many lookups)",
  SPF_HELO_PASS: 'the HELO name permits the client',
  SPF_HELO_FAIL: "the HELO name's owner says the client is not that host",
  SPF_HELO_SOFTFAIL: 'the HELO name does not permit the client (~all)',
  SPF_HELO_NEUTRAL: 'the HELO name makes no statement (?all)',
  SPF_HELO_NONE: 'most HELO names publish no SPF record',
  SPF_HELO_TEMPERROR: 'the HELO SPF lookup failed',
  SPF_HELO_PERMERROR: "the HELO name's record is broken",
});
