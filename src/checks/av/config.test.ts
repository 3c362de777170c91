import { test } from 'node:test';
import assert from 'node:assert/strict';
import { archiveConfigSchema, archiveLimits, avConfigSchema } from './config.js';

test('antivirus: defaults, units, and errors that name the key', () => {
  const d = avConfigSchema.parse(undefined);
  assert.deepEqual(d, { enabled: false, clamd: '/run/clamav/clamd.ctl', timeout: 30_000, max_stream: 25 * 1024 * 1024, max_concurrency: 8, quarantine: false });
  const c = avConfigSchema.parse({ enabled: true, clamd: '127.0.0.1:3310', timeout: '5s', max_stream: '10MiB', quarantine: '/var/q' });
  assert.equal(c.timeout, 5000);
  assert.equal(c.max_stream, 10 * 1024 * 1024);
  // The old meaning (a folder of copies) is still accepted: the gateway reads it as true, with a warning.
  assert.equal(c.quarantine, '/var/q');
  assert.equal(avConfigSchema.parse({ quarantine: true }).quarantine, true);
  assert.equal(avConfigSchema.safeParse({ quarantine: '' }).success, false);
  for (const bad of [{ clamd: 'localhost' }, { max_concurrency: 0 }, { timeout: 'soon' }, { colour: 'blue' }]) {
    const r = avConfigSchema.safeParse(bad);
    assert.equal(r.success, false, JSON.stringify(bad));
    assert.ok(r.error!.issues[0]!.path.length > 0 || /colour/.test(r.error!.message), r.error!.message);
  }
});

test('archives: defaults and the limits they give the inspector', () => {
  const a = archiveConfigSchema.parse({});
  assert.equal(a.executable_inside, 'strip');
  assert.equal(a.encrypted, 'score');
  assert.deepEqual(archiveLimits(archiveConfigSchema.parse({ max_depth: 2, max_total_size: '1MiB', time_limit: '500ms' })), {
    maxDepth: 2, maxEntries: 1000, maxTotalSize: 1024 * 1024, maxRatio: 100, maxEntrySize: 10 * 1024 * 1024, maxPasswords: 20, timeLimitMs: 500,
  });
  assert.equal(archiveConfigSchema.safeParse({ max_depth: 0 }).success, false);
  assert.equal(archiveConfigSchema.safeParse({ executable_inside: 'defang' }).success, false);
  // Refusing moved to policy.actions (ARCHIVE_EXE: reject); the config loader maps the old value.
  assert.equal(archiveConfigSchema.safeParse({ executable_inside: 'reject' }).success, false);
});
