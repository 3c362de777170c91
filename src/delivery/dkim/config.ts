// Configuration of DKIM signing and ARC sealing of outgoing mail (`outbound.dkim`).
// Composed into the one schema by src/config/schema.ts.
import { z } from 'zod';

export const dkimSigningConfigSchema = z.strictObject({}).prefault({});
export type DkimSigningConfig = z.output<typeof dkimSigningConfigSchema>;
