// The symbols of DKIM verification (authentication-check.ts, verify-dkim.ts).
import { declare } from '../registry.js';

export const DKIM_SYMBOLS = declare('dkim', {
  DKIM_VALID: 'a valid signature (any domain: proves integrity, not intent)',
  DKIM_VALID_AU: 'a valid signature of the From: domain (aligned)',
  DKIM_INVALID: 'a signature that does not verify (body hash, signature); forwarding breaks some',
  DKIM_PERMFAIL: 'key missing, revoked or malformed; unusable signature',
  DKIM_TEMPFAIL: 'a key lookup failed',
  DKIM_NONE: 'the message has no DKIM signature',
});
