// Configuration of what the gateway reads from the reports others send about our mail
// (`reports:`, docs/deliverability.md): complaint reports (ARF feedback loops and forwarded
// originals), DMARC aggregate reports and TLS-RPT reports arriving at the role addresses.
import { z } from 'zod';
import { duration, size } from '../config/fields.js';

export const reportsConfigSchema = z.strictObject({
  /** Read reports arriving at the role addresses (roles.addresses) and `addresses`. */
  enabled: z.boolean().default(true),
  /**
   * Further local addresses that receive reports: feedback-loop (FBL) addresses registered with
   * mailbox providers, the `rua` of our own DMARC record, the `rua` of our TLS-RPT record.
   */
  addresses: z.array(z.string().regex(/^[^@\s]+@[^@\s]+$/, 'must be an address such as fbl@example.org')).default([]),
  /** How long complaints, reports and the record of our sent mail are kept. */
  retention: duration('180d').refine((ms) => ms >= 86_400_000, 'must be at least 1d'),
  /** Largest report message read; a larger one is recorded as unparsed (it is still delivered). */
  max_message_size: size('10MiB'),
  /** Largest decompressed report (gzip, zip): more is a decompression bomb, recorded as unparsed. */
  max_report_size: size('20MiB'),
  /** DMARC aggregate reports we send to the domains whose mail we received (RFC 7489 7.2). */
  dmarc_out: z.strictObject({
    enabled: z.boolean().default(false),
    /** From: and envelope sender of our reports; default roles.mailbox (so that their bounces reach someone). */
    from: z.string().regex(/^[^@\s]+@[^@\s]+$/, 'must be an address such as dmarc-reports@example.org').optional(),
    /** report_metadata/org_name; default the host name. */
    org_name: z.string().min(1).max(200).optional(),
    /** Reports sent per day at most (one per domain): a ceiling against sending floods of reports. */
    max_reports_per_day: z.number().int().min(1).max(100_000).default(1000),
  }).prefault({}),
}).prefault({});

export type ReportsConfig = z.output<typeof reportsConfigSchema>;
