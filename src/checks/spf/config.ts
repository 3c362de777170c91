// Configuration of the SPF check (`spf`). Composed into the one schema by src/config/schema.ts.
import { z } from 'zod';

export const spfConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  helo: z.boolean().default(true),
}).prefault({});

export type SpfConfig = z.output<typeof spfConfigSchema>;
