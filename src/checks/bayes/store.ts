// The Bayes token store: one SQLite file (default <data_dir>/bayes.sqlite) shared by the gateway,
// which reads it for every message and writes when it autolearns, and `portcullis train`, another
// process writing at the same time. WAL mode lets readers go on while one writer writes; a
// writer that finds the lock taken waits up to the busy timeout (openSqliteFile).
//
// Tokens are keyed by a 64-bit hash (the first 8 bytes of SHA-1, as SpamAssassin does): fixed
// size rows and an INTEGER PRIMARY KEY (the rowid itself), whatever the token's length. Each
// row holds how many spam and ham messages had the token and when it was last seen (epoch
// seconds, refreshed by learning and, at most daily, by classifying). `learned` remembers each
// learned message by its signature (Message-ID + body digest) and class, so learning a message
// twice does nothing and learning it as the other class moves its counts (a user moving mail
// into or out of Junk).
//
// Every message costs at most one lookup statement (the hashes not in the in-memory cache go in
// as one JSON array; see CACHE_MAX) and its writes
// are one transaction.
import crypto from 'node:crypto';
import Database from 'better-sqlite3';
import { openSqliteFile } from '../../store/sqlite-file.js';

export class BayesStoreError extends Error {
  override readonly name = 'BayesStoreError';
}

export type BayesClass = 'spam' | 'ham';

export interface StoredCount {
  readonly spam: number;
  readonly ham: number;
  /** Epoch seconds the token was last learned or classified (for touch: only stale ones are written). */
  readonly atime?: number;
}

export interface BayesStoreOptions {
  /** How long a writer waits for another process's write lock. Default 5000 ms. */
  readonly busyTimeoutMs?: number;
  /** Clock in epoch ms (tests inject one). */
  readonly now?: () => number;
}

const MIGRATIONS: Record<number, string> = {
  1: `
    CREATE TABLE tokens (
      h     INTEGER PRIMARY KEY,   -- first 8 bytes of SHA-1(token), signed big-endian
      spam  INTEGER NOT NULL DEFAULT 0,
      ham   INTEGER NOT NULL DEFAULT 0,
      atime INTEGER NOT NULL       -- epoch seconds, last learned or classified
    );
    -- No index on atime: it would double the pages every learn writes; expiry walks the
    -- table in key order instead, once a day.
    CREATE TABLE learned (
      sig   BLOB PRIMARY KEY,      -- SHA-1 of Message-ID and body digest
      class INTEGER NOT NULL,      -- 1 spam, 0 ham
      at    INTEGER NOT NULL       -- epoch seconds
    ) WITHOUT ROWID;
    CREATE INDEX learned_at ON learned (at);
    CREATE TABLE totals (
      id    INTEGER PRIMARY KEY CHECK (id = 1),
      spam  INTEGER NOT NULL,
      ham   INTEGER NOT NULL,
      last_expire INTEGER NOT NULL -- epoch seconds of the last expiry run
    );
    INSERT INTO totals (id, spam, ham, last_expire) VALUES (1, 0, 0, 0);
  `,
};

/** Rows deleted per expiry statement: keeps each write lock short for the other process. */
const EXPIRE_BATCH = 2000;
/**
 * Token counts kept in memory between messages (positive and negative answers). SQLite answers a
 * token in ≈1 µs, and a message has hundreds to thousands of them: the lookup was most of Bayes'
 * cost. The cache is exact, not approximate: it is dropped when another connection commits
 * (PRAGMA data_version changes: `portcullis train`, another gateway process) and our own writes
 * drop or update the entries they change. Bounded: at this many entries it starts over.
 */
const CACHE_MAX = 400_000;
/** Classifying refreshes a token's last-seen time only when it is older than this. */
export const TOUCH_AFTER_S = 86_400;

/** A token's key: the first 8 bytes of its SHA-1 as a signed 64-bit integer (decimal). */
export function tokenHash(token: string): bigint {
  return (oneShotHash ? oneShotHash('sha1', token, 'buffer') : crypto.createHash('sha1').update(token).digest()).readBigInt64BE(0);
}

// crypto.hash (Node ≥ 20.12, not yet in @types/node 20) skips the Hash object: measured ~1.8×
// faster on short tokens, and a message has hundreds.
const oneShotHash = (crypto as unknown as { hash?: (alg: string, data: string, enc: 'buffer') => Buffer }).hash;

/** A message's token hashes, or a function computing them when they turn out to be needed. */
export type Hashes = readonly bigint[] | (() => readonly bigint[]);

export class BayesStore {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly lookupStmt: Database.Statement;
  private readonly addStmt: Database.Statement;
  private readonly subStmt: Database.Statement;
  private readonly pruneStmt: Database.Statement;
  private readonly touchStmt: Database.Statement;
  private readonly totalsStmt: Database.Statement;
  private readonly sigStmt: Database.Statement;
  private readonly pickFirst: Database.Statement;
  private readonly pickNext: Database.Statement;
  private readonly delTokens: Database.Statement;
  private readonly delSigs: Database.Statement;
  /** Where the expiry run in progress stopped (its next step starts after this key). */
  private expireAfter: bigint | undefined;
  private readonly versionStmt: Database.Statement;
  /** Counts by hash (null: not in the store), valid for `cacheVersion` (see CACHE_MAX). */
  private readonly cache = new Map<bigint, StoredCount | null>();
  private cacheVersion: unknown;
  /** totals() as last read, valid while data_version is `totalsVersion` and we wrote nothing. */
  private totalsCache: { spam: number; ham: number; lastExpire: number } | undefined;
  private totalsVersion: unknown;

  private constructor(db: Database.Database, now: () => number, private readonly busyTimeoutMs: number) {
    this.db = db;
    this.now = now;
    // The hashes travel as one JSON array: one statement per message, whatever its token count.
    // SQLite's JSON reads integers as exact 64-bit values.
    this.lookupStmt = db.prepare('SELECT h, spam, ham, atime FROM tokens WHERE h IN (SELECT value FROM json_each(?))').safeIntegers(true);
    this.versionStmt = db.prepare('PRAGMA data_version').pluck();
    this.addStmt = db.prepare(`
      INSERT INTO tokens (h, spam, ham, atime) SELECT value, @spam, @ham, @now FROM json_each(@hashes) WHERE true
      ON CONFLICT (h) DO UPDATE SET spam = spam + excluded.spam, ham = ham + excluded.ham, atime = max(atime, excluded.atime)`);
    this.subStmt = db.prepare(`
      UPDATE tokens SET spam = max(0, spam - @spam), ham = max(0, ham - @ham)
      WHERE h IN (SELECT value FROM json_each(@hashes))`);
    this.pruneStmt = db.prepare('DELETE FROM tokens WHERE h IN (SELECT value FROM json_each(?)) AND spam = 0 AND ham = 0');
    this.touchStmt = db.prepare('UPDATE tokens SET atime = @now WHERE h IN (SELECT value FROM json_each(@hashes)) AND atime < @stale');
    this.totalsStmt = db.prepare('SELECT spam, ham, last_expire AS lastExpire FROM totals WHERE id = 1');
    this.sigStmt = db.prepare('SELECT class FROM learned WHERE sig = ?');
    this.pickFirst = db.prepare('SELECT CAST(h AS TEXT) AS k FROM tokens WHERE atime < ? ORDER BY h LIMIT ?');
    this.pickNext = db.prepare('SELECT CAST(h AS TEXT) AS k FROM tokens WHERE h > ? AND atime < ? ORDER BY h LIMIT ?');
    this.delTokens = db.prepare('DELETE FROM tokens WHERE h IN (SELECT value FROM json_each(?))');
    this.delSigs = db.prepare('DELETE FROM learned WHERE sig IN (SELECT sig FROM learned WHERE at < ? LIMIT ?)');
  }

  static open(file: string, options: BayesStoreOptions = {}): BayesStore {
    const db = openSqliteFile(file, {
      busyTimeoutMs: options.busyTimeoutMs,
      migrations: MIGRATIONS,
      tooNew: (m) => new BayesStoreError(m),
    });
    return new BayesStore(db, options.now ?? Date.now, Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000)));
  }

  private seconds(): number {
    return Math.floor(this.now() / 1000);
  }

  /** Counts for each hash, in the order given (undefined: never seen). */
  lookup(hashes: readonly bigint[]): (StoredCount | undefined)[] {
    if (!hashes.length) return [];
    const version = this.versionStmt.get();
    if (version !== this.cacheVersion || this.cache.size > CACHE_MAX) {
      this.cache.clear();
      this.cacheVersion = version;
    }
    // One cache probe per token; only the misses (a minority once the cache is warm) go to SQLite
    // and are looked up again. Map operations on BigInt keys were most of this function's cost.
    const out: (StoredCount | undefined)[] = new Array(hashes.length);
    const misses: number[] = [];
    for (let i = 0; i < hashes.length; i++) {
      const c = this.cache.get(hashes[i]!);
      if (c === undefined) misses.push(i);
      else out[i] = c ?? undefined;
    }
    if (misses.length) {
      const missing = [...new Set(misses.map((i) => hashes[i]!))];
      for (const h of missing) this.cache.set(h, null);
      for (const r of this.lookupStmt.all(jsonArray(missing)) as { h: bigint; spam: bigint; ham: bigint; atime: bigint }[]) {
        this.cache.set(r.h, { spam: Number(r.spam), ham: Number(r.ham), atime: Number(r.atime) });
      }
      for (const i of misses) out[i] = this.cache.get(hashes[i]!) ?? undefined;
    }
    return out;
  }

  /** Our own writes change these tokens: their cached counts go (other connections' writes change data_version). */
  private forgetCached(hashes: readonly bigint[]): void {
    this.totalsCache = undefined;
    for (const h of hashes) this.cache.delete(h);
  }

  /**
   * The learned-message counts. Read once per message, so kept between messages: PRAGMA
   * data_version (another connection wrote) costs a fraction of the SELECT, and our own writes
   * drop the copy (see forgetCached and expire).
   */
  totals(): { spam: number; ham: number; lastExpire: number } {
    const version = this.versionStmt.get();
    if (!this.totalsCache || version !== this.totalsVersion) {
      this.totalsCache = { ...(this.totalsStmt.get() as { spam: number; ham: number; lastExpire: number }) };
      this.totalsVersion = version;
    }
    return { ...this.totalsCache };
  }

  tokenCount(): number {
    // max(rowid) would be faster but wrong after deletions; the count walks the rowid b-tree.
    return (this.db.prepare('SELECT count(*) AS n FROM tokens').get() as { n: number }).n;
  }

  /** The class a message signature was learned as, if any. */
  learnedAs(sig: Buffer): BayesClass | undefined {
    const r = this.sigStmt.get(sig) as { class: number } | undefined;
    return r === undefined ? undefined : r.class ? 'spam' : 'ham';
  }

  /**
   * Learns a message's tokens as `cls` in one transaction: 'already' when the signature is
   * known as that class, 'relearned' when it was the other class (its counts move), else
   * 'learned'. The check and the write share the transaction, so two processes learning the
   * same message cannot both count it.
   */
  learn(sig: Buffer, hashes: Hashes, cls: BayesClass): 'learned' | 'relearned' | 'already' {
    return this.learnMany([{ sig, hashes, cls }])[0]!;
  }

  /**
   * Learns several messages in one transaction (each still counted once, as in learn). Token
   * keys are hashes, so each message's rows are spread over the whole table: committing per
   * message rewrites most pages each time, a batch of 100 writes each page once (≈ 4× faster
   * in measurements). For bulk training; keep batches small, the other process waits for them.
   */
  learnMany(items: readonly { sig: Buffer; hashes: Hashes; cls: BayesClass }[]): ('learned' | 'relearned' | 'already')[] {
    const one = (sig: Buffer, hashes: Hashes, cls: BayesClass): 'learned' | 'relearned' | 'already' => {
      const prev = this.learnedAs(sig);
      if (prev === cls) return 'already';
      const list = typeof hashes === 'function' ? hashes() : hashes;
      this.forgetCached(list);
      const json = jsonArray(list);
      const t = this.seconds();
      if (prev) this.unlearnTokens(json, prev);
      this.addStmt.run({ hashes: json, spam: cls === 'spam' ? 1 : 0, ham: cls === 'ham' ? 1 : 0, now: t });
      const d = (c: BayesClass) => (cls === c ? 1 : 0) - (prev === c ? 1 : 0);
      this.db.prepare('UPDATE totals SET spam = max(0, spam + ?), ham = max(0, ham + ?) WHERE id = 1').run(d('spam'), d('ham'));
      this.db.prepare('INSERT INTO learned (sig, class, at) VALUES (?, ?, ?) ON CONFLICT (sig) DO UPDATE SET class = excluded.class, at = excluded.at')
        .run(sig, cls === 'spam' ? 1 : 0, t);
      return prev ? 'relearned' : 'learned';
    };
    const run = this.db.transaction(() => items.map((it) => one(it.sig, it.hashes, it.cls)));
    // IMMEDIATE: take the write lock before reading the signature, or two processes could both
    // read "not learned" and then one fail with SQLITE_BUSY on upgrading its lock.
    return run.immediate();
  }

  /** Removes a learned message's counts; false when it was never learned. */
  forget(sig: Buffer, hashes: readonly bigint[]): boolean {
    const run = this.db.transaction((): boolean => {
      const prev = this.learnedAs(sig);
      if (!prev) return false;
      this.forgetCached(hashes);
      this.unlearnTokens(jsonArray(hashes), prev);
      this.db.prepare(`UPDATE totals SET ${prev} = max(0, ${prev} - 1) WHERE id = 1`).run();
      this.db.prepare('DELETE FROM learned WHERE sig = ?').run(sig);
      return true;
    });
    return run.immediate();
  }

  private unlearnTokens(json: string, cls: BayesClass): void {
    this.subStmt.run({ hashes: json, spam: cls === 'spam' ? 1 : 0, ham: cls === 'ham' ? 1 : 0 });
    this.pruneStmt.run(json);
  }

  /**
   * The hashes among `hashes` whose lookup (`counts`, in the same order) shows them seen longer
   * ago than a day: the only ones a classification needs to touch. Most messages have none, and
   * then no write happens at all (measured: the UPDATE over every token of a message cost as
   * much as the lookup itself).
   */
  staleOf(hashes: readonly bigint[], counts: readonly (StoredCount | undefined)[]): bigint[] {
    const before = this.seconds() - TOUCH_AFTER_S;
    return hashes.filter((_, i) => {
      const c = counts[i];
      return c !== undefined && (c.atime === undefined || c.atime < before);
    });
  }

  /**
   * Marks tokens used in a classification as seen, so expiry keeps what still matters. Best
   * effort: at most once a day per token, and a busy store (a long `train` run) skips it
   * rather than delaying the message.
   */
  touch(hashes: readonly bigint[]): void {
    if (!hashes.length) return;
    const t = this.seconds();
    // No waiting for the lock here: busy_timeout blocks the event loop, and a message must not
    // wait for a `train` batch just to refresh last-seen times.
    this.db.pragma('busy_timeout = 0');
    try {
      this.touchStmt.run({ hashes: jsonArray(hashes), now: t, stale: t - TOUCH_AFTER_S });
      for (const h of hashes) {
        const c = this.cache.get(h);
        if (c) this.cache.set(h, { ...c, atime: t });
      }
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
    } finally {
      this.db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
    }
  }

  /**
   * One step of expiry: deletes up to `maxRows` tokens (and learned-message signatures) not
   * seen for `days`, walking the token table in key order from where the previous step of this
   * run stopped (the walk is O(table) in all; each batch of EXPIRE_BATCH is its own short
   * statement). `done` once the walk reached the end: the run's time is then recorded.
   */
  expire(days: number, maxRows = 100_000): { tokens: number; signatures: number; done: boolean } {
    this.cache.clear();
    this.totalsCache = undefined;
    const cutoff = this.seconds() - Math.round(days * 86_400);
    let tokens = 0;
    let signatures = 0;
    let done = false;
    while (tokens < maxRows) {
      const limit = Math.min(EXPIRE_BATCH, maxRows - tokens);
      const rows = (this.expireAfter === undefined ? this.pickFirst.all(cutoff, limit) : this.pickNext.all(this.expireAfter, cutoff, limit)) as { k: string }[];
      if (rows.length) {
        tokens += this.delTokens.run(`[${rows.map((r) => r.k).join(',')}]`).changes;
        this.expireAfter = BigInt(rows[rows.length - 1]!.k);
      }
      if (rows.length < limit) {
        done = true;
        break;
      }
    }
    while (signatures < maxRows) {
      const n = this.delSigs.run(cutoff, Math.min(EXPIRE_BATCH, maxRows - signatures)).changes;
      signatures += n;
      if (n < EXPIRE_BATCH) break;
    }
    if (done) {
      this.expireAfter = undefined;
      this.db.prepare('UPDATE totals SET last_expire = ? WHERE id = 1').run(this.seconds());
    }
    return { tokens, signatures, done };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function jsonArray(hashes: readonly bigint[]): string {
  return `[${hashes.join(',')}]`;
}

// ---------------------------------------------------------------------------------------------
// The backend interface the classifier and `portcullis train` use. BayesStore above (SQLite,
// synchronous) is one implementation through SqliteBayesTokenStore; RedisBayesStore
// (redis-store.ts) is the other, shared by several gateway nodes. Async, for the network.

export type LearnOutcome = 'learned' | 'relearned' | 'already';

export interface BayesTokenStore {
  /** Counts for each hash, in the order given (undefined: never seen). ONE round trip. */
  lookup(hashes: readonly bigint[]): Promise<(StoredCount | undefined)[]>;
  totals(): Promise<{ spam: number; ham: number; lastExpire: number }>;
  tokenCount(): Promise<number>;
  /** The class a message signature was learned as, if any. */
  learnedAs(sig: Buffer): Promise<BayesClass | undefined>;
  /** Learns messages, each counted once by its signature (see BayesStore.learnMany). */
  learnMany(items: readonly { sig: Buffer; hashes: Hashes; cls: BayesClass }[]): Promise<LearnOutcome[]>;
  /** Removes a learned message's counts; false when it was never learned. */
  forget(sig: Buffer, hashes: readonly bigint[]): Promise<boolean>;
  /** The hashes whose counts show them unseen for a day (pure: no I/O). */
  staleOf(hashes: readonly bigint[], counts: readonly (StoredCount | undefined)[]): bigint[];
  /** Marks tokens used in a classification as seen; best effort. */
  touch(hashes: readonly bigint[]): Promise<void>;
  /** One bounded step of expiry (see BayesStore.expire). */
  expire(days: number, maxRows?: number): Promise<{ tokens: number; signatures: number; done: boolean }>;
  close(): Promise<void>;
}

/** Everything a Bayes store holds, one entry at a time (`portcullis store migrate`). */
export type BayesDumpEntry =
  | { readonly kind: 'token'; readonly h: bigint; readonly spam: number; readonly ham: number; readonly atime: number }
  | { readonly kind: 'learned'; readonly sig: Buffer; readonly cls: BayesClass; readonly at: number }
  | { readonly kind: 'totals'; readonly spam: number; readonly ham: number; readonly lastExpire: number };

export interface DumpableBayesStore extends BayesTokenStore {
  dump(): AsyncIterable<BayesDumpEntry>;
  /** Writes entries as dumped, overwriting (so a second copy changes nothing). */
  restore(entries: readonly BayesDumpEntry[]): Promise<void>;
}

/** The SQLite file behind the BayesTokenStore interface (BayesStore itself unchanged). */
export class SqliteBayesTokenStore implements DumpableBayesStore {
  constructor(readonly file: BayesStore, private readonly path?: string) {}

  static open(file: string, options: BayesStoreOptions = {}): SqliteBayesTokenStore {
    return new SqliteBayesTokenStore(BayesStore.open(file, options), file);
  }

  /** A second connection for bulk copies (BayesStore keeps its own statements to itself). */
  private raw(readonly: boolean): Database.Database {
    if (!this.path) throw new BayesStoreError('this Bayes store was not opened from a file');
    const db = new Database(this.path, { readonly });
    db.pragma('busy_timeout = 5000');
    return db;
  }

  async *dump(): AsyncIterable<BayesDumpEntry> {
    const db = this.raw(true);
    try {
      for (const r of db.prepare('SELECT h, spam, ham, atime FROM tokens').safeIntegers(true).iterate() as Iterable<{ h: bigint; spam: bigint; ham: bigint; atime: bigint }>) {
        yield { kind: 'token', h: r.h, spam: Number(r.spam), ham: Number(r.ham), atime: Number(r.atime) };
      }
      for (const r of db.prepare('SELECT sig, class, at FROM learned').iterate() as Iterable<{ sig: Buffer; class: number; at: number }>) {
        yield { kind: 'learned', sig: r.sig, cls: r.class ? 'spam' : 'ham', at: r.at };
      }
      const t = db.prepare('SELECT spam, ham, last_expire AS lastExpire FROM totals WHERE id = 1').get() as { spam: number; ham: number; lastExpire: number };
      yield { kind: 'totals', ...t };
    } finally {
      db.close();
    }
  }

  async restore(entries: readonly BayesDumpEntry[]): Promise<void> {
    const db = this.raw(false);
    try {
      const tok = db.prepare('INSERT INTO tokens (h, spam, ham, atime) VALUES (?, ?, ?, ?) ON CONFLICT (h) DO UPDATE SET spam = excluded.spam, ham = excluded.ham, atime = excluded.atime');
      const sig = db.prepare('INSERT INTO learned (sig, class, at) VALUES (?, ?, ?) ON CONFLICT (sig) DO UPDATE SET class = excluded.class, at = excluded.at');
      const tot = db.prepare('UPDATE totals SET spam = ?, ham = ?, last_expire = ? WHERE id = 1');
      db.transaction(() => {
        for (const e of entries) {
          if (e.kind === 'token') tok.run(e.h, e.spam, e.ham, e.atime);
          else if (e.kind === 'learned') sig.run(e.sig, e.cls === 'spam' ? 1 : 0, e.at);
          else tot.run(e.spam, e.ham, e.lastExpire);
        }
      }).immediate();
    } finally {
      db.close();
    }
  }

  async lookup(hashes: readonly bigint[]) {
    return this.file.lookup(hashes);
  }

  async totals() {
    return this.file.totals();
  }

  async tokenCount() {
    return this.file.tokenCount();
  }

  async learnedAs(sig: Buffer) {
    return this.file.learnedAs(sig);
  }

  async learnMany(items: readonly { sig: Buffer; hashes: Hashes; cls: BayesClass }[]) {
    return this.file.learnMany(items);
  }

  async forget(sig: Buffer, hashes: readonly bigint[]) {
    return this.file.forget(sig, hashes);
  }

  staleOf(hashes: readonly bigint[], counts: readonly (StoredCount | undefined)[]) {
    return this.file.staleOf(hashes, counts);
  }

  async touch(hashes: readonly bigint[]) {
    this.file.touch(hashes);
  }

  async expire(days: number, maxRows?: number) {
    return this.file.expire(days, maxRows);
  }

  async close() {
    this.file.close();
  }
}
