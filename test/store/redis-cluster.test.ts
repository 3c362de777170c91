// The Redis backend on a real Redis Cluster (three masters, `redis-cli --cluster create`): every
// store behaviour the single server has — the StateStore contract (brute-force counters, blocks,
// rate windows), the Bayes tokens, the accounts with their Lua writes and change channel — and
// then two gateway nodes configured with `store.cluster` sharing a block and a rate limit.
// Keys a script or a MULTI touches together carry one hash tag (`{acct}`, `{bayes}`), so no
// command is refused CROSSSLOT; the state store's keys are one per call and spread over the
// masters (checked below, so that this test really exercises the routing).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from 'ioredis';
import { RedisStore } from '../../src/store/redis-store.js';
import { storeContract } from '../../src/store/store-contract.js';
import { RedisBayesStore } from '../../src/checks/bayes/redis-store.js';
import { tokenHash } from '../../src/checks/bayes/store.js';
import { AccountStore } from '../../src/auth/accounts.js';
import { RedisAccounts } from '../../src/auth/redis-accounts.js';
import type { ScryptParams } from '../../src/auth/password-hash.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { strict } from '../helpers/clients.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { SqliteStore, stateFile } from '../../src/store/sqlite-store.js';
import { accountsFile } from '../../src/auth/accounts.js';
import { Quarantine } from '../../src/quarantine/quarantine.js';
import { quarantineConfigSchema } from '../../src/quarantine/config.js';
import { SharedQuarantineIndex } from '../../src/quarantine/shared-index.js';
import { silentLogger } from '../../src/log.js';
import { runCli, showCli } from '../helpers/gateway.js';
import { REDIS_CLI, REDIS_SERVER, redisCli, startRedisCluster, type RedisClusterSet } from './redis-server.js';
import { authCode, greeting } from './node-clients.js';

const have = fs.existsSync(REDIS_SERVER) && fs.existsSync(REDIS_CLI);
if (!have && strict) throw new Error(`required tools missing: ${REDIS_SERVER}, ${REDIS_CLI} (apt-get install redis-server)`);
const skip = !have && 'redis-server / redis-cli not installed';

let cluster: RedisClusterSet;
let run = 0;
before(async () => {
  if (have) cluster = await startRedisCluster(3);
});
after(async () => {
  await cluster?.stop();
});

const fresh = (what: string) => `${what}${++run}:`;
const opts = (prefix: string) => ({ url: 'redis://127.0.0.1:6379/0', cluster: { nodes: cluster.seeds }, prefix, timeoutMs: 1000 });

if (have) {
  storeContract('redis cluster', {
    async open(clock) {
      return RedisStore.open({ ...opts(fresh('c')), now: () => clock.t }, true);
    },
    async openPair() {
      const prefix = fresh('cp');
      return [await RedisStore.open(opts(prefix), true), await RedisStore.open(opts(prefix), true)];
    },
  });
}

test('redis cluster: the state store\'s keys spread over every master, and scan and dump find them all', { skip }, async () => {
  const store = await RedisStore.open(opts('spread:'), true);
  try {
    for (let i = 0; i < 60; i++) {
      await store.incr(`bf:f:ip:192.0.2.${i}`, 600_000);
      await store.hit(`rate:conn:ip:192.0.2.${i}`, 600_000);
    }
    const perNode = await Promise.all(cluster.nodes.map(async (n) => Number(await redisCli(n.port, 'dbsize'))));
    assert.ok(perNode.every((k) => k > 0), `keys on every master: ${perNode.join(', ')}`);
    const scanned = await store.scan('bf:f:ip:');
    assert.equal(scanned.length, 60, 'scan asks every master');
    let dumped = 0;
    for await (const _ of store.dump()) dumped++;
    assert.equal(dumped, 120);
  } finally {
    await store.close();
  }
});

test('redis cluster: Bayes learns, relearns, forgets, expires and dumps on a cluster; a second node reads the same tokens', { skip }, async () => {
  const prefix = fresh('bayes');
  let t = 1_700_000_000_000;
  const a = new RedisBayesStore({ ...opts(prefix), now: () => t });
  const b = new RedisBayesStore({ ...opts(prefix), now: () => t });
  const H = (...xs: string[]) => xs.map(tokenHash);
  const sig = (s: string) => Buffer.from(s.padEnd(20, '.'));
  try {
    assert.deepEqual(await a.learnMany([
      { sig: sig('m1'), hashes: H('cheap', 'pills', 'shared'), cls: 'spam' },
      { sig: sig('m2'), hashes: H('meeting', 'notes', 'shared'), cls: 'ham' },
    ]), ['learned', 'learned']);
    // The same message from the other node is counted once (the script's signature check).
    assert.deepEqual(await b.learnMany([{ sig: sig('m1'), hashes: H('cheap', 'pills', 'shared'), cls: 'spam' }]), ['already']);
    assert.deepEqual((await b.lookup(H('cheap', 'shared', 'never'))).map((c) => c && [c.spam, c.ham]), [[1, 0], [1, 1], undefined]);
    assert.deepEqual({ ...(await b.totals()), lastExpire: 0 }, { spam: 1, ham: 1, lastExpire: 0 });
    assert.deepEqual(await b.learnMany([{ sig: sig('m2'), hashes: H('meeting', 'notes', 'shared'), cls: 'spam' }]), ['relearned']);
    assert.deepEqual((await a.lookup(H('meeting', 'shared'))).map((c) => c && [c.spam, c.ham]), [[1, 0], [2, 0]]);
    assert.equal(await a.forget(sig('m1'), H('cheap', 'pills', 'shared')), true);
    assert.deepEqual({ ...(await a.totals()), lastExpire: 0 }, { spam: 1, ham: 0, lastExpire: 0 });
    await a.touch(H('meeting'));
    t += 40 * 86_400_000;
    await a.learnMany([{ sig: sig('m3'), hashes: H('fresh'), cls: 'ham' }]);
    const expired = await b.expire(30);
    assert.equal(expired.done, true);
    assert.equal(expired.tokens, 3, 'meeting, notes, shared are older than 30 days');
    assert.equal(await b.tokenCount(), 1);
    const dump: unknown[] = [];
    for await (const e of a.dump()) dump.push(e);
    assert.equal(dump.filter((e) => (e as { kind: string }).kind === 'token').length, 1);
    // restore into another prefix (what `store migrate` does) on the cluster
    const c = new RedisBayesStore(opts(fresh('bayes')));
    try {
      await c.restore(dump as never);
      assert.equal(await c.tokenCount(), 1);
      assert.equal((await c.totals()).ham, 1);
    } finally {
      await c.close();
    }
  } finally {
    await a.close();
    await b.close();
  }
});

test('redis cluster: a plain url pointed at one node of the cluster is refused with what to configure instead', { skip }, async () => {
  const store = await RedisStore.open({ url: `redis://127.0.0.1:${cluster.seeds[0]!.port}/0`, prefix: fresh('plain'), timeoutMs: 1000 }, true);
  try {
    const errors: string[] = [];
    for (let i = 0; i < 12; i++) {
      await store.set(`k${i}`, 'x', 0).catch((e: Error) => errors.push(e.message));
      await store.incr(`n${i}`, 0).catch((e: Error) => errors.push(e.message));
    }
    assert.ok(errors.length > 0, 'most keys live on other nodes');
    for (const m of errors) assert.match(m, /the server is a node of a Redis Cluster \(it answered MOVED\): list the cluster's nodes in store\.cluster\.nodes/);
  } finally {
    await store.close();
  }
});

const FAST: ScryptParams = { ln: 10, r: 8, p: 1, saltBytes: 16, keyBytes: 32 };

test('redis cluster: accounts written on one node count on the other (Lua writes, change channel), restore in one MULTI', { skip }, async () => {
  const prefix = fresh('acct');
  const ra = await RedisAccounts.open({ ...opts(prefix) }, true);
  const rb = await RedisAccounts.open({ ...opts(prefix) }, true);
  const a = new AccountStore(ra, { hashParams: FAST });
  const b = new AccountStore(rb, { hashParams: FAST });
  try {
    await a.addUser('alice@example.org', 'Correct-horse-42-battery');
    assert.equal(await b.authenticate('alice@example.org', 'Correct-horse-42-battery'), true);
    await waitFor('the user in B\'s replica (change channel through the cluster)', () => b.hasUser('alice@example.org'), { timeoutMs: 3000, intervalMs: 5 });
    await a.setPassword('alice@example.org', 'Another-staple-77-horse');
    assert.equal(await b.authenticate('alice@example.org', 'Correct-horse-42-battery'), false);
    await b.addAlias('team@example.org', ['alice@example.org']);
    await waitFor('the alias on A', () => a.lookup('team@example.org') !== undefined, { timeoutMs: 3000, intervalMs: 5 });
    await a.putSettingsJson('alice@example.org', '{"spam_filter":false}');
    await waitFor('the settings on B', () => b.getSettingsJson('alice@example.org') === '{"spam_filter":false}', { timeoutMs: 3000, intervalMs: 5 });
    const dump = await a.exportAll();
    await b.deleteAlias('team@example.org');
    await b.deleteUser('alice@example.org');
    await waitFor('the deletion on A', () => !a.hasUser('alice@example.org') && a.lookup('team@example.org') === undefined, { timeoutMs: 3000, intervalMs: 5 });
    await rb.restore(dump);
    await waitFor('the restore on A (full reload on "*")', () => a.hasUser('alice@example.org') && a.lookup('team@example.org') !== undefined, { timeoutMs: 3000, intervalMs: 5 });
    assert.equal(await a.authenticate('alice@example.org', 'Another-staple-77-horse'), true);
  } finally {
    a.close();
    b.close();
  }
  // All account keys sit in one slot (the {acct} tag): one master holds them all.
  const raw = new Cluster(cluster.seeds);
  try {
    const slots = new Set(await Promise.all(['users', 'aliases', 'created', 'settings'].map((k) => raw.cluster('KEYSLOT', `${prefix}{acct}:${k}`))));
    assert.equal(slots.size, 1);
  } finally {
    raw.disconnect();
  }
});

const USER = 'shared@example.test';
const PASSWORD = 'Cluster-nodes-pw-6161';

const login = (gw: Gateway, localAddress: string, password: string) => authCode(gw, localAddress, USER, password);

test('redis cluster: two gateway nodes with store.cluster share a login block, the account and a rate limit', { skip, timeout: 180_000 }, async (t) => {
  const node = (first: boolean) => startGateway({
    users: first ? { [USER]: PASSWORD } : undefined,
    config: {
      store: { backend: 'redis', cluster: { nodes: cluster.seeds }, prefix: 'site:', timeout: '1s' },
      auth: { brute_force: { pair_limit: 3, ip_limit: 1000, net_limit: 1_000_000, base_delay: '1ms', max_delay: '5ms', block_time: '10m' } },
      limits: { connection_rate_per_ip: 6, window: '1h' },
      smtp: { max_errors: 1000 }, tarpit: { errors: 0 },
      log: { level: 'info' },
    },
  });
  const a = await node(true);
  t.after(() => a.cleanup());
  const b = await node(false);
  t.after(() => b.cleanup());
  assert.ok(a.logs.some((l) => l.event === 'store_open' && /^cluster /.test(String(l.store))), 'node A opened the cluster store');

  for (let i = 0; i < 3; i++) assert.equal(await login(a, '127.0.0.61', `guess-${i}`), 535);
  await waitFor('the pair block on node A', () => a.logs.find((l) => l.event === 'auth_block' && l.scope === 'pair' && l.ip === '127.0.0.61'));
  assert.equal(await login(b, '127.0.0.61', PASSWORD), 535, 'blocked on B by what happened on A');
  assert.equal(await login(b, '127.0.0.62', PASSWORD), 235, 'the account added through A logs in on B');
  const status = (await b.cliOk(['auth', 'status', '127.0.0.61'])).stdout;
  assert.match(status, /BLOCKED until\s+pair\s+127\.0\.0\.61\|shared@example\.test/, status);

  for (let i = 0; i < 6; i++) assert.match(await greeting(i % 2 ? b : a, '127.0.0.63'), /^220 /);
  assert.match(await greeting(b, '127.0.0.63'), /^421 4\.7\.0 /, 'the seventh connection, across both nodes, is refused');
  assert.match(await greeting(a, '127.0.0.64'), /^220 /);
  assert.ok(![...a.logs, ...b.logs].some((l) => /CROSSSLOT|store_degraded|accounts_unavailable/.test(JSON.stringify(l))), 'no CROSSSLOT refusal, no fallback to memory');
});

test('redis cluster: `store migrate --to redis` copies an embedded store into the cluster of store.cluster', { skip, timeout: 60_000 }, async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster-migrate-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const dir = path.join(tmp, 'data');
  fs.mkdirSync(dir);
  const st = SqliteStore.open(stateFile(dir), { purgeIntervalMs: 0 });
  for (let i = 0; i < 20; i++) await st.incr(`bf:f:ip:198.51.100.${i}`, 3_600_000, i + 1);
  await st.close();
  const acc = AccountStore.open(accountsFile(dir), { hashParams: FAST });
  await acc.addUser('moved@example.org', 'Shifted-into-cluster-55');
  acc.close();
  const prefix = fresh('mig');
  const conf = path.join(tmp, 'portcullis.yaml');
  // Still the embedded backend: the cluster section says where `--to redis` writes.
  fs.writeFileSync(conf, YAML.stringify({ hostname: 'mx.example.test', data_dir: dir, store: { backend: 'sqlite', cluster: { nodes: cluster.seeds }, prefix } }));
  const r = await runCli(['store', 'migrate', '--to', 'redis', '--json', '--config', conf]);
  assert.equal(r.code, 0, showCli(['store', 'migrate'], r));
  const counts = JSON.parse(r.stdout) as { values: number; users: number; to: string };
  assert.equal(counts.values, 20);
  assert.equal(counts.users, 1);
  assert.match(counts.to, /^cluster 127\.0\.0\.1:\d+/);
  const store = await RedisStore.open(opts(prefix), true);
  const accounts = new AccountStore(await RedisAccounts.open(opts(prefix), true), { hashParams: FAST });
  try {
    for (let i = 0; i < 20; i++) assert.equal(await store.get(`bf:f:ip:198.51.100.${i}`), i + 1);
    assert.equal(await accounts.authenticate('moved@example.org', 'Shifted-into-cluster-55'), true);
  } finally {
    await store.close();
    accounts.close();
  }
  const perNode = await Promise.all(cluster.nodes.map(async (n) => Number(await redisCli(n.port, 'dbsize'))));
  assert.ok(perNode.filter((k) => k > 0).length >= 2, `copied across the masters: ${perNode.join(', ')}`);
  // Once store.backend is redis, `--to redis` is the configured backend: refused, nothing copied.
  fs.writeFileSync(conf, YAML.stringify({ hostname: 'mx.example.test', data_dir: dir, store: { backend: 'redis', cluster: { nodes: cluster.seeds }, prefix } }));
  const again = await runCli(['store', 'migrate', '--to', 'redis', '--config', conf]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already the configured backend/);
});

test('redis cluster: the quarantine index shared through the cluster (one stream under {quar}): listed and released across nodes', { skip, timeout: 60_000 }, async (t) => {
  const prefix = fresh('quar');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster-quar-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const released: string[] = [];
  const open = (name: string) => {
    const q = Quarantine.open({
      dataDir: path.join(tmp, name), config: quarantineConfigSchema.parse({}), logger: silentLogger(), fsync: false, expireIntervalMs: 0, shared: true,
      releaser: async ({ recipients }) => recipients.map((r) => {
        released.push(`${name}:${r.address}`);
        return { address: r.address, status: 'delivered' as const, reply: 'ok' };
      }),
    });
    const share = SharedQuarantineIndex.start(q, { ...opts(prefix), logger: silentLogger(), maxAgeMs: 86_400_000, hostname: name });
    return { q, share };
  };
  const a = open('a');
  const b = open('b');
  t.after(async () => {
    await a.share.close();
    await b.share.close();
    a.q.close();
    b.q.close();
  });
  const id = await a.q.add({ reason: 'policy_band', sender: 's@example.net', recipients: ['u@example.org'], symbols: [] }, Buffer.from('Subject: on the cluster\r\n\r\nbody\r\n'));
  await waitFor('listed on B', () => b.q.get(id) !== undefined, { timeoutMs: 10_000 });
  assert.equal(b.q.get(id)!.node, a.share.node);
  assert.deepEqual(b.q.list({ search: 'on the cluster' }).items.map((i) => i.id), [id]);
  const r = await b.q.release(id, { by: 'admin' });
  assert.deepEqual(r.recipients.map((x) => x.status), ['delivered']);
  assert.deepEqual(released, ['a:u@example.org'], 'released by the holder');
  assert.equal(b.q.get(id)!.state, 'released');
});

test('redis cluster: a master killed makes calls fail UNAVAILABLE at once (never hang); restarted, the same store works again by itself', { skip, timeout: 60_000 }, async () => {
  const store = await RedisStore.open(opts(fresh('outage')), true);
  try {
    const keys = Array.from({ length: 30 }, (_, i) => `bf:f:ip:198.51.100.${i}`);
    for (const k of keys) assert.equal(await store.incr(k, 600_000), 1);
    await cluster.nodes[0]!.kill();
    // With cluster-require-full-coverage (the default) the cluster refuses everything once it
    // marks the node failed; before that, only that node's slots fail. Either way: UNAVAILABLE, bounded.
    const t0 = Date.now();
    const outcomes = await Promise.all(keys.map((k) => store.incr(k, 600_000).then(() => 'ok', (e: Error) => (e as { code?: string }).code ?? e.message)));
    assert.ok(outcomes.includes('UNAVAILABLE'), outcomes.join(','));
    assert.ok(outcomes.every((o) => o === 'ok' || o === 'UNAVAILABLE'), outcomes.join(','));
    assert.ok(Date.now() - t0 < 5_000, `bounded: ${Date.now() - t0} ms`);
    await cluster.nodes[0]!.start();
    for (const n of cluster.nodes) {
      await waitFor(`cluster_state:ok on ${n.port}`, async () => /cluster_state:ok/.test(await redisCli(n.port, 'cluster', 'info')), { timeoutMs: 20_000, intervalMs: 200 });
    }
    await waitFor('every key answered again by the same store', async () => {
      const r = await Promise.all(keys.map((k) => store.get(k).then(() => true, () => false)));
      return r.every(Boolean);
    }, { timeoutMs: 20_000, intervalMs: 200 });
    assert.ok(await store.ping());
  } finally {
    await store.close();
  }
});
