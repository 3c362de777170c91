// Redis going away under a running gateway: brute-force counting must go on in the node's
// memory (one loud `store_degraded` line, the portcullis_store_degraded gauge at 1), never
// "everything allowed"; when Redis is back, the node says so and counts in Redis again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startGateway } from '../helpers/gateway.js';
import { SmtpClient } from '../helpers/smtp-client.js';
import { freePorts, waitFor } from '../helpers/wait.js';
import { needRedis, startRedis } from './redis-server.js';

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');
const USER = 'target@example.test';
const PASSWORD = 'Real-secret-pw-31337';

async function login(port: number, localAddress: string, password: string): Promise<number> {
  // SmtpClient's localAddress is for plain connections; over implicit TLS it goes in tlsOptions.
  const c = await SmtpClient.connect(port, { implicitTls: true, tlsOptions: { localAddress } as never });
  try {
    await c.ehlo('client.example.net');
    return (await c.cmd(`AUTH PLAIN ${plain(USER, password)}`, 20_000)).code;
  } finally {
    c.close();
  }
}

async function metric(port: number, name: string): Promise<number | undefined> {
  const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(body);
  return m ? Number(m[1]) : undefined;
}

test('Redis killed mid-run: brute force still throttles from memory, loudly; back on Redis when it returns', { timeout: 120_000 }, async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [metricsPort] = await freePorts(1);
  const gw = await startGateway({
    users: { [USER]: PASSWORD },
    config: {
      store: { backend: 'redis', url: redis.url(), prefix: 'failover:', timeout: '300ms' },
      auth: { brute_force: { pair_limit: 3, ip_limit: 1000, net_limit: 1_000_000, base_delay: '1ms', max_delay: '5ms', block_time: '10m' } },
      smtp: { max_errors: 1000 }, tarpit: { errors: 0 },
      metrics: { enabled: true, address: '127.0.0.1', port: metricsPort! },
      log: { level: 'info' },
    },
  });
  t.after(() => gw.cleanup());
  const raw = new Redis(redis.url(), { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  raw.on('error', () => {});
  t.after(() => raw.disconnect());
  await raw.connect();

  // Redis up: a failure is counted in Redis.
  assert.equal(await login(gw.ports.submissions, '127.0.0.21', 'wrong-1'), 535);
  assert.ok(gw.logs.some((l) => l.event === 'store_open'), 'the gateway opened the Redis store');
  // The failure is counted as the 535 goes out: wait for it rather than race it.
  await waitFor('the failure counted in Redis', async () => (await raw.hget(`failover:v:bf:f:pair:127.0.0.21|${USER}`, 'v')) === '1',
    { timeoutMs: 5_000 });
  assert.equal(await metric(metricsPort!, 'portcullis_store_degraded'), 0);

  // Redis dies (SIGKILL). Guessing goes on from another address: the pair is still blocked
  // after pair_limit failures — counted in this node's memory — even for the right password.
  await redis.kill();
  raw.disconnect();
  const codes: number[] = [];
  for (let i = 0; i < 3; i++) codes.push(await login(gw.ports.submissions, '127.0.0.22', `wrong-${i}`));
  assert.deepEqual(codes, [535, 535, 535]);
  assert.equal(await login(gw.ports.submissions, '127.0.0.22', PASSWORD), 535, 'blocked during the outage: not "everything allowed"');
  assert.equal(await login(gw.ports.submissions, '127.0.0.23', PASSWORD), 235, 'the real user from elsewhere still logs in');
  const degraded = await waitFor('the store_degraded line', () => gw.logs.find((l) => l.event === 'store_degraded'));
  assert.equal(degraded.level, 'error');
  assert.match(String(degraded.msg), /unreachable.*memory/);
  assert.equal(gw.logs.filter((l) => l.event === 'store_degraded').length, 1, 'one line per outage, not one per call');
  assert.equal(await metric(metricsPort!, 'portcullis_store_degraded'), 1);
  assert.ok((await metric(metricsPort!, 'portcullis_store_fallback_total'))! >= 10, 'calls answered from memory are counted');
  assert.ok(gw.logs.some((l) => l.event === 'auth_block' && l.ip === '127.0.0.22'), 'the block is logged as usual');

  // Redis comes back (empty: no persistence): the node notices by itself and counts there again.
  await redis.start();
  const recovered = await waitFor('the store_recovered line', () => gw.logs.find((l) => l.event === 'store_recovered'), { timeoutMs: 20_000 });
  assert.equal(typeof recovered.outage_s, 'number');
  assert.equal(await metric(metricsPort!, 'portcullis_store_degraded'), 0);
  assert.equal(await login(gw.ports.submissions, '127.0.0.24', 'wrong-after'), 535);
  const back = new Redis(redis.url());
  back.on('error', () => {});
  t.after(() => back.disconnect());
  await waitFor('the failure counted in Redis again', async () => (await back.hget(`failover:v:bf:f:pair:127.0.0.24|${USER}`, 'v')) === '1', { timeoutMs: 5_000 });
  assert.equal(gw.logs.filter((l) => l.event === 'store_degraded').length, 1);
});
