// The check with an in-memory resolver: decoding of codes and bitmasks, refusals, bounds,
// resolve: a/ns, local lists. (test/uribl/ runs it against a real rbldnsd.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { FakeResolver, conn } from '../test-support.js';
import type { MessageFacts } from '../types.js';
import { uriConfigSchema, type UriConfig } from './config.js';
import { DomainLists } from './domain-list.js';
import { uriCheck } from './uri-check.js';
import { compileUriLists } from './uribl.js';
import { messageModel } from '../../mime/model.js';

export function facts(raw: string): MessageFacts {
  const buf = Buffer.from(raw);
  return { ...messageModel({ size: buf.length, stream: () => Readable.from([buf]) }), headers: [], bareNewlines: 0 };
}
function html(body: string): MessageFacts {
  return facts(`From: x@sender.refdom.org\r\nSubject: t\r\nContent-Type: text/html\r\n\r\n${body}\r\n`);
}
const cfg = (over: Record<string, unknown>): UriConfig => uriConfigSchema.parse(over);
const none = new DomainLists([]);
const input = (message: MessageFacts) => ({ conn: conn(), envelope: { sender: 'x@sender.refdom.org', recipients: ['u@own.example'] }, message });

const LISTS = [
  { zone: 'dbl.test', name: 'DBL', weight: 3, codes: { '127.0.1.2': 'SPAM', '127.0.1.4-6': { name: 'PHISH', weight: 5 } } },
  { zone: 'multi.test', name: 'MULTI', weight: 2, bitmask: { '8': 'PH', '16': 'MW', '64': 'ABUSE' } },
  { zone: 'plain.test', weight: 1 },
];

test('codes, named codes with weights, bitmask bits, refusals', async () => {
  const r = new FakeResolver({
    'A spamdom.com.dbl.test': ['127.0.1.2'],
    'A phishdom.net.dbl.test': ['127.0.1.4'],
    'A phishdom.net.multi.test': ['127.0.0.24'], // 8 + 16
    'A spamdom.com.plain.test': ['127.0.0.2'],
    'A refdom.org.dbl.test': ['127.0.1.255'],
    'A refdom.org.multi.test': ['127.0.0.1'],
    'A refdom.org.plain.test': ['127.255.255.254'],
  });
  const check = uriCheck({ resolver: r, config: cfg({ lists: LISTS }), ownDomains: [], blockLists: none, allowLists: none });
  const res = await check.run(input(html('<a href="http://www.spamdom.com/">a</a><a href="http://phishdom.net/">b</a><a href="http://refdom.org/">c</a>')));
  const by = new Map(res.symbols!.map((s) => [s.name, s]));
  assert.equal(by.get('URIBL_DBL_SPAM')?.score, 3);
  assert.match(by.get('URIBL_DBL_SPAM')!.reason, /spamdom\.com in dbl\.test \(127\.0\.1\.2\)/);
  assert.equal(by.get('URIBL_DBL_PHISH')?.score, 5);
  assert.equal(by.get('URIBL_MULTI_PH')?.score, 2);
  assert.equal(by.get('URIBL_MULTI_MW')?.score, 2);
  assert.ok(!by.has('URIBL_MULTI_ABUSE'));
  assert.equal(by.get('URIBL_PLAIN_TEST')?.score, 1);
  assert.match(by.get('URIBL_TEMPFAIL')!.reason, /query refused/);
  assert.ok(![...by.keys()].some((k) => k.includes('REFUSED')));
  // Registrable domains are asked, not hosts.
  assert.ok(r.queries.includes('A spamdom.com.dbl.test'));
  assert.ok(!r.queries.some((q) => q.startsWith('A www.')));
});

test('compile errors name the list', () => {
  assert.throws(() => compileUriLists(cfg({ lists: [{ zone: 'm.test', bitmask: { '3': 'X' } }] }).lists), /uri\.lists\[0\] \(m\.test\) bitmask: "3"/);
  assert.throws(() => compileUriLists(cfg({ lists: [{ zone: 'a.test', name: 'X' }, { zone: 'b.test', name: 'X' }] }).lists), /URIBL_X/);
  assert.throws(() => uriConfigSchema.parse({ lists: [{ zone: 'a.test', codes: ['127.0.0.2'], bitmask: { '2': 'A' } }] }), /either codes or bitmask/);
});

test('DNS errors and a throwing resolver give URIBL_TEMPFAIL, never a crash', async () => {
  const r = new FakeResolver({ 'A spamdom.com.plain.test': 'error', 'A phishdom.net.plain.test': 'throw' });
  const check = uriCheck({ resolver: r, config: cfg({ lists: [LISTS[2]] }), ownDomains: [], blockLists: none, allowLists: none });
  const res = await check.run(input(html('<a href="http://spamdom.com/">a</a><a href="http://phishdom.net/">b</a>')));
  const t = res.symbols!.find((s) => s.name === 'URIBL_TEMPFAIL');
  assert.ok(t);
  assert.match(t.reason, /timed out/);
  assert.match(t.reason, /resolver bug/);
});

test('bounds: 10,000 links → max_domains names asked, within the budget and in time', async () => {
  const r = new FakeResolver({}, 5);
  const check = uriCheck({ resolver: r, config: cfg({ lists: LISTS, max_domains: 20, max_queries: 50 }), ownDomains: [], blockLists: none, allowLists: none });
  const links = Array.from({ length: 10_000 }, (_, i) => `<a href="http://h${i}.d${i}.example${i % 7}.com/">x</a>`).join('');
  const t0 = Date.now();
  await check.run(input(html(links)));
  assert.ok(r.queries.length <= 50, `${r.queries.length} queries`);
  assert.equal(new Set(r.queries.map((q) => q.split(' ')[1]!.replace(/\.(dbl|multi|plain)\.test$/, ''))).size, 7);
  assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
  // Distinct domains: exactly max_domains asked of the first list.
  const r2 = new FakeResolver({});
  const check2 = uriCheck({ resolver: r2, config: cfg({ lists: [LISTS[0]], max_domains: 20 }), ownDomains: [], blockLists: none, allowLists: none });
  await check2.run(input(html(Array.from({ length: 10_000 }, (_, i) => `<a href="http://d${i}.com/">x</a>`).join(''))));
  assert.equal(r2.queries.length, 20);
  assert.equal(r2.queries[0], 'A d0.com.dbl.test'); // links in message order
});

test('a hanging resolver: partial answers are reported before the runner budget', async () => {
  const r = new FakeResolver({ 'A spamdom.com.plain.test': ['127.0.0.2'], 'A phishdom.net.plain.test': 'hang' });
  const check = uriCheck({ resolver: r, config: cfg({ lists: [LISTS[2]] }), ownDomains: [], blockLists: none, allowLists: none, timeoutMs: 1000 });
  const t0 = Date.now();
  const res = await check.run(input(html('<a href="http://spamdom.com/">a</a><a href="http://phishdom.net/">b</a>')));
  assert.ok(Date.now() - t0 < 1000, `${Date.now() - t0} ms`);
  assert.ok(res.symbols!.some((s) => s.name === 'URIBL_PLAIN_TEST'));
  assert.ok(res.symbols!.some((s) => s.name === 'URIBL_TEMPFAIL' && /unanswered/.test(s.reason)));
});

test('skip lists: own domains, skip_domains, built-ins', async () => {
  const r = new FakeResolver({});
  const block = new DomainLists([]);
  const check = uriCheck({ resolver: r, config: cfg({ lists: [LISTS[2]], skip_domains: ['partner.example'] }), ownDomains: ['own.example'], blockLists: block, allowLists: none });
  await check.run(input(html('<a href="http://mail.own.example/">a</a><a href="http://www.partner.example/">b</a><a href="http://www.w3.org/">c</a><a href="http://spamdom.com/">d</a>')));
  assert.deepEqual(r.queries, ['A spamdom.com.plain.test']);
});

test('resolve: a and ns look up the addresses of a domain in an IP list', async () => {
  const r = new FakeResolver({
    'A spamdom.com': ['192.0.2.10'],
    'NS spamdom.com': ['ns1.dns.phishdom.net'],
    'A ns1.dns.phishdom.net': ['192.0.2.53'],
    'A 10.2.0.192.sbl.test': ['127.0.0.2'],
    'A 53.2.0.192.sbla.test': ['127.0.0.2'],
  });
  const lists = [{ zone: 'sbl.test', name: 'SBL_A', type: 'ip', resolve: 'a' }, { zone: 'sbla.test', name: 'SBL_NS', type: 'ip', resolve: 'ns' }];
  const check = uriCheck({ resolver: r, config: cfg({ lists }), ownDomains: [], blockLists: none, allowLists: none });
  const res = await check.run(input(html('<a href="http://spamdom.com/">a</a><a href="http://198.51.100.7/">b</a>')));
  const names = res.symbols!.map((s) => s.name);
  assert.ok(names.includes('URIBL_SBL_A'), JSON.stringify(res.symbols));
  assert.ok(names.includes('URIBL_SBL_NS'));
  assert.match(res.symbols!.find((s) => s.name === 'URIBL_SBL_NS')!.reason, /name server 192\.0\.2\.53/);
  assert.ok(r.queries.includes('A 7.100.51.198.sbl.test'), 'IP hosts are asked of ip lists');
});

test('disabled: nothing is asked', async () => {
  const r = new FakeResolver({});
  const check = uriCheck({ resolver: r, config: cfg({ enabled: false, lists: LISTS }), ownDomains: [], blockLists: none, allowLists: none });
  assert.deepEqual(await check.run(input(html('<a href="http://spamdom.com/">a</a>'))), {});
  assert.equal(r.queries.length, 0);
});
