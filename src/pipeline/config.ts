// Configuration of the policy (`policy`): thresholds, observe mode, the operator's weights and
// actions (docs/pipeline.md). Composed into the one schema by src/config/schema.ts.
import { z } from 'zod';
import { SYMBOL_ACTIONS } from '../protocol/symbol-actions.js';

export const policyConfigSchema = z.strictObject({
  observe: z.boolean().default(false),
  thresholds: z.strictObject({
    tag: z.number().default(5),
    junk: z.number().default(6),
    reject: z.number().default(15),
  }).prefault({}),
  subject_tag: z.string().default(''),
  /** Weights that win over every other (docs/pipeline.md); each name must be a known symbol. */
  symbols: z.record(z.string().regex(/^[A-Za-z0-9_]+$/, 'symbol names are letters, digits and _'), z.number()).default({}),
  /** What a symbol does beyond its weight: NAME, a glob (DNSBL_*) or group:NAME → an action (docs/pipeline.md). */
  actions: z.record(z.string().regex(/^(?:group:[a-z0-9_-]+|[A-Za-z0-9_*]+)$/, 'a symbol name, a glob such as DNSBL_*, or group:NAME'), z.enum(SYMBOL_ACTIONS)).default({}),
}).prefault({});

export type PolicyConfig = z.output<typeof policyConfigSchema>;
