// Configuration of the DNS list check (`dnsbl`). Composed into the one schema by src/config/schema.ts.
import { z } from 'zod';
import { domainName } from '../../config/fields.js';
import { isValidCodeFilter } from '../../net/ip-names.js';

/** A DNS list as postscreen's postscreen_dnsbl_sites: weight (negative = allowlist), optional return codes. */
const dnsList = z.strictObject({
  zone: domainName,
  /** Shown in the symbol (DNSBL_<NAME>) and the 554 text; defaults from the zone. */
  name: z.string().regex(/^[A-Za-z0-9_]+$/, 'letters, digits and _ only').optional(),
  weight: z.number().refine((w) => w !== 0, 'must not be 0 (negative weights make an allowlist)').default(1),
  /** Return codes that count, e.g. ["127.0.0.2", "127.0.0.4-7", "127.0.[0..255].[1..3]"]; empty = any 127.0.0.0/8 answer. */
  codes: z.array(z.string().refine(isValidCodeFilter, 'must be a return code such as 127.0.0.2, 127.0.0.4-7 or 127.0.[0..255].[1..3]')).default([]),
});

export const dnsblConfigSchema = z.strictObject({
  lists: z.array(dnsList).default([]),
  /** Sum of weights at which the client is refused at RCPT (554 5.7.1), as postscreen_dnsbl_threshold. */
  threshold: z.number().positive().default(1),
}).prefault({});

export type DnsblConfig = z.output<typeof dnsblConfigSchema>;
export type DnsListConfig = z.output<typeof dnsList>;
