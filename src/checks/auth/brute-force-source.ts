// A client that is guessing passwords is a bad sender too: the brute-force defence's view of
// the IP becomes a symbol for the other defences (DESIGN.md: one verdict pipeline).
import type { Check } from '../types.js';
import type { BruteForce } from '../../auth/brute-force.js';

export function bruteForceSource(bf: BruteForce): Check<'connect'> {
  return {
    name: 'brute_force_source',
    stage: 'connect',
    timeoutMs: 2000,
    async run({ conn }) {
      const { failures, blocked } = await bf.ipFailures(conn.remoteAddress);
      if (blocked) return { symbols: [{ name: 'AUTH_BRUTE_FORCE_SOURCE', reason: `blocked for password guessing (${failures} failed logins)` }] };
      if (failures >= 3) return { symbols: [{ name: 'AUTH_FAILURES_SOURCE', reason: `${failures} failed logins from this address recently` }] };
      return {};
    },
  };
}
