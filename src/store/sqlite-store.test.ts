import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore, stateFile, type SqliteStoreOptions } from './sqlite-store.js';
import { storeContract, storeError } from './store-contract.js';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-store-'));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let counter = 0;
function tmpFile(): string {
  const d = path.join(tmpRoot, String(++counter));
  fs.mkdirSync(d);
  return stateFile(d);
}

/** A store on a fresh file with a hand-driven clock. */
function openWithClock(start = 1_000_000, options: SqliteStoreOptions = {}, file = tmpFile()) {
  const clock = { t: start };
  const store = SqliteStore.open(file, { now: () => clock.t, purgeIntervalMs: 0, ...options });
  after(() => store.close());
  return { store, clock, file };
}

function rowCount(file: string, table: 'kv' | 'windows'): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

storeContract('sqlite', {
  async open(clock) {
    return SqliteStore.open(tmpFile(), { now: () => clock.t, purgeIntervalMs: 0 });
  },
  async openPair() {
    const file = tmpFile();
    return [SqliteStore.open(file, { purgeIntervalMs: 0 }), SqliteStore.open(file, { purgeIntervalMs: 0 })];
  },
});

test('a sliding window is one row per key, however many events', async () => {
  const { store, file } = openWithClock();
  for (let i = 0; i < 500; i++) await store.hit('busy', 60_000);
  assert.equal(await store.hit('busy', 60_000), 501);
  assert.equal(rowCount(file, 'windows'), 1);
});

test('reopening keeps the data (without re-running the migration); the file is mode 0600', async () => {
  const file = tmpFile();
  const a = SqliteStore.open(file, { purgeIntervalMs: 0 });
  await a.incr('race', 60_000, 200);
  await a.close();
  const c = SqliteStore.open(file, { purgeIntervalMs: 0 });
  assert.equal(await c.get('race'), 200);
  await c.close();
  assert.equal((fs.statSync(file).mode & 0o777).toString(8), '600');
});

test('purge removes expired rows and only those', async () => {
  const { store, clock, file } = openWithClock();
  for (let i = 0; i < 2_500; i++) await store.incr(`short:${i}`, 1_000); // crosses the batch size
  await store.set('long', 'x', 60_000);
  await store.set('forever', 'y', 0);
  await store.hit('win', 1_000);
  clock.t += 2_000; // short:* expired; the window's buckets are stale at start + 2 s
  const removed = store.purge();
  assert.equal(removed, 2_501);
  assert.equal(rowCount(file, 'kv'), 2);
  assert.equal(rowCount(file, 'windows'), 0);
  assert.equal(await store.getValue('long'), 'x');
  assert.equal(await store.getValue('forever'), 'y');
  assert.equal(store.purge(), 0);
});

test('expired rows are purged opportunistically as writes go on', async () => {
  const { store, clock, file } = openWithClock();
  for (let i = 0; i < 500; i++) await store.set(`old:${i}`, 'x', 10);
  clock.t += 100;
  for (let i = 0; i < 600; i++) await store.incr('live', 0);
  assert.equal(rowCount(file, 'kv'), 1, 'the 1000th write purged the expired batch');
});

test('the background purge runs on its timer', async () => {
  const { store, clock, file } = openWithClock(1_000_000, { purgeIntervalMs: 20 });
  await store.set('gone', 'x', 10);
  clock.t += 100;
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(rowCount(file, 'kv'), 0);
});

test('a file from a newer portcullis is refused', () => {
  const file = tmpFile();
  const db = new Database(file);
  db.pragma('user_version = 99');
  db.close();
  assert.throws(() => SqliteStore.open(file), storeError('SCHEMA', /version 99.*upgrade/));
});

test('throughput (printed, not asserted)', async (t) => {
  const store = SqliteStore.open(tmpFile(), { purgeIntervalMs: 0 });
  try {
    const N = 20_000;
    const rate = async (name: string, op: (i: number) => Promise<unknown>) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < N; i++) await op(i);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      t.diagnostic(`${name}: ${Math.round((N / ms) * 1000)} ops/s`);
    };
    await rate('incr', (i) => store.incr(`auth:fail:ip:10.0.${i % 256}.${i % 100}`, 60_000));
    await rate('get', (i) => store.get(`auth:fail:ip:10.0.${i % 256}.${i % 100}`));
    await rate('set', (i) => store.set(`auth:block:ip:10.1.${i % 256}.1`, 'x', 60_000));
    await rate('hit', (i) => store.hit(`rate:conn:ip:10.2.${i % 64}.1`, 60_000));
  } finally {
    await store.close();
  }
});
