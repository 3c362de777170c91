// The one configuration schema. Every key is documented in docs/configuration.md;
// unknown keys are errors (strict objects), so a typo never silently does nothing.
import os from 'node:os';
import { z } from 'zod';
import { cidr, domainName, duration, port, size } from './fields.js';
import { SYMBOL_ACTIONS } from '../protocol/symbol-actions.js';
import { attachmentsConfigSchema } from '../checks/attachments/config.js';
import { selfCheckConfigSchema } from '../audit/config.js';
import { archiveConfigSchema, avConfigSchema } from '../checks/av/config.js';
import { dkimConfigSchema } from '../checks/dkim/config.js';
import { isValidCodeFilter } from '../net/ip-names.js';
import { listenerSchema, defaultListeners, smtpConfigSchema, tarpitConfigSchema, limitsConfigSchema } from '../smtp/config.js';
import { authConfigSchema } from '../auth/config.js';
import { relayConfigSchema } from '../delivery/config.js';
import { queueConfigSchema } from '../queue/config.js';
import { dnsConfigSchema } from '../dns/config.js';
import { rdnsConfigSchema } from '../checks/rdns/config.js';
import { tlsConfigSchema } from '../tls/config.js';
import { optOutFilesConfigSchema } from '../pipeline/user-policies.js';
import { rulesConfigSchema } from '../checks/rules/config.js';
import { bayesConfigSchema } from '../checks/bayes/config.js';
import { uriConfigSchema } from '../checks/uri/config.js';
import { pop3ConfigSchema } from '../mailbox/pop3/config.js';
import { imapConfigSchema } from '../mailbox/imap/config.js';

/** A DNS list as postscreen's postscreen_dnsbl_sites: weight (negative = allowlist), optional return codes. */
const dnsList = z.strictObject({
  zone: domainName,
  /** Shown in the symbol (DNSBL_<NAME>) and the 554 text; defaults from the zone. */
  name: z.string().regex(/^[A-Za-z0-9_]+$/, 'letters, digits and _ only').optional(),
  weight: z.number().refine((w) => w !== 0, 'must not be 0 (negative weights make an allowlist)').default(1),
  /** Return codes that count, e.g. ["127.0.0.2", "127.0.0.4-7", "127.0.[0..255].[1..3]"]; empty = any 127.0.0.0/8 answer. */
  codes: z.array(z.string().refine(isValidCodeFilter, 'must be a return code such as 127.0.0.2, 127.0.0.4-7 or 127.0.[0..255].[1..3]')).default([]),
});

export const configSchema = z.strictObject({
  hostname: domainName.default(() => os.hostname().toLowerCase()),
  data_dir: z.string().min(1).default(() => process.env.PORTCULLIS_DATA_DIR || './data'),
  domains: z.array(domainName).optional(),
  listeners: z.array(listenerSchema).min(1).default(defaultListeners),
  tls: tlsConfigSchema,
  smtp: smtpConfigSchema,
  auth: authConfigSchema,
  relay: relayConfigSchema,
  roles: z.strictObject({
    addresses: z.array(z.string().regex(/^[a-z0-9._+-]+$/i)).default(['postmaster', 'abuse']),
    mailbox: z.string().optional(),
  }).prefault({}),
  queue: queueConfigSchema,
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
  dns: dnsConfigSchema,
  dnsbl: z.strictObject({
    lists: z.array(dnsList).default([]),
    /** Sum of weights at which the client is refused at RCPT (554 5.7.1), as postscreen_dnsbl_threshold. */
    threshold: z.number().positive().default(1),
  }).prefault({}),
  rdns: rdnsConfigSchema,
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
  tarpit: tarpitConfigSchema,
  limits: limitsConfigSchema,
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
export type { ListenerConfig } from '../smtp/config.js';
export type { RouteConfig } from '../delivery/config.js';
