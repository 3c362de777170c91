// HELO/EHLO name hints: cheap, scored, never rejecting on their own (legitimate servers get
// their names wrong often enough that Postfix's reject_invalid_helo_hostname is opt-in).
import net from 'node:net';
import type { Check } from '../types.js';

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/i;

export const heloSyntax: Check<'helo'> = {
  name: 'helo_syntax',
  stage: 'helo',
  run({ conn }) {
    const helo = conn.helo ?? '';
    if (net.isIP(helo)) return { symbols: [{ name: 'HELO_BARE_IP', reason: `HELO is an IP address without brackets: ${helo}` }] };
    const literal = /^\[(?:IPv6:)?([^\]]+)\]$/i.exec(helo);
    if (literal) {
      if (literal[1] !== conn.remoteAddress) {
        return { symbols: [{ name: 'HELO_IP_MISMATCH', reason: `HELO literal ${helo} is not the client address ${conn.remoteAddress}` }] };
      }
      return { symbols: [{ name: 'HELO_IP_LITERAL', reason: 'HELO is an address literal' }] };
    }
    if (!HOSTNAME.test(helo)) return { symbols: [{ name: 'HELO_NOT_FQDN', reason: `HELO is not a fully-qualified host name: ${helo.slice(0, 64)}` }] };
    return {};
  },
};
