// A networked store that may go away, with the node's memory behind it. While Redis answers,
// every call goes to Redis. When a call fails UNAVAILABLE (down, unreachable, too slow), the
// node says so ONCE, loudly (`store_degraded`, the portcullis_store_degraded gauge at 1), and
// from then on counts in its own memory (MemoryStore): brute-force counters, blocks and rate
// limits keep working on this node alone — weaker than shared, never "everything allowed".
// A probe pings Redis every `probeMs`; when it answers, the node says `store_recovered` and goes
// back to Redis. What was counted in memory during the outage stays in memory (it is not
// replayed into Redis); it is used again only if Redis fails again before it expires.
import client from 'prom-client';
import type { Logger } from '../log.js';
import { MemoryStore } from './memory-store.js';
import { StoreError, type ScanEntry, type StateStore } from './store.js';

/** What FallbackStore needs of the primary besides the StateStore calls. */
export interface Probed extends StateStore {
  ping(): Promise<boolean>;
}

export interface FallbackOptions {
  readonly logger: Logger;
  /** Where the two metrics are registered (the gateway's registry); none = not exported. */
  readonly registry?: client.Registry;
  /** How often Redis is probed during an outage. Default 1000 ms. */
  readonly probeMs?: number;
  /** Names the primary in log lines (no password). */
  readonly describe?: string;
  readonly fallback?: MemoryStore;
}

export class FallbackStore implements StateStore {
  private readonly memory: MemoryStore;
  private readonly log: Logger;
  private readonly degradedGauge: client.Gauge;
  private readonly fallbackTotal: client.Counter;
  private readonly probeMs: number;
  private readonly where: string;
  private degradedSince: number | undefined;
  private probe: NodeJS.Timeout | undefined;
  private probing = false;
  private closed = false;

  constructor(private readonly primary: Probed, options: FallbackOptions) {
    this.memory = options.fallback ?? new MemoryStore();
    this.log = options.logger;
    this.probeMs = options.probeMs ?? 1000;
    const registers = options.registry ? [options.registry] : [];
    this.degradedGauge = new client.Gauge({
      name: 'portcullis_store_degraded', help: '1 while the shared state store (Redis) is unreachable and this node counts in its own memory', registers,
    });
    this.fallbackTotal = new client.Counter({
      name: 'portcullis_store_fallback_total', help: 'State-store calls answered from this node\'s memory because Redis could not answer', registers,
    });
    this.degradedGauge.set(0);
    this.where = options.describe ?? 'redis';
  }

  /** True while calls are answered from memory. */
  get degraded(): boolean {
    return this.degradedSince !== undefined;
  }

  incr(key: string, ttlMs: number, by?: number): Promise<number> {
    return this.call((s) => s.incr(key, ttlMs, by));
  }

  get(key: string): Promise<number> {
    return this.call((s) => s.get(key));
  }

  set(key: string, value: string, ttlMs: number): Promise<void> {
    return this.call((s) => s.set(key, value, ttlMs));
  }

  getValue(key: string): Promise<string | undefined> {
    return this.call((s) => s.getValue(key));
  }

  ttl(key: string): Promise<number | undefined> {
    return this.call((s) => s.ttl(key));
  }

  delete(key: string): Promise<boolean> {
    return this.call((s) => s.delete(key));
  }

  scan(prefix: string, limit?: number): Promise<ScanEntry[]> {
    return this.call((s) => s.scan(prefix, limit));
  }

  hit(key: string, windowMs: number): Promise<number> {
    return this.call((s) => s.hit(key, windowMs));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.probe) clearInterval(this.probe);
    await Promise.all([this.primary.close(), this.memory.close()]);
  }

  /** Starts degraded (without a failed call) — the gateway, when Redis did not answer at start. */
  markDown(reason: string): void {
    this.degrade(reason);
  }

  private async call<T>(op: (s: StateStore) => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('CLOSED', 'the state store is closed');
    if (this.degradedSince === undefined) {
      try {
        return await op(this.primary);
      } catch (err) {
        // Refused input is the caller's fault and the same on every backend: not an outage.
        if (!(err instanceof StoreError) || err.code !== 'UNAVAILABLE') throw err;
        this.degrade(err.message);
      }
    }
    this.fallbackTotal.inc();
    return op(this.memory);
  }

  private degrade(reason: string): void {
    if (this.degradedSince !== undefined || this.closed) return;
    this.degradedSince = Date.now();
    this.degradedGauge.set(1);
    this.log.error({ event: 'store_degraded', store: this.where, reason },
      `state store ${this.where} unreachable (${reason}): counting brute-force failures and rate limits in this node's memory until it is back`);
    this.probe = setInterval(() => void this.tryRecover(), this.probeMs);
    this.probe.unref();
  }

  private async tryRecover(): Promise<void> {
    if (this.probing || this.closed || this.degradedSince === undefined) return;
    this.probing = true;
    try {
      if (!(await this.primary.ping())) return;
      const seconds = Math.round((Date.now() - this.degradedSince) / 100) / 10;
      clearInterval(this.probe);
      this.probe = undefined;
      this.degradedSince = undefined;
      this.degradedGauge.set(0);
      this.log.warn({ event: 'store_recovered', store: this.where, outage_s: seconds }, `state store ${this.where} is back after ${seconds} s: shared counters again`);
    } finally {
      this.probing = false;
    }
  }
}
