// Configuration of the SMTP listeners and sessions: `listeners`, `smtp` (protocol limits and
// timers), `tarpit` and `limits` (per-client connection, message and recipient limits). Composed
// into the one schema by src/config/schema.ts; docs/configuration.md explains every key.
import { z } from 'zod';
import { cidr, duration, port, size } from '../config/fields.js';

const listenerName = z.string().regex(/^[a-z0-9_-]+$/i, 'must be a short name of letters, digits, - and _');

export const smtpListenerSchema = z.strictObject({
  name: listenerName,
  kind: z.enum(['mx', 'submission', 'submissions']),
  address: z.string().default('127.0.0.1'),
  port,
});

/**
 * The scanner behind other mail systems' clients (docs/integrations.md): `spamd` speaks
 * SPAMC/1.5 (spamc, Haraka's spamassassin plugin), `scan-http` rspamd's HTTP protocol (rspamc,
 * Haraka's rspamd plugin). Loopback by default, and only the `allow` networks may talk to it.
 */
const scanListenerFields = {
  name: listenerName,
  address: z.string().default('127.0.0.1'),
  port,
  /** Client networks allowed to connect (spamd --allowed-ips); everyone else is refused. */
  allow: z.array(cidr).min(1).default(['127.0.0.0/8', '::1']),
  /** A client that sends nothing for this long is disconnected (a request must also finish in it). */
  timeout: duration('30s'),
  /** Connections served at once; more are closed as they come (bounded memory: each holds a message). */
  max_connections: z.number().int().min(1).max(10_000).default(50),
};

export const spamdListenerSchema = z.strictObject({
  ...scanListenerFields,
  kind: z.literal('spamd'),
  /** TELL (learning) is refused unless on: spamd -l (allow-tell). */
  allow_tell: z.boolean().default(false),
});

export const scanHttpListenerSchema = z.strictObject({
  ...scanListenerFields,
  kind: z.literal('scan-http'),
  /** The shared secret /learnspam and /learnham require in the Password header (rspamd's controller password); unset: learning refused. */
  password: z.string().min(8, 'must be at least 8 characters').optional(),
});

// ---- policy listeners (docs/integrations.md): an MTA's or an IMAP server's questions, our checks' answers
/** Fields of the two policy listeners: loopback by default, only the `allow` networks may ask. */
const policyListenerFields = {
  name: listenerName,
  address: z.string().default('127.0.0.1'),
  port,
  /** Client networks allowed to connect (as spamd's --allowed-ips); everyone else is refused. */
  allow: z.array(cidr).min(1).default(['127.0.0.0/8', '::1']),
  /** Connections served at once; more are closed as they come. */
  max_connections: z.number().int().min(1).max(10_000).default(100),
};

/**
 * `kind: policy`: Postfix policy delegation (check_policy_service). Postfix keeps its policy
 * connections open between requests (smtpd_policy_service_max_idle, 300s): the idle timeout is
 * longer than that, so Postfix closes first.
 */
export const policyListenerSchema = z.strictObject({
  ...policyListenerFields,
  kind: z.literal('policy'),
  /** A connection silent this long (between or within requests) is closed. */
  timeout: duration('6m'),
  /** Scored symbols of an accepted transaction go into the message as one PREPENDed X-Portcullis-Policy field (once per transaction). */
  prepend_header: z.boolean().default(true),
});

/**
 * `kind: dovecot-policy`: Dovecot's auth policy server (auth_policy_server_url), answering from
 * the brute-force defence and feeding it Dovecot's login results.
 */
export const dovecotPolicyListenerSchema = z.strictObject({
  ...policyListenerFields,
  kind: z.literal('dovecot-policy'),
  /**
   * Dovecot's auth_policy_server_api_header, as written there: "Name: value" (a value without a
   * colon is sent as X-API-Key). Unset: no header is required (the `allow` networks still are).
   */
  api_header: z.string().refine((v) => {
    const secret = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+:(.*)$/.exec(v)?.[1] ?? v;
    return secret.trim().length >= 8 && !/[\r\n]/.test(v);
  }, 'must be "Header-Name: secret" (or a bare secret) with a secret of at least 8 characters, as in Dovecot\'s auth_policy_server_api_header').optional(),
  /** A request must arrive in this long (Dovecot's own limit is auth_policy_server_timeout_msecs, 2s). */
  timeout: duration('10s'),
});


// ---- kind: milter ---------------------------------------------------------------------------
/**
 * The milter listener (docs/integrations.md): Postfix's smtpd_milters / Sendmail's
 * INPUT_MAIL_FILTER run the SMTP path's checks at each stage of their own sessions. On TCP
 * (address and port) or a unix socket (path). What the MTA does while Portcullis is down is
 * its own setting: Postfix milter_default_action, Sendmail's F= flags (see the docs).
 */
export const milterListenerSchema = z.strictObject({
  name: listenerName,
  kind: z.literal('milter'),
  address: z.string().default('127.0.0.1'),
  port: port.optional(),
  /** A unix socket instead of address and port (Postfix: smtpd_milters = unix:/path). */
  path: z.string().min(1).max(100).optional(),
  /** MTA networks allowed to connect over TCP; everyone else is refused. */
  allow: z.array(cidr).min(1).default(['127.0.0.0/8', '::1']),
  /** An MTA connection silent for this long is closed (longer than the MTA's own SMTP idle timeout: Postfix smtpd_timeout is 300 s). */
  timeout: duration('10m'),
  /** Connections served at once (each MTA session holds one; each may hold a message up to smtp.max_message_size). */
  max_connections: z.number().int().min(1).max(10_000).default(100),
  /** What the MTA hears when our own scan fails (an internal error, not a check's verdict): tempfail (451 4.3.0) or accept. */
  on_error: z.enum(['tempfail', 'accept']).default('tempfail'),
}).refine((l) => (l.port === undefined) !== (l.path === undefined), { message: 'a milter listener needs either port or path (not both)', path: ['port'] });
// ---- end kind: milter -----------------------------------------------------------------------

export const listenerSchema = z.discriminatedUnion('kind', [smtpListenerSchema, spamdListenerSchema, scanHttpListenerSchema, policyListenerSchema, dovecotPolicyListenerSchema, milterListenerSchema]);


export function defaultListeners() {
  return [
    { name: 'mx', kind: 'mx' as const, address: '127.0.0.1', port: 2525 },
    { name: 'submission', kind: 'submission' as const, address: '127.0.0.1', port: 5870 },
    { name: 'submissions', kind: 'submissions' as const, address: '127.0.0.1', port: 4650 },
  ];
}


export const smtpConfigSchema = z.strictObject({
  banner: z.string().default('ESMTP Portcullis'),
  max_message_size: size('25MiB'),
  max_recipients: z.number().int().min(1).max(100_000).default(1000),
  max_line_length: z.number().int().min(512).max(65_536).default(2048),
  max_errors: z.number().int().min(1).max(1000).default(20),
  idle_timeout: duration('5m'),
  data_timeout: duration('10m'),
  /**
   * The longest session: past it, the session is closed at the next command boundary (never in
   * the middle of a message) with 421 4.4.2, so a client cannot keep a connection slot forever by
   * sending a NOOP every few minutes. A sender with more mail reconnects.
   */
  max_session_time: duration('1h'),
  max_connections: z.number().int().min(1).max(1_000_000).default(2000),
  bare_newline: z.enum(['normalize', 'reject']).default('normalize'),
}).prefault({}).prefault({});

export const tarpitConfigSchema = z.strictObject({
  /** Connection score (connect and HELO symbols) from which every reply is delayed. */
  score: z.number().default(3),
  delay: duration('5s'),
  /** Bad commands in a session after which every reply waits error_delay (Postfix smtpd_soft_error_limit; 0 = never). */
  errors: z.number().int().min(0).default(10),
  error_delay: duration('1s'),
}).prefault({}).prefault({});

export const limitsConfigSchema = z.strictObject({
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
}).prefault({}).prefault({});

/** The greeting delay of mx listeners (early-talker detection, as postscreen's greet action). */
export const greetingConfigSchema = z.strictObject({
  /** Wait this long before the banner on mx listeners; a client that talks first is an early talker. */
  delay: duration('2s'),
  /** A client that waited once is not delayed again for this long. */
  pass_ttl: duration('1d'),
}).prefault({});

/** An SMTP listener (mx, submission, submissions). */
export type ListenerConfig = z.output<typeof smtpListenerSchema>;
export type SpamdListenerConfig = z.output<typeof spamdListenerSchema>;
export type ScanHttpListenerConfig = z.output<typeof scanHttpListenerSchema>;
export type PolicyListenerConfig = z.output<typeof policyListenerSchema>;
export type DovecotPolicyListenerConfig = z.output<typeof dovecotPolicyListenerSchema>;
export type MilterListenerConfig = z.output<typeof milterListenerSchema>;
/** Any entry of `listeners`. */
export type AnyListenerConfig = z.output<typeof listenerSchema>;

export function isSmtpListener(l: AnyListenerConfig): l is ListenerConfig {
  return l.kind === 'mx' || l.kind === 'submission' || l.kind === 'submissions';
}
export type SmtpConfig = z.output<typeof smtpConfigSchema>;
export type TarpitConfig = z.output<typeof tarpitConfigSchema>;
export type LimitsConfig = z.output<typeof limitsConfigSchema>;
export type GreetingConfig = z.output<typeof greetingConfigSchema>;
