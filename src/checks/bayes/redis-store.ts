// The Bayes token store in Redis, shared by several gateway nodes: what one node (or `portcullis
// train` with the same configuration) learns, every node judges with. Three hashes under one
// hash tag (so that Redis Cluster keeps them on one node and the scripts may touch all three):
//   <prefix>{bayes}:tokens   field = token hash (decimal, as in the SQLite file) → "spam:ham:atime"
//   <prefix>{bayes}:learned  field = message signature (hex) → "class:at"   (1 spam, 0 ham; epoch s)
//   <prefix>{bayes}:totals   spam, ham, last_expire
// No TTLs: tokens live until expiry (`bayes.expire_days`), as in the file. A message's lookup is
// ONE HMGET; learning a message is one Lua script (the signature check, the counts and the totals
// atomically, so two nodes autolearning the same message count it once).
//
// Redis failing: calls reject with StoreError UNAVAILABLE (bounded by store.timeout); the Bayes
// check then gives no verdict for the message (no symbol), never a wrong one.
import type { Redis, Cluster } from 'ioredis';
import { closeRedisClient, createRedisClient, redisCall, waitReady, type RedisConnectOptions } from '../../store/redis-client.js';
import { TOUCH_AFTER_S, type BayesClass, type BayesDumpEntry, type DumpableBayesStore, type Hashes, type LearnOutcome, type StoredCount } from './store.js';

const PARSE = `
local function parse(v)
  if not v then return 0, 0, 0 end
  local s, h, a = string.match(v, '^(%d+):(%d+):(%d+)$')
  return tonumber(s) or 0, tonumber(h) or 0, tonumber(a) or 0
end
local function put(k, f, s, h, a)
  if s <= 0 and h <= 0 then redis.call('HDEL', k, f)
  else redis.call('HSET', k, f, string.format('%d:%d:%d', s, h, a)) end
end
local function totals(d_spam, d_ham)
  for f, d in pairs({spam = d_spam, ham = d_ham}) do
    if d ~= 0 then
      local n = tonumber(redis.call('HGET', KEYS[3], f) or '0') + d
      if n < 0 then n = 0 end
      redis.call('HSET', KEYS[3], f, n)
    end
  end
end`;

/** KEYS tokens, learned, totals; ARGV sig, class ('1' spam | '0' ham), now (s), hashes… */
const LEARN = `${PARSE}
local prev = redis.call('HGET', KEYS[2], ARGV[1])
local cls = ARGV[2]
local pc = prev and string.sub(prev, 1, 1)
if pc == cls then return 'already' end
local now = tonumber(ARGV[3])
for i = 4, #ARGV do
  local s, h, a = parse(redis.call('HGET', KEYS[1], ARGV[i]))
  if pc == '1' then s = math.max(0, s - 1) elseif pc == '0' then h = math.max(0, h - 1) end
  if cls == '1' then s = s + 1 else h = h + 1 end
  put(KEYS[1], ARGV[i], s, h, math.max(a, now))
end
local d_spam = (cls == '1' and 1 or 0) - (pc == '1' and 1 or 0)
local d_ham = (cls == '0' and 1 or 0) - (pc == '0' and 1 or 0)
totals(d_spam, d_ham)
redis.call('HSET', KEYS[2], ARGV[1], cls .. ':' .. ARGV[3])
if prev then return 'relearned' end
return 'learned'`;

/** KEYS tokens, learned, totals; ARGV sig, hashes… → 1 when forgotten, 0 when never learned. */
const FORGET = `${PARSE}
local prev = redis.call('HGET', KEYS[2], ARGV[1])
if not prev then return 0 end
local pc = string.sub(prev, 1, 1)
for i = 2, #ARGV do
  local s, h, a = parse(redis.call('HGET', KEYS[1], ARGV[i]))
  if pc == '1' then s = math.max(0, s - 1) else h = math.max(0, h - 1) end
  put(KEYS[1], ARGV[i], s, h, a)
end
if pc == '1' then totals(-1, 0) else totals(0, -1) end
redis.call('HDEL', KEYS[2], ARGV[1])
return 1`;

/** KEYS tokens; ARGV now, stale, hashes… Refreshes atime of tokens seen before `stale`. */
const TOUCH = `
local now, stale = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 3, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    local s, h, a = string.match(v, '^(%d+):(%d+):(%d+)$')
    if a and tonumber(a) < stale then redis.call('HSET', KEYS[1], ARGV[i], s .. ':' .. h .. ':' .. ARGV[1]) end
  end
end
return 0`;

/** KEYS hash; ARGV kind ('t' tokens | 'l' learned), cutoff, fields… Deletes those older than cutoff; returns how many. */
const PRUNE = `
local cutoff, n = tonumber(ARGV[2]), 0
for i = 3, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    local at
    if ARGV[1] == 't' then at = string.match(v, ':(%d+)$') else at = string.match(v, '^%d:(%d+)$') end
    if at and tonumber(at) < cutoff then redis.call('HDEL', KEYS[1], ARGV[i]); n = n + 1 end
  end
end
return n`;

interface Scripted {
  bayesLearn(tokens: string, learned: string, totals: string, ...args: string[]): Promise<LearnOutcome>;
  bayesForget(tokens: string, learned: string, totals: string, ...args: string[]): Promise<number>;
  bayesTouch(tokens: string, ...args: string[]): Promise<number>;
  bayesPrune(key: string, ...args: string[]): Promise<number>;
}

export interface RedisBayesOptions extends RedisConnectOptions {
  readonly prefix?: string;
  /** Clock in epoch ms (tests inject one). */
  readonly now?: () => number;
}

export class RedisBayesStore implements DumpableBayesStore {
  private readonly client: (Redis | Cluster) & Scripted;
  private readonly keys: { tokens: string; learned: string; totals: string };
  private readonly now: () => number;
  /** HSCAN cursors of the expiry run in progress (tokens, then signatures). */
  private expireCursor = { tokens: '0', learned: '0' };
  private closed = false;
  /** Until the first connection, a call waits for it (bounded): `train` right after start, a gateway's first messages. */
  private firstConnection: Promise<boolean> | undefined;

  /** Does not wait for the connection: calls fail UNAVAILABLE until it is up (Bayes then gives no verdict). */
  constructor(options: RedisBayesOptions) {
    const client = createRedisClient(options) as (Redis | Cluster) & Scripted;
    client.defineCommand('bayesLearn', { numberOfKeys: 3, lua: LEARN });
    client.defineCommand('bayesForget', { numberOfKeys: 3, lua: FORGET });
    client.defineCommand('bayesTouch', { numberOfKeys: 1, lua: TOUCH });
    client.defineCommand('bayesPrune', { numberOfKeys: 1, lua: PRUNE });
    this.client = client;
    const p = `${options.prefix ?? 'portcullis:'}{bayes}:`;
    this.keys = { tokens: `${p}tokens`, learned: `${p}learned`, totals: `${p}totals` };
    this.now = options.now ?? Date.now;
    this.firstConnection = waitReady(client, Math.max(1000, (options.timeoutMs ?? 500) * 4));
    void this.firstConnection.then(() => { this.firstConnection = undefined; });
  }

  private seconds(): number {
    return Math.floor(this.now() / 1000);
  }

  async lookup(hashes: readonly bigint[]): Promise<(StoredCount | undefined)[]> {
    if (!hashes.length) return [];
    const rows = await this.run(() => this.client.hmget(this.keys.tokens, ...hashes.map(String)));
    return rows.map((v) => {
      if (v === null) return undefined;
      const [spam, ham, atime] = v.split(':').map(Number);
      return { spam: spam!, ham: ham!, atime: atime! };
    });
  }

  async totals(): Promise<{ spam: number; ham: number; lastExpire: number }> {
    const [spam, ham, last] = await this.run(() => this.client.hmget(this.keys.totals, 'spam', 'ham', 'last_expire'));
    return { spam: Number(spam ?? 0), ham: Number(ham ?? 0), lastExpire: Number(last ?? 0) };
  }

  async tokenCount(): Promise<number> {
    return this.run(() => this.client.hlen(this.keys.tokens));
  }

  async learnedAs(sig: Buffer): Promise<BayesClass | undefined> {
    const v = await this.run(() => this.client.hget(this.keys.learned, sig.toString('hex')));
    return v === null ? undefined : v.startsWith('1') ? 'spam' : 'ham';
  }

  async learnMany(items: readonly { sig: Buffer; hashes: Hashes; cls: BayesClass }[]): Promise<LearnOutcome[]> {
    const now = String(this.seconds());
    const { tokens, learned, totals } = this.keys;
    // Lazy hashes are computed only for a message not already learned as this class (as the
    // file does). One script per message, all sent together (pipelined): each is atomic.
    const lazy = await Promise.all(items.map((it) => (typeof it.hashes === 'function' ? this.learnedAs(it.sig) : undefined)));
    return this.run(() => Promise.all(items.map((it, i) => {
      if (typeof it.hashes === 'function' && lazy[i] === it.cls) return 'already' as const;
      const list = typeof it.hashes === 'function' ? it.hashes() : it.hashes;
      return this.client.bayesLearn(tokens, learned, totals, it.sig.toString('hex'), it.cls === 'spam' ? '1' : '0', now, ...list.map(String));
    })));
  }

  async forget(sig: Buffer, hashes: readonly bigint[]): Promise<boolean> {
    const { tokens, learned, totals } = this.keys;
    return (await this.run(() => this.client.bayesForget(tokens, learned, totals, sig.toString('hex'), ...hashes.map(String)))) === 1;
  }

  staleOf(hashes: readonly bigint[], counts: readonly (StoredCount | undefined)[]): bigint[] {
    const before = this.seconds() - TOUCH_AFTER_S;
    return hashes.filter((_, i) => {
      const c = counts[i];
      return c !== undefined && (c.atime === undefined || c.atime < before);
    });
  }

  async touch(hashes: readonly bigint[]): Promise<void> {
    if (!hashes.length) return;
    const t = this.seconds();
    await this.run(() => this.client.bayesTouch(this.keys.tokens, String(t), String(t - TOUCH_AFTER_S), ...hashes.map(String)));
  }

  async expire(days: number, maxRows = 100_000): Promise<{ tokens: number; signatures: number; done: boolean }> {
    const cutoff = String(this.seconds() - Math.round(days * 86_400));
    const step = async (kind: 'tokens' | 'learned'): Promise<{ n: number; done: boolean }> => {
      let n = 0;
      let seen = 0;
      do {
        const [next, flat] = await this.run(() => this.client.hscan(this.keys[kind], this.expireCursor[kind], 'COUNT', 2000));
        this.expireCursor[kind] = next;
        const fields = flat.filter((_, i) => i % 2 === 0);
        seen += fields.length;
        if (fields.length) n += await this.run(() => this.client.bayesPrune(this.keys[kind], kind === 'tokens' ? 't' : 'l', cutoff, ...fields));
      } while (this.expireCursor[kind] !== '0' && seen < maxRows);
      return { n, done: this.expireCursor[kind] === '0' };
    };
    const t = await step('tokens');
    const l = await step('learned');
    const done = t.done && l.done;
    if (done) await this.run(() => this.client.hset(this.keys.totals, 'last_expire', String(this.seconds())));
    return { tokens: t.n, signatures: l.n, done };
  }

  async *dump(): AsyncIterable<BayesDumpEntry> {
    for (const kind of ['tokens', 'learned'] as const) {
      let cursor = '0';
      do {
        const [next, flat] = await this.run(() => this.client.hscan(this.keys[kind], cursor, 'COUNT', 2000));
        cursor = next;
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const [f, v] = [flat[i]!, flat[i + 1]!];
          if (kind === 'tokens') {
            const [spam, ham, atime] = v.split(':').map(Number);
            yield { kind: 'token', h: BigInt(f), spam: spam!, ham: ham!, atime: atime! };
          } else {
            yield { kind: 'learned', sig: Buffer.from(f, 'hex'), cls: v.startsWith('1') ? 'spam' : 'ham', at: Number(v.split(':')[1]) };
          }
        }
      } while (cursor !== '0');
    }
    yield { kind: 'totals', ...(await this.totals()) };
  }

  async restore(entries: readonly BayesDumpEntry[]): Promise<void> {
    const tokens: string[] = [];
    const learned: string[] = [];
    let totals: string[] | undefined;
    for (const e of entries) {
      if (e.kind === 'token') tokens.push(String(e.h), `${e.spam}:${e.ham}:${e.atime}`);
      else if (e.kind === 'learned') learned.push(e.sig.toString('hex'), `${e.cls === 'spam' ? 1 : 0}:${e.at}`);
      else totals = ['spam', String(e.spam), 'ham', String(e.ham), 'last_expire', String(e.lastExpire)];
    }
    await this.run(async () => {
      const ops: Promise<unknown>[] = [];
      if (tokens.length) ops.push(this.client.hset(this.keys.tokens, ...tokens));
      if (learned.length) ops.push(this.client.hset(this.keys.learned, ...learned));
      if (totals) ops.push(this.client.hset(this.keys.totals, ...totals));
      await Promise.all(ops);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await closeRedisClient(this.client);
  }

  private async run<T>(op: () => Promise<T>): Promise<T> {
    if (this.firstConnection && !this.closed) await this.firstConnection;
    return redisCall('redis (bayes)', 'Bayes store', () => this.closed, op);
  }
}
