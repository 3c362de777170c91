// Configuration of TLS on the way out (`outbound.tls`): per-domain overrides, MTA-STS, DANE,
// TLS-RPT. Composed into the one schema by src/config/schema.ts. See docs/outbound-tls.md.
import { z } from 'zod';
import { domainName, duration } from '../../config/fields.js';

const domainOverride = z.strictObject({
  /** The recipient domain (exact match, case-insensitive). */
  domain: domainName,
  /**
   * required: STARTTLS must succeed and the certificate pass `verify`, else the MX is not used;
   * opportunistic: STARTTLS when offered, any certificate; none: never STARTTLS.
   */
  tls: z.enum(['required', 'opportunistic', 'none']).default('required'),
  /**
   * With `tls: required`: webpki = a certificate valid for the MX host name (system CAs);
   * dane = DNSSEC-validated TLSA records must exist and match (RFC 7672); none = encryption
   * without authentication.
   */
  verify: z.enum(['webpki', 'dane', 'none']).default('webpki'),
});

const mtaSts = z.strictObject({
  /** Look up and honour MTA-STS policies (RFC 8461). */
  enabled: z.boolean().default(true),
  /** The whole HTTPS fetch of a policy, connect to last byte (RFC 8461 3.3 asks for a bound). */
  fetch_timeout: duration('10s'),
  /** After a failed fetch with nothing cached, how long before the next try. */
  retry_after: duration('5m'),
}).prefault({});

const dane = z.strictObject({
  /** Use DANE TLSA records (RFC 7672); only effective with `dns.dnssec_validating: true`. */
  enabled: z.boolean().default(true),
}).prefault({});

const tlsRpt = z.strictObject({
  /** Aggregate attempts and send daily reports to domains that publish _smtp._tls (RFC 8460). */
  enabled: z.boolean().default(true),
  /** "organization-name" of the reports; default: the gateway's host name. */
  organization: z.string().min(1).optional(),
  /** "contact-info" of the reports (an address or URL); default: postmaster@ the host name. */
  contact: z.string().min(1).optional(),
  /** Envelope sender and From: of reports sent as mail; default: noreply-tlsrpt@ the host name. */
  from: z.string().email().optional(),
  /** Timeout of one HTTPS POST of a report. */
  post_timeout: duration('30s'),
  /** Days of aggregates kept under the data directory. */
  keep_days: z.number().int().min(1).max(366).default(14),
}).prefault({});

export const outboundTlsConfigSchema = z.strictObject({
  domains: z.array(domainOverride).default([]).superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((d, i) => {
      if (seen.has(d.domain)) ctx.addIssue({ code: 'custom', path: [i, 'domain'], message: `${d.domain} is listed twice` });
      seen.add(d.domain);
    });
  }),
  mta_sts: mtaSts,
  dane,
  tls_rpt: tlsRpt,
}).prefault({});
export type OutboundTlsConfig = z.output<typeof outboundTlsConfigSchema>;
