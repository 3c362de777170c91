// `portcullis store migrate --to redis://host:port/db | sqlite [--json]`: copies the state
// store (counters, blocks, rates, greeting passes), the accounts (users with their password
// hashes, aliases, per-user spam settings) and the Bayes tokens from the configured
// backend (store.backend) to the other one, so a site can move to several nodes (or back to
// one) without losing what its defences and its Bayes have learned. Entries are copied as they
// are, expiries and rate buckets included, overwriting the target's: running it twice changes
// nothing the second time. Entries the target has and the source lacks are left alone.
// Afterwards, change store.backend (and store.url) and restart the gateway.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import type { Config } from '../config/schema.js';
import { silentLogger } from '../log.js';
import { openStateStore } from '../store/open.js';
import { RedisStore, describe } from '../store/redis-store.js';
import { SqliteStore, stateFile } from '../store/sqlite-store.js';
import type { DumpableStore, DumpEntry } from '../store/store.js';
import { bayesFile } from '../checks/bayes/config.js';
import { RedisBayesStore } from '../checks/bayes/redis-store.js';
import { SqliteBayesTokenStore, type BayesDumpEntry, type DumpableBayesStore } from '../checks/bayes/store.js';
import { AccountStore, accountsFile } from '../auth/accounts.js';
import { openAccountStore } from '../auth/accounts-open.js';
import { RedisAccounts } from '../auth/redis-accounts.js';

const USAGE = 'usage: portcullis store migrate --to redis://HOST:PORT/DB|redis|sqlite [--json]';
/** Bayes entries written per batch (one transaction / one HSET each). */
const BAYES_BATCH = 5000;

export interface MigrateCounts {
  from: string;
  to: string;
  values: number;
  rates: number;
  bayesTokens: number;
  bayesMessages: number;
  bayesTotals?: { spam: number; ham: number };
  users: number;
  aliases: number;
  userSettings: number;
}

export async function storeCommand(args: string[], cfg: Config): Promise<number> {
  let values: { to?: string; json?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args, allowPositionals: true, options: { to: { type: 'string' }, json: { type: 'boolean' } } }));
  } catch (err) {
    console.error(`store: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (positionals[0] !== 'migrate' || positionals.length !== 1 || !values.to) {
    console.error(USAGE);
    return 2;
  }
  const to = values.to;
  const toSqlite = to === 'sqlite';
  if (!toSqlite && to !== 'redis' && !/^rediss?:\/\//.test(to)) {
    console.error(`store migrate: --to must be "sqlite", "redis" (the Redis configured in store.url, store.sentinel or store.cluster) or a Redis URL such as redis://127.0.0.1:6379/0, not ${JSON.stringify(to)}`);
    return 2;
  }
  const s = cfg.store;
  if ((toSqlite && s.backend === 'sqlite') || (to === 'redis' && s.backend === 'redis')
    || (!toSqlite && s.backend === 'redis' && !s.sentinel && !s.cluster && sameRedis(to, s.url))) {
    console.error(`store migrate: ${toSqlite ? 'the embedded store' : describe({ url: to })} is already the configured backend (store.backend: ${s.backend}); nothing to copy`);
    return 2;
  }
  try {
    const counts = await migrate(cfg, to);
    if (values.json) console.log(JSON.stringify(counts, null, 2));
    else {
      console.log(`copied ${counts.values} values and counters, ${counts.rates} rates from ${counts.from} to ${counts.to}`);
      console.log(`copied accounts: ${counts.users} users, ${counts.aliases} aliases, ${counts.userSettings} users' spam settings`);
      console.log(`copied Bayes: ${counts.bayesTokens} tokens, ${counts.bayesMessages} learned messages` +
        (counts.bayesTotals ? ` (${counts.bayesTotals.spam} spam, ${counts.bayesTotals.ham} ham)` : ''));
      console.log(toSqlite ? 'now set store.backend: sqlite and restart the gateway'
        : to === 'redis' ? 'now set store.backend: redis on every node and restart them'
          : `now set store.backend: redis and store.url: ${describe({ url: to })} on every node and restart them`);
    }
    return 0;
  } catch (err) {
    console.error(`store migrate: ${(err as Error).message}`);
    return 1;
  }
}

function sameRedis(a: string, b: string): boolean {
  try {
    const x = new URL(a);
    const y = new URL(b);
    return x.hostname === y.hostname && (x.port || '6379') === (y.port || '6379') && (x.pathname.slice(1) || '0') === (y.pathname.slice(1) || '0');
  } catch {
    return false;
  }
}

export async function migrate(cfg: Config, to: string): Promise<MigrateCounts> {
  const s = cfg.store;
  const toSqlite = to === 'sqlite';
  // `--to redis`: the Redis that store.* describes — one server, a Sentinel master or a Cluster
  // (a URL names one server only, and a plain client cannot write into a Cluster).
  const redisTo = to === 'redis'
    ? { url: s.url, sentinel: s.sentinel, cluster: s.cluster, prefix: s.prefix, timeoutMs: s.timeout }
    : { url: to, prefix: s.prefix, timeoutMs: s.timeout };
  const source = (await openStateStore(s, cfg.data_dir, silentLogger(), { fallback: false })) as DumpableStore;
  let target: DumpableStore | undefined;
  let bayesFrom: DumpableBayesStore | undefined;
  let bayesTo: DumpableBayesStore | undefined;
  let accountsFrom: AccountStore | undefined;
  let accountsTo: AccountStore | undefined;
  try {
    if (toSqlite) fs.mkdirSync(cfg.data_dir, { recursive: true, mode: 0o700 });
    target = toSqlite ? SqliteStore.open(stateFile(cfg.data_dir)) : await RedisStore.open(redisTo, true);
    const counts: MigrateCounts = {
      from: s.backend === 'sqlite' ? stateFile(cfg.data_dir) : `${describe(s)} (prefix ${s.prefix})`,
      to: toSqlite ? stateFile(cfg.data_dir) : `${describe(redisTo)} (prefix ${s.prefix})`,
      values: 0, rates: 0, bayesTokens: 0, bayesMessages: 0, users: 0, aliases: 0, userSettings: 0,
    };
    const pending: Promise<void>[] = [];
    for await (const e of source.dump() as AsyncIterable<DumpEntry>) {
      pending.push(target.restore(e));
      if (e.kind === 'value') counts.values++;
      else counts.rates++;
      if (pending.length >= 500) await Promise.all(pending.splice(0)); // bounded, pipelined to Redis
    }
    await Promise.all(pending);

    // Accounts: from the configured ones (the file only if it exists: no accounts otherwise).
    // Password hashes are copied as they are: every password keeps working.
    if (s.backend === 'redis' || fs.existsSync(accountsFile(cfg.data_dir))) {
      accountsFrom = await openAccountStore(s, cfg.data_dir, { requireConnection: true });
      accountsTo = toSqlite ? AccountStore.open(accountsFile(cfg.data_dir))
        : new AccountStore(await RedisAccounts.open({ ...redisTo }, true));
      const dump = await accountsFrom.exportAll();
      await accountsTo.importAll(dump);
      counts.users = dump.users.length;
      counts.aliases = dump.aliases.length;
      counts.userSettings = dump.settings.length;
    }

    // Bayes: from the configured one (the file only if it exists: nothing learned otherwise).
    const file = bayesFile(cfg);
    if (s.backend === 'redis') bayesFrom = new RedisBayesStore({ url: s.url, prefix: s.prefix, sentinel: s.sentinel, cluster: s.cluster, timeoutMs: s.timeout });
    else if (fs.existsSync(file)) bayesFrom = SqliteBayesTokenStore.open(file);
    if (bayesFrom) {
      bayesTo = toSqlite ? SqliteBayesTokenStore.open(file) : new RedisBayesStore(redisTo);
      let batch: BayesDumpEntry[] = [];
      for await (const e of bayesFrom.dump()) {
        // Totals come last: an empty source (nothing learned) must not zero the target's.
        if (e.kind === 'totals' && !counts.bayesTokens && !counts.bayesMessages) continue;
        batch.push(e);
        if (e.kind === 'token') counts.bayesTokens++;
        else if (e.kind === 'learned') counts.bayesMessages++;
        else counts.bayesTotals = { spam: e.spam, ham: e.ham };
        if (batch.length >= BAYES_BATCH) {
          await bayesTo.restore(batch);
          batch = [];
        }
      }
      await bayesTo.restore(batch);
    }
    return counts;
  } finally {
    accountsFrom?.close();
    accountsTo?.close();
    await Promise.all([source.close(), target?.close(), bayesFrom?.close(), bayesTo?.close()]);
  }
}
