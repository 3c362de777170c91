// The behaviour every StateStore backend must have, as one suite of node:test cases run against
// each backend (sqlite-store.test.ts, memory-store.test.ts, redis-store.test.ts). A backend test
// file calls `storeContract(name, backend)`; what only one backend has (files, purges, schema
// versions, a server going away) stays in that backend's own test file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_KEY_BYTES, MAX_SCAN_LIMIT, MAX_VALUE_BYTES, StoreError, type StateStore, type StoreErrorCode } from './store.js';

export interface ContractBackend {
  /** A store on fresh, empty state whose clock reads `clock.t` (epoch ms). */
  open(clock: { t: number }): Promise<StateStore>;
  /** Two stores on the SAME fresh state (two processes, or two nodes on one server), real clock. */
  openPair(): Promise<[StateStore, StateStore]>;
}

export function storeError(code: StoreErrorCode, text?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (text) assert.match(err.message, text);
    return true;
  };
}

export function storeContract(name: string, backend: ContractBackend): void {
  async function openWithClock(start = 1_000_000) {
    const clock = { t: start };
    const store = await backend.open(clock);
    after(() => store.close());
    return { store, clock };
  }

  test(`${name}: incr: fixed window counted from the first increment, then restarts`, async () => {
    const { store, clock } = await openWithClock();
    assert.equal(await store.incr('auth:fail:ip:192.0.2.7', 10_000), 1);
    clock.t += 4_000;
    assert.equal(await store.incr('auth:fail:ip:192.0.2.7', 10_000), 2);
    assert.equal(await store.incr('auth:fail:ip:192.0.2.7', 10_000, 5), 7);
    assert.equal(await store.get('auth:fail:ip:192.0.2.7'), 7);
    // Later increments do not extend the window: it ends 10 s after the first one.
    assert.equal(await store.ttl('auth:fail:ip:192.0.2.7'), 6_000);
    clock.t += 5_999;
    assert.equal(await store.get('auth:fail:ip:192.0.2.7'), 7);
    clock.t += 1;
    assert.equal(await store.get('auth:fail:ip:192.0.2.7'), 0, 'expired exactly at first + ttl');
    assert.equal(await store.ttl('auth:fail:ip:192.0.2.7'), undefined);
    // A new window starts from `by`, with a fresh expiry.
    assert.equal(await store.incr('auth:fail:ip:192.0.2.7', 10_000, 3), 3);
    assert.equal(await store.ttl('auth:fail:ip:192.0.2.7'), 10_000);
    assert.equal(await store.incr('auth:fail:ip:192.0.2.7', 10_000, -1), 2, 'negative increments decrement');
    assert.equal(await store.incr('frac', 0, 0.5), 0.5, 'fractional increments');
    assert.equal(await store.incr('frac', 0, 2), 2.5);
  });

  test(`${name}: incr: ttl 0 never expires; absent keys read as 0`, async () => {
    const { store, clock } = await openWithClock();
    assert.equal(await store.get('bayes:tok:viagra'), 0);
    assert.equal(await store.incr('bayes:tok:viagra', 0), 1);
    assert.equal(await store.incr('bayes:tok:viagra', Infinity), 2);
    clock.t += 1e11;
    assert.equal(await store.get('bayes:tok:viagra'), 2);
    assert.equal(await store.ttl('bayes:tok:viagra'), Infinity);
    assert.equal(await store.getValue('bayes:tok:viagra'), '2');
  });

  test(`${name}: incr on a value set as text uses its number (leading number, else 0)`, async () => {
    const { store } = await openWithClock();
    await store.set('a', '41', 0);
    assert.equal(await store.get('a'), 41);
    assert.equal(await store.incr('a', 1000), 42);
    await store.set('b', 'blocked', 0);
    assert.equal(await store.get('b'), 0);
    assert.equal(await store.incr('b', 1000), 1);
    await store.set('c', '007', 0);
    assert.equal(await store.getValue('c'), '007', 'text is stored as given, not coerced');
    assert.equal(await store.get('c'), 7);
    await store.set('d', '1700000000000', 0); // a block's "until" in epoch ms
    assert.equal(await store.get('d'), 1_700_000_000_000);
  });

  test(`${name}: set / getValue / ttl / delete`, async () => {
    const { store, clock } = await openWithClock();
    await store.set('auth:block:acct:alice@example.org', 'too many failures', 60_000);
    assert.equal(await store.getValue('auth:block:acct:alice@example.org'), 'too many failures');
    assert.equal(await store.ttl('auth:block:acct:alice@example.org'), 60_000);
    clock.t += 15_000;
    assert.equal(await store.ttl('auth:block:acct:alice@example.org'), 45_000);
    // Overwrite replaces both value and expiry.
    await store.set('auth:block:acct:alice@example.org', 'again', 0);
    assert.equal(await store.getValue('auth:block:acct:alice@example.org'), 'again');
    assert.equal(await store.ttl('auth:block:acct:alice@example.org'), Infinity);
    assert.equal(await store.delete('auth:block:acct:alice@example.org'), true);
    assert.equal(await store.delete('auth:block:acct:alice@example.org'), false);
    assert.equal(await store.getValue('auth:block:acct:alice@example.org'), undefined);
    assert.equal(await store.ttl('auth:block:acct:alice@example.org'), undefined);

    await store.set('flag', '1', 1000);
    clock.t += 1000;
    assert.equal(await store.getValue('flag'), undefined);
    assert.equal(await store.delete('flag'), false, 'an expired key is not "live" when deleted');

    const unicode = 'settings:josé@bücher.de';
    await store.set(unicode, '{"spam_threshold":6,"lang":"日本語"}', 0);
    assert.equal(await store.getValue(unicode), '{"spam_threshold":6,"lang":"日本語"}');
    await store.set('empty', '', 0);
    assert.equal(await store.getValue('empty'), '');
  });

  test(`${name}: scan: by prefix, in key order, expired keys filtered, bounded by limit`, async () => {
    const { store, clock } = await openWithClock();
    await store.incr('auth:fail:ip:192.0.2.7', 10_000);
    await store.incr('auth:fail:ip:192.0.2.8', 1_000);
    await store.incr('auth:fail:acct:alice@example.org', 10_000, 3);
    await store.set('auth:block:ip:192.0.2.7', 'x', 0);
    await store.set('auth:fail:ip:\u{1F600}', 'emoji', 0); // 4-byte UTF-8 after the prefix
    await store.set('auth:fail:ip:\uFF01', 'fullwidth', 0); // sorts before the emoji in UTF-8, after it in UTF-16
    await store.set('auth:fail:iq', 'not me', 0);
    await store.set('auth:fail:ip', 'the prefix itself', 0);
    await store.hit('auth:fail:ip:window-only', 10_000); // sliding windows are not scanned
    clock.t += 1_000; // 192.0.2.8 expires

    const ips = await store.scan('auth:fail:ip:');
    assert.deepEqual(ips.map((e) => e.key), ['auth:fail:ip:192.0.2.7', 'auth:fail:ip:\uFF01', 'auth:fail:ip:\u{1F600}']);
    assert.deepEqual(ips[0], { key: 'auth:fail:ip:192.0.2.7', value: '1', expiresAt: 1_010_000 });
    assert.deepEqual(ips[2], { key: 'auth:fail:ip:\u{1F600}', value: 'emoji' }, 'no expiresAt when it never expires');

    const fails = await store.scan('auth:fail:');
    assert.deepEqual(fails.map((e) => e.key),
      ['auth:fail:acct:alice@example.org', 'auth:fail:ip', 'auth:fail:ip:192.0.2.7', 'auth:fail:ip:\uFF01', 'auth:fail:ip:\u{1F600}', 'auth:fail:iq']);
    assert.deepEqual((await store.scan('auth:fail:', 2)).map((e) => e.key), ['auth:fail:acct:alice@example.org', 'auth:fail:ip'],
      'the limit keeps the first keys in order');
    assert.equal((await store.scan('')).length, 7, 'empty prefix: every live key');
    assert.deepEqual(await store.scan('nothing:'), []);
    // Pattern metacharacters (SQL LIKE, Redis glob) are not special.
    await store.set('a%b', '1', 0);
    await store.set('axb', '1', 0);
    await store.set('a*b', '1', 0);
    await store.set('a[x]b', '1', 0);
    await store.set('a\\b', '1', 0);
    await store.set('a?b', '1', 0);
    assert.deepEqual((await store.scan('a%')).map((e) => e.key), ['a%b']);
    assert.deepEqual((await store.scan('a*')).map((e) => e.key), ['a*b']);
    assert.deepEqual((await store.scan('a[x]')).map((e) => e.key), ['a[x]b']);
    assert.deepEqual((await store.scan('a\\')).map((e) => e.key), ['a\\b']);
    assert.deepEqual((await store.scan('a?')).map((e) => e.key), ['a?b']);
    await assert.rejects(store.scan('a', 0), storeError('INVALID_ARGUMENT', /limit/));
    await assert.rejects(store.scan('a', MAX_SCAN_LIMIT + 1), storeError('INVALID_ARGUMENT', /limit/));
  });

  test(`${name}: hit: two-bucket sliding window over time`, async () => {
    // Buckets are aligned to multiples of windowMs: start the clock on a boundary.
    const { store, clock } = await openWithClock(1_000_000);
    const W = 1_000;
    for (let i = 1; i <= 10; i++) assert.equal(await store.hit('rate:conn:ip:192.0.2.7', W), i);
    // Half-way through the next bucket, half of the previous bucket's 10 still count.
    clock.t += 1_500;
    assert.equal(await store.hit('rate:conn:ip:192.0.2.7', W), 1 + 5);
    clock.t += 250; // a quarter of the previous bucket left
    assert.equal(await store.hit('rate:conn:ip:192.0.2.7', W), 2 + 2);
    clock.t += 250; // next bucket starts: previous = 2, all of it inside the window
    assert.equal(await store.hit('rate:conn:ip:192.0.2.7', W), 1 + 2);
    clock.t += 2_000; // two buckets later: everything before is stale
    assert.equal(await store.hit('rate:conn:ip:192.0.2.7', W), 1);
    // Another key is independent; a different window restarts this one.
    assert.equal(await store.hit('rate:msg:ip:192.0.2.7', W), 1);
    assert.equal(await store.hit('rate:conn:ip:192.0.2.7', 60_000), 1);
    assert.equal(await store.hit('rate:conn:ip:192.0.2.7', 60_000), 2);
    // A window and a counter of the same name are separate.
    assert.equal(await store.get('rate:conn:ip:192.0.2.7'), 0);
    assert.equal(await store.incr('rate:conn:ip:192.0.2.7', 0), 1);
    assert.equal(await store.hit('rate:conn:ip:192.0.2.7', 60_000), 3);

    // Steady rate: 1 event / 100 ms over a 1 s window reads ≈ 10 at every point.
    const { store: s2, clock: c2 } = await openWithClock(5_000_000);
    const seen: number[] = [];
    for (let i = 0; i < 50; i++) {
      seen.push(await s2.hit('steady', W));
      c2.t += 100;
    }
    for (const n of seen.slice(10)) assert.ok(n >= 9 && n <= 11, `steady rate read ${n}`);

    const { store: s3 } = await openWithClock();
    for (let i = 0; i < 500; i++) await s3.hit('busy', 60_000);
    assert.equal(await s3.hit('busy', 60_000), 501);
    // delete() also clears a window.
    assert.equal(await s3.delete('busy'), true);
    assert.equal(await s3.hit('busy', 60_000), 1);
  });

  test(`${name}: two instances on one state see each other's writes`, async () => {
    const [a, b] = await backend.openPair();
    try {
      assert.equal(await a.incr('shared', 60_000), 1);
      assert.equal(await b.incr('shared', 60_000), 2);
      assert.equal(await a.get('shared'), 2);
      await b.set('auth:block:ip:192.0.2.7', 'cli', 60_000);
      assert.equal(await a.getValue('auth:block:ip:192.0.2.7'), 'cli');
      assert.equal(await a.hit('r', 60_000), 1);
      assert.equal(await b.hit('r', 60_000), 2);
      // Interleaved increments from both are never lost.
      await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).incr('race', 60_000)));
      assert.equal(await b.get('race'), 200);
      await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).hit('race-window', 60_000)));
      assert.equal(await a.hit('race-window', 60_000), 201);
      assert.equal(await a.delete('auth:block:ip:192.0.2.7'), true);
      assert.equal(await b.getValue('auth:block:ip:192.0.2.7'), undefined);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test(`${name}: bad inputs are refused with a clear StoreError`, async () => {
    const { store } = await openWithClock();
    await assert.rejects(store.incr('', 1000), storeError('INVALID_KEY', /empty/));
    await assert.rejects(store.get(''), storeError('INVALID_KEY', /empty/));
    await assert.rejects(store.set('x'.repeat(MAX_KEY_BYTES + 1), 'v', 0), storeError('INVALID_KEY', /513 bytes.*limit of 512/));
    await assert.rejects(store.hit('é'.repeat(300), 1000), storeError('INVALID_KEY', /600 bytes/), 'limit counts UTF-8 bytes');
    assert.equal(await store.incr('x'.repeat(MAX_KEY_BYTES), 1000), 1, 'exactly at the limit is fine');
    await assert.rejects(store.getValue('a\0b'), storeError('INVALID_KEY', /NUL/));
    await assert.rejects(store.ttl('a\uD800'), storeError('INVALID_KEY', /surrogate/));
    await assert.rejects(store.delete(42 as unknown as string), storeError('INVALID_KEY', /string/));
    await assert.rejects(store.set('k', 'v'.repeat(MAX_VALUE_BYTES + 1), 0), storeError('INVALID_VALUE', /larger than/));
    await assert.rejects(store.set('k', undefined as unknown as string, 0), storeError('INVALID_VALUE', /string/));
    await assert.rejects(store.set('k', 'v', -1), storeError('INVALID_TTL'));
    await assert.rejects(store.incr('k', NaN), storeError('INVALID_TTL'));
    await assert.rejects(store.incr('k', 1000, Infinity), storeError('INVALID_ARGUMENT', /finite/));
    await assert.rejects(store.hit('k', 0), storeError('INVALID_TTL', /windowMs/));
    await assert.rejects(store.hit('k', Infinity), storeError('INVALID_TTL', /windowMs/));
    await assert.rejects(store.scan('a\0'), storeError('INVALID_KEY'));
    assert.equal(await store.getValue('k'), undefined, 'nothing was written by refused calls');

    await store.close();
    await store.close(); // idempotent
    await assert.rejects(store.get('k'), storeError('CLOSED', /closed/));
  });
}
