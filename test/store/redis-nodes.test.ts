// Two gateway nodes on one Redis (store.backend: redis), as behind one site's MX records: what a
// guesser or a flooder does on one node counts on the other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { needRedis, startRedis } from './redis-server.js';
import { authCode, greeting } from './node-clients.js';

const USER = 'shared@example.test';
const PASSWORD = 'Two-nodes-one-pw-4242';

const login = (gw: Gateway, localAddress: string, password: string) => authCode(gw, localAddress, USER, password);

test('two nodes, one Redis: a block on node A holds on node B (and its CLI shows it); a rate limit counts across both', { timeout: 180_000 }, async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis();
  t.after(() => redis.stop());
  const node = (first: boolean) => startGateway({
    // The accounts are in Redis too: added once (through node A), known to both.
    users: first ? { [USER]: PASSWORD } : undefined,
    config: {
      store: { backend: 'redis', url: redis.url(3), prefix: 'site:' },
      auth: { brute_force: { pair_limit: 3, ip_limit: 1000, net_limit: 1_000_000, base_delay: '1ms', max_delay: '5ms', block_time: '10m' } },
      limits: { connection_rate_per_ip: 8, window: '1h' },
      smtp: { max_errors: 1000 }, tarpit: { errors: 0 },
      log: { level: 'info' },
    },
  });
  const a = await node(true);
  t.after(() => a.cleanup());
  const b = await node(false);
  t.after(() => b.cleanup());

  // The guesser tries node A until the pair is blocked there.
  for (let i = 0; i < 3; i++) assert.equal(await login(a, '127.0.0.31', `guess-${i}`), 535);
  await waitFor('the pair block on node A', () => a.logs.find((l) => l.event === 'auth_block' && l.scope === 'pair' && l.ip === '127.0.0.31'));
  // On node B, the same (IP, account) is refused even with the right password, unchecked;
  // the account itself is not locked: from another address it logs in on B.
  assert.equal(await login(b, '127.0.0.31', PASSWORD), 535, 'blocked on B by what happened on A');
  await waitFor('the refusal logged on B', () => b.logs.find((l) => l.event === 'auth_blocked'));
  assert.equal(await login(b, '127.0.0.32', PASSWORD), 235);
  assert.ok(!b.logs.some((l) => l.event === 'auth_block'), 'node B imposed no block itself: it read A\'s');

  // `portcullis auth status` with node B's configuration reads the shared store.
  const status = (await b.cliOk(['auth', 'status', '127.0.0.31'])).stdout;
  assert.match(status, /BLOCKED until\s+pair\s+127\.0\.0\.31\|shared@example\.test/, status);
  // Three guesses on A, and the refused attempt on B counts too: one count across both nodes.
  assert.match(status, /failures\s+pair\s+127\.0\.0\.31\|shared@example\.test\s+4 /, status);
  // ... and lifting it on B frees the pair on A.
  await b.cliOk(['auth', 'unblock', '127.0.0.31']);
  assert.equal(await login(a, '127.0.0.31', PASSWORD), 235, 'unblocked through node B, logs in on node A');

  // connection_rate_per_ip 8 per hour, counted in Redis: four connections on each node, then
  // the ninth — whichever node it reaches — is refused (each node alone saw only four).
  for (let i = 0; i < 8; i++) assert.match(await greeting(i % 2 ? b : a, '127.0.0.33'), /^220 /);
  assert.match(await greeting(a, '127.0.0.33'), /^421 4\.7\.0 .*too many connections from 127\.0\.0\.33, try again later/);
  assert.match(await greeting(b, '127.0.0.33'), /^421 4\.7\.0 .*too many connections from 127\.0\.0\.33, try again later/);
  assert.match(await greeting(b, '127.0.0.34'), /^220 /, 'another client is not affected');
});
