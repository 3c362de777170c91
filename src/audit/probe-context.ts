// What every network probe of the audit gets: the endpoint it looks at and the shared settings
// (timeouts, rate limit, cancellation, the names it uses for itself).
import crypto from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { DialogueOptions } from './dialogue.js';
import type { ServiceSpec } from './services.js';

export interface Endpoint {
  /** The host name as found (MX exchange or --host), or an address literal. */
  readonly host: string;
  readonly address: string;
  readonly port: number;
  readonly service: ServiceSpec;
}

export interface ProbeContext {
  readonly connectTimeoutMs: number;
  readonly replyTimeoutMs: number;
  /** The name the audit gives in EHLO. */
  readonly heloName: string;
  /** The audited domain (role addresses, the percent hack through a local domain). */
  readonly domain: string;
  /** The external domain relay attempts name; never contacted (probes stop at RCPT). */
  readonly relayDomain: string;
  /** Extra trusted CA certificates (PEM), besides Node's bundled roots. */
  readonly ca?: readonly string[];
  readonly signal?: AbortSignal;
  /** The rate limit: awaited before each new connection. */
  readonly beforeConnect?: () => Promise<void>;
  readonly now: () => number;
}

/** "mx.example.org [192.0.2.1]:25 (smtp)". */
export function endpointLabel(e: Endpoint): string {
  const addr = net.isIPv6(e.address) ? `[${e.address}]` : e.address;
  const host = e.host === e.address ? addr : `${e.host} [${e.address}]`;
  return `${host}:${e.port} (${e.service.name})`;
}

export function dialogueOptions(e: Endpoint, ctx: ProbeContext): Omit<DialogueOptions, 'implicitTls'> {
  return {
    address: e.address, port: e.port, connectTimeoutMs: ctx.connectTimeoutMs, replyTimeoutMs: ctx.replyTimeoutMs,
    signal: ctx.signal, beforeConnect: ctx.beforeConnect,
  };
}

/** SNI name for the endpoint (none for an address literal). */
export function serverName(e: Endpoint): string | undefined {
  return net.isIP(e.host) ? undefined : e.host.replace(/\.$/, '');
}

/** TLS client options that accept anything (the audit inspects the certificate itself). */
export function inspectingTls(e: Endpoint, ctx: ProbeContext, extra: tls.ConnectionOptions = {}): tls.ConnectionOptions {
  return {
    servername: serverName(e),
    rejectUnauthorized: false,
    ca: ctx.ca?.length ? [...tls.rootCertificates, ...ctx.ca] : undefined,
    ...extra,
  };
}

/**
 * A login that cannot be anyone's: a user name under the reserved ".invalid" top-level domain
 * (RFC 6761) and a random password. Probes send it only to see whether the server would check a
 * password sent in clear text, and stop at its answer.
 */
export function probeCredentials(): { user: string; password: string } {
  const tag = crypto.randomBytes(6).toString('hex');
  return { user: `portcullis-audit-${tag}@audit.invalid`, password: `not-a-password-${crypto.randomBytes(12).toString('hex')}` };
}
