// The embedded state store: one SQLite file, `<data_dir>/state.db`, shared by the gateway and
// the CLI (WAL mode, busy timeout). Calls run synchronously inside (better-sqlite3, prepared
// statements, one autocommit statement per call, so each call is atomic across processes) and
// return promises, to match the interface a Redis backend will implement.
//
// Expiry: every row carries `expires_at` (epoch ms, NULL = never). Reads ignore expired rows;
// writes overwrite them; `purge()` deletes them in batches — from an unref'ed timer (every
// `purgeIntervalMs`) and opportunistically, one batch every PURGE_EVERY_WRITES writes.
//
// Sliding windows (`hit`) are APPROXIMATE, with two fixed buckets per key (one row per key,
// whatever the rate): the window is cut into aligned buckets of `windowMs`; the count is the
// events of the current bucket plus those of the previous bucket weighted by the part of it
// still inside the sliding window — `cur + floor(prev × (windowMs − elapsed) / windowMs)`.
// Exact when events are spread evenly; a burst just before a bucket boundary is counted for
// a little less (or more) than `windowMs`. The same scheme maps onto two Redis INCRs.
import path from 'node:path';
import type Database from 'better-sqlite3';
import { openSqliteFile } from './sqlite-file.js';
import {
  StoreError, checkIncrement, checkKey, checkPrefix, checkScanLimit, checkTtl, checkValue, checkWindow,
  type DumpEntry, type DumpableStore, type ScanEntry,
} from './store.js';

export interface SqliteStoreOptions {
  /** Clock in epoch ms (tests inject one). Default Date.now. */
  readonly now?: () => number;
  /** How long a writer waits for another process's write lock. Default 5000 ms. */
  readonly busyTimeoutMs?: number;
  /** Period of the background purge of expired rows; 0 disables the timer. Default 60 000 ms. */
  readonly purgeIntervalMs?: number;
}

/** The state file inside the data directory. */
export function stateFile(dataDir: string): string {
  return path.join(dataDir, 'state.db');
}

const MIGRATIONS: Record<number, string> = {
  1: `
    CREATE TABLE kv (
      key        TEXT PRIMARY KEY,
      value      NOT NULL,           -- no type, so no affinity: TEXT from set(), INTEGER/REAL from incr()
      expires_at INTEGER             -- epoch ms; NULL = never
    ) WITHOUT ROWID;
    CREATE INDEX kv_expires ON kv (expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE windows (
      key        TEXT PRIMARY KEY,
      window_ms  INTEGER NOT NULL,
      start      INTEGER NOT NULL,   -- start of the current bucket, a multiple of window_ms
      cur        INTEGER NOT NULL,   -- events in the current bucket
      prev       INTEGER NOT NULL,   -- events in the bucket before it
      expires_at INTEGER NOT NULL    -- start + 2 × window_ms: past it, both buckets are stale
    ) WITHOUT ROWID;
    CREATE INDEX windows_expires ON windows (expires_at);
  `,
};

/** Rows deleted per purge statement (keeps each write lock short). */
const PURGE_BATCH = 1000;
/** One opportunistic purge batch every this many writes. */
const PURGE_EVERY_WRITES = 1000;
/** Upper bound for a prefix range: bytes F4 90 80 80 sort after every valid UTF-8 sequence. */
const PREFIX_END = "CAST(x'F4908080' AS TEXT)";

const LIVE = '(expires_at IS NULL OR expires_at > @now)';

type Num = number;
interface Statements {
  incr: Database.Statement<{ key: string; by: Num | bigint; exp: Num | null; now: Num }, { value: Num }>;
  get: Database.Statement<{ key: string; now: Num }, { n: Num }>;
  getValue: Database.Statement<{ key: string; now: Num }, { v: string }>;
  set: Database.Statement<{ key: string; value: string; exp: Num | null }>;
  ttl: Database.Statement<{ key: string; now: Num }, { expires_at: Num | null }>;
  deleteKv: Database.Statement<[string], { expires_at: Num | null }>;
  deleteWindow: Database.Statement<[string], { expires_at: Num }>;
  scan: Database.Statement<{ prefix: string; now: Num; limit: Num }, { key: string; v: string; expires_at: Num | null }>;
  hit: Database.Statement<{ key: string; w: Num; b: Num }, { cur: Num; prev: Num; start: Num }>;
  purgeKv: Database.Statement<{ now: Num; batch: Num }>;
  purgeWindows: Database.Statement<{ now: Num; batch: Num }>;
}

export class SqliteStore implements DumpableStore {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly q: Statements;
  private readonly timer: NodeJS.Timeout | undefined;
  private writes = 0;
  private closed = false;

  private constructor(db: Database.Database, options: SqliteStoreOptions) {
    this.db = db;
    const clock = options.now ?? Date.now;
    this.now = () => Math.floor(clock());
    this.q = {
      // Fixed window: an expired row restarts from `by` with a fresh expiry; a live one keeps its
      // expiry. In an UPSERT every SET expression sees the old row, so the two CASEs agree.
      incr: db.prepare(`
        INSERT INTO kv (key, value, expires_at) VALUES (@key, @by, @exp)
        ON CONFLICT (key) DO UPDATE SET
          value = CASE WHEN kv.expires_at IS NOT NULL AND kv.expires_at <= @now THEN excluded.value
                       WHEN typeof(kv.value) IN ('integer', 'real') THEN kv.value + excluded.value
                       ELSE CAST(kv.value AS NUMERIC) + excluded.value END,
          expires_at = CASE WHEN kv.expires_at IS NOT NULL AND kv.expires_at <= @now THEN excluded.expires_at
                            ELSE kv.expires_at END
        RETURNING value`),
      get: db.prepare(`
        SELECT CASE WHEN typeof(value) IN ('integer', 'real') THEN value ELSE CAST(value AS NUMERIC) END AS n
        FROM kv WHERE key = @key AND ${LIVE}`),
      getValue: db.prepare(`SELECT CAST(value AS TEXT) AS v FROM kv WHERE key = @key AND ${LIVE}`),
      set: db.prepare(`
        INSERT INTO kv (key, value, expires_at) VALUES (@key, @value, @exp)
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`),
      ttl: db.prepare(`SELECT expires_at FROM kv WHERE key = @key AND ${LIVE}`),
      deleteKv: db.prepare('DELETE FROM kv WHERE key = ? RETURNING expires_at'),
      deleteWindow: db.prepare('DELETE FROM windows WHERE key = ? RETURNING expires_at'),
      scan: db.prepare(`
        SELECT key, CAST(value AS TEXT) AS v, expires_at FROM kv
        WHERE key >= @prefix AND key < @prefix || ${PREFIX_END} AND ${LIVE}
        ORDER BY key LIMIT @limit`),
      // Two-bucket sliding window; @b is the start of the current aligned bucket.
      hit: db.prepare(`
        INSERT INTO windows (key, window_ms, start, cur, prev, expires_at) VALUES (@key, @w, @b, 1, 0, @b + 2 * @w)
        ON CONFLICT (key) DO UPDATE SET
          cur = CASE WHEN windows.window_ms = @w AND windows.start = @b THEN windows.cur + 1 ELSE 1 END,
          prev = CASE WHEN windows.window_ms = @w AND windows.start = @b THEN windows.prev
                      WHEN windows.window_ms = @w AND windows.start = @b - @w THEN windows.cur
                      ELSE 0 END,
          start = @b,
          window_ms = @w,
          expires_at = @b + 2 * @w
        RETURNING cur, prev, start`),
      purgeKv: db.prepare(`
        DELETE FROM kv WHERE key IN
          (SELECT key FROM kv WHERE expires_at IS NOT NULL AND expires_at <= @now LIMIT @batch)`),
      purgeWindows: db.prepare(`
        DELETE FROM windows WHERE key IN (SELECT key FROM windows WHERE expires_at <= @now LIMIT @batch)`),
    };
    const every = options.purgeIntervalMs ?? 60_000;
    if (every > 0) {
      this.timer = setInterval(() => {
        try {
          this.purge();
        } catch {
          // Busy or closed: the next tick (or the next opportunistic batch) tries again.
        }
      }, every);
      this.timer.unref();
    }
  }

  /**
   * Opens (creating if needed) the state file, e.g. `stateFile(config.data_dir)`. The file is
   * created mode 0600 (it names accounts and addresses). Schema migrations run here.
   */
  static open(file: string, options: SqliteStoreOptions = {}): SqliteStore {
    const db = openSqliteFile(file, {
      busyTimeoutMs: options.busyTimeoutMs,
      migrations: MIGRATIONS,
      tooNew: (message) => new StoreError('SCHEMA', message),
    });
    return new SqliteStore(db, options);
  }

  async incr(key: string, ttlMs: number, by = 1): Promise<number> {
    this.assertOpen();
    checkKey(key);
    const ttl = checkTtl(ttlMs);
    const inc = checkIncrement(key, by);
    const now = this.now();
    // better-sqlite3 binds every JS number as REAL; a whole increment goes in as an INTEGER so
    // that counters stay integers (and read back as "3", not "3.0").
    const by64 = Number.isSafeInteger(inc) ? BigInt(inc) : inc;
    const row = this.q.incr.get({ key, by: by64, exp: ttl === 0 ? null : now + ttl, now });
    this.wrote();
    return Number(row?.value ?? 0);
  }

  async get(key: string): Promise<number> {
    this.assertOpen();
    checkKey(key);
    const n = this.q.get.get({ key, now: this.now() })?.n;
    return typeof n === 'number' && Number.isFinite(n) ? n : 0;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.assertOpen();
    checkKey(key);
    checkValue(key, value);
    const ttl = checkTtl(ttlMs);
    this.q.set.run({ key, value, exp: ttl === 0 ? null : this.now() + ttl });
    this.wrote();
  }

  async getValue(key: string): Promise<string | undefined> {
    this.assertOpen();
    checkKey(key);
    return this.q.getValue.get({ key, now: this.now() })?.v;
  }

  async ttl(key: string): Promise<number | undefined> {
    this.assertOpen();
    checkKey(key);
    const now = this.now();
    const row = this.q.ttl.get({ key, now });
    if (!row) return undefined;
    return row.expires_at === null ? Infinity : row.expires_at - now;
  }

  async delete(key: string): Promise<boolean> {
    this.assertOpen();
    checkKey(key);
    const now = this.now();
    return this.db.transaction(() => {
      const kv = this.q.deleteKv.get(key);
      const win = this.q.deleteWindow.get(key);
      const kvLive = kv !== undefined && (kv.expires_at === null || kv.expires_at > now);
      const winLive = win !== undefined && win.expires_at > now;
      return kvLive || winLive;
    }).immediate();
  }

  async scan(prefix: string, limit?: number): Promise<ScanEntry[]> {
    this.assertOpen();
    checkPrefix(prefix);
    const max = checkScanLimit(limit);
    const rows = this.q.scan.all({ prefix, now: this.now(), limit: max });
    return rows
      .filter((r) => r.key.startsWith(prefix)) // belt and braces over the byte-range bound
      .map((r) => (r.expires_at === null ? { key: r.key, value: r.v } : { key: r.key, value: r.v, expiresAt: r.expires_at }));
  }

  async hit(key: string, windowMs: number): Promise<number> {
    this.assertOpen();
    checkKey(key);
    const w = checkWindow(windowMs);
    const now = this.now();
    const b = now - (((now % w) + w) % w);
    const row = this.q.hit.get({ key, w, b });
    this.wrote();
    if (!row) return 1;
    const remaining = w - (now - row.start); // part of the previous bucket still inside the window
    return row.cur + Math.floor((row.prev * remaining) / w);
  }

  async *dump(): AsyncIterable<DumpEntry> {
    this.assertOpen();
    const now = this.now();
    const kv = this.db.prepare(`SELECT key, CAST(value AS TEXT) AS v, expires_at FROM kv WHERE ${LIVE}`);
    for (const r of kv.iterate({ now }) as Iterable<{ key: string; v: string; expires_at: number | null }>) {
      yield r.expires_at === null ? { kind: 'value', key: r.key, value: r.v } : { kind: 'value', key: r.key, value: r.v, expiresAt: r.expires_at };
    }
    const win = this.db.prepare('SELECT key, window_ms, start, cur, prev FROM windows WHERE expires_at > ?');
    for (const r of win.iterate(now) as Iterable<{ key: string; window_ms: number; start: number; cur: number; prev: number }>) {
      yield { kind: 'window', key: r.key, windowMs: r.window_ms, start: r.start, cur: r.cur, prev: r.prev };
    }
  }

  async restore(e: DumpEntry): Promise<void> {
    this.assertOpen();
    checkKey(e.key);
    if (e.kind === 'value') {
      checkValue(e.key, e.value);
      this.q.set.run({ key: e.key, value: e.value, exp: e.expiresAt ?? null });
    } else {
      this.db.prepare(`INSERT INTO windows (key, window_ms, start, cur, prev, expires_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (key) DO UPDATE SET window_ms = excluded.window_ms, start = excluded.start, cur = excluded.cur, prev = excluded.prev, expires_at = excluded.expires_at`)
        .run(e.key, e.windowMs, e.start, e.cur, e.prev, e.start + 2 * e.windowMs);
    }
    this.wrote();
  }

  /** Deletes expired rows (all of them, in batches); returns how many. Runs on a timer too. */
  purge(): number {
    this.assertOpen();
    const now = this.now();
    let total = 0;
    for (const stmt of [this.q.purgeKv, this.q.purgeWindows]) {
      for (;;) {
        const n = stmt.run({ now, batch: PURGE_BATCH }).changes;
        total += n;
        if (n < PURGE_BATCH) break;
      }
    }
    return total;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.db.open) this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('CLOSED', 'the state store is closed');
  }

  /** Counts a write; every PURGE_EVERY_WRITES, deletes one batch of expired rows. */
  private wrote(): void {
    if (++this.writes % PURGE_EVERY_WRITES !== 0) return;
    const now = this.now();
    try {
      this.q.purgeKv.run({ now, batch: PURGE_BATCH });
      this.q.purgeWindows.run({ now, batch: PURGE_BATCH });
    } catch {
      // Another process holds the lock longer than the busy timeout: the timer will catch up.
    }
  }
}
