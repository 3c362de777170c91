// Configuration of SMTP AUTH and the brute-force defence shared by every protocol (`auth`).
// Composed into the one schema by src/config/schema.ts; docs/configuration.md explains every key.
import { z } from 'zod';
import { duration } from '../config/fields.js';

export const authConfigSchema = z.strictObject({
  mechanisms: z.array(z.enum(['PLAIN', 'LOGIN'])).min(1).default(['PLAIN', 'LOGIN']),
  on_mx: z.boolean().default(false),
  brute_force: z.strictObject({
    window: duration('1h'),
    block_time: duration('15m'),
    pair_limit: z.number().int().min(1).default(5),
    ip_limit: z.number().int().min(1).default(20),
    net_limit: z.number().int().min(1).default(100),
    base_delay: duration('500ms'),
    max_delay: duration('15s'),
    spray_accounts: z.number().int().min(2).default(10),
    spray_sources: z.number().int().min(2).default(10),
    known_network_ttl: duration('30d'),
  }).prefault({}),
}).prefault({}).prefault({});

export type AuthConfig = z.output<typeof authConfigSchema>;
