// Configuration of message authentication (`authentication:`): DKIM (RFC 6376), DMARC (RFC 7489,
// RFC 9091 "np") and ARC (RFC 8617), as one zod section for src/config/schema.ts to plug in.
import { z } from 'zod';
import { domainName, duration } from '../../config/fields.js';

export const dkimConfigSchema = z.strictObject({
  dkim: z.strictObject({
    enabled: z.boolean().default(true),
    /**
     * DKIM-Signature fields verified per message, top (newest) first; the rest are reported as
     * not checked. Each costs a DNS lookup and, when its canonicalization/hash/l= differs, a pass
     * of the body hasher over the whole body: the bound keeps a hostile message cheap.
     */
    max_signatures: z.number().int().min(1).max(50).default(5),
    /** RSA keys shorter than this are not accepted (RFC 8301 s3.2: at least 1024). */
    min_rsa_bits: z.number().int().min(512).max(8192).default(1024),
    /** RFC 8301 s3.1: verifiers MUST NOT consider rsa-sha1 signatures valid. */
    allow_sha1: z.boolean().default(false),
  }).prefault({}),
  dmarc: z.strictObject({
    enabled: z.boolean().default(true),
    /**
     * From domains (and their subdomains) whose p=reject/quarantine is never enforced here, only
     * scored: a partner whose mail reaches us through a forwarder that breaks DKIM and SPF.
     * (What DMARC_REJECT / DMARC_QUARANTINE do otherwise is policy.actions'.)
     */
    reject_exempt_domains: z.array(domainName).default([]),
  }).prefault({}),
  arc: z.strictObject({
    enabled: z.boolean().default(true),
    /**
     * ARC sealers (the d= of ARC-Seal) whose word we take: when the chain validates and such a
     * sealer saw the message pass DMARC (or aligned DKIM/SPF), a DMARC failure here is not
     * enforced (RFC 7489 s7 local policy override "trusted_forwarder", RFC 8617 s7.2).
     * A name covers its subdomains.
     */
    trusted_sealers: z.array(domainName).default([]),
  }).prefault({}),
  /** Budget for all the DNS work of one message (keys, DMARC record, ARC seals). */
  timeout: duration('15s'),
}).prefault({});

export type AuthenticationConfig = z.output<typeof dkimConfigSchema>;
