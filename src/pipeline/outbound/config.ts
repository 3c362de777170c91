// Configuration of what authenticated senders may send (`outbound.limits`) and of the content
// checks their mail passes (`outbound.content`). Composed into the one schema by src/config/schema.ts.
import { z } from 'zod';

export const outboundLimitsConfigSchema = z.strictObject({}).prefault({});
export const outboundContentConfigSchema = z.strictObject({}).prefault({});
export type OutboundLimitsConfig = z.output<typeof outboundLimitsConfigSchema>;
export type OutboundContentConfig = z.output<typeof outboundContentConfigSchema>;
