// `portcullis store migrate`: an embedded store's counters, blocks, rates and Bayes copied into
// Redis (idempotently), and back into a fresh embedded store — the values, expiries and Bayes
// counts arrive intact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { runCli, showCli } from '../helpers/gateway.js';
import { needRedis, startRedis } from './redis-server.js';
import { SqliteStore, stateFile } from '../../src/store/sqlite-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { RedisBayesStore } from '../../src/checks/bayes/redis-store.js';
import { SqliteBayesTokenStore, tokenHash } from '../../src/checks/bayes/store.js';
import { AccountStore, accountsFile } from '../../src/auth/accounts.js';
import { RedisAccounts } from '../../src/auth/redis-accounts.js';

const PW = 'Migrated-password-4711';
const FAST = { ln: 10, r: 8, p: 1, saltBytes: 16, keyBytes: 32 };

async function cli(args: string[]) {
  const r = await runCli(args);
  return { ...r, show: showCli(args, r) };
}

test('store migrate: SQLite → Redis (twice: nothing changes), then Redis → SQLite', { timeout: 120_000 }, async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis();
  t.after(() => redis.stop());
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'store-migrate-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const dirA = path.join(tmp, 'a');
  const dirB = path.join(tmp, 'b');
  const confA = path.join(tmp, 'a.yaml');
  const confB = path.join(tmp, 'b.yaml');
  fs.writeFileSync(confA, YAML.stringify({ hostname: 'mx.example.test', data_dir: dirA }));
  fs.writeFileSync(confB, YAML.stringify({ hostname: 'mx.example.test', data_dir: dirB, store: { backend: 'redis', url: redis.url(2), prefix: 'moved:' } }));

  // An embedded store with a counter, a block, a value without expiry and a rate.
  fs.mkdirSync(dirA, { recursive: true });
  const now = Date.now();
  const a = SqliteStore.open(stateFile(dirA), { purgeIntervalMs: 0 });
  await a.incr('bf:f:ip:192.0.2.7', 3_600_000, 4);
  await a.set('bf:b:ip:192.0.2.7', String(now + 900_000), 900_000);
  await a.set('bf:k:net:alice@example.test|192.0.2.0/24', '1', 0);
  for (let i = 0; i < 5; i++) await a.hit('rate:conn:ip:192.0.2.7', 3_600_000);
  await a.close();
  const bayesA = SqliteBayesTokenStore.open(path.join(dirA, 'bayes.sqlite'));
  await bayesA.learnMany([
    { sig: Buffer.alloc(20, 1), hashes: ['cheap', 'pills', 'now'].map(tokenHash), cls: 'spam' },
    { sig: Buffer.alloc(20, 2), hashes: ['meeting', 'notes', 'now'].map(tokenHash), cls: 'ham' },
  ]);
  await bayesA.close();
  const accA = AccountStore.open(accountsFile(dirA), { hashParams: FAST });
  await accA.addUser('alice@example.test', PW);
  await accA.addAlias('team@example.test', ['alice@example.test', 'partner@example.net']);
  await accA.putSettingsJson('alice@example.test', '{"spam_filter":false}');
  accA.close();

  const url = redis.url(2);
  const first = await cli(['store', 'migrate', '--to', url, '--json', '--config', confA]);
  assert.equal(first.code, 0, first.show);
  const counts = JSON.parse(first.stdout);
  assert.deepEqual({ ...counts, from: undefined, to: undefined },
    { from: undefined, to: undefined, values: 3, rates: 1, bayesTokens: 5, bayesMessages: 2, bayesTotals: { spam: 1, ham: 1 }, users: 1, aliases: 1, userSettings: 1 });
  assert.match(counts.to, /^redis:\/\/127\.0\.0\.1:\d+\/2 \(prefix portcullis:\)$/);

  // Run twice: the same counts, and the counter is not doubled.
  const second = await cli(['store', 'migrate', '--to', url, '--json', '--config', confA]);
  assert.equal(second.code, 0, second.show);
  assert.deepEqual(JSON.parse(second.stdout), counts);
  const r = await RedisStore.open({ url, prefix: 'portcullis:' }, true);
  try {
    assert.equal(await r.get('bf:f:ip:192.0.2.7'), 4);
    const ttl = (await r.ttl('bf:f:ip:192.0.2.7'))!;
    assert.ok(ttl > 3_500_000 && ttl <= 3_600_000, `the fixed window keeps its end: ${ttl}`);
    assert.equal(await r.getValue('bf:b:ip:192.0.2.7'), String(now + 900_000));
    assert.equal(await r.ttl('bf:k:net:alice@example.test|192.0.2.0/24'), Infinity);
    assert.equal(await r.hit('rate:conn:ip:192.0.2.7', 3_600_000), 6, 'the rate goes on from its copied buckets');
  } finally {
    await r.close();
  }
  const rb = new RedisBayesStore({ url, prefix: 'portcullis:' });
  try {
    assert.deepEqual((await rb.lookup(['now', 'cheap', 'never'].map(tokenHash))).map((c) => c && { spam: c.spam, ham: c.ham }),
      [{ spam: 1, ham: 1 }, { spam: 1, ham: 0 }, undefined]);
    assert.equal(await rb.learnedAs(Buffer.alloc(20, 1)), 'spam');
  } finally {
    await rb.close();
  }

  const ra = new AccountStore(await RedisAccounts.open({ url, prefix: 'portcullis:' }, true));
  try {
    assert.equal(await ra.authenticate('alice@example.test', PW), true, 'the password hash arrives as it was: the password still works');
    assert.deepEqual(ra.expand('team@example.test', (d) => d === 'example.test'), { users: ['alice@example.test'], external: ['partner@example.net'], unknown: [] });
    assert.equal(ra.getSettingsJson('alice@example.test'), '{"spam_filter":false}');
  } finally {
    ra.close();
  }

  // Back: a node configured on Redis (prefix moved:) copies into its embedded files.
  const seedAcc = new AccountStore(await RedisAccounts.open({ url, prefix: 'moved:' }, true), { hashParams: FAST });
  await seedAcc.addUser('bob@example.test', PW);
  seedAcc.close();
  const seed = await RedisStore.open({ url, prefix: 'moved:' }, true);
  await seed.set('greet:pass:198.51.100.9', '1', 86_400_000);
  await seed.incr('bf:f:acct:bob@example.test', 3_600_000, 2);
  await seed.close();
  const back = await cli(['store', 'migrate', '--to', 'sqlite', '--config', confB]);
  assert.equal(back.code, 0, back.show);
  assert.match(back.stdout, /copied 2 values and counters, 0 rates from redis:\/\/127\.0\.0\.1:\d+\/2 \(prefix moved:\) to .*state\.db/);
  assert.match(back.stdout, /Bayes: 0 tokens, 0 learned messages/);
  assert.match(back.stdout, /copied accounts: 1 users, 0 aliases, 0 users' spam settings/);
  const accB = AccountStore.open(accountsFile(dirB));
  try {
    assert.equal(await accB.authenticate('bob@example.test', PW), true, 'the user from Redis logs in from accounts.db');
  } finally {
    accB.close();
  }
  const b = SqliteStore.open(stateFile(dirB), { purgeIntervalMs: 0 });
  try {
    assert.equal(await b.get('bf:f:acct:bob@example.test'), 2);
    assert.equal(await b.getValue('greet:pass:198.51.100.9'), '1');
  } finally {
    await b.close();
  }

  // Bad requests get a clear answer.
  const same = await cli(['store', 'migrate', '--to', 'sqlite', '--config', confA]);
  assert.equal(same.code, 2);
  assert.match(same.stderr, /already the configured backend/);
  const bad = await cli(['store', 'migrate', '--to', 'mysql://x', '--config', confA]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--to must be "sqlite", "redis" \(the Redis configured in store.url, store.sentinel or store.cluster\) or a Redis URL/);
  const down = await cli(['store', 'migrate', '--to', 'redis://127.0.0.1:1/0', '--config', confA]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /did not answer/);
});
