// Sliding-window counts of what a sender sent, kept in the state store as two fixed buckets per
// window: the current one and the one before it, weighted by how much of it still lies inside the
// window ("sliding window counter", as Cloudflare and nginx-style limiters approximate it).
// Why not StateStore.hit(): it records one event per call, and a message adds its recipients
// at once (50 recipients would be 50 calls). Why buckets: `incr` is atomic in every backend, so
// several nodes sharing a Redis count together, and a restart loses nothing (the counts are
// in the store, not in memory). Buckets are aligned to the epoch (hours and UTC days).
import type { StateStore } from '../../store/store.js';

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export class SlidingWindows {
  constructor(private readonly store: StateStore, private readonly now: () => number = Date.now) {}

  private keys(key: string, windowMs: number): { cur: string; prev: string; weight: number } {
    const t = this.now();
    const bucket = Math.floor(t / windowMs);
    // The share of the previous bucket that still lies inside the window ending now.
    const weight = 1 - (t - bucket * windowMs) / windowMs;
    return { cur: `${key}:${bucket}`, prev: `${key}:${bucket - 1}`, weight };
  }

  /** Adds `n` events now; returns the estimated count in the last `windowMs`, these included. */
  async add(key: string, windowMs: number, n: number): Promise<number> {
    const { cur, prev, weight } = this.keys(key, windowMs);
    // A bucket is read as "previous" for one more window after its own: it lives two.
    const [now, before] = await Promise.all([n > 0 ? this.store.incr(cur, 2 * windowMs, n) : this.store.get(cur), this.store.get(prev)]);
    return estimate(now, before, weight);
  }

  /** Forgets the window (both buckets): the next count starts from 0. */
  async reset(key: string, windowMs: number): Promise<void> {
    const { cur, prev } = this.keys(key, windowMs);
    await Promise.all([this.store.delete(cur), this.store.delete(prev)]);
  }

  /** The estimated count in the last `windowMs`, without adding. */
  async count(key: string, windowMs: number): Promise<number> {
    return this.add(key, windowMs, 0);
  }
}

function estimate(current: number, previous: number, weight: number): number {
  // Rounded up: a limit of 200 is not passed by 199.6 estimated events, but 200.2 passes it.
  return Math.max(0, Math.ceil(current + previous * weight - 1e-9));
}

/** The UTC day number of an epoch time (days since 1970-01-01). */
export function dayOf(t: number): number {
  return Math.floor(t / DAY);
}
