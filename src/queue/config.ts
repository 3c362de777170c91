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
}).prefault({}).prefault({});

export type QueueConfig = z.output<typeof queueConfigSchema>;
