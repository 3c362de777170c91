import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from './queue.js';
import { silentLogger } from '../log.js';

// A spill file shorter than the message claims (its write failed unseen, as on a full disk)
// must make commit() fail, so the client hears 4xx and not "250" for a message cut short.
test('commit refuses a spilled message whose file is shorter than the message', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pq-spill-'));
  const { queue } = await Queue.open({ dir, fsync: true, segmentSize: 1 << 20, concurrency: 1, retryInitial: 60_000, retryMax: 60_000, lifetime: 86_400_000, logger: silentLogger() });
  const header = Buffer.from('Subject: big\r\n\r\n');
  const body = Buffer.alloc(100_000, 0x61);
  const prefix = Buffer.from('Received: by test\r\n');
  const base = {
    sender: 's@x.test', meta: {}, authenticated: false, inline: [prefix, header],
    size: prefix.length + header.length + body.length,
    recipients: [{ address: 'a@x.test', destination: { kind: 'local' as const, mailbox: 'a@x.test', folder: 'INBOX' as const } }],
  };
  fs.writeFileSync(queue.largeFile('SHORT'), Buffer.concat([header, body.subarray(0, 4096)]));
  await assert.rejects(queue.commit({ ...base, id: 'SHORT', file: { name: 'SHORT.eml', offset: header.length } }), (e: NodeJS.ErrnoException) => e.code === 'ESHORTSPILL');
  assert.equal(queue.size, 0);
  fs.writeFileSync(queue.largeFile('WHOLE'), Buffer.concat([header, body]));
  const ok = await queue.commit({ ...base, id: 'WHOLE', file: { name: 'WHOLE.eml', offset: header.length } });
  assert.equal(ok.id, 'WHOLE');
  assert.equal(queue.size, 1);
  await queue.stop(1000);
  fs.rmSync(dir, { recursive: true });
});
