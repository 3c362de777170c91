// A Redis Cluster with a replica per master (six real redis-server processes): a master killed,
// its replica promoted by the cluster itself, and the same RedisStore — without reopening —
// answering again for every key, with the counts written before the crash (they were replicated).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisStore } from '../../src/store/redis-store.js';
import { waitFor } from '../helpers/wait.js';
import { needRedis, redisCli, startRedisCluster } from './redis-server.js';

test('redis cluster with replicas: a master killed, its replica promoted; the same store answers again by itself, counts kept', { timeout: 90_000 }, async (t) => {
  if (!needRedis(t)) return;
  const cluster = await startRedisCluster(3, 1);
  t.after(() => cluster.stop());
  const store = await RedisStore.open({ url: 'redis://127.0.0.1:6379/0', cluster: { nodes: cluster.seeds }, prefix: 'cf:', timeoutMs: 1000 }, true);
  t.after(() => store.close());
  const keys = Array.from({ length: 30 }, (_, i) => `bf:f:ip:203.0.113.${i}`);
  for (const k of keys) assert.equal(await store.incr(k, 600_000), 1);
  // Replication is asynchronous: wait until every replica has what its master has.
  for (const n of cluster.nodes) {
    const info = await redisCli(n.port, 'info', 'replication');
    if (!/role:slave/.test(info)) continue;
    const master = Number(/master_port:(\d+)/.exec(info)![1]);
    await waitFor(`replica ${n.port} caught up`, async () => (await redisCli(n.port, 'dbsize')).trim() === (await redisCli(master, 'dbsize')).trim(), { timeoutMs: 10_000, intervalMs: 100 });
  }
  const victim = cluster.nodes[0]!; // redis-cli makes the first servers the masters
  assert.match(await redisCli(victim.port, 'role'), /^master/);
  assert.ok(Number(await redisCli(victim.port, 'dbsize')) > 0, 'some of the keys live on the master that dies');
  await victim.kill();
  const t0 = Date.now();
  const survivors = cluster.nodes.slice(1);
  await waitFor('the cluster healed (a replica promoted)', async () => {
    const states = await Promise.all(survivors.map((n) => redisCli(n.port, 'cluster', 'info')));
    return states.every((s) => /cluster_state:ok/.test(s));
  }, { timeoutMs: 30_000, intervalMs: 200 });
  // Reads only, so that a retry cannot stand in for a lost count.
  const counts = await waitFor('every key answered again by the same store', async () => {
    const r = await Promise.all(keys.map((k) => store.get(k).then((n) => n, () => undefined)));
    return r.every((n) => n !== undefined) ? r : false;
  }, { timeoutMs: 20_000, intervalMs: 200 });
  process.stdout.write(`# cluster failover: answered again ${Date.now() - t0} ms after the kill\n`);
  assert.deepEqual(counts, keys.map(() => 1), 'the counts written before the crash, on the promoted replica');
  for (const k of keys) assert.equal(await store.incr(k, 600_000), 2, 'and counting on');
});
