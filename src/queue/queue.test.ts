import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { Queue, type Deliverer, type QueuedMessage, type QueuedRecipient } from './queue.js';
import { silentLogger } from '../log.js';
import type { Content, RecipientOutcome } from '../delivery/types.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'pq-'));
const open = (dir: string, extra: Partial<Parameters<typeof Queue.open>[0]> = {}) =>
  Queue.open({ dir, fsync: true, segmentSize: 1 << 20, concurrency: 4, retryInitial: 60_000, retryMax: 3_600_000, lifetime: 86_400_000, logger: silentLogger(), ...extra });
const msg = (id: string, body = `Subject: ${id}\r\n\r\nhello ${id}\r\n`) => ({
  id, sender: 's@x.test', meta: {}, authenticated: false, size: body.length, inline: [Buffer.from(body)],
  recipients: [{ address: 'a@x.test', destination: { kind: 'local' as const, mailbox: 'a@x.test', folder: 'INBOX' as const } }],
});

class Recorder implements Deliverer {
  seen: { id: string; body: string }[] = [];
  constructor(private readonly answer: (m: QueuedMessage) => RecipientOutcome['status'] = () => 'delivered') {}
  async deliver(m: QueuedMessage, r: QueuedRecipient[], c: Content): Promise<RecipientOutcome[]> {
    this.seen.push({ id: m.id, body: await text(c.stream()) });
    return r.map(() => ({ status: this.answer(m), reply: 'test' }));
  }
}

// Up to 10 s: on a loaded machine (the whole suite on 2 cores) delivery and reclaim take a while.
const until = async (cond: () => boolean) => {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), 'condition not reached in time');
};

test('committed messages survive a restart and are delivered once', async () => {
  const dir = tmp();
  let { queue } = await open(dir);
  for (let i = 0; i < 5; i++) await queue.commit(msg(`M${i}`));
  await queue.stop(0);
  ({ queue } = await open(dir));
  assert.equal(queue.size, 5);
  const rec = new Recorder();
  queue.start(rec);
  await until(() => queue.size === 0);
  assert.deepEqual(rec.seen.map((s) => s.id).sort(), ['M0', 'M1', 'M2', 'M3', 'M4']);
  assert.equal(rec.seen[0]!.body, `Subject: ${rec.seen[0]!.id}\r\n\r\nhello ${rec.seen[0]!.id}\r\n`);
  await queue.stop(1000);
  ({ queue } = await open(dir));
  assert.equal(queue.size, 0, 'delivered messages are not delivered again after a clean stop');
  await queue.stop(0);
});

test('a torn record at the tail is cut off; earlier records are kept', async () => {
  const dir = tmp();
  let { queue } = await open(dir);
  await queue.commit(msg('KEEP'));
  await queue.stop(0);
  const seg = fs.readdirSync(dir).filter((n) => n.startsWith('seg-')).sort().at(-1)!;
  // A half-written record, as a crash in the middle of a write leaves it.
  fs.appendFileSync(path.join(dir, seg), Buffer.from('PQM\0\0\0\x10\0\0\0\0\x05{"id"'));
  const opened = await open(dir);
  queue = opened.queue;
  assert.equal(queue.size, 1);
  assert.ok(queue.get('KEEP'));
  assert.ok(opened.report.some((r) => r.includes('torn')));
  await queue.stop(0);
});

test('corruption inside an older segment is moved aside, not delivered', async () => {
  const dir = tmp();
  let { queue } = await open(dir, { segmentSize: 100 });
  await queue.commit(msg('A'));
  await queue.commit(msg('B'));
  await queue.stop(0);
  const segs = fs.readdirSync(dir).filter((n) => n.startsWith('seg-')).sort();
  assert.ok(segs.length >= 2);
  const first = path.join(dir, segs[0]!);
  const buf = fs.readFileSync(first);
  buf[buf.length - 20] ^= 0xff; // flip a byte inside the record's bytes
  fs.writeFileSync(first, buf);
  const opened = await open(dir, { segmentSize: 100 });
  assert.ok(!opened.queue.get('A'), 'the damaged message is not delivered half');
  assert.ok(opened.queue.get('B'));
  assert.equal(opened.report.length, 1);
  assert.ok(fs.readdirSync(path.join(dir, 'corrupt')).length === 1);
  await opened.queue.stop(0);
});

test('deferred messages keep their state across restarts; flush makes them due', async () => {
  const dir = tmp();
  let { queue } = await open(dir);
  await queue.commit(msg('D'));
  const rec = new Recorder(() => 'deferred');
  queue.start(rec);
  await until(() => rec.seen.length === 1 && !queue.get('D')!.active);
  assert.equal(queue.get('D')!.recipients[0]!.status, 'deferred');
  await queue.stop(0);
  ({ queue } = await open(dir));
  const d = queue.get('D')!;
  assert.equal(d.recipients[0]!.status, 'deferred');
  assert.equal(d.recipients[0]!.attempts, 1);
  assert.ok(d.nextAttempt > Date.now() + 30_000, 'the retry time survives the restart');
  const ok = new Recorder();
  queue.start(ok);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(ok.seen.length, 0);
  assert.equal(queue.flush(), 1);
  await until(() => queue.size === 0);
  await queue.stop(0);
});

test('old segments are dropped once empty; a long-deferred message is copied forward', async () => {
  const dir = tmp();
  const { queue } = await open(dir, { segmentSize: 400 });
  const rec = new Recorder((m) => (m.id === 'SLOW' ? 'deferred' : 'delivered'));
  queue.start(rec);
  await queue.commit(msg('SLOW'));
  for (let i = 0; i < 12; i++) await queue.commit(msg(`F${i}`));
  await until(() => queue.size === 1 && !queue.get('SLOW')!.active);
  await queue.commit(msg('LAST'));
  await until(() => queue.size === 1);
  // Reclaiming a segment follows the delivery that emptied it, asynchronously.
  const segs = () => fs.readdirSync(dir).filter((n) => n.startsWith('seg-')).length;
  await until(() => segs() <= 3);
  assert.ok(segs() <= 3, `segments are reclaimed (${segs()} left)`);
  await queue.stop(0);
  const again = await open(dir, { segmentSize: 400 });
  assert.deepEqual(again.queue.list().map((m) => m.id), ['SLOW']);
  await again.queue.stop(0);
});

test('permanent failures leave the queue and are reported to the finished hook', async () => {
  const dir = tmp();
  const finished: string[] = [];
  const { queue } = await open(dir, { events: { finished: (m, failed) => void finished.push(`${m.id}:${failed.length}`) } });
  queue.start(new Recorder(() => 'failed'));
  await queue.commit(msg('X'));
  await until(() => queue.size === 0);
  assert.deepEqual(finished, ['X:1']);
  await queue.stop(0);
});
