import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { TraceStore, parseTraceQuery, traceRecorder, type TraceEntry } from './trace-store.js';

const HOUR = 3_600_000;

function open(now: () => number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trace-'));
  return { store: TraceStore.open(TraceStore.fileIn(dir), { now }), dir };
}

const entry = (over: Partial<TraceEntry> = {}): TraceEntry => ({
  queueId: 'Q1', messageId: 'abc@x.example', sender: 'Sender@Example.NET', recipients: ['bob@example.test', 'Alice@example.test'],
  action: 'deliver', reply: '250 2.0.0', score: 1.5, size: 100, client: '192.0.2.1',
  symbols: [{ name: 'SPF_PASS', score: -0.1, reason: 'spf pass for example.net' }, { name: 'DNSBL_ZEN', score: 3, reason: 'listed' }], ...over,
});

test('records a decision and finds it by queue id, Message-ID, sender and recipient (case-insensitive addresses)', () => {
  let now = 100 * HOUR + 5;
  const { store } = open(() => now);
  const id = store.record(entry());
  store.record(entry({ queueId: 'Q2', messageId: 'other@x', sender: 'else@example.org', recipients: ['carol@second.test'] }));
  assert.deepEqual(store.find(parseTraceQuery('q1')).map((r) => r.id), [id]);
  assert.deepEqual(store.find(parseTraceQuery('<abc@x.example>')).map((r) => r.id), [id]);
  assert.deepEqual(store.find(parseTraceQuery('sender@example.net')).map((r) => r.id), [id]);
  assert.deepEqual(store.find(parseTraceQuery('ALICE@example.test')).map((r) => r.id), [id]);
  assert.equal(store.find(parseTraceQuery('nobody@example.test')).length, 0);
  assert.equal(store.find(parseTraceQuery('')).length, 2);
  const row = store.get(id)!;
  assert.equal(row.symbols[0]!.reason, 'spf pass for example.net');
  assert.deepEqual(row.recipients, ['bob@example.test', 'Alice@example.test']);
  now += 2 * HOUR;
  store.record(entry({ queueId: 'Q3', action: 'reject' }));
  const hours = store.hourly(3);
  assert.deepEqual(hours.map((h) => h.counts), [{ deliver: 2 }, {}, { reject: 1 }]);
  assert.deepEqual(store.topSymbols(0, 1), [{ name: 'DNSBL_ZEN', count: 3 }]);
  assert.deepEqual(store.topSymbols(now - HOUR, 5), [{ name: 'DNSBL_ZEN', count: 1 }, { name: 'SPF_PASS', count: 1 }]);
  store.close();
});

test('prune drops rows older than the retention, with their recipients and symbols', () => {
  let now = 1_000 * HOUR;
  const { store } = open(() => now);
  store.record(entry());
  now += 31 * 24 * HOUR;
  store.record(entry({ queueId: 'NEW' }));
  assert.equal(store.prune(30 * 24 * HOUR), 1);
  assert.equal(store.size, 1);
  assert.deepEqual(store.find(parseTraceQuery('bob@example.test')).map((r) => r.queueId), ['NEW']);
  assert.deepEqual(store.topSymbols(0, 10).map((s) => s.count), [1, 1]);
  store.close();
});

test('the session hook batches: nothing is lost, reads see the batch at once, and a fault goes to onError, never thrown', async () => {
  const { store } = open(Date.now);
  const errors: Error[] = [];
  const hook = traceRecorder(store, (e) => errors.push(e));
  for (let i = 0; i < 1200; i++) hook(entry({ queueId: `B${i}` }));
  assert.equal(store.size, 1200);
  hook(entry({ queueId: 'LATE' }));
  assert.equal(store.find(parseTraceQuery('late')).length, 1);
  store.close();
  // A closed store: the timed flush fails, reported, not thrown (the test would crash otherwise).
  hook(entry({ queueId: 'AFTER' }));
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(errors.length, 1, String(errors));
});
