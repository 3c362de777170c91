// The one configuration schema. Every key is documented in docs/configuration.md;
// unknown keys are errors (strict objects), so a typo never silently does nothing.
import os from 'node:os';
import { z } from 'zod';
import { domainName, duration, port, size } from './fields.js';
import { attachmentsConfigSchema } from '../checks/attachments/config.js';
import { selfCheckConfigSchema } from '../audit/config.js';
import { archiveConfigSchema, avConfigSchema } from '../checks/av/config.js';
import { dkimConfigSchema } from '../checks/dkim/config.js';
import { listenerSchema, defaultListeners, smtpConfigSchema, tarpitConfigSchema, limitsConfigSchema, greetingConfigSchema } from '../smtp/config.js';
import { policyConfigSchema } from '../pipeline/config.js';
import { dnsblConfigSchema } from '../checks/dnsbl/config.js';
import { spfConfigSchema } from '../checks/spf/config.js';
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
import { phishingConfigSchema } from '../checks/phish/config.js';
import { pop3ConfigSchema } from '../mailbox/pop3/config.js';
import { imapConfigSchema } from '../mailbox/imap/config.js';
import { mxDeliveryConfigSchema } from '../delivery/mx-config.js';
import { outboundTlsConfigSchema } from '../delivery/tls-policy/config.js';
import { dkimSigningConfigSchema } from '../delivery/dkim/config.js';
import { outboundLimitsConfigSchema, outboundContentConfigSchema } from '../pipeline/outbound/config.js';
import { reportsConfigSchema } from '../reports/config.js';
import { listsConfigSchema } from '../lists/config.js';
import { consoleConfigSchema } from '../web/config.js';
import { quarantineConfigSchema } from '../quarantine/config.js';
import { storeConfigSchema } from '../store/config.js';
import { maildirConfigSchema } from '../delivery/maildir-config.js';

export const configSchema = z.strictObject({
  hostname: domainName.default(() => os.hostname().toLowerCase()),
  data_dir: z.string().min(1).default(() => process.env.PORTCULLIS_DATA_DIR || './data'),
  domains: z.array(domainName).optional(),
  listeners: z.array(listenerSchema).min(1).default(defaultListeners),
  tls: tlsConfigSchema,
  smtp: smtpConfigSchema,
  auth: authConfigSchema,
  relay: relayConfigSchema,
  // Mail to the world: direct MX delivery, TLS policy, DKIM signing, limits on senders (docs/outbound.md).
  outbound: z.strictObject({
    delivery: mxDeliveryConfigSchema,
    tls: outboundTlsConfigSchema,
    dkim: dkimSigningConfigSchema,
    limits: outboundLimitsConfigSchema,
    content: outboundContentConfigSchema,
  }).prefault({}),
  roles: z.strictObject({
    addresses: z.array(z.string().regex(/^[a-z0-9._+-]+$/i)).default(['postmaster', 'abuse']),
    mailbox: z.string().optional(),
  }).prefault({}),
  // Complaint (ARF), DMARC and TLS-RPT reports arriving at the role addresses (docs/deliverability.md).
  reports: reportsConfigSchema,
  // Mailing lists with confirmed opt-in on the local domains (docs/lists.md).
  lists: listsConfigSchema,
  queue: queueConfigSchema,
  // Local delivery: stale tmp/ files swept (docs/reliability.md).
  maildir: maildirConfigSchema,
  store: storeConfigSchema,
  policy: policyConfigSchema,
  dns: dnsConfigSchema,
  dnsbl: dnsblConfigSchema,
  rdns: rdnsConfigSchema,
  spf: spfConfigSchema,
  greeting: greetingConfigSchema,
  tarpit: tarpitConfigSchema,
  limits: limitsConfigSchema,
  attachments: attachmentsConfigSchema.prefault({}),
  antivirus: avConfigSchema,
  quarantine: quarantineConfigSchema,
  authentication: dkimConfigSchema,
  self_check: selfCheckConfigSchema,
  archives: archiveConfigSchema,
  /** Content spam checks share one parse of the message (the text facet of the message model, src/mime/text.ts). */
  spam: z.strictObject({
    /** Bytes of a message the content checks read; the rest is not examined (docs/spam.md). */
    max_scan_bytes: size('1MiB'),
  }).prefault({}),
  rules: rulesConfigSchema,
  bayes: bayesConfigSchema,
  uri: uriConfigSchema,
  phishing: phishingConfigSchema,
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
  /** The web console, HTTPS only (docs/console.md). */
  console: consoleConfigSchema,
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
