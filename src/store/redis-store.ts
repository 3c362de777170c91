// The Redis state store: the same StateStore as the embedded SQLite file, kept in a Redis (or
// Valkey) that several gateway nodes share — so a password guesser or a flood is throttled on
// every node at once. ioredis talks to it (one server, Sentinel, or Cluster); it reconnects by
// itself. Every call is ONE round trip: plain HMGETs for reads, a Lua script (EVALSHA) where a
// read and a write must be atomic (incr, hit, delete), MULTI for set.
//
// Keys (prefix `portcullis:` by default, store.prefix):
//   <prefix>v:<key>  hash {v: value, e: expiry in epoch ms (absent = never)}   counters and values
//   <prefix>w:<key>  hash {w: window ms, s: bucket start, c: current, p: previous}   sliding windows
// No hash tag: every script and MULTI touches one key, so on a Redis Cluster the keys spread over
// the masters by slot, and scan/dump walk every master (scanNodes).
// Redis expires each key itself (PEXPIRE) when its entry ends, so nothing needs purging; the
// expiry is ALSO kept in the hash and checked against the caller's clock on every read, which
// is what makes a counter end exactly `ttl` after its first increment, as in SqliteStore (and
// lets tests drive the clock). Several nodes therefore need synchronised clocks (NTP: a skew of
// milliseconds against TTLs of minutes is harmless).
//
// Commands are bounded by `timeoutMs` and never queued while disconnected: a call that cannot be
// answered fails at once with StoreError UNAVAILABLE, and FallbackStore (fallback-store.ts)
// turns that into "count in this node's memory, loudly" instead of hanging a session.
import type { Redis, Cluster } from 'ioredis';
import { closeRedisClient, createRedisClient, describe, redisCall, scanNodes, waitReady, type RedisConnectOptions } from './redis-client.js';
import {
  StoreError, checkIncrement, checkKey, checkPrefix, checkScanLimit, checkTtl, checkValue, checkWindow, compareUtf8, leadingNumber,
  type DumpEntry, type DumpableStore, type ScanEntry,
} from './store.js';

// The client and the round-trip helpers live in redis-client.ts (shared with the Bayes and the
// account stores); re-exported for the callers that import them from here.
export { createRedisClient, describe, waitReady };

export interface RedisStoreOptions extends RedisConnectOptions {
  /** Prepended to every key. Default `portcullis:`. */
  readonly prefix?: string;
  /** Clock in epoch ms (tests inject one). Default Date.now. */
  readonly now?: () => number;
}

// Lua helpers shared by the scripts: SQLite's CAST(text AS NUMERIC) (the leading number, else 0;
// Lua patterns have no alternation, hence the list) and a number written back without noise.
const LUA_NUM = `
local function num(s)
  if not s then return 0 end
  for _, p in ipairs({'^%s*([+-]?%d+%.?%d*[eE][+-]?%d+)', '^%s*([+-]?%.%d+[eE][+-]?%d+)', '^%s*([+-]?%d+%.?%d*)', '^%s*([+-]?%.%d+)'}) do
    local m = string.match(s, p)
    if m then return tonumber(m) or 0 end
  end
  return 0
end
local function fmt(n)
  if n == math.floor(n) and math.abs(n) < 9007199254740992 then return string.format('%d', n) end
  local s = string.format('%.15g', n)
  if tonumber(s) ~= n then s = string.format('%.17g', n) end
  return s
end`;

/** KEYS[1] value key; ARGV by, ttl (0 = never), now. Fixed window: only a new entry gets an expiry. */
const INCR = `${LUA_NUM}
local by, ttl, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'v', 'e')
if h[1] and (not h[2] or tonumber(h[2]) > now) then
  local n = fmt(num(h[1]) + by)
  redis.call('HSET', KEYS[1], 'v', n)
  return n
end
redis.call('DEL', KEYS[1])
local n = fmt(by)
redis.call('HSET', KEYS[1], 'v', n)
if ttl > 0 then
  redis.call('HSET', KEYS[1], 'e', string.format('%d', now + ttl))
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return n`;

/** KEYS[1] window key; ARGV window, now. The two-bucket window of SqliteStore; returns {cur, prev, start}. */
const HIT = `
local w, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = now - (now % w)
local h = redis.call('HMGET', KEYS[1], 'w', 's', 'c', 'p')
local cur, prev = 1, 0
if h[1] and tonumber(h[1]) == w then
  local s = tonumber(h[2])
  if s == b then cur = tonumber(h[3]) + 1; prev = tonumber(h[4])
  elseif s == b - w then prev = tonumber(h[3]) end
end
redis.call('HSET', KEYS[1], 'w', string.format('%d', w), 's', string.format('%d', b), 'c', cur, 'p', prev)
redis.call('PEXPIRE', KEYS[1], b + 2 * w - now)
return {cur, prev, string.format('%d', b)}`;

/** KEYS[1] value key, KEYS[2] window key... one at a time (Cluster: they may live on two nodes). ARGV kind ('v'|'w'), now. */
const DELETE = `
local now = tonumber(ARGV[2])
local live = 0
if ARGV[1] == 'v' then
  local h = redis.call('HMGET', KEYS[1], 'v', 'e')
  if h[1] and (not h[2] or tonumber(h[2]) > now) then live = 1 end
else
  local h = redis.call('HMGET', KEYS[1], 'w', 's')
  if h[1] and tonumber(h[2]) + 2 * tonumber(h[1]) > now then live = 1 end
end
redis.call('DEL', KEYS[1])
return live`;

interface Scripted {
  pcIncr(key: string, by: string, ttl: number, now: number): Promise<string>;
  pcHit(key: string, w: number, now: number): Promise<[number, number, string]>;
  pcDelete(key: string, kind: 'v' | 'w', now: number): Promise<number>;
}
type Client = (Redis | Cluster) & Scripted;

/** Escapes Redis glob characters so that a prefix matches only itself. */
export function globEscape(s: string): string {
  return s.replace(/[*?[\]\\^]/g, '\\$&');
}

export class RedisStore implements DumpableStore {
  private readonly client: Client;
  private readonly prefix: string;
  private readonly now: () => number;
  private closed = false;

  private constructor(client: Client, prefix: string, now: () => number) {
    this.client = client;
    this.prefix = prefix;
    this.now = now;
  }

  /**
   * Connects, waiting at most `timeoutMs` for the server. With `requireConnection` (the CLI), a
   * server that does not answer is an error; otherwise (the gateway) the store is returned
   * anyway, its calls failing UNAVAILABLE until ioredis's reconnection succeeds.
   */
  static async open(options: RedisStoreOptions, requireConnection = false): Promise<RedisStore> {
    const timeoutMs = options.timeoutMs ?? 500;
    const client = createRedisClient(options);
    client.defineCommand('pcIncr', { numberOfKeys: 1, lua: INCR });
    client.defineCommand('pcHit', { numberOfKeys: 1, lua: HIT });
    client.defineCommand('pcDelete', { numberOfKeys: 1, lua: DELETE });
    const ready = await waitReady(client, timeoutMs * 4);
    if (!ready && requireConnection) {
      client.disconnect();
      throw new StoreError('UNAVAILABLE', `redis at ${describe(options)} did not answer within ${timeoutMs * 4} ms`);
    }
    const clock = options.now ?? Date.now;
    return new RedisStore(client as Client, options.prefix ?? 'portcullis:', () => Math.floor(clock()));
  }

  /** True while the connection is up (commands can be sent). */
  get connected(): boolean {
    return this.client.status === 'ready';
  }

  /** One PING; resolves true when answered in time. FallbackStore probes with it during an outage. */
  async ping(): Promise<boolean> {
    if (this.closed || this.client.status !== 'ready') return false;
    try {
      return (await this.client.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  async incr(key: string, ttlMs: number, by = 1): Promise<number> {
    this.assertOpen();
    checkKey(key);
    const ttl = checkTtl(ttlMs);
    const inc = checkIncrement(key, by);
    return Number(await this.run(() => this.client.pcIncr(this.vkey(key), String(inc), ttl, this.now())));
  }

  async get(key: string): Promise<number> {
    const v = await this.getValue(key);
    return v === undefined ? 0 : leadingNumber(v);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.assertOpen();
    checkKey(key);
    checkValue(key, value);
    const ttl = checkTtl(ttlMs);
    const k = this.vkey(key);
    await this.run(async () => {
      const tx = this.client.multi().del(k);
      if (ttl === 0) tx.hset(k, 'v', value);
      else tx.hset(k, 'v', value, 'e', String(this.now() + ttl)).pexpire(k, ttl);
      const results = await tx.exec();
      const failed = results?.find(([err]) => err);
      if (!results || failed) throw failed?.[0] ?? new Error('transaction aborted');
    });
  }

  async getValue(key: string): Promise<string | undefined> {
    return (await this.entry(key))?.value;
  }

  async ttl(key: string): Promise<number | undefined> {
    const now = this.now();
    const e = await this.entry(key, now);
    if (!e) return undefined;
    return e.expiresAt === undefined ? Infinity : e.expiresAt - now;
  }

  async delete(key: string): Promise<boolean> {
    this.assertOpen();
    checkKey(key);
    const now = this.now();
    const [v, w] = await this.run(() => Promise.all([
      this.client.pcDelete(this.vkey(key), 'v', now),
      this.client.pcDelete(this.wkey(key), 'w', now),
    ]));
    return v === 1 || w === 1;
  }

  async scan(prefix: string, limit?: number): Promise<ScanEntry[]> {
    this.assertOpen();
    checkPrefix(prefix);
    const max = checkScanLimit(limit);
    const base = `${this.prefix}v:`;
    const match = `${globEscape(base + prefix)}*`;
    return this.run(async () => {
      const nodes = scanNodes(this.client);
      const found = new Set<string>(); // SCAN may return a key twice
      for (const node of nodes) {
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
          for (const k of keys) found.add(k.slice(base.length));
          cursor = next;
        } while (cursor !== '0');
      }
      const keys = [...found].sort(compareUtf8);
      const now = this.now();
      const out: ScanEntry[] = [];
      // Entries may expire between SCAN and HMGET: read in chunks until `max` live ones.
      for (let i = 0; i < keys.length && out.length < max; i += max) {
        const chunk = keys.slice(i, i + max);
        const rows = await Promise.all(chunk.map((k) => this.client.hmget(this.vkey(k), 'v', 'e')));
        chunk.forEach((key, j) => {
          const [v, e] = rows[j]!;
          if (v === null || out.length >= max) return;
          if (e === null) out.push({ key, value: v });
          else if (Number(e) > now) out.push({ key, value: v, expiresAt: Number(e) });
        });
      }
      return out;
    });
  }

  async hit(key: string, windowMs: number): Promise<number> {
    this.assertOpen();
    checkKey(key);
    const w = checkWindow(windowMs);
    const now = this.now();
    const [cur, prev, start] = await this.run(() => this.client.pcHit(this.wkey(key), w, now));
    const remaining = w - (now - Number(start));
    return Number(cur) + Math.floor((Number(prev) * remaining) / w);
  }

  async *dump(): AsyncIterable<DumpEntry> {
    this.assertOpen();
    const nodes = scanNodes(this.client);
    const now = this.now();
    for (const kind of ['v', 'w'] as const) {
      const base = `${this.prefix}${kind}:`;
      for (const node of nodes) {
        let cursor = '0';
        do {
          const [next, keys] = await this.run(() => node.scan(cursor, 'MATCH', `${globEscape(base)}*`, 'COUNT', 1000));
          cursor = next;
          const rows = await this.run(() => Promise.all(keys.map((k) => this.client.hgetall(k))));
          for (let i = 0; i < keys.length; i++) {
            const key = keys[i]!.slice(base.length);
            const h = rows[i]!;
            if (kind === 'v' && h.v !== undefined) {
              if (h.e === undefined) yield { kind: 'value', key, value: h.v };
              else if (Number(h.e) > now) yield { kind: 'value', key, value: h.v, expiresAt: Number(h.e) };
            } else if (kind === 'w' && h.w !== undefined && Number(h.s) + 2 * Number(h.w) > now) {
              yield { kind: 'window', key, windowMs: Number(h.w), start: Number(h.s), cur: Number(h.c), prev: Number(h.p) };
            }
          }
        } while (cursor !== '0');
      }
    }
  }

  async restore(e: DumpEntry): Promise<void> {
    this.assertOpen();
    checkKey(e.key);
    const now = this.now();
    await this.run(async () => {
      if (e.kind === 'value') {
        checkValue(e.key, e.value);
        const k = this.vkey(e.key);
        const tx = this.client.multi().del(k);
        if (e.expiresAt === undefined) tx.hset(k, 'v', e.value);
        else tx.hset(k, 'v', e.value, 'e', String(e.expiresAt)).pexpire(k, Math.max(1, e.expiresAt - now));
        await tx.exec();
      } else {
        const k = this.wkey(e.key);
        await this.client.multi().del(k).hset(k, 'w', String(e.windowMs), 's', String(e.start), 'c', String(e.cur), 'p', String(e.prev))
          .pexpire(k, Math.max(1, e.start + 2 * e.windowMs - now)).exec();
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await closeRedisClient(this.client);
  }

  /** The Redis key of a value (for tools and tests: migrate, docs). */
  vkey(key: string): string {
    return `${this.prefix}v:${key}`;
  }

  wkey(key: string): string {
    return `${this.prefix}w:${key}`;
  }

  private async entry(key: string, now = this.now()): Promise<{ value: string; expiresAt?: number } | undefined> {
    this.assertOpen();
    checkKey(key);
    const [v, e] = await this.run(() => this.client.hmget(this.vkey(key), 'v', 'e'));
    if (v === null) return undefined;
    if (e === null) return { value: v };
    const at = Number(e);
    return at > now ? { value: v, expiresAt: at } : undefined;
  }

  /** Runs Redis commands; any failure of the server or the connection becomes StoreError UNAVAILABLE. */
  private run<T>(op: () => Promise<T>): Promise<T> {
    return redisCall('redis', 'state store', () => this.closed, op);
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('CLOSED', 'the state store is closed');
  }
}
