// Configuration of the durable queue (`queue`). Composed into the one schema by src/config/schema.ts.
import { z } from 'zod';
import { duration, size } from '../config/fields.js';

export const queueConfigSchema = z.strictObject({
  fsync: z.boolean().default(true),
  delivery_concurrency: z.number().int().min(1).max(1000).default(50),
  retry_initial: duration('5m'),
  retry_max: duration('1h'),
  lifetime: duration('5d'),
  segment_size: size('64MiB'),
  memory_spill: size('256KiB'),
  /**
   * Free space the queue's file system must keep (Postfix queue_minfree, 0 there too). MAIL is
   * refused with 452 4.3.1 unless min_free + 1.5 × the message (SIZE=, else smtp.max_message_size)
   * is free, as Postfix's smtpd does (docs/reliability.md).
   */
  min_free: size('0'),
  /** Free inodes the queue's file system must keep, where it counts them (a spilled message needs a file). */
  min_free_inodes: z.number().int().min(0).max(1_000_000_000).default(100),
}).prefault({}).prefault({});

export type QueueConfig = z.output<typeof queueConfigSchema>;
