// Configuration of relaying (`relay`): trusted networks, relay domains and the routes to
// downstream hosts. Composed into the one schema by src/config/schema.ts.
import { z } from 'zod';
import { cidr, domainName, port } from '../config/fields.js';

const route = z.strictObject({
  domain: z.union([domainName, z.literal('*')]),
  host: z.string().min(1),
  port: port.default(25),
  protocol: z.enum(['smtp', 'lmtp']).default('smtp'),
  tls: z.enum(['required', 'opportunistic', 'none']).default('opportunistic'),
  tls_verify: z.boolean().default(true),
  max_connections: z.number().int().min(1).max(1000).default(10),
});

const relayDomain = z.strictObject({
  domain: domainName,
  recipients: z.array(z.string().min(3)).optional(),
});

export const relayConfigSchema = z.strictObject({
  trusted_networks: z.array(cidr).default([]),
  domains: z.array(relayDomain).default([]),
  routes: z.array(route).default([]),
}).prefault({}).prefault({});

export type RelayConfig = z.output<typeof relayConfigSchema>;
export type RouteConfig = RelayConfig['routes'][number];
