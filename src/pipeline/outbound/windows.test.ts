import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../store/sqlite-store.js';
import { DAY, HOUR, SlidingWindows } from './windows.js';

function setup(start: number) {
  const clock = { t: start };
  const store = SqliteStore.open(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ob-win-')), 'state.db'), { now: () => clock.t });
  return { clock, store, w: new SlidingWindows(store, () => clock.t) };
}

test('counts add up inside the window, and the previous bucket fades out as the window slides', async () => {
  const { clock, store, w } = setup(100 * HOUR);
  assert.equal(await w.add('k', HOUR, 150), 150);
  clock.t += HOUR / 2;
  assert.equal(await w.add('k', HOUR, 50), 200);
  // Into the next bucket by a quarter: 3/4 of the first bucket's 200 still counts.
  clock.t += 3 * HOUR / 4;
  assert.equal(await w.count('k', HOUR), 150);
  assert.equal(await w.add('k', HOUR, 10), 160);
  // Two windows later nothing of it is left.
  clock.t += 2 * HOUR;
  assert.equal(await w.count('k', HOUR), 0);
  await store.close();
});

test('a restart keeps the counts: they are in the store', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ob-win-'));
  const clock = { t: 7 * DAY + 3 * HOUR };
  let store = SqliteStore.open(path.join(dir, 'state.db'), { now: () => clock.t });
  await new SlidingWindows(store, () => clock.t).add('u', DAY, 300);
  await store.close();
  store = SqliteStore.open(path.join(dir, 'state.db'), { now: () => clock.t });
  assert.equal(await new SlidingWindows(store, () => clock.t).add('u', DAY, 1), 301);
  await store.close();
});

test('reset forgets both buckets; separate keys and windows do not mix', async () => {
  const { clock, store, w } = setup(50 * DAY);
  await w.add('a', HOUR, 5);
  await w.add('a', DAY, 7);
  await w.add('b', HOUR, 3);
  clock.t += HOUR;
  await w.add('a', HOUR, 1);
  await w.reset('a', HOUR);
  assert.equal(await w.count('a', HOUR), 0);
  assert.equal(await w.count('a', DAY), 7);
  assert.ok((await w.count('b', HOUR)) > 0);
  await store.close();
});
