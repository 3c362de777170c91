import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue, type Deliverer, type QueuedMessage, type QueuedRecipient } from './queue.js';
import { queueState, selects } from './hold.js';
import { silentLogger } from '../log.js';
import type { RecipientOutcome } from '../delivery/types.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'pq-hold-'));
let clock = 1_000_000;
const open = (dir: string) =>
  Queue.open({ dir, fsync: true, segmentSize: 1 << 20, concurrency: 4, retryInitial: 60_000, retryMax: 3_600_000, lifetime: 86_400_000, logger: silentLogger(), now: () => clock });
const msg = (id: string, user?: string, held?: { reason: string; since: number }) => ({
  id, sender: 's@x.test', meta: user ? { user, client: '192.0.2.7' } : {}, authenticated: !!user, size: 10, inline: [Buffer.from('Subject: x\r\n\r\nhi\r\n')],
  recipients: [{ address: 'a@far.test', destination: { kind: 'relay' as const, domain: 'far.test' } }],
  ...(held ? { held } : {}),
});

class Recorder implements Deliverer {
  seen: string[] = [];
  constructor(private readonly status: RecipientOutcome['status'] = 'delivered') {}
  async deliver(m: QueuedMessage, r: QueuedRecipient[]): Promise<RecipientOutcome[]> {
    this.seen.push(m.id);
    return r.map(() => ({ status: this.status, reply: 'test' }));
  }
}
const settle = () => new Promise((r) => setTimeout(r, 100));

test('a held message is kept, never delivered, survives a restart, and goes once released', async () => {
  const dir = tmp();
  let { queue } = await open(dir);
  await queue.commit(msg('H1', 'alice@x.test', { reason: 'spam score 9 (hold at 6)', since: clock }));
  await queue.commit(msg('H2', 'alice@x.test'));
  await queue.commit(msg('B1', 'bob@x.test'));
  assert.deepEqual(await queue.holdWhere((m) => selects({ user: 'ALICE@x.test' }, m), 'account locked: test'), ['H2']);
  await queue.stop(0);
  ({ queue } = await open(dir));
  assert.equal(queue.get('H1')?.held?.reason, 'spam score 9 (hold at 6)');
  assert.equal(queue.get('H2')?.held?.reason, 'account locked: test');
  assert.equal(queueState(queue.get('H2')!, clock), 'held');
  const rec = new Recorder();
  queue.start(rec);
  await settle();
  assert.deepEqual(rec.seen, ['B1'], 'only the message not on hold is delivered');
  assert.equal(queue.size, 2);
  // Far past queue.lifetime: a held message does not expire.
  clock += 10 * 86_400_000;
  queue.flush();
  await settle();
  assert.equal(queue.size, 2);
  assert.deepEqual(await queue.releaseWhere((m) => selects({ user: 'alice@x.test' }, m)), ['H1', 'H2']);
  await settle();
  assert.deepEqual(rec.seen.sort(), ['B1', 'H1', 'H2']);
  assert.equal(queue.size, 0);
  await queue.stop(100);
  ({ queue } = await open(dir));
  assert.equal(queue.size, 0, 'released and delivered messages do not come back after a restart');
  await queue.stop(0);
});

test('a released message gets queue.lifetime again from its release, not from its arrival', async () => {
  const dir = tmp();
  const { queue } = await open(dir);
  await queue.commit(msg('L1', 'alice@x.test', { reason: 'test', since: clock }));
  clock += 5 * 86_400_000;
  await queue.releaseWhere((m) => m.id === 'L1');
  const rec = new Recorder('deferred');
  queue.start(rec);
  await settle();
  const m = queue.get('L1');
  assert.ok(m, 'still queued: deferred, not expired');
  assert.equal(m.recipients[0]!.status, 'deferred');
  await queue.stop(0);
});

test('selectors: an unauthenticated message is never selected by user or client', () => {
  const m = { id: 'X', authenticated: false, meta: { user: 'a@x.test', client: '192.0.2.7' }, active: false, nextAttempt: 0 };
  assert.equal(selects({ user: 'a@x.test' }, m), false);
  assert.equal(selects({ client: '192.0.2.7' }, m), false);
  assert.equal(selects({ id: 'X' }, m), true);
  assert.equal(selects({ client: '192.0.2.7' }, { ...m, authenticated: true }), true);
});
