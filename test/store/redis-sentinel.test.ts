// Two gateway nodes on a Redis watched by Sentinel (store.sentinel): real redis-server processes
// on loopback — a master, its replica, one sentinel (`redis-server sentinel.conf --sentinel`).
// State is shared through whichever server is master; a planned failover (SENTINEL FAILOVER: the
// old master becomes a replica and refuses writes) and then a crash of the new master under load
// (SIGKILL: the sentinel promotes the other after 1 s of silence) are both ridden out by the
// nodes by themselves, and every message that got "250" is delivered (counted).
// About 45 s on a loaded 2-core machine, most of it starting the two gateways; the timeout leaves margin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { SmtpClient, show, transaction } from '../helpers/smtp-client.js';
import { makeMessage } from '../helpers/messages.js';
import { waitFor } from '../helpers/wait.js';
import { needRedis, redisCli, startRedisSentinel, type RedisServer } from './redis-server.js';
import { authCode } from './node-clients.js';

const USER = 'ha@example.test';
const PASSWORD = 'Sentinel-nodes-pw-2626';

const login = (gw: Gateway, localAddress: string, password: string) => authCode(gw, localAddress, USER, password);

/** Three wrong passwords on `a` from `ip`, then the right one on `b`: refused there, by what happened on `a`. */
async function sharedBlock(a: Gateway, b: Gateway, ip: string): Promise<void> {
  for (let i = 0; i < 3; i++) assert.equal(await login(a, ip, `guess-${i}`), 535);
  await waitFor(`the pair block for ${ip} on node A`, () => a.logs.find((l) => l.event === 'auth_block' && l.scope === 'pair' && l.ip === ip));
  assert.equal(await login(b, ip, PASSWORD), 535, `${ip} blocked on B by what happened on A`);
}

test('Sentinel: two nodes share state through the master; a planned failover and a master crash under load are ridden out, every acknowledged message delivered', { timeout: 90_000 }, async (t) => {
  if (!needRedis(t)) return;
  const start = Date.now();
  const phases: string[] = [];
  const phase = (name: string) => phases.push(`${name} ${Date.now() - start} ms`);
  const set = await startRedisSentinel();
  phase('servers up');
  t.after(() => set.stop());
  const node = (first: boolean) => startGateway({
    users: first ? { [USER]: PASSWORD } : undefined,
    config: {
      store: { backend: 'redis', sentinel: { name: set.name, sentinels: [{ host: '127.0.0.1', port: set.sentinelPort }] }, prefix: 'ha:', timeout: '300ms' },
      auth: { brute_force: { pair_limit: 3, ip_limit: 100_000, net_limit: 1_000_000, base_delay: '1ms', max_delay: '5ms', block_time: '10m' } },
      // High enough never to refuse; every connection, message and recipient is counted in Redis.
      limits: { connection_rate_per_ip: 100_000, messages_per_ip: 100_000, recipients_per_ip: 100_000, window: '1h' },
      smtp: { max_errors: 1000 }, tarpit: { errors: 0 },
      log: { level: 'info' },
    },
  });
  const [a, b] = await Promise.all([node(true), node(false)]);
  t.after(() => a.cleanup());
  t.after(() => b.cleanup());
  phase('nodes up');
  assert.ok(a.logs.some((l) => l.event === 'store_open' && /sentinel master/.test(String(l.store))), 'node A opened the store through the sentinel');

  // Shared state through the master: a block made on A holds on B; the account added through A logs in on B.
  await sharedBlock(a, b, '127.0.0.71');
  assert.equal(await login(b, '127.0.0.72', PASSWORD), 235);

  // 1. A planned failover: the replica is promoted, the old master turned into its replica. The
  // nodes' connections to the old master stay open, but it would refuse writes (READONLY): they
  // must follow the sentinel's +switch-master to the new one.
  phase('shared block');
  const [promoted, other] = set.replicas as [RedisServer, RedisServer];
  assert.match(await redisCli(set.sentinelPort, 'sentinel', 'failover', set.name), /OK/);
  await waitFor('the sentinel naming the first replica as master', async () => (await set.currentMaster()) === promoted.port, { timeoutMs: 15_000, intervalMs: 100 });
  await waitFor('the other replica in sync with the new master', async () => {
    const info = await redisCli(other.port, 'info', 'replication');
    return info.includes(`master_port:${promoted.port}`) && /master_link_status:up/.test(info);
  }, { timeoutMs: 15_000, intervalMs: 100 });
  // Until the sentinel's next INFO round (up to 10 s) the old master still says "master" and
  // takes writes: a node still talking to it would count where nobody reads (and lose it at the
  // demotion's resync). Once a moment has passed for +switch-master to arrive, no write may land
  // there any more; and the nodes count on the new master within a few seconds.
  await new Promise((r) => setTimeout(r, 500));
  const oldMaster = set.master.port;
  const key = (ip: string) => `ha:v:bf:f:pair:${ip}|${USER}`;
  let round = 0;
  const t0 = Date.now();
  await waitFor('both nodes counting on the new master', async () => {
    const ips = [`127.0.1.${++round}`, `127.0.2.${round}`];
    await Promise.all([login(a, ips[0]!, 'probe-wrong'), login(b, ips[1]!, 'probe-wrong')]);
    if ((await redisCli(oldMaster, 'role')).startsWith('master')) {
      for (const ip of ips) assert.equal((await redisCli(oldMaster, 'exists', key(ip))).trim(), '0', `a failure from ${ip} was counted on the demoted master`);
    }
    const onNew = await Promise.all(ips.map(async (ip) => (await redisCli(promoted.port, 'exists', key(ip))).trim() === '1'));
    return onNew.every(Boolean);
  }, { timeoutMs: 8_000, intervalMs: 100 });
  process.stdout.write(`# sentinel: both nodes on the new master ${Date.now() - t0} ms after the switch was seen (+500 ms), old master ${(await redisCli(oldMaster, 'role')).split('\n')[0]}\n`);
  await sharedBlock(b, a, '127.0.0.75');
  phase('planned failover');

  // 2. The new master crashes under load; the sentinel promotes another.
  const marks: string[] = [];
  const deferred: string[] = [];
  const refused: string[] = [];
  let stop = false;
  const sender = async (w: number) => {
    const gw = w % 2 ? b : a;
    for (let i = 0; !stop; i++) {
      const mark = `ha-${w}-${i}-${Date.now()}`;
      const c = await SmtpClient.connect(gw.ports.mx, { localAddress: `127.0.0.${80 + w}` });
      try {
        await c.ehlo(`sender${w}.example.net`);
        const r = await transaction(c, `s${w}@sender.example`, [USER], makeMessage({ from: `s${w}@sender.example`, to: USER, subject: mark, body: `message ${i} of sender ${w}` }));
        const failed = r.final ?? r.data ?? r.rcpts.find((x) => x.code >= 400) ?? r.mail;
        if (r.final?.code === 250) marks.push(mark);
        else if (failed && /^451 4\.3\.0 /.test(show(failed))) deferred.push(mark); // the recipient cannot be looked up meanwhile
        else refused.push(`${mark}: ${show(failed ?? r.mail)}`);
      } finally {
        c.close();
      }
    }
  };
  const senders = Promise.all([0, 1, 2, 3].map(sender));
  try {
    await waitFor('messages before the crash', () => marks.length >= 20, { timeoutMs: 15_000 });
    await promoted.kill();
    const atKill = marks.length;
    await waitFor('the sentinel naming another master', async () => [set.master.port, other.port].includes(await set.currentMaster()), { timeoutMs: 15_000, intervalMs: 100 });
    await waitFor('both nodes back on Redis', () => [a, b].every((g) => !g.logs.some((l) => l.event === 'store_degraded')
      || g.logs.filter((l) => l.event === 'store_recovered').length >= g.logs.filter((l) => l.event === 'store_degraded').length), { timeoutMs: 15_000 });
    const atFailover = marks.length;
    await waitFor('messages after the failover', () => marks.length >= atFailover + 20, { timeoutMs: 15_000 });
    stop = true;
    await senders;
    phase('crash under load');
    process.stdout.write(`# sentinel: ${marks.length} messages acknowledged (${atKill} before the crash, ${atFailover - atKill} until both stores were back on Redis, ${marks.length - atFailover} after), ${deferred.length} deferred with 451\n`);
  } finally {
    stop = true;
    await senders;
  }
  assert.deepEqual(refused, [], 'nothing refused for good because the master went away');

  // Shared state works again, through the third master: a block on A holds on B.
  await sharedBlock(a, b, '127.0.0.76');
  assert.equal((await redisCli(await set.currentMaster(), 'hget', key('127.0.0.76'), 'v')).trim(), '4', 'three guesses on A and the refused login on B, counted on the master');

  const delivered = await waitFor('every acknowledged message in a Maildir', () => {
    const files = [...a.allMailboxFiles(), ...b.allMailboxFiles()].map((m) => m.content.toString('latin1'));
    const found = marks.filter((m) => files.some((f) => f.includes(`Subject: ${m}\r`) || f.includes(`Subject: ${m}\n`)));
    return found.length === marks.length ? found : false;
  }, { timeoutMs: 20_000, intervalMs: 500 });
  assert.equal(delivered.length, marks.length);
  phase('delivered');
  process.stdout.write(`# sentinel phases (since start): ${phases.join(', ')}\n`);
});
