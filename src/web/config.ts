// Configuration of the web console (`console`), HTTPS only (docs/console.md). Composed into the
// one schema by src/config/schema.ts.
//
// On by default, on 127.0.0.1 only: it speaks nothing but TLS, every login goes through the
// shared brute-force defence, and loopback keeps it off the network until an operator opens it
// on purpose (`address: 0.0.0.0`) or reaches it through an SSH tunnel.
import { z } from 'zod';
import { duration, port } from '../config/fields.js';

export const consoleConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  address: z.string().min(1).default('127.0.0.1'),
  port: port.default(8443),
  /** Accounts (local users) that see the administrator pages; everyone else sees only their own. */
  admins: z.array(z.string().trim().toLowerCase().regex(/^[^\s@]+@[^\s@]+$/, 'must be a user address such as admin@example.org')).default([]),
  /** A session ends after this long without a request. */
  session_idle: duration('30m'),
  /** Message traces older than this are dropped (the trace store under the data directory). */
  trace_retention: duration('30d'),
}).prefault({});

export type ConsoleConfig = z.output<typeof consoleConfigSchema>;
