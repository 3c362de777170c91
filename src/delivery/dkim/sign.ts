// DKIM signing of outgoing mail with mailauth's dkimSign: relaxed/relaxed, the configured header
// list, no l= tag, x= only when configured. One signature per active key of the From domain
// (RSA and Ed25519 side by side, RFC 8463). mailauth signs each listed field that is present,
// once per instance, and ignores a name listed twice; From is then oversigned by re-signing
// mailauth's signature with one more `from` in h= (oversign.ts, docs/outbound-dkim.md).
import type { Readable } from 'node:stream';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import type { DkimKey } from './keys.js';
import type { DkimSigningConfig } from './config.js';
import { oversignFrom } from './oversign.js';

type Parsed = { address?: string; group?: Parsed[] };

/**
 * The domain of the From field of a header block (the message's start), lower-cased; undefined
 * when there is no From, or its addresses are not all of one domain (nothing to align with).
 */
export function fromDomain(raw: Buffer): string | undefined {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, end < 0 ? raw.length : end).toString('latin1').replace(/\r\n[ \t]+/g, ' ');
  const fields = [...head.matchAll(/^from:(.*)$/gim)].map((m) => m[1]!);
  if (fields.length !== 1) return undefined;
  const flat = (list: Parsed[]): string[] => list.flatMap((p) => (p.group ? flat(p.group) : p.address ? [p.address] : []));
  const domains = new Set(flat(addressparser(fields[0]!) as Parsed[]).map((a) => a.slice(a.lastIndexOf('@') + 1).toLowerCase()));
  const [domain] = domains;
  return domains.size === 1 && domain && !domain.includes('@') ? domain.replace(/\.$/, '') : undefined;
}

/**
 * The active keys that sign mail from `domain`: the domain's own, else those of its closest
 * parent that has any (d=example.org aligns with From: @mail.example.org under DMARC's relaxed
 * alignment, the default).
 */
export function keysFor(domain: string | undefined, keys: readonly DkimKey[]): DkimKey[] {
  for (let d = domain; d && d.includes('.'); d = d.slice(d.indexOf('.') + 1)) {
    const own = keys.filter((k) => k.active && k.domain === d);
    if (own.length) return own;
  }
  return [];
}

/**
 * The DKIM-Signature fields (CRLF-terminated) of `input` signed with `usable`, From oversigned.
 * `head`: the message's header section (needed when `input` is a stream). Throws on a signing fault.
 */
export async function signatures(input: Buffer | Readable, usable: readonly DkimKey[], config: DkimSigningConfig, now = new Date(), head?: Buffer): Promise<string> {
  const result = await dkimSign(input, {
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
  const header = head ?? (Buffer.isBuffer(input) ? input : undefined);
  if (!header) throw new Error('DKIM signing of a stream needs its header section');
  return oversignFrom(result.signatures, header, usable);
}

/** The DKIM-Signature fields for `raw`; empty when signing is off or no key applies. */
export async function signatureHeaders(raw: Buffer, keys: readonly DkimKey[], config: DkimSigningConfig, now = new Date()): Promise<string> {
  const usable = keysFor(fromDomain(raw), keys);
  if (!config.sign || usable.length === 0) return '';
  return signatures(raw, usable, config, now);
}

/** `raw` with the signatures prepended. */
export async function signMessage(raw: Buffer, keys: readonly DkimKey[], config: DkimSigningConfig, now = new Date()): Promise<Buffer> {
  const sigs = await signatureHeaders(raw, keys, config, now);
  return sigs ? Buffer.concat([Buffer.from(sigs, 'latin1'), raw]) : raw;
}
