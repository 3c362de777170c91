import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../log.js';
import { MemoryStore } from '../store/memory-store.js';
import { BruteForce } from '../auth/brute-force.js';
import { ClientLimits } from '../smtp/client-limits.js';
import { CheckRunner } from '../pipeline/runner.js';
import { testPolicy } from '../checks/test-support.js';
import { apiHeader, delaySeconds, startDovecotPolicy } from './dovecot-policy.js';
import type { RunningListener } from './listen.js';

test('api_header as Dovecot writes it: "Name: value", or a bare value sent as X-API-Key', () => {
  assert.deepEqual(apiHeader('X-Portcullis-Key:  s3cret value '), { name: 'x-portcullis-key', value: 's3cret value' });
  assert.deepEqual(apiHeader('Authorization: Basic dXNlcjpwYXNz'), { name: 'authorization', value: 'Basic dXNlcjpwYXNz' });
  assert.deepEqual(apiHeader('just-a-secret'), { name: 'x-api-key', value: 'just-a-secret' });
});

test('tarpit delays become whole seconds, rounded up', () => {
  assert.deepEqual([0, 1, 500, 1000, 1001, 15_000].map(delaySeconds), [0, 1, 1, 1, 2, 15]);
});

let listener: RunningListener;
let bf: BruteForce;
const cfg = { window: 3_600_000, block_time: 900_000, pair_limit: 50, ip_limit: 50, net_limit: 3, base_delay: 1500, max_delay: 15_000, spray_accounts: 100, spray_sources: 100, known_network_ttl: 86_400_000 };

before(async () => {
  const store = new MemoryStore();
  bf = new BruteForce(store, cfg);
  listener = await startDovecotPolicy(
    { name: 'dv', kind: 'dovecot-policy', address: '127.0.0.1', port: 0, allow: ['127.0.0.0/8'], max_connections: 10, timeout: 5000 },
    {
      runner: new CheckRunner([], testPolicy(), silentLogger()), bruteForce: bf, limits: new ClientLimits({ connections_per_ip: 0, connections_per_net: 0, connection_rate_per_ip: 0, connection_rate_per_net: 0, messages_per_ip: 0, recipients_per_ip: 0, window: 60_000, ipv4_prefix: 24, ipv6_prefix: 64 }, store, 'mx.test'),
      trusted: () => false, logger: silentLogger(),
    },
  );
});
after(() => listener.close(0));

const post = async (command: string, body: unknown) => {
  const { port } = listener.address();
  const r = await fetch(`http://127.0.0.1:${port}/policy?command=${command}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { code: r.status, body: (await r.json()) as Record<string, unknown> };
};

test('reports feed the defence; allow obeys it: tarpit in seconds, a network block, the account\'s known network exempt', async () => {
  // bob logged in from 198.51.100.0/24 before: that network is his.
  assert.deepEqual((await post('report', { login: 'Bob@Example.test', remote: '198.51.100.9', success: true })).body, { status: 0 });
  // Three failures from the network block it (net_limit 3) ...
  for (const ip of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) await post('report', { login: `guess-${ip}@example.test`, remote: ip, success: false, policy_reject: false });
  assert.deepEqual((await post('allow', { login: 'carol@example.test', remote: '198.51.100.77', protocol: 'imap' })).body, { status: -1 });
  // ... except for bob, whose network it is (known_network_ttl), and a new address there is tarpitted only by its own failures.
  assert.deepEqual((await post('allow', { login: 'bob@example.test', remote: '198.51.100.77', protocol: 'imap' })).body, { status: 0 });
  // The first failing address waits its tarpit: 1500 ms → 2 s.
  assert.deepEqual((await post('allow', { login: 'bob@example.test', remote: '198.51.100.1', protocol: 'imap' })).body, { status: 2 });
  const status = await bf.status('198.51.100.1');
  assert.ok(status.some((r) => r.key === 'bf:f:ip:198.51.100.1'), JSON.stringify(status));
});

test('a body that is not an object, a command that is not one: 400', async () => {
  assert.equal((await post('allow', 'login')).code, 400);
  assert.equal((await post('forget', { login: 'a', remote: '192.0.2.1' })).code, 400);
});
