// The symbols of the antivirus check (av-check.ts) and of clamd scans of decrypted archive entries.
import { declare } from '../registry.js';

export const AV_SYMBOLS = declare('av', {
  AV_VIRUS: ['clamd found a virus: refused, 554 5.7.1 naming it', 'reject'],
  AV_UNAVAILABLE: ['clamd down, failing or too slow: 451 4.7.1 (action tag: accepted unscanned, weight = the tag threshold)', 'tempfail'],
  AV_SKIPPED: "too large to scan (antivirus.max_stream or clamd's StreamMaxLength); the reason says which",
});
