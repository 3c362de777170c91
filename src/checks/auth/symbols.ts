// The symbols of the brute-force source check (brute-force-source.ts).
import { declare } from '../registry.js';

export const AUTH_SYMBOLS = declare('auth', {
  AUTH_BRUTE_FORCE_SOURCE: "the client's IP is blocked for password guessing",
  AUTH_FAILURES_SOURCE: "several failed logins from the client's IP recently",
});
