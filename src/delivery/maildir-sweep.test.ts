import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sweepMaildirTmp } from './maildir-sweep.js';

const HOUR = 3_600_000;

function file(p: string, ageMs: number, content = 'x'): string {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  const t = new Date(Date.now() - ageMs);
  fs.utimesSync(p, t, t);
  return p;
}

test('sweepMaildirTmp removes tmp/ files older than the limit in INBOX and every Maildir++ folder, and nothing else', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pq-sweep-'));
  const box = path.join(root, 'example.test', 'alice');
  const staleInbox = file(path.join(box, 'tmp', 'old1'), 40 * HOUR, 'half a message');
  const staleJunk = file(path.join(box, '.Junk', 'tmp', 'old2'), 37 * HOUR);
  const fresh = file(path.join(box, 'tmp', 'new1'), 1 * HOUR);
  const oldInNew = file(path.join(box, 'new', 'delivered'), 100 * HOUR);
  const oldInCur = file(path.join(box, '.Junk', 'cur', 'read'), 100 * HOUR);
  const notMaildir = file(path.join(box, 'dovecot-uidlist'), 100 * HOUR);
  const other = file(path.join(root, 'second.test', 'bob', 'tmp', 'old3'), 50 * HOUR);
  const r = await sweepMaildirTmp(root, 36 * HOUR);
  assert.equal(r.removed, 3);
  assert.equal(r.bytes, 'half a message'.length + 2);
  assert.equal(r.errors, 0);
  assert.equal(r.folders, 3);
  for (const gone of [staleInbox, staleJunk, other]) assert.equal(fs.existsSync(gone), false, gone);
  for (const kept of [fresh, oldInNew, oldInCur, notMaildir]) assert.equal(fs.existsSync(kept), true, kept);
  fs.rmSync(root, { recursive: true });
});

test('sweepMaildirTmp on a missing mail root finds nothing and does not throw', async () => {
  assert.deepEqual(await sweepMaildirTmp('/nonexistent/portcullis-mail', HOUR), { folders: 0, removed: 0, bytes: 0, errors: 0 });
});
