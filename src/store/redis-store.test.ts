import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Redis } from 'ioredis';
import { RedisStore, globEscape } from './redis-store.js';
import { storeContract, storeError } from './store-contract.js';
import { REDIS_SERVER, startRedis, type RedisServer } from '../../test/store/redis-server.js';
import { strict } from '../../test/helpers/clients.js';

const have = fs.existsSync(REDIS_SERVER);
if (!have && strict) throw new Error(`required tool missing: ${REDIS_SERVER} (apt-get install redis-server)`);

let server: RedisServer;
let run = 0;
before(async () => {
  if (have) server = await startRedis();
});
after(async () => {
  await server?.stop();
});

// Every store gets a prefix of its own: fresh state without FLUSHDB between cases.
const fresh = () => `test${++run}:`;

if (have) {
  storeContract('redis', {
    async open(clock) {
      return RedisStore.open({ url: server.url(), prefix: fresh(), now: () => clock.t }, true);
    },
    async openPair() {
      const prefix = fresh();
      return [await RedisStore.open({ url: server.url(), prefix }, true), await RedisStore.open({ url: server.url(), prefix }, true)];
    },
  });
}

test('redis: keys are namespaced, hashes with their expiry, and Redis expires them itself', { skip: !have && 'redis-server not installed' }, async () => {
  const clock = { t: Date.now() };
  const store = await RedisStore.open({ url: server.url(), prefix: 'site-a:', now: () => clock.t }, true);
  const raw = new Redis(server.url());
  try {
    await store.incr('auth:f:ip:192.0.2.7', 60_000);
    await store.set('auth:b:ip:192.0.2.7', String(clock.t + 900_000), 900_000);
    await store.set('forever', 'x', 0);
    await store.hit('rate:conn:ip:192.0.2.7', 60_000);
    assert.deepEqual((await raw.keys('site-a:*')).sort(),
      ['site-a:v:auth:b:ip:192.0.2.7', 'site-a:v:auth:f:ip:192.0.2.7', 'site-a:v:forever', 'site-a:w:rate:conn:ip:192.0.2.7']);
    assert.deepEqual(await raw.hgetall('site-a:v:auth:f:ip:192.0.2.7'), { v: '1', e: String(clock.t + 60_000) });
    const pttl = await raw.pttl('site-a:v:auth:f:ip:192.0.2.7');
    assert.ok(pttl > 59_000 && pttl <= 60_000, `native expiry ${pttl}`);
    assert.equal(await raw.pttl('site-a:v:forever'), -1);
    const wttl = await raw.pttl('site-a:w:rate:conn:ip:192.0.2.7');
    assert.ok(wttl > 60_000 && wttl <= 120_000, `window kept two buckets: ${wttl}`);
    // Another prefix is another site: nothing shared, nothing scanned.
    const other = await RedisStore.open({ url: server.url(), prefix: 'site-b:' }, true);
    assert.equal(await other.get('auth:f:ip:192.0.2.7'), 0);
    assert.deepEqual(await other.scan(''), []);
    await other.close();
    // A short TTL really leaves Redis (no purge needed).
    const real = await RedisStore.open({ url: server.url(), prefix: 'site-c:' }, true);
    await real.set('short', 'x', 30);
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(await raw.exists('site-c:v:short'), 0);
    await real.close();
  } finally {
    raw.disconnect();
    await store.close();
  }
});

test('redis: a prefix with glob characters matches only itself', () => {
  assert.equal(globEscape('a*b?[c]\\^'), 'a\\*b\\?\\[c\\]\\\\\\^');
});

test('redis: a server that does not answer is UNAVAILABLE, at once and bounded', { skip: !have && 'redis-server not installed' }, async () => {
  // A port nothing listens on: the CLI's open refuses within its bound.
  const t0 = Date.now();
  await assert.rejects(RedisStore.open({ url: 'redis://127.0.0.1:1/0', timeoutMs: 100 }, true), storeError('UNAVAILABLE', /did not answer within 400 ms/));
  assert.ok(Date.now() - t0 < 2_000);
  // The gateway's open returns a store whose calls fail fast instead of queueing.
  const down = await RedisStore.open({ url: 'redis://127.0.0.1:1/0', timeoutMs: 100 });
  const t1 = Date.now();
  await assert.rejects(down.incr('k', 1000), storeError('UNAVAILABLE', /redis/));
  await assert.rejects(down.hit('k', 1000), storeError('UNAVAILABLE'));
  assert.ok(Date.now() - t1 < 500, 'no waiting while disconnected');
  assert.equal(await down.ping(), false);
  await down.close();
  // A server that hangs (SIGSTOP) times a command out after timeoutMs.
  const hung = await startRedis();
  const store = await RedisStore.open({ url: hung.url(), timeoutMs: 200 }, true);
  try {
    assert.equal(await store.incr('k', 1000), 1);
    await hung.pause();
    const t2 = Date.now();
    await assert.rejects(store.incr('k', 1000), storeError('UNAVAILABLE', /timed out/i));
    const took = Date.now() - t2;
    assert.ok(took >= 150 && took < 1_500, `timed out after ${took} ms`);
  } finally {
    await hung.resume();
    await store.close();
    await hung.stop();
  }
});
