import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AnyCheck } from '../checks/types.js';
import { testPolicy } from '../checks/test-support.js';
import { CheckRunner } from '../pipeline/runner.js';
import { silentLogger } from '../log.js';
import { MemoryStore } from '../store/memory-store.js';
import { BruteForce } from '../auth/brute-force.js';
import { ClientLimits } from '../smtp/client-limits.js';
import { reply } from '../protocol/reply.js';
import { PostfixPolicyJudge } from './postfix-policy-judge.js';

const LISTED = '192.0.2.66';
const NO_PTR = '192.0.2.9';
const BROKEN = '192.0.2.13';

function setup(limits: Partial<ConstructorParameters<typeof ClientLimits>[0]> = {}, observe = false) {
  const runs: string[] = [];
  const checks: AnyCheck[] = [
    {
      name: 'fake_dnsbl', stage: 'connect',
      run: ({ conn }) => {
        runs.push(`connect ${conn.remoteAddress}`);
        if (conn.remoteAddress === LISTED) return { symbols: [{ name: 'RDNS_DYNAMIC', reason: 'listed', reply: reply(554, '5.7.1', `Service unavailable; client [${LISTED}] blocked using bl.test`) }] };
        if (conn.remoteAddress === NO_PTR) return { symbols: [{ name: 'RDNS_NONE', reason: 'no PTR' }] };
        return {};
      },
    },
    {
      name: 'fake_broken', stage: 'connect', onFailure: 'tempfail',
      run: ({ conn }) => {
        if (conn.remoteAddress === BROKEN) throw new Error('lookup exploded');
        return {};
      },
    },
    { name: 'fake_helo', stage: 'helo', run: ({ conn }) => (runs.push(`helo ${conn.helo}`), conn.helo?.includes('.') ? {} : { symbols: [{ name: 'HELO_NOT_FQDN', reason: conn.helo ?? '' }] }) },
    {
      name: 'fake_spf', stage: 'mail',
      run: ({ sender }) => (runs.push(`mail ${sender}`), sender.endsWith('@forged.test')
        ? { symbols: [{ name: 'SPF_FAIL', reason: 'spf fail', reply: reply(550, '5.7.23', `SPF fail for ${sender}`) }], facts: { spf: { result: 'fail', domain: 'forged.test' } } }
        : {}),
    },
    { name: 'fake_rcpt', stage: 'rcpt', run: ({ recipient, facts }) => (runs.push(`rcpt ${recipient} spf=${facts?.spf?.result ?? '-'}`), {}) },
  ];
  const store = new MemoryStore();
  const cl = new ClientLimits({ connections_per_ip: 0, connections_per_net: 0, connection_rate_per_ip: 0, connection_rate_per_net: 0, messages_per_ip: 0, recipients_per_ip: 0, window: 60_000, ipv4_prefix: 24, ipv6_prefix: 64, ...limits }, store, 'mx.test');
  const policy = testPolicy({ actions: { RDNS_DYNAMIC: 'reject' }, observe });
  const service = {
    runner: new CheckRunner(checks, policy, silentLogger()),
    bruteForce: new BruteForce(store, { window: 3_600_000, block_time: 900_000, pair_limit: 5, ip_limit: 20, net_limit: 100, base_delay: 500, max_delay: 15_000, spray_accounts: 10, spray_sources: 10, known_network_ttl: 86_400_000 }),
    limits: cl, trusted: (a: string) => a === '10.0.0.1', logger: silentLogger(),
  };
  return { judge: new PostfixPolicyJudge(service, { name: 'policy', prepend_header: true }), runs };
}

const rq = (o: Record<string, string>) => new Map(Object.entries({ request: 'smtpd_access_policy', protocol_name: 'ESMTP', client_port: '4000', helo_name: 'mail.example.net', instance: 'a1.b2', sender: 'news@example.net', ...o }));

test('a listed client: refused at RCPT with the SMTP path\'s reply; connect checks ran once for several requests', async () => {
  const { judge, runs } = setup();
  const a = await judge.judge(rq({ protocol_state: 'RCPT', client_address: LISTED, recipient: 'alice@example.test' }));
  assert.equal(a.action, `554 5.7.1 Service unavailable; client [${LISTED}] blocked using bl.test`);
  assert.equal(a.outcome, 'reject');
  const b = await judge.judge(rq({ protocol_state: 'RCPT', client_address: LISTED, recipient: 'bob@example.test' }));
  assert.equal(b.action, a.action);
  assert.equal(runs.filter((r) => r.startsWith('connect')).length, 1, runs.join('\n'));
  // CONNECT (smtpd_client_restrictions with smtpd_delay_reject = no): refused there.
  const { judge: j2 } = setup();
  assert.match((await j2.judge(rq({ protocol_state: 'CONNECT', client_address: LISTED }))).action, /^554 5\.7\.1 /);
});

test('an authenticated client is not held to the connect refusal (as the SMTP session)', async () => {
  const { judge } = setup();
  const a = await judge.judge(rq({ protocol_state: 'RCPT', client_address: LISTED, recipient: 'x@remote.test', sasl_username: 'alice@example.test' }));
  // Accepted; the finding is still scored (and goes into the message).
  assert.equal(a.action, 'PREPEND X-Portcullis-Policy: score=1.5 tests=RDNS_DYNAMIC=1.5');
});

test('SPF fail at MAIL is answered at RCPT; the facts reach the rcpt stage; a new transaction runs MAIL again', async () => {
  const { judge, runs } = setup();
  const fail = await judge.judge(rq({ protocol_state: 'RCPT', client_address: '198.51.100.7', sender: 'ceo@forged.test', recipient: 'alice@example.test' }));
  assert.equal(fail.action, '550 5.7.23 SPF fail for ceo@forged.test');
  const ok = await judge.judge(rq({ protocol_state: 'RCPT', client_address: '198.51.100.7', instance: 'a1.b3', sender: 'ok@good.test', recipient: 'alice@example.test' }));
  assert.equal(ok.action, 'DUNNO');
  assert.deepEqual(runs.filter((r) => !r.startsWith('connect')), ['helo mail.example.net', 'mail ceo@forged.test', 'mail ok@good.test', 'rcpt alice@example.test spf=-']);
  assert.equal(runs.filter((r) => r.startsWith('connect')).length, 1, 'the same SMTP session: connect checks once');
  // A different client port is another SMTP session of the same smtpd process.
  await judge.judge(rq({ protocol_state: 'RCPT', client_address: '198.51.100.7', client_port: '4001', instance: 'a1.b4', recipient: 'alice@example.test' }));
  assert.equal(runs.filter((r) => r.startsWith('connect')).length, 2);
});

test('scored symbols: one PREPEND per transaction, then DUNNO; never at MAIL', async () => {
  const { judge } = setup();
  const base = { client_address: NO_PTR, helo_name: 'nodots', recipient: 'alice@example.test' };
  assert.equal((await judge.judge(rq({ ...base, protocol_state: 'MAIL' }))).action, 'DUNNO');
  const first = await judge.judge(rq({ ...base, protocol_state: 'RCPT' }));
  assert.equal(first.outcome, 'prepend');
  assert.match(first.action, /^PREPEND X-Portcullis-Policy: score=[\d.]+ tests=RDNS_NONE=[\d.]+,HELO_NOT_FQDN=[\d.]+$/);
  assert.equal((await judge.judge(rq({ ...base, protocol_state: 'RCPT', recipient: 'bob@example.test' }))).action, 'DUNNO');
});

test('a check that could not run: DEFER_IF_PERMIT (a later reject still wins)', async () => {
  const { judge } = setup();
  const a = await judge.judge(rq({ protocol_state: 'RCPT', client_address: BROKEN, recipient: 'alice@example.test' }));
  assert.match(a.action, /^DEFER_IF_PERMIT 4\.7\.1 Error: fake_broken unavailable, try again later$/);
  assert.equal(a.outcome, 'defer');
});

test('rate limits: the message rate counted once per transaction, recipients per request; trusted networks exempt', async () => {
  const { judge } = setup({ messages_per_ip: 1, recipients_per_ip: 2 });
  const r = (o: Record<string, string>) => judge.judge(rq({ protocol_state: 'RCPT', client_address: '203.0.113.5', ...o }));
  assert.equal((await r({ recipient: 'a@x.test' })).action, 'DUNNO');
  assert.equal((await r({ recipient: 'b@x.test' })).action, 'DUNNO', 'same transaction: one message');
  assert.equal((await r({ recipient: 'c@x.test' })).action, '450 4.7.1 Error: too many recipients from 203.0.113.5, try again later');
  assert.equal((await r({ instance: 'next', recipient: 'a@x.test' })).action, '450 4.7.1 Error: too much mail from 203.0.113.5, try again later');
  for (let i = 0; i < 4; i++) {
    const t = await judge.judge(rq({ protocol_state: 'RCPT', client_address: '10.0.0.1', instance: `t${i}`, recipient: 'z@x.test' }));
    assert.equal(t.action, 'DUNNO', `trusted client, message ${i + 1}`);
  }
});

test('what is not ours to judge: DUNNO; observe mode holds the refusal back', async () => {
  const { judge } = setup();
  assert.equal((await judge.judge(rq({ protocol_state: 'END-OF-MESSAGE', client_address: LISTED }))).action, 'DUNNO');
  assert.equal((await judge.judge(rq({ protocol_state: 'DATA', client_address: LISTED }))).outcome, 'dunno');
  const wrong = await judge.judge(new Map([['request', 'junk'], ['protocol_state', 'RCPT']]));
  assert.deepEqual([wrong.action, wrong.outcome], ['DUNNO', 'malformed']);
  assert.equal((await judge.judge(rq({ protocol_state: 'RCPT', client_address: 'not-an-ip' }))).outcome, 'malformed');
  const { judge: observing } = setup({}, true);
  assert.equal((await observing.judge(rq({ protocol_state: 'RCPT', client_address: LISTED, recipient: 'a@example.test' }))).outcome, 'prepend');
});
