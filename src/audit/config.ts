// Configuration of the gateway's periodic self-check (`self_check:`), a zod schema for
// src/config/schema.ts to plug in:
//
//   self_check:
//     enabled: true
//     interval: 1h
//     addresses: [192.0.2.25]        # our outbound (public) addresses
//     hostnames: [mx.example.org]    # their A/AAAA are checked too
//
// The lists are the gateway's own `dnsbl.lists` (blocklists: weight > 0).
import net from 'node:net';
import { z } from 'zod';
import { domainName, duration } from '../config/fields.js';

export const selfCheckConfigSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** Time between two checks (the first runs `first_delay` after start). */
  interval: duration('1h').refine((ms) => ms >= 60_000, 'must be at least 1m (DNS lists rate-limit their users)'),
  first_delay: duration('1m'),
  /** Our outbound IP addresses, as the rest of the Internet sees them. */
  addresses: z.array(z.string().refine((a) => net.isIP(a) !== 0, 'must be an IPv4 or IPv6 address')).default([]),
  /** Our public host names: their addresses are checked too, and their reverse DNS. Empty = `hostname`. */
  hostnames: z.array(domainName).default([]),
}).prefault({});

export type SelfCheckConfig = z.output<typeof selfCheckConfigSchema>;
