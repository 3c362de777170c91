import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import client from 'prom-client';
import { pino } from 'pino';
import { FallbackStore, type Probed } from './fallback-store.js';
import { MemoryStore } from './memory-store.js';
import { StoreError } from './store.js';

/** A primary that works until `down` is set, then fails every call UNAVAILABLE (as RedisStore does). */
function flaky() {
  const inner = new MemoryStore();
  const state = { down: false, calls: 0 };
  const wrap = <A extends unknown[], R>(f: (...a: A) => Promise<R>) => async (...a: A): Promise<R> => {
    state.calls++;
    if (state.down) throw new StoreError('UNAVAILABLE', 'redis: connect ECONNREFUSED');
    return f(...a);
  };
  const primary: Probed = {
    incr: wrap(inner.incr.bind(inner)), get: wrap(inner.get.bind(inner)), set: wrap(inner.set.bind(inner)),
    getValue: wrap(inner.getValue.bind(inner)), ttl: wrap(inner.ttl.bind(inner)), delete: wrap(inner.delete.bind(inner)),
    scan: wrap(inner.scan.bind(inner)), hit: wrap(inner.hit.bind(inner)), close: () => inner.close(),
    ping: async () => !state.down,
  };
  return { primary, state, inner };
}

function capture() {
  const lines: Record<string, unknown>[] = [];
  const out = new Writable({ write(chunk, _enc, cb) { for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l)); cb(); } });
  return { logger: pino({ level: 'info' }, out), lines };
}

test('fallback: an outage moves counting to memory with one loud line and the metrics; recovery moves it back', async () => {
  const { primary, state, inner } = flaky();
  const { logger, lines } = capture();
  const registry = new client.Registry();
  const store = new FallbackStore(primary, { logger, registry, probeMs: 20, describe: 'redis://10.0.0.5:6379/0' });
  try {
    assert.equal(await store.incr('bf:f:ip:192.0.2.7', 60_000), 1);
    assert.equal(await inner.get('bf:f:ip:192.0.2.7'), 1, 'counted in the primary while it answers');
    state.down = true;
    // The guesser keeps going: counted in memory, from zero, never refused to count.
    for (let i = 1; i <= 5; i++) assert.equal(await store.incr('bf:f:pair:192.0.2.7|alice', 60_000), i);
    assert.equal(await store.hit('rate:conn:ip:192.0.2.7', 60_000), 1);
    assert.equal(await store.hit('rate:conn:ip:192.0.2.7', 60_000), 2);
    assert.equal(store.degraded, true);
    const callsWhileDown = state.calls;
    await store.get('bf:f:pair:192.0.2.7|alice');
    assert.equal(state.calls, callsWhileDown, 'while degraded, calls go straight to memory (no waiting on a dead server)');
    const degraded = lines.filter((l) => l.event === 'store_degraded');
    assert.equal(degraded.length, 1);
    assert.equal(degraded[0]!.level, 50);
    assert.match(String(degraded[0]!.msg), /redis:\/\/10\.0\.0\.5:6379\/0 unreachable \(redis: connect ECONNREFUSED\)/);
    const text = await registry.metrics(); // 5 incr + 2 hit + 1 get answered from memory
    assert.match(text, /^portcullis_store_degraded 1$/m);
    assert.match(text, /^portcullis_store_fallback_total 8$/m);

    state.down = false;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(store.degraded, false);
    assert.equal(lines.filter((l) => l.event === 'store_recovered').length, 1);
    assert.match(await registry.metrics(), /^portcullis_store_degraded 0$/m);
    assert.equal(await store.incr('bf:f:ip:192.0.2.7', 60_000), 2, 'back on the primary, with what it had');
  } finally {
    await store.close();
  }
});

test('fallback: refused input is the caller\'s error on every backend, not an outage', async () => {
  const { primary } = flaky();
  const { logger, lines } = capture();
  const store = new FallbackStore(primary, { logger });
  try {
    await assert.rejects(store.incr('', 1000), (e: unknown) => e instanceof StoreError && e.code === 'INVALID_KEY');
    assert.equal(store.degraded, false);
    assert.deepEqual(lines, []);
    await store.close();
    await assert.rejects(store.get('k'), (e: unknown) => e instanceof StoreError && e.code === 'CLOSED');
  } finally {
    await store.close();
  }
});
