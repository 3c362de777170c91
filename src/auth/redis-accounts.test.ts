// The accounts in Redis (RedisAccounts under AccountStore): two stores on one Redis stand for two
// gateway nodes (or a node and the CLI). What one writes, the other answers at once; with Redis
// gone, every lookup is a temporary failure (AccountError UNAVAILABLE), never "no such user".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Redis } from 'ioredis';
import { AccountError, AccountStore } from './accounts.js';
import { RedisAccounts } from './redis-accounts.js';
import type { ScryptParams } from './password-hash.js';
import { REDIS_SERVER, startRedis, type RedisServer } from '../../test/store/redis-server.js';
import { strict } from '../../test/helpers/clients.js';
import { waitFor } from '../../test/helpers/wait.js';

const have = fs.existsSync(REDIS_SERVER);
if (!have && strict) throw new Error(`required tool missing: ${REDIS_SERVER} (apt-get install redis-server)`);
const skip = !have && 'redis-server not installed';

const FAST: ScryptParams = { ln: 10, r: 8, p: 1, saltBytes: 16, keyBytes: 32 };
const PW = 'Correct-horse-42-battery';
const PW2 = 'Another-staple-77-horse';
let server: RedisServer;
let run = 0;
before(async () => {
  if (have) server = await startRedis({ persist: true });
});
after(async () => {
  await server?.stop();
});

async function pair(prefix = `acct${++run}:`): Promise<[AccountStore, AccountStore, RedisAccounts]> {
  const ra = await RedisAccounts.open({ url: server.url(), prefix, timeoutMs: 300 }, true);
  const rb = await RedisAccounts.open({ url: server.url(), prefix, timeoutMs: 300 }, true);
  return [new AccountStore(ra, { hashParams: FAST }), new AccountStore(rb, { hashParams: FAST }), rb];
}

const unavailable = (e: unknown) => e instanceof AccountError && e.code === 'UNAVAILABLE';
const code = (c: string) => (e: unknown) => e instanceof AccountError && e.code === c;

test('redis accounts: a user, a password, an alias and settings written on one node count on the other at once', { skip }, async () => {
  const [a, b] = await pair();
  try {
    await a.addUser('Alice@Example.org', PW);
    // B has it as soon as A's write returned: the login reads Redis itself...
    assert.equal(await b.authenticate('alice@example.org', PW), true);
    assert.equal(await b.authenticate('alice@example.org', 'wrong-password-1'), false);
    // ...and the RCPT path's replica follows the change channel within a round trip.
    await waitFor('the user in B\'s replica', () => b.hasUser('alice@example.org'), { timeoutMs: 2000, intervalMs: 5 });
    assert.deepEqual(b.lookup('ALICE@example.org'), { kind: 'user' });
    assert.equal(b.hasUser('bob@example.org'), false, 'an unknown user is unknown, not an error, while Redis answers');

    await a.setPassword('alice@example.org', PW2);
    assert.equal(await b.authenticate('alice@example.org', PW), false, 'the old password stops working on B at once');
    assert.equal(await b.authenticate('alice@example.org', PW2), true);

    await b.addAlias('team@example.org', ['alice@example.org', 'partner@example.net']);
    await waitFor('the alias on A', () => a.lookup('team@example.org') !== undefined, { timeoutMs: 2000, intervalMs: 5 });
    assert.deepEqual(a.expand('team@example.org', (d) => d === 'example.org'), { users: ['alice@example.org'], external: ['partner@example.net'], unknown: [] });
    // The name check is atomic in Redis: a name taken on one node is refused on the other.
    await assert.rejects(a.addUser('team@example.org', PW), code('DUPLICATE'));
    await assert.rejects(b.addAlias('alice@example.org', ['x@example.net']), code('DUPLICATE'));

    await a.putSettingsJson('alice@example.org', '{"spam_filter":false}');
    await waitFor('the settings on B', () => b.getSettingsJson('alice@example.org') === '{"spam_filter":false}', { timeoutMs: 2000, intervalMs: 5 });
    assert.deepEqual(b.allSettingsJson(), [{ address: 'alice@example.org', settings: '{"spam_filter":false}' }]);
    await assert.rejects(a.putSettingsJson('nobody@example.org', '{}'), code('UNKNOWN_USER'));

    assert.deepEqual(b.listUsers().map((u) => u.address), ['alice@example.org']);
    assert.deepEqual(a.listAliases(), [{ address: 'team@example.org', targets: ['alice@example.org', 'partner@example.net'] }]);

    await b.deleteUser('alice@example.org');
    await waitFor('the deletion on A', () => !a.hasUser('alice@example.org'), { timeoutMs: 2000, intervalMs: 5 });
    assert.equal(a.getSettingsJson('alice@example.org'), undefined, 'settings go with the user');
    assert.equal(await a.authenticate('alice@example.org', PW2), false);
    await assert.rejects(a.deleteUser('alice@example.org'), code('UNKNOWN_USER'));
    await a.deleteAlias('team@example.org');
    await assert.rejects(b.deleteAlias('team@example.org'), code('UNKNOWN_ALIAS'));
  } finally {
    a.close();
    b.close();
  }
});

test('redis accounts: keys under one hash tag, documented shape; export and import round-trip', { skip }, async () => {
  const [a, b] = await pair('site-k:');
  const raw = new Redis(server.url());
  try {
    await a.addUser('carol@example.org', PW);
    await a.addAlias('help@example.org', ['carol@example.org']);
    await a.putSettingsJson('carol@example.org', '{"tag":3}');
    assert.match((await raw.hget('site-k:{acct}:users', 'carol@example.org'))!, /^\$scrypt\$|^scrypt|\$/);
    assert.equal(await raw.hget('site-k:{acct}:aliases', 'help@example.org'), '["carol@example.org"]');
    assert.equal(await raw.hget('site-k:{acct}:settings', 'carol@example.org'), '{"tag":3}');
    assert.ok(await raw.hget('site-k:{acct}:created', 'carol@example.org'));
    assert.deepEqual((await raw.keys('site-k:*')).sort(), ['site-k:{acct}:aliases', 'site-k:{acct}:created', 'site-k:{acct}:settings', 'site-k:{acct}:users']);
    assert.equal(await raw.pttl('site-k:{acct}:users'), -1, 'accounts never expire');

    const dump = await a.exportAll();
    assert.equal(dump.users.length, 1);
    const [c, d] = await pair('site-copy:');
    await c.importAll(dump);
    await waitFor('the copy reloaded on the other node', () => d.hasUser('carol@example.org'), { timeoutMs: 2000, intervalMs: 5 });
    assert.equal(await d.authenticate('carol@example.org', PW), true, 'the hash is copied as it is');
    assert.deepEqual(d.expand('help@example.org', () => true)?.users, ['carol@example.org']);
    assert.equal(d.getSettingsJson('carol@example.org'), '{"tag":3}');
    c.close();
    d.close();
  } finally {
    raw.disconnect();
    a.close();
    b.close();
  }
});

test('redis accounts: Redis gone = every lookup a temporary failure; back = answers again by itself', { skip }, async () => {
  const [a, b, rb] = await pair('outage:');
  try {
    await a.addUser('dave@example.org', PW);
    await waitFor('dave on B', () => b.hasUser('dave@example.org'), { timeoutMs: 2000, intervalMs: 5 });
    await server.kill();
    await waitFor('B notices', () => !rb.available, { timeoutMs: 5000, intervalMs: 10 });
    assert.throws(() => b.hasUser('dave@example.org'), unavailable);
    assert.throws(() => b.hasUser('unknown@example.org'), unavailable, 'an unknown user is not "unknown" while Redis is down');
    assert.throws(() => b.expand('dave@example.org', () => true), unavailable);
    assert.throws(() => b.getSettingsJson('dave@example.org'), unavailable);
    await assert.rejects(b.authenticate('dave@example.org', PW), unavailable, 'never a login without a checked password');
    await assert.rejects(b.authenticate('unknown@example.org', PW), unavailable);
    await assert.rejects(a.addUser('erin@example.org', PW), unavailable);

    await server.start();
    await waitFor('B back in sync', () => rb.available, { timeoutMs: 10_000, intervalMs: 20 });
    assert.equal(b.hasUser('dave@example.org'), true, 'the persisted user is back');
    assert.equal(await b.authenticate('dave@example.org', PW), true);
    await a.addUser('erin@example.org', PW);
    await waitFor('erin on B after the outage (resubscribed)', () => b.hasUser('erin@example.org'), { timeoutMs: 2000, intervalMs: 5 });
  } finally {
    a.close();
    b.close();
  }
});

test('redis accounts: the CLI refuses to run against a Redis that does not answer', { skip }, async () => {
  await assert.rejects(RedisAccounts.open({ url: 'redis://127.0.0.1:1/0', timeoutMs: 100 }, true), (e: unknown) => unavailable(e) && /could not be read/.test((e as Error).message));
});
