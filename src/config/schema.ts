// The one configuration schema. Every key is documented in docs/configuration.md;
// unknown keys are errors (strict objects), so a typo never silently does nothing.
import os from 'node:os';
import { z } from 'zod';
import { cidr, domainName, duration, port, size } from './fields.js';
import { SYMBOL_ACTIONS } from '../protocol/symbol-actions.js';
import { attachmentsConfigSchema } from '../mime/config.js';
import { selfCheckConfigSchema } from '../audit/config.js';
import { archiveConfigSchema, avConfigSchema } from '../checks/av/config.js';
import { dkimConfigSchema } from '../checks/dkim/config.js';
import { isValidCodeFilter } from '../net/ip-names.js';
import { optOutFilesConfigSchema } from '../spam/user-policies.js';
import { rulesConfigSchema } from '../spam/rules/config.js';
import { bayesConfigSchema } from '../spam/bayes/config.js';
import { uriConfigSchema } from '../spam/uri/config.js';
import { pop3ConfigSchema } from '../mailbox/pop3/config.js';
import { imapConfigSchema } from '../mailbox/imap/config.js';

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

const hostPort = z.string().refine((v) => /^(\[[0-9a-f:.]+\]|[0-9.]+|[0-9a-f:]+)(:\d{1,5})?$/i.test(v),
  'must be an IP address with an optional port, e.g. 127.0.0.1:5353 or [::1]:53');

const zoneFile = z.strictObject({
  /** The DNS name the mirror answers under, e.g. zen.spamhaus.org or a local name. */
  name: domainName,
  type: z.enum(['ip4set', 'ip4tset', 'ip6tset', 'dnset']),
  file: z.string().min(1),
  ttl: duration('35m'),
});

/** A DNS list as postscreen's postscreen_dnsbl_sites: weight (negative = allowlist), optional return codes. */
const dnsList = z.strictObject({
  zone: domainName,
  /** Shown in the symbol (DNSBL_<NAME>) and the 554 text; defaults from the zone. */
  name: z.string().regex(/^[A-Za-z0-9_]+$/, 'letters, digits and _ only').optional(),
  weight: z.number().refine((w) => w !== 0, 'must not be 0 (negative weights make an allowlist)').default(1),
  /** Return codes that count, e.g. ["127.0.0.2", "127.0.0.4-7", "127.0.[0..255].[1..3]"]; empty = any 127.0.0.0/8 answer. */
  codes: z.array(z.string().refine(isValidCodeFilter, 'must be a return code such as 127.0.0.2, 127.0.0.4-7 or 127.0.[0..255].[1..3]')).default([]),
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
      junk: z.number().default(6),
      reject: z.number().default(15),
    }).prefault({}),
    subject_tag: z.string().default(''),
    /** Weights that win over every other (docs/pipeline.md); each name must be a known symbol. */
    symbols: z.record(z.string().regex(/^[A-Za-z0-9_]+$/, 'symbol names are letters, digits and _'), z.number()).default({}),
    /** What a symbol does beyond its weight: NAME, a glob (DNSBL_*) or group:NAME → an action (docs/pipeline.md). */
    actions: z.record(z.string().regex(/^(?:group:[a-z0-9_-]+|[A-Za-z0-9_*]+)$/, 'a symbol name, a glob such as DNSBL_*, or group:NAME'), z.enum(SYMBOL_ACTIONS)).default({}),
  }).prefault({}),
  dns: z.strictObject({
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
    /** Local mirrors of DNS lists (rbldnsd zone files), answered from memory. */
    zones: z.array(zoneFile).default([]),
    /** Serve the mirrored zones over DNS (UDP and TCP) for other hosts. */
    serve: z.strictObject({ address: z.string().default('127.0.0.1'), port }).optional(),
  }).prefault({}),
  dnsbl: z.strictObject({
    lists: z.array(dnsList).default([]),
    /** Sum of weights at which the client is refused at RCPT (554 5.7.1), as postscreen_dnsbl_threshold. */
    threshold: z.number().positive().default(1),
  }).prefault({}),
  rdns: z.strictObject({
    enabled: z.boolean().default(true),
    /** Extra regular expressions (case-insensitive) for dynamic/generic host names. */
    dynamic_patterns: z.array(z.string().min(1).refine((p) => {
      try {
        new RegExp(p, 'i');
        return true;
      } catch {
        return false;
      }
    }, 'must be a valid regular expression')).default([]),
  }).prefault({}),
  spf: z.strictObject({
    enabled: z.boolean().default(true),
    helo: z.boolean().default(true),
  }).prefault({}),
  greeting: z.strictObject({
    /** Wait this long before the banner on mx listeners; a client that talks first is an early talker. */
    delay: duration('2s'),
    /** A client that waited once is not delayed again for this long. */
    pass_ttl: duration('1d'),
  }).prefault({}),
  tarpit: z.strictObject({
    /** Connection score (connect and HELO symbols) from which every reply is delayed. */
    score: z.number().default(3),
    delay: duration('5s'),
    /** Bad commands in a session after which every reply waits error_delay (Postfix smtpd_soft_error_limit; 0 = never). */
    errors: z.number().int().min(0).default(10),
    error_delay: duration('1s'),
  }).prefault({}),
  limits: z.strictObject({
    /** 0 = no limit. Trusted networks are exempt. */
    connections_per_ip: z.number().int().min(0).default(50),
    connections_per_net: z.number().int().min(0).default(200),
    connection_rate_per_ip: z.number().int().min(0).default(0),
    connection_rate_per_net: z.number().int().min(0).default(0),
    messages_per_ip: z.number().int().min(0).default(0),
    recipients_per_ip: z.number().int().min(0).default(0),
    /** The window for the rates above. */
    window: duration('1m'),
    ipv4_prefix: z.number().int().min(8).max(32).default(24),
    ipv6_prefix: z.number().int().min(16).max(128).default(64),
  }).prefault({}),
  attachments: attachmentsConfigSchema.prefault({}),
  antivirus: avConfigSchema,
  authentication: dkimConfigSchema,
  self_check: selfCheckConfigSchema,
  archives: archiveConfigSchema,
  /** Content spam checks share one parse of the message (src/spam/message.ts). */
  spam: z.strictObject({
    /** Bytes of a message the content checks read; the rest is not examined (docs/spam.md). */
    max_scan_bytes: size('1MiB'),
  }).prefault({}),
  rules: rulesConfigSchema,
  bayes: bayesConfigSchema,
  uri: uriConfigSchema,
  imap: imapConfigSchema,
  pop3: pop3ConfigSchema,
  users: z.strictObject({
    /** `.spamme`-style opt-out files in home directories (docs/spam.md). */
    optout_files: optOutFilesConfigSchema,
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
export type Config = Omit<Parsed, 'domains'> & {
  domains: string[];
  roles: Parsed['roles'] & { mailbox: string };
  /** Deprecated keys found and mapped at load (src/config/legacy-actions.ts), for the start-up log and `config check`. */
  warnings: readonly string[];
};
export type ListenerConfig = Parsed['listeners'][number];
export type RouteConfig = Parsed['relay']['routes'][number];
