// Configuration of the DNS layer (`dns`): resolvers, timeouts, cache and local zone mirrors.
// Composed into the one schema by src/config/schema.ts.
import { z } from 'zod';
import { domainName, duration, port } from '../config/fields.js';

const hostPort = z.string().refine((v) => /^(\[[0-9a-f:.]+\]|[0-9.]+|[0-9a-f:]+)(:\d{1,5})?$/i.test(v),
  'must be an IP address with an optional port, e.g. 127.0.0.1:5353 or [::1]:53');

const zoneFile = z.strictObject({
  /** The DNS name the mirror answers under, e.g. zen.spamhaus.org or a local name. */
  name: domainName,
  type: z.enum(['ip4set', 'ip4tset', 'ip6tset', 'dnset']),
  file: z.string().min(1),
  ttl: duration('35m'),
});

export const dnsConfigSchema = z.strictObject({
  /** Resolvers to ask; empty = the nameservers of /etc/resolv.conf. */
  servers: z.array(hostPort).default([]),
  timeout: duration('2s'),
  attempts: z.number().int().min(1).max(5).default(2),
  max_inflight: z.number().int().min(1).max(100_000).default(500),
  cache_entries: z.number().int().min(0).max(10_000_000).default(100_000),
  max_ttl: duration('1d'),
  negative_ttl: duration('5m'),
  /** How long a failed question is remembered (RFC 2308 s7 allows up to 5 minutes); 0 = never. */
  error_ttl: duration('5s'),
  /**
   * The servers validate DNSSEC (e.g. unbound on loopback): their AD bit is then believed and
   * DANE (RFC 7672) applies to outbound delivery. Only true when the path to them is trusted.
   */
  dnssec_validating: z.boolean().default(false),
  /** Local mirrors of DNS lists (rbldnsd zone files), answered from memory. */
  zones: z.array(zoneFile).default([]),
  /** Serve the mirrored zones over DNS (UDP and TCP) for other hosts. */
  serve: z.strictObject({ address: z.string().default('127.0.0.1'), port }).optional(),
}).prefault({}).prefault({});

export type DnsConfig = z.output<typeof dnsConfigSchema>;
