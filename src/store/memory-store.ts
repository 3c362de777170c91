// A state store in this process's memory: what a node falls back to while its Redis is away
// (src/store/fallback-store.ts), so that counters and rate limits keep counting — per node —
// instead of letting everything through. Same semantics as SqliteStore (store-contract.ts);
// bounded in size, since an outage may last through a flood.
import {
  StoreError, checkIncrement, checkKey, checkPrefix, checkScanLimit, checkTtl, checkValue, checkWindow, compareUtf8, leadingNumber,
  type ScanEntry, type StateStore,
} from './store.js';

export interface MemoryStoreOptions {
  /** Clock in epoch ms (tests inject one). Default Date.now. */
  readonly now?: () => number;
  /** Most entries (values + windows) kept; past it, expired ones go, then the oldest. Default 200 000. */
  readonly maxEntries?: number;
}

interface Entry { value: string | number; expiresAt: number | null }
interface Window { windowMs: number; start: number; cur: number; prev: number }

export class MemoryStore implements StateStore {
  private readonly kv = new Map<string, Entry>();
  private readonly windows = new Map<string, Window>();
  private readonly now: () => number;
  private readonly maxEntries: number;
  private closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    const clock = options.now ?? Date.now;
    this.now = () => Math.floor(clock());
    this.maxEntries = options.maxEntries ?? 200_000;
  }

  async incr(key: string, ttlMs: number, by = 1): Promise<number> {
    this.assertOpen();
    checkKey(key);
    const ttl = checkTtl(ttlMs);
    const inc = checkIncrement(key, by);
    const now = this.now();
    const e = this.live(key, now);
    if (!e) {
      this.put(key, { value: inc, expiresAt: ttl === 0 ? null : now + ttl });
      return inc;
    }
    e.value = (typeof e.value === 'number' ? e.value : leadingNumber(e.value)) + inc;
    return e.value;
  }

  async get(key: string): Promise<number> {
    this.assertOpen();
    checkKey(key);
    const e = this.live(key, this.now());
    if (!e) return 0;
    return typeof e.value === 'number' ? e.value : leadingNumber(e.value);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.assertOpen();
    checkKey(key);
    checkValue(key, value);
    const ttl = checkTtl(ttlMs);
    this.put(key, { value, expiresAt: ttl === 0 ? null : this.now() + ttl });
  }

  async getValue(key: string): Promise<string | undefined> {
    this.assertOpen();
    checkKey(key);
    const e = this.live(key, this.now());
    return e === undefined ? undefined : String(e.value);
  }

  async ttl(key: string): Promise<number | undefined> {
    this.assertOpen();
    checkKey(key);
    const now = this.now();
    const e = this.live(key, now);
    if (!e) return undefined;
    return e.expiresAt === null ? Infinity : e.expiresAt - now;
  }

  async delete(key: string): Promise<boolean> {
    this.assertOpen();
    checkKey(key);
    const now = this.now();
    const kvLive = this.live(key, now) !== undefined;
    const w = this.windows.get(key);
    const winLive = w !== undefined && w.start + 2 * w.windowMs > now;
    this.kv.delete(key);
    this.windows.delete(key);
    return kvLive || winLive;
  }

  async scan(prefix: string, limit?: number): Promise<ScanEntry[]> {
    this.assertOpen();
    checkPrefix(prefix);
    const max = checkScanLimit(limit);
    const now = this.now();
    const keys = [...this.kv.keys()].filter((k) => k.startsWith(prefix) && this.live(k, now)).sort(compareUtf8).slice(0, max);
    return keys.map((key) => {
      const e = this.kv.get(key)!;
      return e.expiresAt === null ? { key, value: String(e.value) } : { key, value: String(e.value), expiresAt: e.expiresAt };
    });
  }

  async hit(key: string, windowMs: number): Promise<number> {
    this.assertOpen();
    checkKey(key);
    const w = checkWindow(windowMs);
    const now = this.now();
    const b = now - (((now % w) + w) % w);
    const old = this.windows.get(key);
    let win: Window;
    if (old && old.windowMs === w && old.start === b) win = { ...old, cur: old.cur + 1 };
    else if (old && old.windowMs === w && old.start === b - w) win = { windowMs: w, start: b, cur: 1, prev: old.cur };
    else win = { windowMs: w, start: b, cur: 1, prev: 0 };
    this.windows.delete(key); // re-inserted last: Map order is then oldest-touched first
    this.windows.set(key, win);
    this.bound();
    const remaining = w - (now - win.start);
    return win.cur + Math.floor((win.prev * remaining) / w);
  }

  /** Entries held now (values and windows, expired ones not yet dropped included). */
  get size(): number {
    return this.kv.size + this.windows.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.kv.clear();
    this.windows.clear();
  }

  private live(key: string, now: number): Entry | undefined {
    const e = this.kv.get(key);
    if (e && e.expiresAt !== null && e.expiresAt <= now) {
      this.kv.delete(key);
      return undefined;
    }
    return e;
  }

  private put(key: string, e: Entry): void {
    this.kv.delete(key);
    this.kv.set(key, e);
    this.bound();
  }

  /** Keeps the store within maxEntries: drops expired entries, then the least recently written. */
  private bound(): void {
    if (this.size <= this.maxEntries) return;
    const now = this.now();
    for (const [k, e] of this.kv) if (e.expiresAt !== null && e.expiresAt <= now) this.kv.delete(k);
    for (const [k, w] of this.windows) if (w.start + 2 * w.windowMs <= now) this.windows.delete(k);
    // Still full: a tenth goes at once, oldest first, so that a flood does not pay this per call.
    let excess = this.size - Math.floor(this.maxEntries * 0.9);
    for (const map of [this.windows, this.kv] as Map<string, unknown>[]) {
      for (const k of map.keys()) {
        if (excess <= 0) return;
        map.delete(k);
        excess--;
      }
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('CLOSED', 'the state store is closed');
  }
}
