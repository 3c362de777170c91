import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import client from 'prom-client';
import { SqliteStore } from '../../store/sqlite-store.js';
import { Queue, type QueuedMessage } from '../../queue/queue.js';
import { silentLogger } from '../../log.js';
import { outboundContentConfigSchema, outboundLimitsConfigSchema } from './config.js';
import { OutboundGuard } from './limits.js';
import { HOUR } from './windows.js';

async function setup(limits: Record<string, unknown>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ob-guard-'));
  const clock = { t: 1_000 * 24 * HOUR + 10 * HOUR };
  const store = SqliteStore.open(path.join(dir, 'state.db'), { now: () => clock.t });
  const { queue } = await Queue.open({
    dir: path.join(dir, 'queue'), fsync: false, segmentSize: 1 << 20, concurrency: 1, retryInitial: 60_000, retryMax: 60_000,
    lifetime: 86_400_000, logger: silentLogger(), now: () => clock.t,
  });
  const alerts: { to: string; text: string }[] = [];
  const registry = new client.Registry();
  const guard = new OutboundGuard({
    store, queue, registry, logger: silentLogger(), hostname: 'mx.example.test', alertTo: 'postmaster@example.test',
    config: outboundLimitsConfigSchema.parse(limits), content: outboundContentConfigSchema.parse({}),
    alert: async (to, message) => void alerts.push({ to, text: message.toString('latin1') }), now: () => clock.t,
  });
  const close = async () => {
    await queue.stop(0);
    await store.close();
  };
  return { clock, store, queue, guard, alerts, registry, close };
}

const rcpts = (n: number, tag = 'r') => Array.from({ length: n }, (_, k) => `${tag}${k}@far.test`);
const queued = (id: string, user: string, client = '192.0.2.7') => ({
  id, sender: user, meta: { user, client }, authenticated: true, size: 10, inline: [Buffer.from('Subject: x\r\n\r\nx\r\n')],
  recipients: [{ address: 'x@far.test', destination: { kind: 'relay' as const, domain: 'far.test' } }],
});

test('per-IP limit: the client address is locked, for every user behind it; one alert; unlock gives a fresh start', async () => {
  const { guard, alerts, queue, close } = await setup({ ip: { messages_per_hour: 3 } });
  await queue.commit(queued('Q1', 'bob@example.test', '192.0.2.7'));
  await queue.commit(queued('Q2', 'carol@example.test', '198.51.100.1'));
  for (const [k, user] of ['alice', 'bob', 'carol'].entries()) {
    assert.deepEqual(await guard.submitted({ id: `M${k}`, user: `${user}@example.test`, ip: '192.0.2.7', recipients: ['x@far.test'] }), { kind: 'accept' });
  }
  const s = await guard.submitted({ id: 'M4', user: 'dave@example.test', ip: '192.0.2.7', recipients: ['x@far.test'] });
  assert.equal(s.kind, 'hold');
  assert.equal((s as { code: string }).code, 'ip_messages_per_hour');
  const r = await guard.suspended('alice@example.test', '192.0.2.7');
  assert.equal(r?.code, 451);
  assert.equal(r?.text, 'sending from 192.0.2.7 is suspended: 4 messages in the last hour exceed the limit of 3; ask your administrator');
  assert.equal(await guard.suspended('alice@example.test', '203.0.113.5'), undefined, 'the same user elsewhere may send');
  assert.ok(queue.get('Q1')?.held, 'queued mail from that address is held');
  assert.equal(queue.get('Q2')?.held, undefined, 'mail from other addresses is not');
  // A second trip while locked: no second alert.
  await guard.submitted({ id: 'M5', user: 'erin@example.test', ip: '192.0.2.7', recipients: ['x@far.test'] });
  assert.equal(alerts.length, 1);
  assert.equal(alerts[0]!.to, 'postmaster@example.test');
  assert.match(alerts[0]!.text, /^Subject: Outbound mail of 192\.0\.2\.7 suspended: ip_messages_per_hour\r$/m);
  assert.match(alerts[0]!.text, /portcullis user unlock 192\.0\.2\.7/);
  assert.deepEqual((await guard.locks()).map((l) => l.subject), ['ip:192.0.2.7']);
  assert.equal(await guard.unlock({ ip: '192.0.2.7' }), true);
  assert.equal(await guard.suspended('alice@example.test', '192.0.2.7'), undefined);
  assert.deepEqual(await guard.submitted({ id: 'M6', user: 'alice@example.test', ip: '192.0.2.7', recipients: ['x@far.test'] }), { kind: 'accept' },
    'the windows were reset: the next message does not trip again at once');
  assert.equal(await guard.unlock({ ip: '192.0.2.7' }), false);
  await close();
});

test('lock_action tempfail refuses the tripping message with the 451; the window slides and a day later it counts afresh', async () => {
  const { guard, clock, close } = await setup({ user: { recipients_per_hour: 10 }, lock_action: 'tempfail' });
  assert.equal((await guard.submitted({ id: 'A', user: 'a@example.test', ip: '192.0.2.1', recipients: rcpts(10) })).kind, 'accept');
  const s = await guard.submitted({ id: 'B', user: 'a@example.test', ip: '192.0.2.1', recipients: rcpts(1, 'x') });
  assert.equal(s.kind, 'refuse');
  assert.equal((s as { reply: { text: string } }).reply.text, '<a@example.test> sending is suspended: 11 recipients in the last hour exceed the limit of 10; ask your administrator');
  // The lock does not expire by itself.
  clock.t += 48 * HOUR;
  assert.ok(await guard.suspended('a@example.test', '192.0.2.1'));
  await guard.unlock({ user: 'a@example.test' });
  // Another user, the sliding window: 10 now, 2 hours later the hour holds none of them.
  assert.equal((await guard.submitted({ id: 'C', user: 'b@example.test', ip: '192.0.2.2', recipients: rcpts(10) })).kind, 'accept');
  clock.t += 2 * HOUR;
  assert.equal((await guard.submitted({ id: 'D', user: 'b@example.test', ip: '192.0.2.2', recipients: rcpts(10, 'y') })).kind, 'accept');
  await close();
});

test('first-time recipients per day, spam holds, and delivery failures lock the user', async () => {
  const { guard, alerts, registry, close } = await setup({ new_recipients_per_day: 5, baseline: { min_failures: 3, spam_holds_per_day: 2 } });
  assert.equal((await guard.submitted({ id: 'N1', user: 'n@example.test', ip: '192.0.2.3', recipients: rcpts(5) })).kind, 'accept');
  assert.equal((await guard.submitted({ id: 'N2', user: 'n@example.test', ip: '192.0.2.3', recipients: rcpts(5) })).kind, 'accept', 'known recipients are not new');
  const n = await guard.submitted({ id: 'N3', user: 'n@example.test', ip: '192.0.2.3', recipients: rcpts(1, 'fresh') });
  assert.equal((n as { code: string }).code, 'new_recipients_per_day');

  const spam = { reason: 'spam score 9 (hold at 6)' };
  const s1 = await guard.submitted({ id: 'S1', user: 's@example.test', ip: '192.0.2.4', recipients: ['x@far.test'], spamHold: spam });
  assert.deepEqual([s1.kind, (s1 as { code: string }).code], ['hold', 'spam']);
  assert.equal(await guard.suspended('s@example.test', '192.0.2.4'), undefined, 'one spam hold does not lock');
  const s2 = await guard.submitted({ id: 'S2', user: 's@example.test', ip: '192.0.2.4', recipients: ['x@far.test'], spamHold: spam });
  assert.equal((s2 as { code: string }).code, 'spam_holds');
  assert.ok(await guard.suspended('s@example.test', '192.0.2.4'));

  const m = queued('F1', 'f@example.test') as unknown as QueuedMessage;
  await guard.outcome(m, true);
  for (let k = 0; k < 3; k++) await guard.outcome(m, false);
  const lock = await guard.lockOf({ user: 'f@example.test' });
  assert.equal(lock?.code, 'baseline_failures');
  assert.equal(lock?.reason, '3 of 4 deliveries today failed (more than 50%)');
  // A message that passed MAIL before the lock and ends its DATA after it is held too.
  const inFlight = await guard.submitted({ id: 'F2', user: 'f@example.test', ip: '192.0.2.5', recipients: ['y@far.test'] });
  assert.equal(inFlight.kind, 'hold');
  assert.equal((inFlight as { code: string }).code, 'account_locked');
  assert.equal((inFlight as { held: { reason: string } }).held.reason, 'account locked: 3 of 4 deliveries today failed (more than 50%)');
  assert.equal(alerts.length, 3, 'one alert per lock');
  const text = await registry.metrics();
  assert.match(text, /^portcullis_accounts_locked 3$/m);
  assert.match(text, /^portcullis_outbound_held_total\{reason="spam"\} 1$/m);
  assert.match(text, /^portcullis_outbound_held_total\{reason="spam_holds"\} 1$/m);
  await close();
});

test('disabled: nothing is counted or locked, the content hold still applies', async () => {
  const { guard, close } = await setup({ enabled: false, user: { messages_per_hour: 1 } });
  for (let k = 0; k < 3; k++) assert.equal((await guard.submitted({ id: `D${k}`, user: 'd@example.test', ip: '192.0.2.9', recipients: ['x@far.test'] })).kind, 'accept');
  assert.equal(await guard.suspended('d@example.test', '192.0.2.9'), undefined);
  const s = await guard.submitted({ id: 'DS', user: 'd@example.test', ip: '192.0.2.9', recipients: ['x@far.test'], spamHold: { reason: 'spam score 7 (hold at 6)' } });
  assert.equal(s.kind, 'hold');
  await close();
});
