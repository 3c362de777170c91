// Configuration of direct delivery to the recipient domains' MX hosts (`outbound.delivery`),
// used for every non-local domain that no relay route (relay.routes) covers.
// Composed into the one schema by src/config/schema.ts. docs/outbound.md describes each key.
import net from 'node:net';
import { z } from 'zod';
import { duration, port } from '../config/fields.js';

const count = (min: number, max: number, fallback: number) => z.number().int().min(min).max(max).default(fallback);

export const mxDeliveryConfigSchema = z.strictObject({
  /** Deliver to the MX hosts of domains without a relay route (off: such recipients get 451 at RCPT). */
  enabled: z.boolean().default(true),
  /** The SMTP port of MX hosts: 25. Another value is for tests and lab set-ups only. */
  port: port.default(25),
  /** Source addresses for outgoing connections (the addresses your PTR and SPF records name). */
  source_ipv4: z.string().refine((a) => net.isIPv4(a), 'must be an IPv4 address such as 192.0.2.25').optional(),
  source_ipv6: z.string().refine((a) => net.isIPv6(a), 'must be an IPv6 address such as 2001:db8::25').optional(),
  /** 'prefer': an MX host's IPv6 addresses before its IPv4 ones; 'never': IPv4 only. */
  ipv6: z.enum(['prefer', 'never']).default('prefer'),
  /** Connections open at once to the MX hosts of one recipient domain (Postfix: 20). */
  max_connections_per_domain: count(1, 1000, 20),
  /** MX hosts looked up per domain, best first; the rest are ignored (a bound on DNS work). */
  max_mx_hosts: count(1, 100, 10),
  /** Addresses tried per domain over all its MX hosts (Postfix smtp_mx_address_limit). */
  max_mx_addresses: count(1, 100, 10),
  /** An address that refused or timed out is not tried again for this long: its mail defers at once. */
  host_down_delay: duration('60s'),
  /** An idle connection is kept this long for the next message to the same host. */
  idle_timeout: duration('10s'),
  /** RFC 5321 4.5.3.2 timeouts: connect, the 220 greeting, each command, the reply after the data. */
  connect_timeout: duration('30s'),
  greeting_timeout: duration('5m'),
  command_timeout: duration('5m'),
  data_timeout: duration('10m'),
  /**
   * Tests and lab set-ups only: an MX on a loopback address (127.0.0.0/8, ::1) is delivered to
   * instead of being refused as a mail loop. Never set this on a production gateway.
   */
  allow_loopback_mx: z.boolean().default(false),
}).prefault({});
export type MxDeliveryConfig = z.output<typeof mxDeliveryConfigSchema>;
