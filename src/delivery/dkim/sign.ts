// DKIM signing of outgoing mail with mailauth's dkimSign: relaxed/relaxed, the configured header
// list (From oversigned), no l= tag, x= only when configured. One signature per active key of
// the From domain (RSA and Ed25519 side by side, RFC 8463).
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import type { DkimKey } from './keys.js';
import type { DkimSigningConfig } from './config.js';

/** The domain of the first From address of a header block, lower-cased; undefined if none. */
export function fromDomain(raw: Buffer): string | undefined {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, end < 0 ? raw.length : end).toString('latin1').replace(/\r\n[ \t]+/g, ' ');
  const from = /^from:(.*)$/im.exec(head)?.[1];
  if (!from) return undefined;
  const addr = /<([^>]*)>/.exec(from)?.[1] ?? from.trim();
  const at = addr.lastIndexOf('@');
  return at < 0 ? undefined : addr.slice(at + 1).trim().toLowerCase() || undefined;
}

/** The DKIM-Signature header fields (CRLF-terminated) for `raw`; empty when no key applies. */
export async function signatureHeaders(raw: Buffer, keys: readonly DkimKey[], config: DkimSigningConfig, now = new Date()): Promise<string> {
  const domain = fromDomain(raw);
  const usable = keys.filter((k) => k.active && k.domain === domain);
  if (!config.sign || usable.length === 0) return '';
  const result = await dkimSign(raw, {
    canonicalization: 'relaxed/relaxed',
    signTime: now,
    expires: config.expire > 0 ? new Date(now.getTime() + config.expire * 1000) : undefined,
    headerList: config.headers.join(':'),
    signatureData: usable.map((k) => ({
      signingDomain: k.domain,
      selector: k.selector,
      privateKey: k.privateKeyPem,
      algorithm: k.type === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256',
      canonicalization: 'relaxed/relaxed',
    })),
  } as never) as { signatures: string; errors: unknown[] };
  if (result.errors.length > 0) throw new Error(`DKIM signing failed: ${String((result.errors[0] as { err?: unknown }).err ?? result.errors[0])}`);
  return result.signatures;
}

/** `raw` with the signatures prepended. */
export async function signMessage(raw: Buffer, keys: readonly DkimKey[], config: DkimSigningConfig, now = new Date()): Promise<Buffer> {
  const sigs = await signatureHeaders(raw, keys, config, now);
  return sigs ? Buffer.concat([Buffer.from(sigs, 'latin1'), raw]) : raw;
}
