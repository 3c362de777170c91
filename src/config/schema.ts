// The one configuration schema. Every key is documented in docs/configuration.md;
// unknown keys are errors (strict objects), so a typo never silently does nothing.
import os from 'node:os';
import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';
import { isValidCidr } from '../net/cidr.js';

const duration = (fallback: string) =>
  z.union([z.string(), z.number()]).default(fallback).transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (use e.g. 30s, 5m, 1h, 5d)` });
      return z.NEVER;
    }
    return ms;
  });

const size = (fallback: string) =>
  z.union([z.string(), z.number()]).default(fallback).transform((v, ctx) => {
    const bytes = parseSize(v);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not a size (use e.g. 512KiB, 25MiB, 10MB)` });
      return z.NEVER;
    }
    return bytes;
  });

const domainName = z.string().regex(/^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?$/i,
  'must be a domain name such as example.org').transform((d) => d.toLowerCase());

const cidr = z.string().refine(isValidCidr, 'must be an IP address or CIDR range such as 192.0.2.0/24 or 2001:db8::/32');

const port = z.number().int().min(0).max(65535);

const listener = z.strictObject({
  name: z.string().regex(/^[a-z0-9_-]+$/i, 'must be a short name of letters, digits, - and _'),
  kind: z.enum(['mx', 'submission', 'submissions']),
  address: z.string().default('127.0.0.1'),
  port,
});

const certificate = z.strictObject({
  cert: z.string().min(1),
  key: z.string().min(1),
});

const route = z.strictObject({
  domain: z.union([domainName, z.literal('*')]),
  host: z.string().min(1),
  port: port.default(25),
  protocol: z.enum(['smtp', 'lmtp']).default('smtp'),
  tls: z.enum(['required', 'opportunistic', 'none']).default('opportunistic'),
  tls_verify: z.boolean().default(true),
  max_connections: z.number().int().min(1).max(1000).default(10),
});

const relayDomain = z.strictObject({
  domain: domainName,
  recipients: z.array(z.string().min(3)).optional(),
});

export function defaultListeners() {
  return [
    { name: 'mx', kind: 'mx' as const, address: '127.0.0.1', port: 2525 },
    { name: 'submission', kind: 'submission' as const, address: '127.0.0.1', port: 5870 },
    { name: 'submissions', kind: 'submissions' as const, address: '127.0.0.1', port: 4650 },
  ];
}

export const configSchema = z.strictObject({
  hostname: domainName.default(() => os.hostname().toLowerCase()),
  data_dir: z.string().min(1).default(() => process.env.PORTCULLIS_DATA_DIR || './data'),
  domains: z.array(domainName).optional(),
  listeners: z.array(listener).min(1).default(defaultListeners),
  tls: z.strictObject({
    certificates: z.array(certificate).default([]),
    min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    ciphers: z.string().default(
      'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:' +
      'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305'),
    self_signed: z.boolean().default(true),
  }).prefault({}),
  smtp: z.strictObject({
    banner: z.string().default('ESMTP Portcullis'),
    max_message_size: size('25MiB'),
    max_recipients: z.number().int().min(1).max(100_000).default(1000),
    max_line_length: z.number().int().min(512).max(65_536).default(2048),
    max_errors: z.number().int().min(1).max(1000).default(20),
    idle_timeout: duration('5m'),
    data_timeout: duration('10m'),
    max_connections: z.number().int().min(1).max(1_000_000).default(2000),
    bare_newline: z.enum(['normalize', 'reject']).default('normalize'),
  }).prefault({}),
  auth: z.strictObject({
    mechanisms: z.array(z.enum(['PLAIN', 'LOGIN'])).min(1).default(['PLAIN', 'LOGIN']),
    on_mx: z.boolean().default(false),
    brute_force: z.strictObject({
      window: duration('1h'),
      block_time: duration('15m'),
      pair_limit: z.number().int().min(1).default(5),
      ip_limit: z.number().int().min(1).default(20),
      net_limit: z.number().int().min(1).default(100),
      base_delay: duration('500ms'),
      max_delay: duration('15s'),
      spray_accounts: z.number().int().min(2).default(10),
      spray_sources: z.number().int().min(2).default(10),
      known_network_ttl: duration('30d'),
    }).prefault({}),
  }).prefault({}),
  relay: z.strictObject({
    trusted_networks: z.array(cidr).default([]),
    domains: z.array(relayDomain).default([]),
    routes: z.array(route).default([]),
  }).prefault({}),
  roles: z.strictObject({
    addresses: z.array(z.string().regex(/^[a-z0-9._+-]+$/i)).default(['postmaster', 'abuse']),
    mailbox: z.string().optional(),
  }).prefault({}),
  queue: z.strictObject({
    fsync: z.boolean().default(true),
    delivery_concurrency: z.number().int().min(1).max(1000).default(50),
    retry_initial: duration('5m'),
    retry_max: duration('1h'),
    lifetime: duration('5d'),
    segment_size: size('64MiB'),
    memory_spill: size('256KiB'),
  }).prefault({}),
  policy: z.strictObject({
    observe: z.boolean().default(false),
    thresholds: z.strictObject({
      tag: z.number().default(5),
      junk: z.number().default(8),
      reject: z.number().default(15),
    }).prefault({}),
    subject_tag: z.string().default(''),
    symbols: z.record(z.string().regex(/^[A-Z0-9_]+$/, 'symbol names are upper case'), z.number()).default({}),
  }).prefault({}),
  metrics: z.strictObject({
    enabled: z.boolean().default(true),
    address: z.string().default('127.0.0.1'),
    port: port.default(9225),
  }).prefault({}),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  }).prefault({}),
  shutdown_grace: duration('30s'),
});

export type RawConfig = z.input<typeof configSchema>;
type Parsed = z.output<typeof configSchema>;
/** The validated, defaulted configuration; `domains` always filled in. */
export type Config = Omit<Parsed, 'domains'> & { domains: string[]; roles: Parsed['roles'] & { mailbox: string } };
export type ListenerConfig = Parsed['listeners'][number];
export type RouteConfig = Parsed['relay']['routes'][number];
