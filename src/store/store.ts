// The state store: state that outlives a session — counters with a TTL (brute-force failures),
// sliding-window rates (connections, messages), flags with a TTL (temporary blocks), Bayes
// tokens, reputation, per-user settings. One interface, two backends: the embedded one
// (`SqliteStore`, a single local file, the default) and Redis (to come, shared by several
// gateway nodes). The interface is async so that a networked backend fits without changes.
//
// Keys are plain strings; callers namespace them, e.g. `auth:fail:ip:192.0.2.7`,
// `auth:block:acct:alice@example.org`, `rate:conn:ip:192.0.2.7`. Counters (`incr`) and values
// (`set`) share one key space; sliding windows (`hit`) live apart, under their own keys.
// Every backend applies the same limits (below) so a call refused by one is refused by all.

export interface ScanEntry {
  readonly key: string;
  /** The value as text (a counter reads as its decimal number). */
  readonly value: string;
  /** Epoch milliseconds; absent when the key never expires. */
  readonly expiresAt?: number;
}

export interface StateStore {
  /**
   * Adds `by` (default 1, may be negative) to a counter that expires `ttlMs` after its FIRST
   * increment (fixed window: later increments do not extend it); returns the new value.
   * `ttlMs` 0 (or Infinity) = no expiry. An absent or expired key starts from 0.
   */
  incr(key: string, ttlMs: number, by?: number): Promise<number>;
  /** Current numeric value (0 when absent, expired, or not a number). */
  get(key: string): Promise<number>;
  /** Sets a flag/value with a TTL (e.g. a block until time T); ttlMs 0 (or Infinity) = no expiry. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** The value as text (a counter reads as its decimal number); undefined when absent or expired. */
  getValue(key: string): Promise<string | undefined>;
  /** Remaining TTL in ms (≥ 1); Infinity for a key without expiry; undefined when absent or expired. */
  ttl(key: string): Promise<number | undefined>;
  /** Removes the key (its value or counter, and its sliding window); true when something live was removed. */
  delete(key: string): Promise<boolean>;
  /**
   * Live keys (not sliding windows) starting with `prefix`, in key order, at most `limit`
   * (default DEFAULT_SCAN_LIMIT, at most MAX_SCAN_LIMIT). For `portcullis auth status`.
   */
  scan(prefix: string, limit?: number): Promise<ScanEntry[]>;
  /**
   * Sliding-window rate: records one event now and returns the number of events in the last
   * `windowMs`, counting this one. Backends may approximate (the embedded one does; see its
   * doc). Calling with a different `windowMs` for the same key restarts its window.
   */
  hit(key: string, windowMs: number): Promise<number>;
  /** Releases the backend; later calls reject with StoreError CLOSED. Idempotent. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Limits and errors shared by every backend

/** Longest key, in UTF-8 bytes (room for a prefix and a 254-byte address). */
export const MAX_KEY_BYTES = 512;
/** Largest value, in UTF-8 bytes (per-user settings as JSON fit easily). */
export const MAX_VALUE_BYTES = 64 * 1024;
export const DEFAULT_SCAN_LIMIT = 1000;
export const MAX_SCAN_LIMIT = 10_000;
/** Longest TTL or window accepted (about 10 years); longer means "no expiry" — say so with 0. */
export const MAX_TTL_MS = 10 * 365 * 24 * 3600 * 1000;

/** UNAVAILABLE: a networked backend could not answer (down, unreachable, too slow); the call may be retried. */
export type StoreErrorCode = 'INVALID_KEY' | 'INVALID_VALUE' | 'INVALID_TTL' | 'INVALID_ARGUMENT' | 'CLOSED' | 'SCHEMA' | 'UNAVAILABLE';

/** Refused input or an unusable store; `message` says what is wrong. */
export class StoreError extends Error {
  constructor(readonly code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function preview(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

/** Throws unless `key` is a non-empty string of at most MAX_KEY_BYTES, without NUL or lone surrogates. */
export function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new StoreError('INVALID_KEY', `store key must be a string, got ${typeof key}`);
  if (key.length === 0) throw new StoreError('INVALID_KEY', 'store key must not be empty');
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) {
    throw new StoreError('INVALID_KEY', `store key ${preview(key)} is ${bytes} bytes, more than the limit of ${MAX_KEY_BYTES}`);
  }
  if (key.includes('\0')) throw new StoreError('INVALID_KEY', `store key ${preview(key)} contains a NUL character`);
  if (LONE_SURROGATE.test(key)) throw new StoreError('INVALID_KEY', `store key ${preview(key)} is not valid Unicode (lone surrogate)`);
}

/** Throws unless `prefix` could begin a key (may be empty: every key). */
export function checkPrefix(prefix: unknown): asserts prefix is string {
  if (prefix === '') return;
  checkKey(prefix);
}

/** Throws unless `value` is a string of at most MAX_VALUE_BYTES, without lone surrogates. */
export function checkValue(key: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw new StoreError('INVALID_VALUE', `value for ${preview(key)} must be a string, got ${typeof value}`);
  if (value.length > MAX_VALUE_BYTES || Buffer.byteLength(value, 'utf8') > MAX_VALUE_BYTES) {
    throw new StoreError('INVALID_VALUE', `value for ${preview(key)} is larger than the limit of ${MAX_VALUE_BYTES} bytes`);
  }
  if (LONE_SURROGATE.test(value)) throw new StoreError('INVALID_VALUE', `value for ${preview(key)} is not valid Unicode (lone surrogate)`);
}

/**
 * Validates a TTL: a number ≥ 0 (0 or Infinity = no expiry). Returns whole milliseconds,
 * or 0 for "no expiry". A positive fraction below 1 ms rounds up to 1 ms.
 */
export function checkTtl(ttlMs: unknown, what = 'ttlMs'): number {
  if (typeof ttlMs !== 'number' || Number.isNaN(ttlMs) || ttlMs < 0) {
    throw new StoreError('INVALID_TTL', `${what} must be a number ≥ 0 (0 = no expiry), got ${String(ttlMs)}`);
  }
  if (ttlMs === Infinity) return 0;
  if (ttlMs > MAX_TTL_MS) throw new StoreError('INVALID_TTL', `${what} ${ttlMs} is longer than ${MAX_TTL_MS} ms; use 0 for no expiry`);
  return Math.ceil(ttlMs);
}

/** Validates a sliding window: a finite number of ms ≥ 1, at most MAX_TTL_MS. Returns whole ms. */
export function checkWindow(windowMs: unknown): number {
  if (typeof windowMs !== 'number' || !Number.isFinite(windowMs) || windowMs < 1 || windowMs > MAX_TTL_MS) {
    throw new StoreError('INVALID_TTL', `windowMs must be a number of milliseconds between 1 and ${MAX_TTL_MS}, got ${String(windowMs)}`);
  }
  return Math.floor(windowMs);
}

/** Validates an increment: a finite number. */
export function checkIncrement(key: string, by: unknown): number {
  if (typeof by !== 'number' || !Number.isFinite(by)) {
    throw new StoreError('INVALID_ARGUMENT', `increment for ${preview(key)} must be a finite number, got ${String(by)}`);
  }
  return by;
}

/** Validates a scan limit (default DEFAULT_SCAN_LIMIT): an integer 1..MAX_SCAN_LIMIT. */
export function checkScanLimit(limit: unknown): number {
  if (limit === undefined) return DEFAULT_SCAN_LIMIT;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_SCAN_LIMIT) {
    throw new StoreError('INVALID_ARGUMENT', `scan limit must be an integer between 1 and ${MAX_SCAN_LIMIT}, got ${String(limit)}`);
  }
  return limit;
}

/**
 * The number at the start of a text, as SQLite's CAST(text AS NUMERIC) reads it ("41" → 41,
 * "007" → 7, "3.5 kg" → 3.5, "blocked" → 0), so every backend's `get`/`incr` agree on text values.
 */
export function leadingNumber(text: string): number {
  const m = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(text);
  if (!m) return 0;
  const n = Number(m[0].trim());
  return Number.isFinite(n) ? n : 0;
}

/** Byte order of UTF-8 (SQLite's BINARY collation), which differs from JS's UTF-16 order above U+FFFF. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

// ---------------------------------------------------------------------------------------------
// Copying a whole store (`portcullis store migrate`): every live entry, windows included, in
// a form every backend can write back exactly.

export type DumpEntry =
  | { readonly kind: 'value'; readonly key: string; readonly value: string; readonly expiresAt?: number }
  | { readonly kind: 'window'; readonly key: string; readonly windowMs: number; readonly start: number; readonly cur: number; readonly prev: number };

export interface DumpableStore extends StateStore {
  /** Every live entry (values, counters, windows), in no particular order. */
  dump(): AsyncIterable<DumpEntry>;
  /** Writes one entry as dumped (overwriting): a value keeps its absolute expiry, a window its buckets. */
  restore(entry: DumpEntry): Promise<void>;
}
