// Redis going away under a running gateway: brute-force counting must go on in the node's
// memory (one loud `store_degraded` line, the portcullis_store_degraded gauge at 1), never
// "everything allowed"; when Redis is back, the node says so and counts in Redis again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startGateway } from '../helpers/gateway.js';
import { SmtpClient, show, transaction } from '../helpers/smtp-client.js';
import { makeMessage } from '../helpers/messages.js';
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

test('Redis killed mid-run: logins get a temporary failure (the accounts are in Redis), the store falls back to memory loudly; back on Redis when it returns', { timeout: 120_000 }, async (t) => {
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

  // Redis dies (SIGKILL). The accounts live there too (store.backend: redis), so no password
  // can be checked: every login — wrong or right — gets 454 4.7.0, "try again later"; none is
  // accepted unchecked, and the brute-force checks before it run from this node's memory.
  await redis.kill();
  raw.disconnect();
  const codes: number[] = [];
  for (let i = 0; i < 3; i++) codes.push(await login(gw.ports.submissions, '127.0.0.22', `wrong-${i}`));
  assert.deepEqual(codes, [454, 454, 454]);
  assert.equal(await login(gw.ports.submissions, '127.0.0.23', PASSWORD), 454, 'never a login without a checked password');
  const degraded = await waitFor('the store_degraded line', () => gw.logs.find((l) => l.event === 'store_degraded'));
  assert.equal(degraded.level, 'error');
  assert.match(String(degraded.msg), /unreachable.*memory/);
  assert.equal(gw.logs.filter((l) => l.event === 'store_degraded').length, 1, 'one line per outage, not one per call');
  assert.equal(await metric(metricsPort!, 'portcullis_store_degraded'), 1);
  assert.ok((await metric(metricsPort!, 'portcullis_store_fallback_total'))! >= 10, 'calls answered from memory are counted');
  assert.ok(gw.logs.some((l) => l.event === 'auth_unavailable'), 'the temporary failures are logged');

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

test('Redis killed and restarted under load: every acknowledged message is delivered, none refused for good (deferred with 451 meanwhile)', { timeout: 180_000 }, async (t) => {
  if (!needRedis(t)) return;
  // Persistent, as a site keeping its accounts in Redis runs it: the recipient is there again after the restart.
  const redis = await startRedis({ persist: true });
  t.after(() => redis.stop());
  const RCPT = 'inbox@example.test';
  const gw = await startGateway({
    users: { [RCPT]: 'Load-test-pw-5150' },
    config: {
      store: { backend: 'redis', url: redis.url(), prefix: 'load:', timeout: '200ms' },
      // Limits high enough never to refuse, low enough to be counted: every connection and
      // message goes through the store (hit), and through Bayes (its totals in Redis).
      limits: { connection_rate_per_ip: 100_000, messages_per_ip: 100_000, recipients_per_ip: 100_000, window: '1h' },
      log: { level: 'info' },
    },
  });
  t.after(() => gw.cleanup());
  const marks: string[] = [];
  const refused: string[] = [];
  const deferred: string[] = [];
  let stop = false;
  const sender = async (w: number) => {
    for (let i = 0; !stop; i++) {
      const mark = `load-${w}-${i}-${Date.now()}`;
      const c = await SmtpClient.connect(gw.ports.mx, { localAddress: `127.0.0.${40 + w}` });
      try {
        await c.ehlo(`sender${w}.example.net`);
        const r = await transaction(c, `s${w}@sender.example`, [RCPT], makeMessage({ from: `s${w}@sender.example`, to: RCPT, subject: mark, body: `message ${i} of sender ${w}` }));
        const failed = r.final ?? r.data ?? r.rcpts.find((x) => x.code >= 400) ?? r.mail;
        if (r.final?.code === 250) marks.push(mark);
        // The recipient cannot be looked up while Redis is down: a temporary failure, retried by the sender.
        else if (failed && /^451 4\.3\.0 /.test(show(failed))) deferred.push(mark);
        else refused.push(`${mark}: ${show(r.final ?? r.data ?? r.rcpts[0] ?? r.mail)}`);
      } finally {
        c.close();
      }
    }
  };
  const senders = Promise.all([0, 1, 2, 3].map(sender));
  await waitFor('some messages before the outage', () => marks.length >= 20, { timeoutMs: 30_000 });
  // One transaction past RCPT before the kill, its DATA after: the message that surely meets
  // Bayes with Redis gone (new ones are deferred at RCPT: the recipient is looked up in Redis).
  const inFlight = await SmtpClient.connect(gw.ports.mx, { localAddress: '127.0.0.39' });
  const inFlightMark = `in-flight-${Date.now()}`;
  await inFlight.ehlo('late.example.net');
  assert.equal((await inFlight.cmd('MAIL FROM:<late@sender.example>')).code, 250, inFlight.describe());
  assert.equal((await inFlight.cmd(`RCPT TO:<${RCPT}>`)).code, 250, inFlight.describe());
  await redis.kill();
  const atKill = marks.length;
  assert.equal((await inFlight.cmd('DATA')).code, 354, inFlight.describe());
  const lateData = await inFlight.cmd(`${makeMessage({ from: 'late@sender.example', to: RCPT, subject: inFlightMark, body: 'DATA after the kill' }).replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..')}\r\n.`);
  inFlight.close();
  await waitFor('messages deferred during the outage', () => deferred.length >= 20, { timeoutMs: 30_000 });
  await redis.start();
  await waitFor('the store_recovered line', () => gw.logs.find((l) => l.event === 'store_recovered'), { timeoutMs: 20_000 });
  const atRestart = marks.length;
  await waitFor('messages after the restart', () => marks.length >= atRestart + 20, { timeoutMs: 30_000 });
  stop = true;
  await senders;

  assert.deepEqual(refused, [], 'nothing was refused for good because Redis went away');
  // Accepted as the others are, or deferred: never refused for good.
  assert.ok(lateData.code === 250 || lateData.code === 451, `DATA after the kill: ${show(lateData)}`);
  if (lateData.code === 250) marks.push(inFlightMark);
  process.stdout.write(`# under load: ${marks.length} messages acknowledged (${atKill} before the kill, ${atRestart - atKill} during the outage, ${marks.length - atRestart} after), ${deferred.length} deferred with 451\n`);
  const delivered = await waitFor('every acknowledged message in the Maildir', () => {
    const files = gw.allMailboxFiles().map((m) => m.content.toString('latin1'));
    const found = marks.filter((m) => files.some((f) => f.includes(`Subject: ${m}\r`) || f.includes(`Subject: ${m}\n`)));
    return found.length === marks.length ? found : false;
  }, { timeoutMs: 60_000, intervalMs: 500 });
  assert.equal(delivered.length, marks.length);
  assert.equal(gw.logs.filter((l) => l.event === 'store_degraded').length, 1);
  assert.ok(gw.logs.some((l) => l.event === 'bayes_unavailable'), 'Bayes said it gives no verdict during the outage');
});
