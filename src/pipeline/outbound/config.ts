// Configuration of what authenticated senders may send (`outbound.limits`) and of the content
// checks their mail passes (`outbound.content`). Composed into the one schema by src/config/schema.ts.
// docs/outbound.md "Outbound content" and "Limits and holds" explain every key.
import { z } from 'zod';
import { duration } from '../../config/fields.js';

/** A count per window; 0 turns that limit off. */
const count = (fallback: number) => z.number().int().min(0).default(fallback);

/** Messages and recipients per hour and per day, for one kind of sender (a user, a client IP). */
const rates = (d: { mh: number; md: number; rh: number; rd: number }) => z.strictObject({
  messages_per_hour: count(d.mh),
  messages_per_day: count(d.md),
  recipients_per_hour: count(d.rh),
  recipients_per_day: count(d.rd),
}).prefault({});

export const outboundLimitsConfigSchema = z.strictObject({
  /** Off: no counting, no locks (the content policy still holds spam). */
  enabled: z.boolean().default(true),
  /**
   * Per authenticated user. An office user rarely writes to more than a few dozen people an
   * hour; a compromised account sends hundreds (policyd-rate-limit and Postfix's anvil style:
   * counts over sliding windows, refusal with a plain reason).
   */
  user: rates({ mh: 100, md: 500, rh: 200, rd: 1000 }),
  /** Per client address of authenticated sessions: several users behind one office NAT share it. */
  ip: rates({ mh: 300, md: 1500, rh: 600, rd: 3000 }),
  /** Addresses this user never wrote to before (remembered for `known_recipient_ttl`), per day. */
  new_recipients_per_day: count(100),
  /** How long an address a user wrote to counts as known. */
  known_recipient_ttl: duration('180d'),
  /** The behavioural baseline per user (docs/outbound.md "Baseline"). */
  baseline: z.strictObject({
    enabled: z.boolean().default(true),
    /** Days of history a user needs before volume and spread are compared with the usual. */
    learning_days: z.number().int().min(1).max(90).default(14),
    /** Today's recipients above this multiple of the user's usual daily recipients trips... */
    volume_factor: z.number().min(1).default(5),
    /** ...but only past this many recipients today (a user who writes 2 a day may write 30). */
    min_volume: count(50),
    /** Distinct recipient domains today above this multiple of the usual trips... */
    spread_factor: z.number().min(1).default(5),
    /** ...but only past this many domains today. */
    min_spread: count(20),
    /** Failed deliveries of today's mail (5xx, bounces) above this share of its outcomes trips... */
    max_failure_rate: z.number().min(0).max(1).default(0.5),
    /** ...once at least this many have failed today. */
    min_failures: count(20),
    /** A network (IPv4 /24, IPv6 /48) not seen at AUTH for this user in this long is new. */
    network_memory: duration('30d'),
    /** New networks at AUTH per day that trip the lock (0: only counted and logged). */
    new_networks_per_day: count(4),
    /** Messages held for their spam score per day that trip the lock. */
    spam_holds_per_day: count(3),
    /**
     * Authenticated complaint reports (docs/deliverability.md: verified ARF traced to the user) in
     * 7 days that lock the user (0: only recorded). Unverified ones never lock: anyone can forge one.
     */
    complaints_per_week: count(3),
  }).prefault({}),
  /**
   * What a tripped limit does to the message that tripped it: `hold` accepts it (250) into the
   * hold queue; `tempfail` refuses it with the 451. Later submissions get the 451 either way,
   * and the user's mail waiting in the queue is held.
   */
  lock_action: z.enum(['hold', 'tempfail']).default('hold'),
  /** Who is told when an account is locked; default postmaster@ the first local domain. */
  alert: z.string().regex(/^[^@\s]+@[^@\s]+$/, 'must be an address such as postmaster@example.org').optional(),
}).prefault({});

export const outboundContentConfigSchema = z.strictObject({
  /** Off: authenticated mail is judged by the inbound thresholds as before (spam refused at 554). */
  enabled: z.boolean().default(true),
  /** A score at or above this holds the message (default: policy.thresholds.junk). */
  hold_score: z.number().optional(),
}).prefault({});

export type OutboundLimitsConfig = z.output<typeof outboundLimitsConfigSchema>;
export type OutboundContentConfig = z.output<typeof outboundContentConfigSchema>;
export type RateLimits = OutboundLimitsConfig['user'];
