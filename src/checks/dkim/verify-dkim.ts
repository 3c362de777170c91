// DKIM verification (RFC 6376) of one message as it streams from the spool: mailauth's verifier,
// bounded, with its results put in the terms the gateway reports.
//
// Why a subclass of mailauth's DkimVerifier rather than its dkimVerify() function:
// - dkimVerify verifies every DKIM-Signature field. Each one costs a DNS lookup, and each distinct
//   (canonicalization, hash, l=) triple adds a body hasher that reads the whole body: 500 fields
//   with distinct l= values would hash a 25 MB body 500 times. We keep the first max_signatures
//   (the newest, at the top) and drop the other hashers before the first body byte arrives.
// - it drops signatures it cannot use (unknown algorithm, missing d= or s=) without a word; RFC
//   6376 s6.1.1 makes them PERMFAIL, and a receiver should say so (dkim=permerror).
// - a message without a header/body separator has its headers parsed only after the final hash
//   step (MessageParser.finish), so its signatures were never seen; ours parses them first.
// The message is streamed (MessageFacts.stream()) straight into the verifier: nothing is buffered
// but the header section, which the session already caps.
import { createRequire } from 'node:module';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import type { NodeStyleResolve } from '../spf/node-style.js';
import { REQUIRED, tagListProblem } from './tag-list.js';
import type { HeaderField } from '../../protocol/headers.js';

const require = createRequire(import.meta.url);

/** The parts of mailauth's parsed signature fields we read or fix. */
export interface SignatureField {
  type: 'DKIM' | 'ARC' | 'AS';
  skip?: boolean;
  bodyHashKey?: string;
  algorithm?: string;
  signAlgo?: string;
  hashAlgo?: string;
  signingDomain?: string;
  selector?: string;
  headerCanon?: string;
  /** The whole field as received. */
  original?: string | Buffer;
  bodyCanon?: string;
  parsed?: Record<string, { value?: unknown } | undefined>;
}

interface MailauthSignatureResult {
  signingDomain?: string;
  selector?: string;
  signature?: string;
  algo?: string;
  rr?: string;
  modulusLength?: number;
  status: { result: string; comment?: string | false; underSized?: number; header?: { i?: string | false } };
}

/** mailauth's ARC data gathered while parsing (see src/checks/dkim/arc.ts). */
export interface ArcData {
  chain: ArcLink[] | false;
  lastEntry?: ArcLink & { messageSignature?: MailauthSignatureResult };
  error?: Error & { code?: string };
}

export interface ArcLink {
  i: number;
  'arc-seal': SignatureField;
  'arc-message-signature': SignatureField;
  'arc-authentication-results': { parsed?: Record<string, unknown> };
}

interface Verifier extends Writable {
  headers: unknown;
  headerChunks: Buffer[];
  signatureHeaders: SignatureField[];
  bodyHashes: Map<string, unknown>;
  sealBodyHashKey?: string;
  results: MailauthSignatureResult[];
  headerFrom: string[];
  arc: ArcData;
  messageHeaders(headers: unknown): Promise<void>;
  finalChunk(): Promise<void>;
  finish(): Promise<void>;
}

type VerifierClass = new (options: { resolver: NodeStyleResolve; minBitLength: number }) => Verifier;
const { DkimVerifier } = require('mailauth/lib/dkim/dkim-verifier.js') as { DkimVerifier: VerifierClass };
const { parseHeaders } = require('mailauth/lib/tools.js') as { parseHeaders: (b: Buffer) => unknown };
// The address parser mailauth's verifier uses for From (unsignedMessage must read From as it does).
const addressparser = require('nodemailer/lib/addressparser/index.js') as (s: string) => { address?: string; group?: unknown[] }[];

export type DkimResult = 'pass' | 'fail' | 'neutral' | 'policy' | 'temperror' | 'permerror';
/** valid: counts; invalid: the signature or the message is at fault; permfail: the key is; tempfail: DNS. */
export type DkimKind = 'valid' | 'invalid' | 'permfail' | 'tempfail' | 'unchecked';

export interface DkimSignature {
  /** RFC 8601 result. */
  readonly result: DkimResult;
  readonly kind: DkimKind;
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: string;
  /** The b= value (the AR header.b shows its first 8 characters, RFC 6008). */
  readonly b: string;
  /** Why, in words: '' for a plain pass. */
  readonly reason: string;
  /** l= signatures: body bytes after the signed length (RFC 6376 s8.2: content could have been appended). */
  readonly unsignedBytes?: number;
}

export interface DkimVerification {
  readonly signatures: readonly DkimSignature[];
  /** Addresses of the From field(s), as mailauth parsed them. */
  readonly fromAddresses: readonly string[];
  readonly arc: ArcData;
}

export interface DkimVerifyOptions {
  readonly resolve: NodeStyleResolve;
  readonly maxSignatures: number;
  readonly minRsaBits: number;
  readonly allowSha1: boolean;
}

/**
 * The verification of a message with no DKIM-Signature and no ARC field, without reading it: no
 * signatures, no chain, and the From addresses parsed as mailauth's verifier parses them (each From
 * field's value after the colon, trimmed, through nodemailer's addressparser), so that DMARC sees
 * the same addresses either way.
 */
export function unsignedMessage(headers: readonly HeaderField[]): DkimVerification {
  const fromAddresses: string[] = [];
  for (const h of headers) {
    if (h.key !== 'from') continue;
    const line = h.raw.toString();
    const colon = line.indexOf(':');
    for (const a of addressparser(line.slice(colon + 1).trim())) if (a?.address) fromAddresses.push(a.address);
  }
  return { signatures: [], fromAddresses, arc: { chain: false } };
}

/** Verifies the DKIM signatures of a message read from `input` (and gathers its ARC chain). */
export async function verifyDkim(input: NodeJS.ReadableStream, opts: DkimVerifyOptions): Promise<DkimVerification> {
  const unchecked: SignatureField[] = [];
  const unusable: SignatureField[] = [];
  const malformed = new Map<SignatureField, string>();

  class BoundedVerifier extends DkimVerifier {
    override async messageHeaders(headers: unknown): Promise<void> {
      await super.messageHeaders(headers);
      let kept = 0;
      const keep: SignatureField[] = [];
      for (const s of this.signatureHeaders) {
        if (s.type !== 'DKIM') keep.push(s);
        else if (kept >= opts.maxSignatures) unchecked.push(s);
        else {
          kept++;
          const problem = tagListProblem(String(s.original ?? ''), REQUIRED.dkim);
          if (problem) {
            s.skip = true;
            malformed.set(s, problem);
          }
          if (s.skip) unusable.push(s);
          else keep.push(s);
        }
      }
      this.signatureHeaders = keep;
      // No body byte has been hashed yet: hashers only the dropped signatures needed go now.
      const used = new Set(keep.filter((s) => !s.skip).map((s) => s.bodyHashKey));
      if (this.sealBodyHashKey) used.add(this.sealBodyHashKey);
      for (const key of [...this.bodyHashes.keys()]) if (!used.has(key)) this.bodyHashes.delete(key);
    }

    override async finish(): Promise<void> {
      if (!this.headers && this.headerChunks.length) {
        this.headers = parseHeaders(Buffer.concat(this.headerChunks));
        await this.messageHeaders(this.headers);
      }
      await this.finalChunk();
    }
  }

  const verifier = new BoundedVerifier({ resolver: opts.resolve, minBitLength: opts.minRsaBits });
  await pipeline(input, verifier);

  const signatures: DkimSignature[] = [];
  for (const r of verifier.results) {
    if (r.status.result === 'none') continue; // mailauth's "message not signed" placeholder
    signatures.push(fromMailauth(r, opts.allowSha1));
  }
  for (const s of unusable) signatures.push(unusableSignature(s, malformed.get(s)));
  for (const s of unchecked) {
    signatures.push({
      ...identity(s), result: 'neutral', kind: 'unchecked',
      reason: `not checked: more than ${opts.maxSignatures} signatures`,
    });
  }
  return { signatures, fromAddresses: [...verifier.headerFrom], arc: verifier.arc };
}

function identity(s: SignatureField): Pick<DkimSignature, 'domain' | 'selector' | 'algorithm' | 'b'> {
  return {
    domain: String(s.parsed?.d?.value ?? '').toLowerCase(),
    selector: String(s.parsed?.s?.value ?? ''),
    algorithm: String(s.parsed?.a?.value ?? '').toLowerCase(),
    b: String(s.parsed?.b?.value ?? '').replace(/\s+/g, ''),
  };
}

/** A signature mailauth set aside before verifying it: RFC 6376 s6.1.1 PERMFAIL. */
function unusableSignature(s: SignatureField, problem?: string): DkimSignature {
  const id = identity(s);
  let reason = 'malformed signature';
  if (problem) reason = `malformed signature: ${problem}`;
  else if (!id.domain) reason = 'malformed signature: no d= tag';
  else if (!id.selector) reason = 'malformed signature: no s= tag';
  else if (!['rsa', 'ed25519'].includes(s.signAlgo ?? '') || !['sha256', 'sha1'].includes(s.hashAlgo ?? '')) {
    reason = `unsupported algorithm a=${id.algorithm || '(none)'}`;
  } else reason = `unsupported canonicalization c=${String(s.parsed?.c?.value ?? '')}`;
  return { ...id, result: 'permerror', kind: 'invalid', reason };
}

/** mailauth's outcome for one signature, in RFC 8601 terms and ours. */
function fromMailauth(r: MailauthSignatureResult, allowSha1: boolean): DkimSignature {
  const id = {
    domain: String(r.signingDomain ?? '').toLowerCase(),
    selector: String(r.selector ?? ''),
    algorithm: String(r.algo ?? '').toLowerCase(),
    b: String(r.signature ?? '').replace(/\s+/g, ''),
  };
  const comment = typeof r.status.comment === 'string' ? r.status.comment : '';
  const key = `${id.selector}._domainkey.${id.domain}`;
  switch (r.status.result) {
    case 'pass': {
      if (id.algorithm === 'rsa-sha1' && !allowSha1) {
        return { ...id, result: 'policy', kind: 'invalid', reason: 'rsa-sha1 signatures are not accepted (RFC 8301)' };
      }
      // Key record tags mailauth does not look at (RFC 6376 s3.6.1): s= service types (a key for
      // another service, e.g. s=tlsrpt, must not verify email) and h= acceptable hashes.
      const services = keyTag(r.rr, 's');
      if (services !== undefined && !services.split(':').some((v) => ['*', 'email'].includes(v.trim().toLowerCase()))) {
        return { ...id, result: 'permerror', kind: 'permfail', reason: `key ${key} is not for email (s=${services})` };
      }
      const hashes = keyTag(r.rr, 'h');
      const hash = id.algorithm.split('-').pop() ?? '';
      if (hashes !== undefined && !hashes.split(':').some((v) => v.trim().toLowerCase() === hash)) {
        return { ...id, result: 'permerror', kind: 'permfail', reason: `key ${key} does not allow ${hash} (h=${hashes})` };
      }
      const unsigned = r.status.underSized;
      return { ...id, result: 'pass', kind: 'valid', reason: '', ...(unsigned ? { unsignedBytes: unsigned } : {}) };
    }
    case 'fail':
      return { ...id, result: 'fail', kind: 'invalid', reason: 'signature did not verify: signed header fields were changed, or signed with another key' };
    case 'policy':
      // mailauth's only "policy" outcome: an RSA key under minBitLength (RFC 8301 s3.2).
      return { ...id, result: 'policy', kind: 'permfail', reason: `key ${key} is too short` };
    case 'temperror':
      return { ...id, result: 'temperror', kind: 'tempfail', reason: `key ${key} could not be fetched: ${comment || 'DNS failure'}` };
    default:
      break;
  }
  // "neutral" in mailauth covers everything else; RFC 6376 s6.1 tells them apart.
  if (comment === 'body hash did not verify') {
    return { ...id, result: 'fail', kind: 'invalid', reason: 'body hash did not verify: the body was changed after signing' };
  }
  if (comment === 'no key') return { ...id, result: 'permerror', kind: 'permfail', reason: `no key record at ${key}` };
  if (comment === 'invalid public key') {
    // RFC 6376 s3.6.1: an empty p= means the key was revoked.
    const revoked = r.rr !== undefined && /(?:^|;)\s*p\s*=\s*(?:;|$)/i.test(r.rr);
    return { ...id, result: 'permerror', kind: 'permfail', reason: revoked ? `key ${key} is revoked (empty p=)` : `key record at ${key} is malformed` };
  }
  if (comment === 'unknown key version' || comment === 'unknown key type') {
    return { ...id, result: 'permerror', kind: 'permfail', reason: `key record at ${key}: ${comment}` };
  }
  if (comment === 'expired' || comment === 'invalid expiration') {
    return { ...id, result: 'neutral', kind: 'invalid', reason: comment === 'expired' ? 'signature expired (x=)' : 'signature expires before it was made (x= before t=)' };
  }
  // crypto.verify threw: a key that does not fit the algorithm (an Ed25519 key for rsa-sha256…).
  return { ...id, result: 'permerror', kind: 'permfail', reason: `key ${key} unusable: ${comment || 'unknown error'}` };
}

/** A tag of a key record ("v=DKIM1; k=rsa; s=email; p=…"), undefined when absent. */
function keyTag(rr: string | undefined, tag: string): string | undefined {
  if (!rr) return undefined;
  for (const part of rr.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim().toLowerCase() === tag) return part.slice(eq + 1).trim();
  }
  return undefined;
}
