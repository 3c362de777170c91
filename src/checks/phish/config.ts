// The `phishing` section: the impersonation check (docs/phishing.md).
import { z } from 'zod';
import { domainName } from '../../config/fields.js';

const brand = z.strictObject({
  /** How display names write the brand ("Example Bank"); matched as whole words, case aside. */
  names: z.array(z.string().trim().min(2, 'must have at least 2 characters').max(60)).min(1),
  /** Registrable domains the brand really sends from (beyond those named after it). */
  domains: z.array(domainName).default([]),
  /** The name is also a common word or first name: count it only when the display name is the brand alone. */
  strict: z.boolean().default(false),
});

export const phishingConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Brands to protect besides the built-in list (src/checks/phish/brands.ts): your own, your bank, your suppliers. */
  brands: z.array(brand).default([]),
  /** The built-in list of frequently impersonated brands. */
  builtin_brands: z.boolean().default(true),
}).prefault({});

export type PhishingConfig = z.infer<typeof phishingConfigSchema>;
