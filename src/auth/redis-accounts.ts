// The accounts of several gateway nodes in one Redis (`store.backend: redis`): a user added or a
// password changed with any node's configuration counts on every node at once.
//
// Keys (one hash tag, so that a Redis Cluster keeps them on one node and a script sees them all):
//   <prefix>{acct}:users     address → password hash (scrypt, as in accounts.db)
//   <prefix>{acct}:aliases   address → targets (JSON array)
//   <prefix>{acct}:created   address → creation time (ISO) of the user or alias
//   <prefix>{acct}:settings  address → the user's spam settings (JSON)
//   channel <prefix>{acct}:changed   "u:<address>" | "a:<address>" | "s:<address>" after each write
// None expires. Every write is one Lua script (the name check and the write atomic across
// nodes) that publishes what it changed.
//
// Redis Cluster: the channel is classic pub/sub (PUBLISH, also from inside the scripts), which a
// cluster broadcasts to every node over its bus, so a subscriber on any node hears it — it works
// as it is (test/store/redis-cluster.test.ts). Sharded pub/sub (SPUBLISH) would keep the
// messages on the {acct} shard, but accounts change rarely: not worth a second code path.
//
// The RCPT path asks synchronously (AccountBackend), so each node keeps a replica in memory:
// loaded in full when it (re)connects, then kept current from the change channel (a change on
// one node reaches the others within a round trip). The replica answers only while both
// connections are up and it is in sync; otherwise every read throws AccountError UNAVAILABLE —
// a temporary failure, never a stale "no such user". Logins read the hash from Redis itself.
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { createRedisClient, describe, type RedisConnectOptions } from '../store/redis-client.js';
import { AccountError, type AccountBackend, type AccountsDump } from './accounts.js';

interface Scripted {
  pcAcctInsert(users: string, aliases: string, created: string, table: 'u' | 'a', addr: string, value: string, ts: string, channel: string): Promise<string>;
  pcAcctUpdate(users: string, addr: string, hash: string, old: string, channel: string): Promise<number>;
  pcAcctDelete(table: string, created: string, settings: string, addr: string, msg: string, channel: string): Promise<number>;
  pcAcctSettings(users: string, settings: string, addr: string, json: string, channel: string): Promise<number>;
}
type Client = (Redis | Cluster) & Scripted;

/** KEYS users, aliases, created; ARGV table (u|a), address, value, created, channel. */
const INSERT = `
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 then return 'user' end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 'alias' end
redis.call('HSET', ARGV[1] == 'u' and KEYS[1] or KEYS[2], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[1] .. ':' .. ARGV[2])
return 'ok'`;

/** KEYS users; ARGV address, new hash, old hash ('' = any), channel. 1 when replaced. */
const UPDATE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur or (ARGV[3] ~= '' and cur ~= ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[4], 'u:' .. ARGV[1])
return 1`;

/** KEYS table (users|aliases), created, settings; ARGV address, message, channel. 1 when removed. */
const DELETE = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1`;

/** KEYS users, settings; ARGV address, json, channel. 0 when there is no such user. */
const SETTINGS = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], 's:' .. ARGV[1])
return 1`;

export interface RedisAccountsOptions extends RedisConnectOptions {
  readonly prefix?: string;
  readonly logger?: Logger;
}

export class RedisAccounts implements AccountBackend {
  private readonly client: Client;
  private readonly sub: Redis | Cluster;
  private readonly k: { users: string; aliases: string; created: string; settings: string; channel: string };
  private readonly where: string;
  private users = new Map<string, string>(); // address → created
  private aliases = new Map<string, { targets: string; created: string }>();
  private settingsOf = new Map<string, string>();
  /** The replica answers only while true: both connections up, loaded since the last (re)connection. */
  private inSync = false;
  /** Bumped on every disconnection, so that a load begun before one does not mark the replica in sync. */
  private epoch = 0;
  /** A load is under way (one at a time). */
  private syncing = false;
  private closed = false;

  private constructor(private readonly options: RedisAccountsOptions) {
    const p = `${options.prefix ?? 'portcullis:'}{acct}:`;
    this.k = { users: `${p}users`, aliases: `${p}aliases`, created: `${p}created`, settings: `${p}settings`, channel: `${p}changed` };
    this.where = describe(options);
    this.client = createRedisClient(options) as Client;
    this.client.defineCommand('pcAcctInsert', { numberOfKeys: 3, lua: INSERT });
    this.client.defineCommand('pcAcctUpdate', { numberOfKeys: 1, lua: UPDATE });
    this.client.defineCommand('pcAcctDelete', { numberOfKeys: 3, lua: DELETE });
    this.client.defineCommand('pcAcctSettings', { numberOfKeys: 2, lua: SETTINGS });
    // A subscribed connection can send nothing else: the change channel has its own.
    this.sub = createRedisClient(options);
    this.sub.on('message', (_channel: string, message: string) => this.changed(message));
    for (const c of [this.client, this.sub]) {
      c.on('ready', () => this.resync());
      c.on('close', () => this.lost());
    }
  }

  /**
   * Connects and loads the replica, waiting at most `wait` ms. With `requireConnection` (the
   * CLI) a Redis that does not answer is an error; the gateway starts anyway, refusing account
   * lookups with a temporary failure until Redis answers.
   */
  static async open(options: RedisAccountsOptions, requireConnection: boolean, wait = (options.timeoutMs ?? 500) * 4): Promise<RedisAccounts> {
    const store = new RedisAccounts(options);
    const ready = await Promise.race([
      (async () => {
        while (!store.closed && !store.inSync) await new Promise((r) => setTimeout(r, 10));
        return store.inSync;
      })(),
      new Promise<false>((r) => setTimeout(() => r(false), wait).unref()),
    ]);
    if (!ready && requireConnection) {
      store.close();
      throw new AccountError('UNAVAILABLE', `the accounts in redis at ${store.where} could not be read within ${wait} ms`);
    }
    if (!ready) options.logger?.error({ event: 'accounts_unavailable', store: store.where }, `accounts: redis at ${store.where} does not answer; logins and local recipients get temporary failures until it does`);
    return store;
  }

  /** True while lookups are answered (for tests and the log). */
  get available(): boolean {
    return this.inSync;
  }

  // --- reads (the replica) ------------------------------------------------------------------

  userExists(addr: string): boolean {
    this.assertInSync();
    return this.users.has(addr);
  }
  aliasTargets(addr: string): string | undefined {
    this.assertInSync();
    return this.aliases.get(addr)?.targets;
  }
  settings(addr: string): string | undefined {
    this.assertInSync();
    return this.settingsOf.get(addr);
  }
  allSettings(): { address: string; settings: string }[] {
    this.assertInSync();
    return [...this.settingsOf].sort(([a], [b]) => cmp(a, b)).map(([address, settings]) => ({ address, settings }));
  }
  listUsers(): { address: string; created: string }[] {
    this.assertInSync();
    return [...this.users].sort(([a], [b]) => cmp(a, b)).map(([address, created]) => ({ address, created }));
  }
  listAliases(): { address: string; targets: string }[] {
    this.assertInSync();
    return [...this.aliases].sort(([a], [b]) => cmp(a, b)).map(([address, v]) => ({ address, targets: v.targets }));
  }

  /** From Redis itself, not the replica: a password changed a moment ago on another node counts. */
  async userHash(addr: string): Promise<string | undefined> {
    return (await this.run(() => this.client.hget(this.k.users, addr))) ?? undefined;
  }

  // --- writes (one script each) -------------------------------------------------------------

  async insertUser(addr: string, hash: string, ts: string): Promise<'ok' | 'user' | 'alias'> {
    return this.insert('u', addr, hash, ts);
  }
  async insertAlias(addr: string, targetsJson: string, ts: string): Promise<'ok' | 'user' | 'alias'> {
    return this.insert('a', addr, targetsJson, ts);
  }
  async updateHash(addr: string, hash: string): Promise<boolean> {
    return (await this.run(() => this.client.pcAcctUpdate(this.k.users, addr, hash, '', this.k.channel))) === 1;
  }
  async rehash(addr: string, fresh: string, _ts: string, old: string): Promise<void> {
    await this.run(() => this.client.pcAcctUpdate(this.k.users, addr, fresh, old, this.k.channel));
  }
  async deleteUser(addr: string): Promise<boolean> {
    const gone = (await this.run(() => this.client.pcAcctDelete(this.k.users, this.k.created, this.k.settings, addr, `u:${addr}`, this.k.channel))) === 1;
    if (gone) {
      this.users.delete(addr);
      this.settingsOf.delete(addr);
    }
    return gone;
  }
  async deleteAlias(addr: string): Promise<boolean> {
    // The alias has no settings; the third key is a placeholder in the same slot.
    const gone = (await this.run(() => this.client.pcAcctDelete(this.k.aliases, this.k.created, `${this.k.aliases}:none`, addr, `a:${addr}`, this.k.channel))) === 1;
    if (gone) this.aliases.delete(addr);
    return gone;
  }
  async putSettings(addr: string, json: string): Promise<boolean> {
    const ok = (await this.run(() => this.client.pcAcctSettings(this.k.users, this.k.settings, addr, json, this.k.channel))) === 1;
    if (ok) this.settingsOf.set(addr, json);
    return ok;
  }

  async dump(): Promise<AccountsDump> {
    const [users, aliases, created, settings] = await this.run(() => Promise.all([
      this.client.hgetall(this.k.users), this.client.hgetall(this.k.aliases), this.client.hgetall(this.k.created), this.client.hgetall(this.k.settings),
    ]));
    const sorted = (o: Record<string, string>) => Object.entries(o).sort(([a], [b]) => cmp(a, b));
    return {
      users: sorted(users).map(([address, hash]) => ({ address, hash, created: created[address] ?? '' })),
      aliases: sorted(aliases).map(([address, t]) => ({ address, targets: parseJsonArray(t), created: created[address] ?? '' })),
      settings: sorted(settings).filter(([a]) => a in users).map(([address, s]) => ({ address, settings: s })),
    };
  }

  async restore(dump: AccountsDump): Promise<void> {
    await this.run(async () => {
      const tx = this.client.multi();
      for (const u of dump.users) tx.hdel(this.k.aliases, u.address).hset(this.k.users, u.address, u.hash).hset(this.k.created, u.address, u.created);
      for (const a of dump.aliases) {
        tx.hdel(this.k.users, a.address).hdel(this.k.settings, a.address)
          .hset(this.k.aliases, a.address, JSON.stringify(a.targets)).hset(this.k.created, a.address, a.created);
      }
      const users = new Set(dump.users.map((u) => u.address));
      for (const s of dump.settings) if (users.has(s.address)) tx.hset(this.k.settings, s.address, s.settings);
      await tx.exec();
    });
    // Nodes reload in full rather than apply one message per entry.
    await this.run(() => this.client.publish(this.k.channel, '*'));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inSync = false;
    this.client.disconnect();
    this.sub.disconnect();
  }

  // --- the replica --------------------------------------------------------------------------

  private lost(): void {
    this.epoch++;
    if (this.inSync) this.options.logger?.error({ event: 'accounts_unavailable', store: this.where }, `accounts: lost redis at ${this.where}; logins and local recipients get temporary failures until it is back`);
    this.inSync = false;
  }

  /** Subscribes and loads everything, once both connections are up; marks the replica in sync unless the connection dropped meanwhile. */
  private resync(): void {
    if (this.syncing || this.closed) return;
    this.syncing = true;
    void this.syncLoop().finally(() => { this.syncing = false; });
  }

  private async syncLoop(): Promise<void> {
    while (!this.closed && !this.inSync && this.client.status === 'ready' && this.sub.status === 'ready') {
      const epoch = this.epoch;
      try {
        await this.sub.subscribe(this.k.channel);
        await this.load();
      } catch {
        continue; // the loop ends when a connection is down; its 'ready' starts the next attempt
      }
      if (epoch === this.epoch && this.client.status === 'ready' && this.sub.status === 'ready') {
        this.inSync = true;
        this.options.logger?.info({ event: 'accounts_available', store: this.where, users: this.users.size, aliases: this.aliases.size }, `accounts: ${this.users.size} users, ${this.aliases.size} aliases from redis at ${this.where}`);
      }
    }
  }

  private async load(): Promise<void> {
    const [users, aliases, created, settings] = await Promise.all([
      this.client.hgetall(this.k.users), this.client.hgetall(this.k.aliases), this.client.hgetall(this.k.created), this.client.hgetall(this.k.settings),
    ]);
    this.users = new Map(Object.keys(users).map((a) => [a, created[a] ?? '']));
    this.aliases = new Map(Object.entries(aliases).map(([a, t]) => [a, { targets: t, created: created[a] ?? '' }]));
    this.settingsOf = new Map(Object.entries(settings).filter(([a]) => a in users));
  }

  /** One entry changed on some node: read it again (replies come in order, so the last read wins). */
  private changed(message: string): void {
    const kind = message.slice(0, 2);
    const addr = message.slice(2);
    const refresh = async () => {
      if (message === '*') return this.load();
      if (kind === 'u:') {
        const [hash, created, settings] = await Promise.all([this.client.hget(this.k.users, addr), this.client.hget(this.k.created, addr), this.client.hget(this.k.settings, addr)]);
        if (hash === null) this.users.delete(addr);
        else this.users.set(addr, created ?? '');
        if (settings === null || hash === null) this.settingsOf.delete(addr);
        else this.settingsOf.set(addr, settings);
      } else if (kind === 'a:') {
        const [targets, created] = await Promise.all([this.client.hget(this.k.aliases, addr), this.client.hget(this.k.created, addr)]);
        if (targets === null) this.aliases.delete(addr);
        else this.aliases.set(addr, { targets, created: created ?? '' });
      } else if (kind === 's:') {
        const settings = await this.client.hget(this.k.settings, addr);
        if (settings === null) this.settingsOf.delete(addr);
        else this.settingsOf.set(addr, settings);
      }
    };
    // A change that cannot be read leaves the replica behind: out of sync until a full reload.
    refresh().catch(() => {
      this.lost();
      this.resync();
    });
  }

  private async insert(table: 'u' | 'a', addr: string, value: string, ts: string): Promise<'ok' | 'user' | 'alias'> {
    const r = (await this.run(() => this.client.pcAcctInsert(this.k.users, this.k.aliases, this.k.created, table, addr, value, ts, this.k.channel))) as 'ok' | 'user' | 'alias';
    // This node sees its own write at once (its message on the channel comes a moment later).
    if (r === 'ok' && table === 'u') this.users.set(addr, ts);
    else if (r === 'ok') this.aliases.set(addr, { targets: value, created: ts });
    return r;
  }

  private assertInSync(): void {
    if (!this.inSync) throw this.unavailable();
  }

  private unavailable(cause?: unknown): AccountError {
    return new AccountError('UNAVAILABLE', `the accounts cannot be read: redis at ${this.where} does not answer`, { cause });
  }

  private async run<T>(op: () => Promise<T>): Promise<T> {
    if (this.closed) throw new AccountError('UNAVAILABLE', 'the account store is closed');
    try {
      return await op();
    } catch (err) {
      throw this.unavailable(err);
    }
  }
}

/** Byte order of the addresses (as SQLite's ORDER BY), so both backends list alike. */
function cmp(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function parseJsonArray(json: string): string[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}
