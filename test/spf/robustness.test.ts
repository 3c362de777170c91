// SPF against hostile or broken DNS, through the gateway's real resolver and a DNS server on
// loopback: malformed answers, huge TXT records (over TCP), loops and lookup-limit bombs end in
// the RFC's permerror/temperror, quickly, with a bounded number of questions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer, type DnsServer, type ZoneData } from '../helpers/dns-server.js';
import { createResolver } from '../../src/dns/resolver.js';
import { evaluateSpf, type SpfOptions, type SpfOutcome } from '../../src/checks/spf/evaluate.js';

let server: DnsServer;
before(async () => {
  server = await startDnsServer({});
});
after(async () => {
  await server?.close();
});

const txt = (data: string | string[]) => ({ type: 'TXT' as const, data });

/** Serves `zone`, evaluates sender from ip with a fresh resolver (cache off), returns the outcome and the questions asked. */
async function run(zone: ZoneData, sender: string, ip = '192.0.2.1', opts: SpfOptions & { timeoutMs?: number } = {}) {
  server.set(zone);
  const before = server.queries.length;
  const resolver = createResolver({
    servers: [server.server], timeoutMs: opts.timeoutMs ?? 200, attempts: 1, maxInflight: 100,
    cacheEntries: 0, maxTtlMs: 1000, negativeTtlMs: 1000,
  });
  const started = Date.now();
  const outcome: SpfOutcome = await evaluateSpf(resolver, { ip, sender, helo: 'client.example', hostname: 'mx.test' }, opts);
  return { outcome, ms: Date.now() - started, asked: server.queries.slice(before) };
}

test('a malformed DNS answer is a temperror', async () => {
  const { outcome } = await run({ 'example.org': [{ type: 'MALFORMED' }] }, 'a@example.org');
  assert.equal(outcome.result, 'temperror');
  assert.match(outcome.problem!, /TXT example\.org/);
});

test('SERVFAIL and silence inside an include are temperrors, not ignored', async () => {
  const zone: ZoneData = {
    'example.org': [txt('v=spf1 include:broken.example.net ip4:192.0.2.0/24 -all')],
    'broken.example.net': [{ type: 'SERVFAIL' }],
    'silent.example.org': [txt('v=spf1 include:quiet.example.net -all')],
    'quiet.example.net': [{ type: 'TIMEOUT' }],
  };
  const servfail = await run(zone, 'a@example.org');
  assert.equal(servfail.outcome.result, 'temperror');
  assert.match(servfail.outcome.problem!, /ESERVFAIL.*TXT broken\.example\.net/);
  const silent = await run(zone, 'a@silent.example.org');
  assert.equal(silent.outcome.result, 'temperror');
  assert.match(silent.outcome.problem!, /timeout looking up TXT quiet\.example\.net/);
  assert.ok(silent.ms < 1500, `took ${silent.ms} ms`);
});

test('a huge TXT record comes over TCP and is evaluated', async () => {
  const nets = Array.from({ length: 180 }, (_, i) => `ip4:10.${i >> 4}.${(i & 15) * 16}.0/20`);
  const record = `v=spf1 ${nets.join(' ')} ip4:192.0.2.1 -all`;
  assert.ok(record.length > 3000, 'bigger than any UDP answer the resolver accepts');
  const zone: ZoneData = { 'big.example.org': [txt(record), txt('filler '.repeat(60))] };
  const pass = await run(zone, 'a@big.example.org', '192.0.2.1');
  assert.equal(pass.outcome.result, 'pass');
  assert.equal(pass.outcome.record, record, 'the 255-octet strings are joined without spaces');
  assert.equal((await run(zone, 'a@big.example.org', '192.0.2.2')).outcome.result, 'fail');
});

test('a huge record of DNS mechanisms is a permerror after 10 lookups', async () => {
  const zone: ZoneData = { 'bomb.example.org': [txt(`v=spf1 ${Array.from({ length: 60 }, (_, i) => `a:h${i}.example.org`).join(' ')} -all`)] };
  for (let i = 0; i < 60; i++) (zone as Record<string, unknown[]>)[`h${i}.example.org`] = [{ type: 'A', data: '198.51.100.1' }];
  const { outcome, asked } = await run(zone, 'a@bomb.example.org');
  assert.equal(outcome.result, 'permerror');
  assert.match(outcome.problem!, /Too many DNS requests/);
  assert.ok(asked.length <= 1 + 10 * 2, `${asked.length} questions`);
});

test('include and redirect loops are permerrors', async () => {
  const zone: ZoneData = {
    'a.example.org': [txt('v=spf1 include:b.example.org -all')],
    'b.example.org': [txt('v=spf1 include:a.example.org -all')],
    'self.example.org': [txt('v=spf1 redirect=self.example.org')],
  };
  const loop = await run(zone, 'x@a.example.org');
  assert.equal(loop.outcome.result, 'permerror');
  assert.ok(loop.asked.length <= 12, `${loop.asked.length} questions`);
  const self = await run(zone, 'x@self.example.org');
  assert.equal(self.outcome.result, 'permerror');
  assert.ok(self.asked.length <= 12, `${self.asked.length} questions`);
});

test('lookup-limit bombs: deep includes, wide MX, void lookups', async () => {
  const zone: Record<string, ZoneData[string]> = {};
  for (let i = 0; i < 30; i++) zone[`d${i}.example.org`] = [txt(`v=spf1 include:d${i + 1}.example.org -all`)];
  const mx = Array.from({ length: 40 }, (_, i) => ({ type: 'MX' as const, data: { priority: i, exchange: `mx${i}.example.org` } }));
  zone['wide.example.org'] = [txt('v=spf1 mx -all'), ...mx];
  zone['void.example.org'] = [txt('v=spf1 a:n1.example.org a:n2.example.org a:n3.example.org a:n4.example.org -all')];
  const deep = await run(zone, 'x@d0.example.org');
  assert.equal(deep.outcome.result, 'permerror');
  assert.ok(deep.asked.length <= 12, `${deep.asked.length} questions`);
  const wide = await run(zone, 'x@wide.example.org');
  assert.equal(wide.outcome.result, 'permerror', 'more than 10 MX names (RFC 7208 s4.6.4)');
  assert.ok(wide.asked.length <= 2 + 11 * 2, `${wide.asked.length} questions`);
  const voids = await run(zone, 'x@void.example.org');
  assert.equal(voids.outcome.result, 'permerror');
  assert.match(voids.outcome.problem!, /void/);
});

test('the time budget stops an evaluation that waits on a slow server', async () => {
  const zone: ZoneData = { 'example.org': [txt('v=spf1 exists:slow.example.org -all')], 'slow.example.org': [{ type: 'TIMEOUT' }] };
  const { outcome, ms } = await run(zone, 'x@example.org', '192.0.2.1', { budgetMs: 300, timeoutMs: 1500 });
  assert.equal(outcome.result, 'temperror');
  assert.match(outcome.problem!, /time budget/);
  assert.ok(ms < 1500, `took ${ms} ms`);
});

test('%{d} in an included record is that record\'s domain (RFC 7208 s7.3)', async () => {
  const zone: ZoneData = {
    'a.example.org': [txt('v=spf1 include:b.example.net -all')],
    'b.example.net': [txt('v=spf1 exists:%{i}.%{d}.list.example -all')],
    '192.0.2.1.b.example.net.list.example': [{ type: 'A', data: '127.0.0.2' }],
  };
  const { outcome, asked } = await run(zone, 'x@a.example.org');
  assert.equal(outcome.result, 'pass');
  assert.ok(asked.includes('A 192.0.2.1.b.example.net.list.example'), asked.join(', '));
  assert.equal(outcome.decision?.term?.text, 'include:b.example.net');
});
