// The `bayes` configuration section. A module of its own, without the classifier's imports, so
// the configuration schema can include it without an import cycle.
import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_PARAMS } from './classifier.js';

export const bayesConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** The token store; the caller resolves the default, `<data_dir>/bayes.sqlite`. */
  file: z.string().min(1).optional(),
  /** Messages of each class to learn before Bayes gives a verdict (SpamAssassin: 200). */
  min_learned: z.number().int().min(1).default(200),
  /**
   * Robinson's s: how many messages' worth of weight the prior x has against a token's own
   * counts (chosen by cross-validation on both dev sets, docs/bayes.md "Unknown tokens").
   */
  unknown_strength: z.number().positive().max(100).default(DEFAULT_PARAMS.s),
  /** Robinson's x: the spam probability of a token never seen (0.5: no opinion). */
  unknown_probability: z.number().gt(0).lt(1).default(DEFAULT_PARAMS.x),
  /** The most significant tokens combined per message (SpamAssassin 150; 200 measured best here). */
  max_tokens: z.number().int().min(10).max(1000).default(DEFAULT_PARAMS.maxTokens),
  autolearn: z.strictObject({
    enabled: z.boolean().default(true),
    /** Learn as spam at or above this score, not counting Bayes' own symbols. */
    spam: z.number().default(12),
    /** Learn as ham at or below this score, not counting Bayes' own symbols. */
    ham: z.number().default(0.5),
  }).refine((a) => a.ham < a.spam, { message: 'autolearn.ham must be below autolearn.spam' }).prefault({}),
  /** Tokens (and learned-message records) not seen for this many days are deleted. */
  expire_days: z.number().positive().default(90),
}).prefault({});

export type BayesConfig = z.infer<typeof bayesConfigSchema>;

/** The token store file: bayes.file, else <data_dir>/bayes.sqlite (a full Config fits). */
export function bayesFile(config: { readonly data_dir: string; readonly bayes?: { readonly file?: string } }): string {
  return config.bayes?.file ?? path.join(config.data_dir, 'bayes.sqlite');
}
