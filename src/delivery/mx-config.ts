// Configuration of direct delivery to the recipient domains' MX hosts (`outbound.delivery`).
// Composed into the one schema by src/config/schema.ts.
import { z } from 'zod';

export const mxDeliveryConfigSchema = z.strictObject({}).prefault({});
export type MxDeliveryConfig = z.output<typeof mxDeliveryConfigSchema>;
