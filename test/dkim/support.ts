// Shared by the DKIM/DMARC/ARC tests: a message as the data stage sees it, keys, signing.
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { parseHeaderBlock } from '../../src/protocol/headers.js';
import type { ConnectionFacts, EnvelopeFacts, MessageFacts } from '../../src/checks/types.js';
import { messageModel } from '../../src/mime/model.js';

/** LF or mixed line ends → CRLF, as the SMTP path delivers a message. */
export function crlf(text: string | Buffer): Buffer {
  const s = Buffer.isBuffer(text) ? text.toString('latin1') : text;
  return Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'latin1');
}

/** MessageFacts over a buffer, streamed in small chunks as the spool would. */
export function messageFacts(raw: Buffer): MessageFacts {
  const end = raw.indexOf('\r\n\r\n');
  const block = end >= 0 ? raw.subarray(0, end + 2) : raw;
  return {
    ...messageModel({
      size: raw.length,
      stream: () => Readable.from((function* () {
        for (let i = 0; i < raw.length; i += 16_384) yield raw.subarray(i, i + 16_384);
      })()),
    }),
    headers: parseHeaderBlock(block),
    bareNewlines: 0,
  };
}

export function connFacts(over: Partial<ConnectionFacts> = {}): ConnectionFacts {
  return {
    sessionId: 'dkim-test', listener: 'mx', listenerKind: 'mx', remoteAddress: '192.0.2.25', remotePort: 40000,
    localAddress: '127.0.0.1', localPort: 25, trustedNetwork: false, helo: 'client.example.net', esmtp: true, ...over,
  };
}

export function envelope(sender: string): EnvelopeFacts {
  return { sender, recipients: ['rcpt@example.test'] };
}

/** An Ed25519 private key (PEM) from the 32-octet seed (RFC 8032), as RFC 8463 and dkimpy give it. */
export function ed25519FromSeed(seedBase64: string): string {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seedBase64.trim(), 'base64')]);
  return crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** The DNS key record for a private key: "v=DKIM1; k=rsa; p=…" or k=ed25519 with the raw 32 octets. */
export function keyRecord(privatePem: string): string {
  const pub = crypto.createPublicKey(privatePem);
  if (pub.asymmetricKeyType === 'ed25519') {
    const der = pub.export({ format: 'der', type: 'spki' });
    return `v=DKIM1; k=ed25519; p=${der.subarray(der.length - 32).toString('base64')}`;
  }
  return `v=DKIM1; k=rsa; p=${pub.export({ format: 'der', type: 'spki' }).toString('base64')}`;
}

export interface SignOptions {
  domain: string;
  selector: string;
  privateKey: string;
  algorithm?: string;
  canonicalization?: string;
  headerList?: string[];
  maxBodyLength?: number;
}

/** The message with a DKIM-Signature (mailauth's signer) prepended. */
export async function sign(raw: Buffer, o: SignOptions): Promise<Buffer> {
  const res = await dkimSign(raw, {
    canonicalization: o.canonicalization ?? 'relaxed/relaxed',
    signatureData: [{
      signingDomain: o.domain, selector: o.selector, privateKey: o.privateKey,
      ...(o.algorithm ? { algorithm: o.algorithm } : {}),
      ...(o.canonicalization ? { canonicalization: o.canonicalization } : {}),
      ...(o.maxBodyLength !== undefined ? { maxBodyLength: o.maxBodyLength } : {}),
    }],
    ...(o.headerList ? { headerList: o.headerList } : {}),
  } as never);
  if (res.errors?.length) throw new Error(`dkimSign: ${res.errors.map((e: unknown) => String((e as Error).message ?? e)).join('; ')}`);
  return Buffer.concat([Buffer.from(res.signatures, 'latin1'), raw]);
}
