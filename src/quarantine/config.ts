// Configuration of the quarantine (`quarantine`): how much is kept and for how long, and the
// per-user digest. Composed into the one schema by src/config/schema.ts; docs/quarantine.md.
import { z } from 'zod';
import { duration, size } from '../config/fields.js';

const clockTime = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time of day as HH:MM (24 h, UTC), e.g. "08:00"');

export const digestConfigSchema = z.strictObject({
  /** Off by default: the links need base_url, the console's address as users reach it. */
  enabled: z.boolean().default(false),
  every: duration('1d'),
  /** First digest of the day at this time (UTC); then every `every`. */
  at: clockTime.default('08:00'),
  /** Where the console answers the signed links, e.g. https://mail.example.org:8443 */
  base_url: z.url({ protocol: /^https$/, error: 'must be an https:// URL (the console is HTTPS only)' }).optional(),
  /** How long a digest's links stay valid. */
  link_ttl: duration('7d'),
}).prefault({}).superRefine((d, ctx) => {
  if (d.enabled && !d.base_url) ctx.addIssue({ code: 'custom', path: ['base_url'], message: 'is required when quarantine.digest.enabled is true (the links point there)' });
});

export const quarantineConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Entries older than this are dropped (on a timer and at start). */
  max_age: duration('30d'),
  /** Total size of the kept originals; past it the oldest entries are dropped. */
  max_size: size('2GiB'),
  /** At most this many entries (unset: no count bound); past it the oldest are dropped. */
  max_messages: z.number().int().min(1).optional(),
  digest: digestConfigSchema,
}).prefault({});

export type QuarantineConfig = z.output<typeof quarantineConfigSchema>;
export type DigestConfig = z.output<typeof digestConfigSchema>;
