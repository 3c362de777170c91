// The one place that turns `store.*` into an AccountStore: the node's own file
// `<data_dir>/accounts.db` (the default), or — with `store.backend: redis` — the accounts every
// node shares in Redis (redis-accounts.ts). The gateway and the CLI both open it here.
import fs from 'node:fs';
import type { Logger } from '../log.js';
import type { StoreConfig } from '../store/config.js';
import { AccountStore, accountsFile, type AccountStoreOptions } from './accounts.js';
import { RedisAccounts } from './redis-accounts.js';

export interface OpenAccountStoreOptions extends AccountStoreOptions {
  readonly logger?: Logger;
  /**
   * The CLI (true): Redis must answer, or the command fails. The gateway (false, default): it
   * starts anyway, and logins and local recipients get temporary failures until Redis answers.
   */
  readonly requireConnection?: boolean;
}

export async function openAccountStore(config: StoreConfig, dataDir: string, options: OpenAccountStoreOptions = {}): Promise<AccountStore> {
  if (config.backend !== 'redis') {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    return AccountStore.open(accountsFile(dataDir), options);
  }
  const backend = await RedisAccounts.open({
    url: config.url, sentinel: config.sentinel, cluster: config.cluster, timeoutMs: config.timeout, prefix: config.prefix, logger: options.logger,
  }, options.requireConnection ?? false);
  return new AccountStore(backend, options);
}
