// Which outgoing mail is DKIM-signed, and the signing itself on the delivery path. The router
// calls sign() once per delivery of a message that leaves for a remote destination (relay route
// or MX); local Maildir copies are never signed. Signed: mail whose From domain is ours (a key
// exists for it or a parent domain, see keysFor) and that came from an authenticated sender, a
// relay.trusted_networks client, or the gateway itself (no SMTP client: its own reports). Mail
// from anyone else, even with our domain in From, leaves unsigned: a forged From must not get
// our signature. Mail we forward (an alias's outside
// target) is ARC-sealed instead, with the RSA key of our host name's domain or of the first of
// our domains that has one (arc-seal.ts says when a seal is made).
import { statSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { Logger } from '../../log.js';
import type { QueuedMessage } from '../../queue/queue.js';
import type { Content } from '../types.js';
import type { DkimSigningConfig } from './config.js';
import { DkimKeyStore, checkName, type DkimKey } from './keys.js';
import { fromDomain, keysFor, signatures } from './sign.js';
import { arcSeal, sealDecision } from './arc-seal.js';

/** A header block is read up to this size to find From (smtp limits keep real ones far smaller). */
const MAX_HEAD = 256 * 1024;

export interface OutboundSignerOptions {
  readonly store: DkimKeyStore;
  readonly config: DkimSigningConfig;
  /** True for a client address in relay.trusted_networks. */
  readonly trusted: (ip: string) => boolean;
  readonly logger: Logger;
  /** Our authserv-id in Authentication-Results (the gateway's host name). */
  readonly hostname: string;
  /** Domains whose key may seal, in order of preference (host name first, then `domains`). */
  readonly sealDomains: readonly string[];
}

export class OutboundSigner {
  // Keys per domain, reloaded when the domain's directory changes (`portcullis dkim` writes by
  // rename, so every change moves its mtime): keygen and rotate take effect without a restart.
  private readonly cache = new Map<string, { mtimeMs: number; keys: DkimKey[] }>();

  constructor(private readonly opts: OutboundSignerOptions) {}

  /** Whether the message may carry our signature at all (who sent it). */
  eligible(msg: Pick<QueuedMessage, 'authenticated' | 'meta'>): boolean {
    if (msg.authenticated) return true;
    const client = msg.meta.client;
    // No client: the gateway made the message itself (TLS-RPT reports, which RFC 8460 s5.3
    // wants DKIM-signed; alerts); every message received over SMTP records its client.
    if (client === undefined) return true;
    return typeof client === 'string' && this.opts.trusted(client);
  }

  /** The active keys of `domain` or its closest parent with keys, as on disk now. */
  keys(domain: string | undefined): DkimKey[] {
    // The name comes from the message's From: only a well-formed domain reaches the file system.
    if (!domain || checkName(domain)) return [];
    const found: DkimKey[] = [];
    for (let d = domain; d && d.includes('.'); d = d.slice(d.indexOf('.') + 1)) found.push(...this.domainKeys(d));
    return keysFor(domain, found);
  }

  /** The content with our DKIM-Signature fields in front, or undefined to send it as it is. Never throws. */
  async sign(msg: QueuedMessage, content: Content): Promise<Content | undefined> {
    const { config, logger } = this.opts;
    if (!this.eligible(msg)) return config.arc_seal && forwarded(msg) ? this.seal(msg, content) : undefined;
    if (!config.sign) return undefined;
    try {
      const head = await readHead(content);
      const domain = fromDomain(head);
      const usable = this.keys(domain);
      if (!usable.length) return undefined;
      const input = content.buffers ? Buffer.concat(content.buffers as Buffer[]) : content.stream();
      const sig = Buffer.from(await signatures(input, usable, config, new Date(), head), 'latin1');
      logger.debug({ event: 'dkim_signed', id: msg.id, domain: usable[0]!.domain, selectors: usable.map((k) => k.selector) }, 'DKIM-signed');
      return prepend(sig, content);
    } catch (err) {
      // Sent unsigned rather than held: the receiver's DMARC policy decides, as when a signing
      // milter is down; the log says why so the operator can fix the key.
      logger.error({ event: 'dkim_sign_failed', id: msg.id, err: (err as Error).message }, 'cannot DKIM-sign: sent unsigned');
      return undefined;
    }
  }

  /** The RSA key that seals forwarded mail (mailauth's ARC signer takes RSA only), if any. */
  sealKey(): DkimKey | undefined {
    for (const d of this.opts.sealDomains) {
      const key = this.keys(d.toLowerCase()).find((k) => k.type === 'rsa');
      if (key) return key;
    }
    return undefined;
  }

  private async seal(msg: QueuedMessage, content: Content): Promise<Content | undefined> {
    const { logger, hostname } = this.opts;
    try {
      const key = this.sealKey();
      if (!key) return undefined;
      const decision = sealDecision(await readHead(content), hostname);
      if (!decision.seal) {
        logger.info({ event: 'arc_not_sealed', id: msg.id, reason: decision.reason }, 'forwarded without an ARC seal');
        return undefined;
      }
      const input = content.buffers ? Buffer.concat(content.buffers as Buffer[]) : content.stream();
      const fields = await arcSeal(input, key, decision);
      logger.debug({ event: 'arc_sealed', id: msg.id, domain: key.domain, selector: key.selector, cv: decision.cv }, 'ARC-sealed');
      return fields.length ? prepend(fields, content) : undefined;
    } catch (err) {
      logger.error({ event: 'arc_seal_failed', id: msg.id, err: (err as Error).message }, 'cannot ARC-seal: forwarded without a seal');
      return undefined;
    }
  }

  private domainKeys(domain: string): DkimKey[] {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.opts.store.domainDir(domain)).mtimeMs;
    } catch {
      this.cache.delete(domain);
      return [];
    }
    const hit = this.cache.get(domain);
    if (hit && hit.mtimeMs === mtimeMs) return hit.keys;
    const keys = this.opts.store.list(domain);
    this.cache.set(domain, { mtimeMs, keys });
    return keys;
  }
}

/** Mail to an alias's outside target: we forward it. */
function forwarded(msg: QueuedMessage): boolean {
  return msg.recipients.some((r) => r.destination.kind === 'relay' && r.destination.forwarded === true);
}

/** The message's start up to the end of its header block (or MAX_HEAD bytes). */
async function readHead(content: Content): Promise<Buffer> {
  if (content.buffers) return firstHead(content.buffers);
  const stream = content.stream();
  const chunks: Buffer[] = [];
  try {
    let total = 0;
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      total += (chunk as Buffer).length;
      const all = Buffer.concat(chunks);
      if (total >= MAX_HEAD || all.indexOf('\r\n\r\n') >= 0) return firstHead([all]);
    }
    return firstHead(chunks);
  } finally {
    stream.destroy();
  }
}

function firstHead(chunks: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  for (const c of chunks) {
    parts.push(c);
    if ((size += c.length) >= MAX_HEAD) break;
  }
  const all = Buffer.concat(parts);
  const end = all.indexOf('\r\n\r\n');
  return all.subarray(0, Math.min(end < 0 ? all.length : end + 4, MAX_HEAD));
}

function prepend(sig: Buffer, content: Content): Content {
  return {
    size: sig.length + content.size,
    buffers: content.buffers ? [sig, ...content.buffers] : undefined,
    stream: () => Readable.from((async function* () {
      yield sig;
      yield* content.stream();
    })()),
  };
}
