// Configuration of the gateway's mailing lists (`lists:`, docs/lists.md). The lists themselves
// (addresses, owners, members, per-list policy) live in lists.db and are changed with
// `portcullis list`; this section holds what applies to every list.
import { z } from 'zod';
import { duration, size } from '../config/fields.js';

export const listsConfigSchema = z.strictObject({
  /** Accept mail for the lists in lists.db on the local domains. */
  enabled: z.boolean().default(true),
  /**
   * The console's address as subscribers reach it, for the confirmation and unsubscribe links
   * (https://lists.example.org:8443); default https://HOSTNAME:CONSOLE_PORT.
   */
  web_url: z.string().regex(/^https:\/\/[^\s/?#]+$/, 'must be an https URL without a path, such as https://lists.example.org:8443').optional(),
  /** How long a confirmation request stays valid. */
  confirm_expiry: duration('3d').refine((ms) => ms >= 600_000 && ms <= 30 * 86_400_000, 'must be between 10m and 30d'),
  /** Hard bounces to a member's VERP address after which the member is disabled. */
  bounce_limit: z.number().int().min(1).max(100).default(3),
  /** Members (pending ones included) a list may have: a ceiling on the copies one post makes. */
  max_members: z.number().int().min(1).max(100_000).default(5000),
  /** Largest post sent on (a larger one is held for the moderator). */
  max_post_size: size('2MiB'),
  /** Requests (subscribe, unsubscribe, status, help) answered per window, per source IP and per address. */
  rate: z.strictObject({
    per_ip: z.number().int().min(1).max(100_000).default(20),
    per_address: z.number().int().min(1).max(1000).default(3),
    window: duration('1h'),
  }).prefault({}),
}).prefault({});

export type ListsConfig = z.output<typeof listsConfigSchema>;
