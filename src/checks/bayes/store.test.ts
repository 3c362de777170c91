import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { BayesStore, BayesStoreError, tokenHash } from './store.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'bayes-store-'));
const sig = (s: string) => Buffer.from(s.padEnd(20, '.'));
const H = (...tokens: string[]) => tokens.map(tokenHash);

/** The counts of a lookup, without the last-seen times. */
const counts = (xs: readonly ({ spam: number; ham: number } | undefined)[]) => xs.map((c) => c && { spam: c.spam, ham: c.ham });

test('64-bit hashes round-trip exactly (negative and beyond 2^53) through one lookup statement', () => {
  const dir = tmp();
  const store = BayesStore.open(path.join(dir, 'b.sqlite'));
  try {
    const tokens = Array.from({ length: 500 }, (_, i) => `tok${i}`);
    const hashes = H(...tokens);
    assert.ok(hashes.some((h) => h < 0n) && hashes.some((h) => h > 2n ** 53n), 'the sample spans the range');
    assert.equal(store.learn(sig('m1'), hashes, 'spam'), 'learned');
    const got = store.lookup(hashes);
    assert.ok(got.every((c) => c?.spam === 1 && c.ham === 0));
    // A neighbour of a stored hash (off by one in the low bits) is not found.
    assert.deepEqual(store.lookup([hashes[0]! + 1n, tokenHash('never')]), [undefined, undefined]);
  } finally {
    store.close();
  }
});

test('persists across reopen; learning twice is "already"; relearn moves the counts; forget removes them', () => {
  const dir = tmp();
  const file = path.join(dir, 'b.sqlite');
  let store = BayesStore.open(file);
  const a = H('alpha', 'shared');
  const b = H('beta', 'shared');
  assert.equal(store.learn(sig('a'), a, 'spam'), 'learned');
  assert.equal(store.learn(sig('b'), b, 'ham'), 'learned');
  store.close();
  store = BayesStore.open(file);
  try {
    assert.equal(store.learn(sig('a'), a, 'spam'), 'already');
    assert.deepEqual({ ...store.totals(), lastExpire: 0 }, { spam: 1, ham: 1, lastExpire: 0 });
    assert.deepEqual(counts(store.lookup(H('alpha', 'shared', 'beta'))), [{ spam: 1, ham: 0 }, { spam: 1, ham: 1 }, { spam: 0, ham: 1 }]);
    // The user moves "a" out of Junk: its counts move from spam to ham.
    assert.equal(store.learn(sig('a'), a, 'ham'), 'relearned');
    assert.equal(store.learnedAs(sig('a')), 'ham');
    assert.equal(store.totals().spam, 0);
    assert.equal(store.totals().ham, 2);
    assert.deepEqual(counts(store.lookup(H('alpha', 'shared'))), [{ spam: 0, ham: 1 }, { spam: 0, ham: 2 }]);
    assert.equal(store.forget(sig('a'), a), true);
    assert.equal(store.forget(sig('a'), a), false);
    assert.deepEqual(counts(store.lookup(H('alpha', 'shared'))), [undefined, { spam: 0, ham: 1 }], 'a token at zero is deleted');
    assert.equal(store.totals().ham, 1);
    assert.equal(store.tokenCount(), 2);
  } finally {
    store.close();
  }
});

test('a classification touches only tokens seen longer ago than a day (no write at all for fresh ones)', () => {
  const dir = tmp();
  let now = Date.UTC(2026, 0, 1);
  const store = BayesStore.open(path.join(dir, 'b.sqlite'), { now: () => now });
  try {
    store.learn(sig('a'), H('old', 'both'), 'spam');
    now += 2 * 86_400_000;
    store.learn(sig('b'), H('fresh', 'both'), 'ham');
    now += 3_600_000;
    const hashes = H('old', 'fresh', 'both', 'never');
    const found = store.lookup(hashes);
    assert.equal(found[0]!.atime, Math.floor(Date.UTC(2026, 0, 1) / 1000));
    assert.deepEqual(store.staleOf(hashes, found), H('old'), 'only the token not seen for two days');
    store.touch(store.staleOf(hashes, found));
    assert.deepEqual(store.staleOf(hashes, store.lookup(hashes)), [], 'touched: fresh now');
  } finally {
    store.close();
  }
});

test('counts cached between lookups stay exact: our writes and another process\'s writes are seen at once', () => {
  const dir = tmp();
  const file = path.join(dir, 'b.sqlite');
  const a = BayesStore.open(file);
  const b = BayesStore.open(file); // another process (a second connection to the same file)
  try {
    a.learn(sig('one'), H('tok', 'other'), 'spam');
    assert.deepEqual(counts(a.lookup(H('tok', 'never'))), [{ spam: 1, ham: 0 }, undefined]);
    a.learn(sig('two'), H('tok'), 'ham'); // our own write
    assert.deepEqual(counts(a.lookup(H('tok', 'never'))), [{ spam: 1, ham: 1 }, undefined]);
    b.learn(sig('three'), H('tok', 'never'), 'spam'); // the other connection's write
    assert.deepEqual(counts(a.lookup(H('tok', 'never', 'other'))), [{ spam: 2, ham: 1 }, { spam: 1, ham: 0 }, { spam: 1, ham: 0 }]);
    a.forget(sig('one'), H('tok', 'other'));
    assert.deepEqual(counts(a.lookup(H('tok', 'other'))), [{ spam: 1, ham: 1 }, undefined]);
    // The totals are kept between messages too, and stay as exact.
    const t = (s: BayesStore) => ({ spam: s.totals().spam, ham: s.totals().ham });
    assert.deepEqual(t(a), { spam: 1, ham: 1 });
    b.learn(sig('four'), H('x'), 'ham');
    assert.deepEqual(t(a), { spam: 1, ham: 2 }, 'the other connection\'s learning');
    a.learn(sig('five'), H('y'), 'spam');
    assert.deepEqual(t(a), { spam: 2, ham: 2 }, 'our own learning');
    a.forget(sig('five'), H('y'));
    assert.deepEqual(t(a), { spam: 1, ham: 2 }, 'our own forgetting');
  } finally {
    a.close();
    b.close();
  }
});

test('expiry deletes what was not seen for N days, in bounded batches; classifying keeps tokens alive', () => {
  const dir = tmp();
  let now = Date.UTC(2026, 0, 1);
  const store = BayesStore.open(path.join(dir, 'b.sqlite'), { now: () => now });
  try {
    const old = Array.from({ length: 5000 }, (_, i) => tokenHash(`old${i}`));
    store.learn(sig('old'), [...old, tokenHash('used')], 'spam');
    now += 40 * 86_400_000;
    store.learn(sig('new'), H('fresh'), 'ham');
    store.touch(H('used')); // a classification 40 days later
    now += 30 * 86_400_000; // 70 days after the first message, 30 after the second
    const first = store.expire(60, 3000);
    assert.deepEqual(first, { tokens: 3000, signatures: 1, done: false }, 'bounded by maxRows; the old message record goes too');
    assert.equal(store.totals().lastExpire, 0, 'the run is not finished');
    const second = store.expire(60, 3000);
    assert.deepEqual(second, { tokens: 2000, signatures: 0, done: true });
    assert.deepEqual(counts(store.lookup(H('used', 'fresh', 'old1'))), [{ spam: 1, ham: 0 }, { spam: 0, ham: 1 }, undefined]);
    assert.equal(store.totals().lastExpire, Math.floor(now / 1000));
  } finally {
    store.close();
  }
});

test('a file from a newer schema is refused with a message naming it', () => {
  const dir = tmp();
  const file = path.join(dir, 'b.sqlite');
  const db = new Database(file);
  db.pragma('user_version = 99');
  db.close();
  assert.throws(() => BayesStore.open(file), (err: Error) => err instanceof BayesStoreError && err.message.includes(file) && /version 99/.test(err.message));
});

test('two processes learning at once: WAL and the busy timeout, no lost update, no SQLITE_BUSY', async () => {
  const dir = tmp();
  const file = path.join(dir, 'b.sqlite');
  const store = BayesStore.open(file);
  const storeModule = path.join(path.dirname(fileURLToPath(import.meta.url)), 'store.js');
  // The other writer: `portcullis train` in real life; here a node process learning 300
  // messages that share the token "common" with ours.
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    const { BayesStore, tokenHash } = await import(${JSON.stringify(storeModule)});
    const s = BayesStore.open(${JSON.stringify(file)});
    for (let i = 0; i < 300; i++) s.learn(Buffer.from('child' + i), [tokenHash('common'), tokenHash('c' + i)], 'spam');
    s.close();
  `], { stdio: ['ignore', 'inherit', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  try {
    for (let i = 0; i < 300; i++) {
      assert.equal(store.learn(Buffer.from(`parent${i}`), H('common', `p${i}`), 'ham'), 'learned');
      // Reads go on while the other process writes.
      store.lookup(H('common'));
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.equal(await exited, 0, stderr);
    assert.deepEqual(counts(store.lookup(H('common'))), [{ spam: 300, ham: 300 }]);
    assert.deepEqual({ spam: store.totals().spam, ham: store.totals().ham }, { spam: 300, ham: 300 });
    assert.equal((new Database(file, { readonly: true }).pragma('journal_mode', { simple: true })), 'wal');
  } finally {
    child.kill();
    store.close();
  }
});

test('while another process holds the write lock: reads go on, touch skips at once, a writer waits the busy timeout', () => {
  const dir = tmp();
  const file = path.join(dir, 'b.sqlite');
  let now = Date.UTC(2026, 0, 1);
  const store = BayesStore.open(file, { busyTimeoutMs: 300, now: () => now });
  const other = new Database(file);
  try {
    store.learn(sig('a'), H('x'), 'spam');
    now += 3 * 86_400_000;
    other.exec('BEGIN IMMEDIATE');
    let t0 = performance.now();
    assert.deepEqual(counts(store.lookup(H('x'))), [{ spam: 1, ham: 0 }]);
    store.touch(H('x'));
    assert.ok(performance.now() - t0 < 100, `touch waited ${performance.now() - t0} ms`);
    t0 = performance.now();
    assert.throws(() => store.learn(sig('b'), H('y'), 'ham'), (err: { code?: string }) => err.code === 'SQLITE_BUSY');
    const waited = performance.now() - t0;
    assert.ok(waited >= 250 && waited < 3000, `waited ${waited} ms`);
    other.exec('COMMIT');
    // The lock is free again: the touch goes through, the learn too, and the timeout is back.
    store.touch(H('x'));
    assert.equal(store.learn(sig('b'), H('y'), 'ham'), 'learned');
    assert.equal((other.prepare('SELECT atime FROM tokens WHERE h = ?').get(tokenHash('x')) as { atime: number }).atime, Math.floor(now / 1000));
  } finally {
    other.close();
    store.close();
  }
});
