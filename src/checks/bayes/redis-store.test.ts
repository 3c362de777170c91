// The Redis Bayes store against the SQLite one: the same operations, the same answers; then
// Redis away → no verdict (never a wrong one).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { RedisBayesStore } from './redis-store.js';
import { SqliteBayesTokenStore, tokenHash, type BayesTokenStore } from './store.js';
import { Bayes } from './index.js';
import { parseMessage } from '../../mime/text.js';
import { REDIS_SERVER, startRedis, type RedisServer } from '../../../test/store/redis-server.js';
import { strict } from '../../../test/helpers/clients.js';

const have = fs.existsSync(REDIS_SERVER);
if (!have && strict) throw new Error(`required tool missing: ${REDIS_SERVER} (apt-get install redis-server)`);
const skip = !have && 'redis-server not installed';

let server: RedisServer;
before(async () => {
  if (have) server = await startRedis();
});
after(async () => {
  await server?.stop();
});

const sig = (s: string) => Buffer.from(s.padEnd(20, '.'));
const H = (...tokens: string[]) => tokens.map(tokenHash);
const counts = (xs: readonly ({ spam: number; ham: number } | undefined)[]) => xs.map((c) => c && { spam: c.spam, ham: c.ham });
let n = 0;

/** Runs `script` on a fresh SQLite store and a fresh Redis one (same clock); returns both transcripts. */
async function both(script: (s: BayesTokenStore, clock: { t: number }) => Promise<unknown[]>): Promise<[unknown[], unknown[]]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bayes-redis-'));
  const c1 = { t: 1_700_000_000_000 };
  const c2 = { t: 1_700_000_000_000 };
  const sqlite = SqliteBayesTokenStore.open(path.join(dir, 'b.sqlite'), { now: () => c1.t });
  const redis = new RedisBayesStore({ url: server.url(), prefix: `bt${++n}:`, now: () => c2.t });
  try {
    return [await script(sqlite, c1), await script(redis, c2)];
  } finally {
    await sqlite.close();
    await redis.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('redis bayes: learn, already, relearn, forget, lookup and totals answer as the SQLite file does', { skip }, async () => {
  const [a, b] = await both(async (s) => {
    const out: unknown[] = [];
    const x = H('alpha', 'shared');
    const y = H('beta', 'shared');
    const wide = Array.from({ length: 600 }, (_, i) => tokenHash(`tok${i}`)); // negative and > 2^53 hashes
    out.push(await s.learnMany([{ sig: sig('a'), hashes: x, cls: 'spam' }, { sig: sig('b'), hashes: y, cls: 'ham' }]));
    out.push(await s.learnMany([{ sig: sig('a'), hashes: () => { throw new Error('not tokenized again'); }, cls: 'spam' }]).catch(() => 'threw'));
    out.push(await s.learnedAs(sig('a')), await s.learnedAs(sig('zz')));
    out.push({ ...(await s.totals()), lastExpire: 0 });
    out.push(counts(await s.lookup(H('alpha', 'shared', 'beta', 'never'))));
    out.push(await s.learnMany([{ sig: sig('a'), hashes: x, cls: 'ham' }])); // moved out of Junk
    out.push(counts(await s.lookup(H('alpha', 'shared'))), { ...(await s.totals()), lastExpire: 0 });
    out.push(await s.forget(sig('a'), x), await s.forget(sig('a'), x));
    out.push(counts(await s.lookup(H('alpha', 'shared'))), await s.tokenCount());
    out.push(await s.learnMany([{ sig: sig('w'), hashes: wide, cls: 'spam' }]));
    const got = await s.lookup(wide);
    out.push(got.every((c) => c?.spam === 1 && c.ham === 0), await s.tokenCount());
    out.push(await s.lookup([wide[0]! + 1n]));
    return out;
  });
  assert.deepEqual(b, a);
  assert.equal(a[0] && (a[0] as string[]).join(), 'learned,learned', 'the transcript is meaningful');
});

test('redis bayes: touch refreshes only stale tokens; expiry deletes what was not seen, as in the file', { skip }, async () => {
  const [a, b] = await both(async (s, clock) => {
    const out: unknown[] = [];
    const old = H('old1', 'old2');
    const used = H('used');
    await s.learnMany([{ sig: sig('old'), hashes: old, cls: 'spam' }, { sig: sig('used'), hashes: used, cls: 'ham' }]);
    clock.t += 40 * 86_400_000;
    const c = await s.lookup(used);
    const stale = s.staleOf(used, c);
    out.push(stale.length);
    await s.touch(stale);
    out.push(s.staleOf(used, await s.lookup(used)).length);
    clock.t += 40 * 86_400_000; // old: 80 days unseen; used: 40
    const r = await s.expire(60);
    out.push(r.tokens, r.signatures, r.done, counts(await s.lookup([...old, ...used])), await s.tokenCount());
    out.push((await s.totals()).lastExpire === Math.floor(clock.t / 1000));
    return out;
  });
  assert.deepEqual(b, a);
  assert.deepEqual(a.slice(0, 2), [1, 0]);
  assert.equal(a[2], 2, 'two old tokens expired');
});

test('redis bayes: Redis away → no verdict (no symbol), never a guess; back → verdicts again', { skip }, async () => {
  const own = await startRedis();
  const store = new RedisBayesStore({ url: own.url(), prefix: 'down:', timeoutMs: 200 });
  const bayes = Bayes.withStore(store, { minLearned: 1 });
  try {
    const spam = parseMessage(Buffer.from('Subject: cheap pills now\r\nMessage-ID: <s1@x>\r\n\r\nBuy cheap pills viagra now now now\r\n'));
    const ham = parseMessage(Buffer.from('Subject: meeting notes\r\nMessage-ID: <h1@x>\r\n\r\nNotes from the project meeting on Monday\r\n'));
    assert.equal(await bayes.learn(spam, 'spam'), 'learned');
    assert.equal(await bayes.learn(ham, 'ham'), 'learned');
    const probe = parseMessage(Buffer.from('Subject: cheap pills\r\nMessage-ID: <p1@x>\r\n\r\nviagra pills cheap now\r\n'));
    const up = await bayes.classify(probe);
    assert.ok(up.probability! > 0.5 && up.symbols.length >= 1, up.reason);
    await own.kill();
    const t0 = Date.now();
    const down = await bayes.classify(probe);
    assert.equal(down.probability, undefined);
    assert.deepEqual(down.symbols, []);
    assert.equal(down.unavailable, true);
    assert.match(down.reason, /Bayes store unavailable: redis/);
    assert.ok(Date.now() - t0 < 1_000, 'bounded: no waiting for a dead server');
    await assert.rejects(bayes.learn(probe, 'spam'), /redis/, 'learning fails loudly (autolearn logs it)');
    await own.start(); // empty again (no persistence): Bayes has nothing learned
    const raw = new Redis(own.url());
    await raw.ping();
    raw.disconnect();
    const again = await waitForAnswer(() => bayes.classify(probe));
    assert.equal(again.unavailable, undefined);
    assert.match(again.reason, /not enough learned/);
  } finally {
    await bayes.close();
    await own.stop();
  }
});

async function waitForAnswer<T extends { unavailable?: boolean }>(f: () => Promise<T>): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const r = await f();
    if (!r.unavailable) return r;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('Redis did not come back');
}
