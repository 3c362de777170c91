// Configuration of the state store (`store`): which backend holds counters, blocks and rates —
// the embedded SQLite file (default) or a Redis shared by several gateway nodes. Composed into
// the one schema by src/config/schema.ts; docs/configuration.md and docs/store.md explain it.
import { z } from 'zod';
import { duration } from '../config/fields.js';

const hostPort = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(26379),
});

const redisUrl = z.string().refine((u) => {
  try {
    return ['redis:', 'rediss:'].includes(new URL(u).protocol);
  } catch {
    return false;
  }
}, 'must be a Redis URL such as redis://127.0.0.1:6379/0 (rediss:// for TLS)');

function safePath(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return '';
  }
}

export const storeConfigSchema = z.strictObject({
  /** `sqlite`: `<data_dir>/state.db`, one node. `redis`: shared by every node pointing at it. */
  backend: z.enum(['sqlite', 'redis']).default('sqlite'),
  /** The Redis server (redis://[user:password@]host:port/db; rediss:// for TLS). With sentinel, only its user, password and db are used; with cluster, its user and password (db 0). */
  url: redisUrl.default('redis://127.0.0.1:6379/0'),
  /** Every key begins with it, so several sites (or test runs) can share one Redis. */
  // No braces: Redis Cluster hashes the text between the first `{` and `}` of a key (a hash tag);
  // the stores put their own tags (`{acct}`, `{bayes}`) after the prefix, so that the keys one
  // script touches share a slot — a brace in the prefix would move or void those tags.
  prefix: z.string().min(1).max(64).regex(/^[^\s\0]+$/, 'must not contain spaces or NUL')
    .regex(/^[^{}]+$/, 'must not contain { or } (Redis Cluster reads them as a hash tag)').default('portcullis:'),
  /** High availability through Redis Sentinel: the sentinels to ask and the name of the master they watch. */
  sentinel: z.strictObject({
    name: z.string().min(1),
    sentinels: z.array(hostPort).min(1),
    password: z.string().optional(),
  }).optional(),
  /** Redis Cluster: some of its nodes (the rest are discovered). */
  cluster: z.strictObject({
    nodes: z.array(hostPort.extend({ port: z.number().int().min(1).max(65535).default(6379) })).min(1),
  }).optional(),
  /** Longest wait for one Redis command (or for the connection at start); past it the node falls back to memory. */
  timeout: duration('500ms'),
}).superRefine((s, ctx) => {
  if (s.sentinel && s.cluster) ctx.addIssue({ code: 'custom', path: ['cluster'], message: 'store.sentinel and store.cluster exclude each other: choose one' });
  // A cluster has database 0 only; ioredis would silently ignore another.
  if (s.cluster && !['', '/', '/0'].includes(safePath(s.url))) ctx.addIssue({ code: 'custom', path: ['url'], message: 'with store.cluster the database must be 0 (a Redis Cluster has no other)' });
  if (s.timeout < 10 || s.timeout > 60_000) ctx.addIssue({ code: 'custom', path: ['timeout'], message: 'must be between 10ms and 60s' });
}).prefault({});

export type StoreConfig = z.output<typeof storeConfigSchema>;
