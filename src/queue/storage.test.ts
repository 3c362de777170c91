import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StorageGuard, isOutOfSpace } from './storage.js';

const dir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'pq-storage-'));

test('room: refused when min_free + 1.5 × the message is more than the file system has free', async () => {
  const d = dir();
  const st = fs.statfsSync(d);
  const free = st.bavail * st.bsize;
  const g = new StorageGuard(d, { minFreeBytes: 0, minFreeInodes: 0 });
  assert.deepEqual(await g.room(1024), { ok: true });
  const huge = new StorageGuard(d, { minFreeBytes: free, minFreeInodes: 0 });
  const r = await huge.room(1024 * 1024);
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /bytes free in .*needed \(queue\.min_free \+ 1\.5 × 1048576\)/);
  // 1.5 × the size: a message of two thirds of the free space does not fit.
  const g2 = new StorageGuard(d, { minFreeBytes: 0, minFreeInodes: 0 });
  assert.equal((await g2.room(Math.ceil(free / 1.4))).ok, false);
  fs.rmSync(d, { recursive: true });
});

test('room: the inode floor is checked where the file system counts inodes', async () => {
  const d = dir();
  const st = fs.statfsSync(d);
  const g = new StorageGuard(d, { minFreeBytes: 0, minFreeInodes: Number.MAX_SAFE_INTEGER });
  const r = await g.room(1);
  if (st.files > 0) {
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /inodes free/);
  } else assert.equal(r.ok, true, 'no inode count (btrfs): not checked');
  fs.rmSync(d, { recursive: true });
});

test('room: a statfs that fails (folder gone) never refuses; answers are cached briefly, invalidate() forgets', async () => {
  const g = new StorageGuard('/nonexistent/portcullis-queue', { minFreeBytes: 1, minFreeInodes: 1 });
  assert.deepEqual(await g.room(1), { ok: true });
  let t = 0;
  const d = dir();
  const cached = new StorageGuard(d, { minFreeBytes: 0, minFreeInodes: 0 }, () => t);
  assert.equal((await cached.room(1)).ok, true);
  fs.rmSync(d, { recursive: true });
  t = 100;
  assert.equal((await cached.room(1)).ok, true, 'the cached sample answers');
  cached.invalidate();
  assert.equal((await cached.room(1)).ok, true, 'the folder is gone: statfs fails, never refuses');
});

test('isOutOfSpace: ENOSPC and EDQUOT only', () => {
  assert.equal(isOutOfSpace(Object.assign(new Error('x'), { code: 'ENOSPC' })), true);
  assert.equal(isOutOfSpace(Object.assign(new Error('x'), { code: 'EDQUOT' })), true);
  assert.equal(isOutOfSpace(Object.assign(new Error('x'), { code: 'EIO' })), false);
  assert.equal(isOutOfSpace(new Error('x')), false);
  assert.equal(isOutOfSpace(undefined), false);
});
