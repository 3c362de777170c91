// Configuration of the content rules (`rules:`), as a zod schema for src/config/schema.ts.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { duration, size } from '../../config/fields.js';

/** The project's default rule set, shipped in conf/rules/*.cf. */
export const SHIPPED_RULES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../conf/rules');

export const rulesConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Files or folders of *.cf, loaded in order (later rules and scores win). Replaces the shipped set when given. */
  paths: z.array(z.string().min(1)).default([SHIPPED_RULES]),
  /** Loaded after `paths`: the operator's additions and `score` overrides (a local.cf). */
  local_paths: z.array(z.string().min(1)).default([]),
  /** SpamAssassin score set: 0 no Bayes/no network, 1 network, 2 Bayes (default), 3 Bayes + network. */
  score_set: z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)]).default(2),
  /** Matching time of one message; on overrun the worker is restarted and RULES_TIMEOUT emitted. */
  time_budget: duration('1s'),
  /** Bytes of each target a rule sees (body text, each raw part, full message, a header, a URI). */
  max_bytes: size('256KiB'),
  /** Matching threads (each uses up to one core while scanning). */
  workers: z.number().int().min(1).max(16).default(1),
  /** A rule taking this long on one message is logged as slow. */
  slow_rule: duration('50ms'),
}).prefault({});

export type RulesConfig = z.output<typeof rulesConfigSchema>;

/** Every path of the configuration, in load order. */
export function rulePaths(c: Pick<RulesConfig, 'paths' | 'local_paths'>): string[] {
  return [...c.paths, ...c.local_paths];
}
