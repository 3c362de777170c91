// The one place that turns `store.*` into a StateStore: the embedded file (default), or Redis
// with this node's memory behind it (FallbackStore). The gateway and the CLI both open it here.
import fs from 'node:fs';
import type client from 'prom-client';
import type { Logger } from '../log.js';
import type { StoreConfig } from './config.js';
import { FallbackStore } from './fallback-store.js';
import { RedisStore, describe } from './redis-store.js';
import { SqliteStore, stateFile } from './sqlite-store.js';
import type { StateStore } from './store.js';

export interface OpenStateStoreOptions {
  /** The gateway's metrics registry (portcullis_store_degraded, portcullis_store_fallback_total). */
  readonly registry?: client.Registry;
  /**
   * The CLI (false): Redis must answer, or the command fails (showing an empty memory store as
   * "nothing recorded" would be a lie). The gateway (true, default): fall back to memory.
   */
  readonly fallback?: boolean;
}

export async function openStateStore(config: StoreConfig, dataDir: string, log: Logger, options: OpenStateStoreOptions = {}): Promise<StateStore> {
  if (config.backend === 'sqlite') {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    return SqliteStore.open(stateFile(dataDir));
  }
  const redisOptions = { url: config.url, prefix: config.prefix, sentinel: config.sentinel, cluster: config.cluster, timeoutMs: config.timeout };
  const fallback = options.fallback ?? true;
  const redis = await RedisStore.open(redisOptions, !fallback);
  if (!fallback) return redis;
  const where = describe(redisOptions);
  const store = new FallbackStore(redis, { logger: log, registry: options.registry, describe: where });
  if (!redis.connected) store.markDown(`no answer within ${config.timeout * 4} ms at start`);
  else log.info({ event: 'store_open', backend: 'redis', store: where, prefix: config.prefix }, `state store: ${where} (prefix ${config.prefix})`);
  return store;
}
