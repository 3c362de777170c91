// Configuration of the reverse-DNS check (`rdns`). Composed into the one schema by src/config/schema.ts.
import { z } from 'zod';

export const rdnsConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Extra regular expressions (case-insensitive) for dynamic/generic host names. */
  dynamic_patterns: z.array(z.string().min(1).refine((p) => {
    try {
      new RegExp(p, 'i');
      return true;
    } catch {
      return false;
    }
  }, 'must be a valid regular expression')).default([]),
}).prefault({}).prefault({});

export type RdnsConfig = z.output<typeof rdnsConfigSchema>;
