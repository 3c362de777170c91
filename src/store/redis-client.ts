// The one way Portcullis talks to Redis (the state store, the Bayes tokens, the accounts): an
// ioredis client for `store.*` — one server, Sentinel or Cluster — and the round-trip helpers
// every Redis-backed store shares: a call that fails for any reason of the server or the
// connection becomes StoreError UNAVAILABLE (so callers fall back, or answer "try again later");
// closing waits briefly for pending replies.
import { Redis, Cluster, type RedisOptions, type ClusterOptions } from 'ioredis';
import { StoreError } from './store.js';

export interface RedisConnectOptions {
  /** redis://[user:password@]host:port/db, or rediss:// for TLS. With Sentinel, only its user, password and db. */
  readonly url: string;
  readonly sentinel?: { readonly name: string; readonly sentinels: readonly { host: string; port: number }[]; readonly password?: string };
  readonly cluster?: { readonly nodes: readonly { host: string; port: number }[] };
  /** Longest wait for one command. Default 500 ms. */
  readonly timeoutMs?: number;
}

/**
 * An ioredis client: commands bounded by `timeoutMs` and never queued while disconnected (they
 * fail at once, so callers fall back instead of hanging a session); reconnection for ever,
 * backing off to 2 s; calls made together share one write (auto-pipelining).
 */
export function createRedisClient(options: RedisConnectOptions): Redis | Cluster {
  const timeoutMs = options.timeoutMs ?? 500;
  const common = {
    commandTimeout: timeoutMs,
    connectTimeout: Math.max(timeoutMs, 1000),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    enableAutoPipelining: true,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
  } satisfies RedisOptions;
  let client: Redis | Cluster;
  if (options.cluster) {
    // Keys a script or a MULTI touches together share a hash tag (`{acct}`, `{bayes}`), so no
    // command spans slots (docs/store.md, "Sentinel and Cluster").
    const url = new URL(options.url);
    const clusterOptions: ClusterOptions = {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      clusterRetryStrategy: common.retryStrategy,
      redisOptions: { ...common, username: decodeURIComponent(url.username) || undefined, password: decodeURIComponent(url.password) || undefined },
    };
    client = new Cluster(options.cluster.nodes.map((n) => ({ host: n.host, port: n.port })), clusterOptions);
  } else if (options.sentinel) {
    const url = new URL(options.url);
    client = new Redis({
      ...common,
      sentinels: options.sentinel.sentinels.map((s) => ({ host: s.host, port: s.port })),
      name: options.sentinel.name,
      sentinelPassword: options.sentinel.password,
      // The sentinels are asked again at every reconnection; give them a moment each.
      sentinelRetryStrategy: (times: number) => Math.min(100 * times, 1000),
      // A planned failover (SENTINEL FAILOVER) leaves the old master running, and our connection
      // to it open: it would take writes until the sentinel demotes it, then refuse them. So
      // follow the sentinels' +switch-master at once (reconnect, asking them for the master),
      // and treat a READONLY reply the same way, in case that message was missed.
      failoverDetector: true,
      reconnectOnError: (err: Error) => (/READONLY/.test(err.message) ? 1 : false),
      password: decodeURIComponent(url.password) || undefined,
      username: decodeURIComponent(url.username) || undefined,
      db: Number(url.pathname.slice(1) || 0),
    });
  } else {
    client = new Redis(options.url, common);
  }
  // Without a listener ioredis prints every reconnection failure; the stores report outages.
  client.on('error', () => {});
  return client;
}

export function waitReady(client: Redis | Cluster, ms: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ok);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    client.on('ready', onReady);
  });
}

/** Where the store points, without a password, for messages. */
export function describe(options: Pick<RedisConnectOptions, 'url' | 'sentinel' | 'cluster'>): string {
  if (options.cluster) return `cluster ${options.cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  if (options.sentinel) return `sentinel master ${options.sentinel.name}`;
  try {
    const u = new URL(options.url);
    u.password = '';
    u.username = '';
    return u.toString();
  } catch {
    return 'redis';
  }
}

/**
 * Runs Redis commands for a store: a StoreError passes through; any other failure (the server,
 * the connection, a timeout) becomes StoreError UNAVAILABLE `<what>: <reason>`, or CLOSED (`the
 * <store> is closed`) once the store was closed.
 */
export async function redisCall<T>(what: string, store: string, closed: () => boolean, op: () => Promise<T>): Promise<T> {
  if (closed()) throw new StoreError('CLOSED', `the ${store} is closed`);
  try {
    return await op();
  } catch (err) {
    if (err instanceof StoreError) throw err;
    if (closed()) throw new StoreError('CLOSED', `the ${store} is closed`);
    // A plain client pointed at one node of a Cluster gets MOVED for most keys (inside a MULTI,
    // hidden behind EXECABORT): say what to configure instead of echoing the protocol.
    const errors = [err, ...((err as { previousErrors?: unknown[] }).previousErrors ?? [])];
    if (errors.some((e) => /^MOVED /.test((e as Error)?.message ?? ''))) {
      throw new StoreError('UNAVAILABLE', `${what}: the server is a node of a Redis Cluster (it answered MOVED): list the cluster's nodes in store.cluster.nodes instead of one url`, { cause: err });
    }
    throw new StoreError('UNAVAILABLE', `${what}: ${(err as Error).message}`, { cause: err });
  }
}

/** QUIT, so that pending replies arrive, bounded at 1 s; a server that is gone is simply dropped. */
export async function closeRedisClient(client: Redis | Cluster): Promise<void> {
  if (client.status === 'ready') {
    await Promise.race([client.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
  client.disconnect();
}

/** The masters to SCAN: every master of a Cluster, or the one server. */
export function scanNodes(client: Redis | Cluster): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}
