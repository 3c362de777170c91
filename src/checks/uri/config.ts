// Configuration of the URI checks (section `uri`). No public list is queried unless
// configured: the public URI lists (Spamhaus DBL, SURBL, URIBL) have usage terms (free only
// below a volume, never through public resolvers, commercial use needs a feed), so the operator
// opts in knowing them — or points a list at a local rbldnsd mirror (dns.zones).
import { z } from 'zod';
import { domainName } from '../../config/fields.js';
import { isValidCodeFilter } from '../../net/ip-names.js';

const symbolPart = z.string().regex(/^[A-Za-z0-9_]+$/, 'letters, digits and _ only');

/** A sub-result of a list: its symbol suffix, and optionally its own weight. */
const subResult = z.union([symbolPart, z.strictObject({ name: symbolPart, weight: z.number().optional() })]);

const codeFilter = z.string().refine(isValidCodeFilter, 'must be a return code such as 127.0.1.2, 127.0.0.4-7 or 127.0.1.[2..99]');

export const uriListSchema = z.strictObject({
  zone: domainName,
  /** URIBL_<NAME>; defaults from the zone (DBL_SPAMHAUS_ORG). */
  name: symbolPart.optional(),
  /** domain: `<registrable domain>.<zone>` (DBL, SURBL, URIBL); ip: `<reversed IP>.<zone>` for IP hosts (SBL). */
  type: z.enum(['domain', 'ip']).default('domain'),
  /** Negative weights make an allow list; 0 is refused (it would query for nothing). */
  weight: z.number().refine((w) => w !== 0, 'must not be 0').default(1),
  /**
   * Return codes that count: a list of filters (one symbol, URIBL_<NAME>), or filter → symbol
   * suffix (URIBL_<NAME>_<SUFFIX>), Spamhaus DBL style: { "127.0.1.2": "SPAM", "127.0.1.4": "PHISH" }.
   */
  codes: z.union([z.array(codeFilter), z.record(codeFilter, subResult)]).optional(),
  /** Bit value → symbol suffix, SURBL/URIBL multi style: { "8": "PH", "16": "MW" }. */
  bitmask: z.record(z.string().regex(/^\d+$/, 'must be a bit value such as 2, 4, 8'), subResult).optional(),
  /** ip lists: also look up the IPs of each domain's host (a) or name servers (ns), as SpamAssassin's URIBL_SBL_A / URIBL_SBL. */
  resolve: z.enum(['a', 'ns']).optional(),
}).refine((l) => !(l.codes && l.bitmask), { message: 'give either codes or bitmask, not both' })
  .refine((l) => l.type === 'ip' || l.resolve === undefined, { message: 'resolve is for type: ip lists only' });

export const redirectorSchema = z.strictObject({
  host: z.string().regex(/^(\*\.)?[a-z0-9_.-]+(\.\*)?$/i, 'must be a host such as example.com, *.example.com or google.*'),
  path: z.string().startsWith('/').optional(),
  param: z.string().min(1),
});

export const uriConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  lists: z.array(uriListSchema).default([]),
  /** Most domains (and IPs) looked up per message; links come before text, so these are the likeliest. */
  max_domains: z.number().int().min(1).max(1000).default(20),
  /** Most DNS questions per message across every list (resolve: lookups included). */
  max_queries: z.number().int().min(1).max(5000).default(100),
  /** Most URIs taken from one message. */
  max_uris: z.number().int().min(1).max(100_000).default(1000),
  /** Look up the domains of e-mail addresses (mailto: and addresses in the text) too, as SpamAssassin does. */
  check_email_domains: z.boolean().default(true),
  /** Domains never looked up nor blocked (with their subdomains), besides the gateway's own and a few built-in. */
  skip_domains: z.array(domainName).default([]),
  /** Files of domains: one per line, # comments, ".example.com" or "*.example.com" for subdomains too. */
  block_files: z.array(z.string().min(1)).default([]),
  allow_files: z.array(z.string().min(1)).default([]),
  /** Redirectors whose target parameter is unwrapped, besides the built-in ones (google.* with /url and q, …). */
  redirectors: z.array(redirectorSchema).default([]),
  /** URL shorteners besides the built-in ones (URI_SHORTENER). */
  shorteners: z.array(domainName).default([]),
}).prefault({});

export type UriConfig = z.output<typeof uriConfigSchema>;
export type UriListConfig = z.output<typeof uriListSchema>;
