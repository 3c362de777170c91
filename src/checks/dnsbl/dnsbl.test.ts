import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockedReply, compileLists, dnsbl, listName, sanitizeTxt, type DnsblConfig } from './dnsbl.js';
import type { ConnectionFacts, CheckResult } from '../types.js';
import { FakeResolver, conn, refusal, testPolicy, type FakeZone } from '../test-support.js';
import { CheckRunner } from '../../pipeline/runner.js';
import { silentLogger } from '../../log.js';
import { formatReply } from '../../protocol/reply.js';

type ListIn = { zone: string; weight?: number; codes?: string[]; name?: string };
function config(lists: ListIn[], more: Partial<Omit<DnsblConfig, 'lists'>> = {}): DnsblConfig {
  return { threshold: 1, ...more, lists: lists.map((l) => ({ weight: 1, codes: [], ...l })) };
}

/** symbol name → score, for comparing against a fixture (DNSBL_LISTED, the threshold's symbol, apart). */
const scores = (r: CheckResult) => Object.fromEntries((r.symbols ?? []).filter((s) => s.name !== 'DNSBL_LISTED').map((s) => [s.name, s.score]));

const ZEN = { zone: 'zen.spamhaus.org' };
const SPAMCOP = { zone: 'bl.spamcop.net' };
const DNSWL = { zone: 'list.dnswl.org', weight: -2 };

interface Case {
  title: string;
  ip?: string;
  lists: ListIn[];
  more?: Partial<Omit<DnsblConfig, 'lists'>>;
  /** DNSBL_LISTED's action (was dnsbl.action). */
  action?: 'score';
  zone: FakeZone;
  symbols: Record<string, number | undefined>;
  reply?: string;
}

const cases: Case[] = [
  {
    title: 'listed nowhere: nothing',
    lists: [ZEN, SPAMCOP], zone: {}, symbols: {},
  },
  {
    title: 'listed on one list: its symbol, its weight, 554 with the TXT',
    lists: [ZEN, SPAMCOP],
    zone: { 'A 1.2.0.192.zen.spamhaus.org': ['127.0.0.2'], 'TXT 1.2.0.192.zen.spamhaus.org': [['https://www.spamhaus.org/query/ip/192.0.2.1']] },
    symbols: { DNSBL_ZEN_SPAMHAUS_ORG: 1 },
    reply: '554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.1',
  },
  {
    title: 'listed, no TXT record: the reply names the list only',
    lists: [SPAMCOP],
    zone: { 'A 1.2.0.192.bl.spamcop.net': ['127.0.0.2'] },
    symbols: { DNSBL_BL_SPAMCOP_NET: 1 },
    reply: '554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using bl.spamcop.net',
  },
  {
    title: 'return codes: 127.0.0.2 and 127.0.0.11 mean different things on one zone',
    lists: [
      { zone: 'zen.spamhaus.org', name: 'zen_sbl', codes: ['127.0.0.2'], weight: 3 },
      { zone: 'zen.spamhaus.org', name: 'ZEN_PBL', codes: ['127.0.0.[10..11]'], weight: 0.5 },
    ],
    zone: { 'A 1.2.0.192.zen.spamhaus.org': ['127.0.0.11'] },
    symbols: { DNSBL_ZEN_PBL: 0.5 },
  },
  {
    title: 'return codes: an answer outside the filter is no listing',
    lists: [{ zone: 'zen.spamhaus.org', codes: ['127.0.0.4-7'] }],
    zone: { 'A 1.2.0.192.zen.spamhaus.org': ['127.0.0.2', '127.0.0.10'] },
    symbols: {},
  },
  {
    title: 'several answers: the matching ones are named',
    lists: [{ zone: 'zen.spamhaus.org', codes: ['127.0.0.[2..7]'], weight: 2 }],
    zone: { 'A 1.2.0.192.zen.spamhaus.org': ['127.0.0.2', '127.0.0.4', '127.0.0.10'] },
    symbols: { DNSBL_ZEN_SPAMHAUS_ORG: 2 },
    reply: '554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org',
  },
  {
    title: 'threshold not reached: scored, not refused',
    lists: [{ ...ZEN, weight: 2 }], more: { threshold: 3 },
    zone: { 'A 1.2.0.192.zen.spamhaus.org': ['127.0.0.2'] },
    symbols: { DNSBL_ZEN_SPAMHAUS_ORG: 2 },
  },
  {
    title: 'threshold reached by two lists together: both named',
    lists: [{ ...ZEN, weight: 1.5 }, { ...SPAMCOP, weight: 1.5 }], more: { threshold: 3 },
    zone: { 'A 1.2.0.192.zen.spamhaus.org': ['127.0.0.2'], 'A 1.2.0.192.bl.spamcop.net': ['127.0.0.2'] },
    symbols: { DNSBL_ZEN_SPAMHAUS_ORG: 1.5, DNSBL_BL_SPAMCOP_NET: 1.5 },
    reply: '554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org, bl.spamcop.net',
  },
  {
    title: 'an allowlist subtracts: below the threshold again',
    lists: [{ ...ZEN, weight: 2 }, DNSWL], more: { threshold: 1 },
    zone: { 'A 1.2.0.192.zen.spamhaus.org': ['127.0.0.2'], 'A 1.2.0.192.list.dnswl.org': ['127.0.10.2'] },
    symbols: { DNSBL_ZEN_SPAMHAUS_ORG: 2, DNSWL_LIST_DNSWL_ORG: -2 },
  },
  {
    title: 'an allowlist that does not cancel everything',
    lists: [{ ...ZEN, weight: 3 }, { ...DNSWL, weight: -1 }], more: { threshold: 2 },
    zone: { 'A 1.2.0.192.zen.spamhaus.org': ['127.0.0.2'], 'A 1.2.0.192.list.dnswl.org': ['127.0.10.2'] },
    symbols: { DNSBL_ZEN_SPAMHAUS_ORG: 3, DNSWL_LIST_DNSWL_ORG: -1 },
    reply: '554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org',
  },
  {
    title: 'DNSBL_LISTED: score (was dnsbl.action: score): symbols only, even far over the threshold',
    lists: [{ ...ZEN, weight: 10 }], action: 'score',
    zone: { 'A 1.2.0.192.zen.spamhaus.org': ['127.0.0.2'] },
    symbols: { DNSBL_ZEN_SPAMHAUS_ORG: 10 },
  },
  {
    title: 'a DNS error: DNSBL_TEMPFAIL (weight from configuration), never a refusal',
    lists: [ZEN, SPAMCOP],
    zone: { 'A 1.2.0.192.zen.spamhaus.org': 'error' },
    symbols: { DNSBL_TEMPFAIL: undefined },
  },
  {
    title: 'one list fails, another lists the client: refused by the one that answered',
    lists: [ZEN, SPAMCOP],
    zone: { 'A 1.2.0.192.zen.spamhaus.org': 'error', 'A 1.2.0.192.bl.spamcop.net': ['127.0.0.2'], 'TXT 1.2.0.192.bl.spamcop.net': 'error' },
    symbols: { DNSBL_BL_SPAMCOP_NET: 1, DNSBL_TEMPFAIL: undefined },
    reply: '554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using bl.spamcop.net',
  },
  {
    title: 'a resolver that throws (a bug) costs only a tempfail symbol',
    lists: [ZEN, SPAMCOP],
    zone: { 'A 1.2.0.192.zen.spamhaus.org': 'throw', 'A 1.2.0.192.bl.spamcop.net': ['127.0.0.2'] },
    symbols: { DNSBL_BL_SPAMCOP_NET: 1, DNSBL_TEMPFAIL: undefined },
    reply: '554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using bl.spamcop.net',
  },
  {
    title: '127.255.255.254 (public resolver refused) is a failure, not a listing',
    lists: [ZEN],
    zone: { 'A 1.2.0.192.zen.spamhaus.org': ['127.255.255.254'] },
    symbols: { DNSBL_TEMPFAIL: undefined },
  },
  {
    title: 'NODATA is no listing',
    lists: [ZEN], zone: { 'A 1.2.0.192.zen.spamhaus.org': 'nodata' }, symbols: {},
  },
  {
    title: 'IPv6: nibble name under the zone, the address in the reply',
    ip: '2001:db8::25',
    lists: [ZEN],
    zone: { 'A 5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org': ['127.0.0.3'] },
    symbols: { DNSBL_ZEN_SPAMHAUS_ORG: 1 },
    reply: '554 5.7.1 Service unavailable; Client host [2001:db8::25] blocked using zen.spamhaus.org',
  },
  {
    title: 'IPv4-mapped IPv6 client: asked and named as IPv4',
    ip: '::ffff:192.0.2.1',
    lists: [ZEN],
    zone: { 'A 1.2.0.192.zen.spamhaus.org': ['127.0.0.2'] },
    symbols: { DNSBL_ZEN_SPAMHAUS_ORG: 1 },
    reply: '554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org',
  },
  {
    title: 'loopback clients are asked like any other',
    ip: '127.0.0.2',
    lists: [{ zone: 'bl.test' }],
    zone: { 'A 2.0.0.127.bl.test': ['127.0.0.2'] },
    symbols: { DNSBL_BL_TEST: 1 },
    reply: '554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using bl.test',
  },
];

for (const c of cases) {
  test(`dnsbl: ${c.title}`, async () => {
    const check = dnsbl(new FakeResolver(c.zone), config(c.lists, c.more));
    const r = await check.run({ conn: conn({ remoteAddress: c.ip ?? '192.0.2.1' }) });
    assert.deepEqual(scores(r), c.symbols);
    const refused = refusal(r, { stage: 'connect', actions: c.action ? { DNSBL_LISTED: c.action } : {} });
    if (c.reply === undefined) assert.equal(refused, undefined);
    else {
      assert.equal(refused?.kind, 'reject');
      assert.equal(refused?.symbol, 'DNSBL_LISTED');
      assert.equal(formatReply(refused!.reply), `${c.reply}\r\n`);
    }
  });
}

test('dnsbl: every list is asked once per zone, at the same time; TXT only for a listing', async () => {
  const resolver = new FakeResolver({ 'A 1.2.0.192.bl.spamcop.net': ['127.0.0.2'] }, 40);
  const check = dnsbl(resolver, config([
    { zone: 'zen.spamhaus.org', name: 'A1', codes: ['127.0.0.2'] },
    { zone: 'zen.spamhaus.org', name: 'A2', codes: ['127.0.0.4'] },
    SPAMCOP, DNSWL,
  ]));
  const started = Date.now();
  await check.run({ conn: conn() });
  const took = Date.now() - started;
  assert.deepEqual(resolver.queries.sort(), [
    'A 1.2.0.192.bl.spamcop.net', 'A 1.2.0.192.list.dnswl.org', 'A 1.2.0.192.zen.spamhaus.org', 'TXT 1.2.0.192.bl.spamcop.net',
  ]);
  // Three A lookups of 40 ms in parallel, then one TXT: about 80 ms, not 160.
  assert.ok(took < 150, `took ${took} ms`);
});

test('dnsbl: reasons name the zone, the codes and the TXT; the tempfail reason names the failing list', async () => {
  const check = dnsbl(new FakeResolver({
    'A 1.2.0.192.zen.spamhaus.org': ['127.0.0.2', '127.0.0.4'],
    'TXT 1.2.0.192.zen.spamhaus.org': [['Listed ', 'in SBL'], ['Listed in XBL']],
    'A 1.2.0.192.bl.spamcop.net': 'error',
  }), config([ZEN, SPAMCOP]));
  const r = await check.run({ conn: conn() });
  assert.deepEqual(r.symbols, [
    { name: 'DNSBL_ZEN_SPAMHAUS_ORG', score: 1, reason: 'zen.spamhaus.org returned 127.0.0.2, 127.0.0.4: Listed in SBL / Listed in XBL' },
    { name: 'DNSBL_TEMPFAIL', reason: 'bl.spamcop.net: timed out after 2 attempts' },
    {
      name: 'DNSBL_LISTED', reason: 'listed by zen.spamhaus.org: weight 1 >= dnsbl.threshold 1',
      reply: { code: 554, enhanced: '5.7.1', text: 'Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; Listed in SBL / Listed in XBL' },
    },
  ]);
  assert.equal(refusal(r)?.reply.text, 'Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; Listed in SBL / Listed in XBL');
});

test('dnsbl: a hostile TXT cannot break the reply (no CR/LF, printable ASCII, at most 200 characters)', async () => {
  const evil = `bad\r\n250 OK fake\n\x00\x1b[31m é ${'x'.repeat(500)}`;
  const check = dnsbl(new FakeResolver({
    'A 1.2.0.192.zen.spamhaus.org': ['127.0.0.2'],
    'TXT 1.2.0.192.zen.spamhaus.org': [[evil]],
  }), config([ZEN]));
  const r = await check.run({ conn: conn() });
  const text = refusal(r)!.reply.text;
  assert.doesNotMatch(text, /[\r\n\x00-\x1f\x7f-\uffff]/);
  const txt = text.split('; ').slice(2).join('; ');
  assert.ok(txt.startsWith('bad 250 OK fake [31m ? xxx'), txt);
  assert.equal(txt.length, 200);
  assert.ok(txt.endsWith('...'));
  // One reply line on the wire.
  assert.equal(formatReply(refusal(r)!.reply).split('\r\n').length, 2);
  assert.doesNotMatch(r.symbols![0]!.reason, /[\r\n]/);
});

test('sanitizeTxt and blockedReply', () => {
  assert.equal(sanitizeTxt(['  a\tb  ', 'a\tb', '', 'c']), 'a b / c');
  assert.equal(sanitizeTxt(['x'.repeat(10)], 8), 'xxxxx...');
  const many = Array.from({ length: 30 }, (_, i) => `list${i}.example.org`);
  const r = blockedReply('192.0.2.1', many, 'y'.repeat(200));
  assert.ok(formatReply(r).length < 512, `${formatReply(r).length}`);
});

test('dnsbl: only mx listeners, never trusted networks, never a non-IP peer: no query at all', async () => {
  const zone = { 'A 1.2.0.192.zen.spamhaus.org': ['127.0.0.2'] };
  for (const facts of [
    conn({ listenerKind: 'submission' }), conn({ listenerKind: 'submissions' }), conn({ trustedNetwork: true }), conn({ remoteAddress: '' }),
  ]) {
    const resolver = new FakeResolver(zone);
    assert.deepEqual(await dnsbl(resolver, config([ZEN])).run({ conn: facts }), {});
    assert.deepEqual(resolver.queries, []);
  }
  // No lists configured: nothing to ask.
  const resolver = new FakeResolver(zone);
  assert.deepEqual(await dnsbl(resolver, config([])).run({ conn: conn() }), {});
  assert.deepEqual(resolver.queries, []);
});

test('list names: derived from the zone, or configured; DNSWL_ for negative weights', () => {
  assert.equal(listName('zen.spamhaus.org'), 'ZEN_SPAMHAUS_ORG');
  assert.equal(listName('b.barracudacentral.org.'), 'B_BARRACUDACENTRAL_ORG');
  assert.equal(listName('dnsbl-1.uceprotect.net'), 'DNSBL_1_UCEPROTECT_NET');
  assert.deepEqual(compileLists(config([{ zone: 'ZEN.spamhaus.org.' }, { zone: 'list.dnswl.org', weight: -5, name: 'dnswl' }]))
    .map((l) => [l.zone, l.symbol, l.weight]), [['zen.spamhaus.org', 'DNSBL_ZEN_SPAMHAUS_ORG', 1], ['list.dnswl.org', 'DNSWL_DNSWL', -5]]);
});

test('configuration errors are found at start-up, naming the list', () => {
  assert.throws(() => dnsbl(new FakeResolver({}), config([ZEN, { zone: 'zen.spamhaus.org', codes: ['127.0.0.4'] }])),
    /dnsbl\.lists\[1\] \(zen\.spamhaus\.org\): symbol DNSBL_ZEN_SPAMHAUS_ORG is also the symbol of dnsbl\.lists\[0\]; give one of them a name/);
  assert.throws(() => dnsbl(new FakeResolver({}), config([{ zone: 'zen.spamhaus.org', codes: ['127.0.0.[4..]'] }])),
    /dnsbl\.lists\[0\] \(zen\.spamhaus\.org\) codes: "127\.0\.0\.\[4\.\.\]"/);
});

test('dnsbl under the runner: a DNS error is a 0-weight symbol, and a silent resolver cannot hang the session', async () => {
  const weights = testPolicy();
  // The resolver's own timeout answers "error": DNSBL_TEMPFAIL, scored 0.
  const failing = new CheckRunner([dnsbl(new FakeResolver({ 'A 1.2.0.192.zen.spamhaus.org': 'error' }, 30), config([ZEN]))], weights, silentLogger());
  const a = await failing.run('connect', { conn: conn() });
  assert.deepEqual(a.symbols.map((s) => [s.name, s.score]), [['DNSBL_TEMPFAIL', 0]]);
  assert.equal(a.demand, undefined);
  // A resolver that never answers (a bug): the check's budget ends it.
  const silent = new CheckRunner([dnsbl(new FakeResolver({ 'A 1.2.0.192.zen.spamhaus.org': 'hang' }), config([ZEN]), { timeoutMs: 100 })], weights, silentLogger());
  const started = Date.now();
  const b = await silent.run('connect', { conn: conn() });
  assert.ok(Date.now() - started < 1000);
  assert.deepEqual(b.symbols.map((s) => s.name), ['CHECK_FAILED']);
  assert.equal(b.demand, undefined);
});

test('dnsbl: a DNS failure is logged', async () => {
  const lines: unknown[] = [];
  const logger = { warn: (obj: unknown) => lines.push(obj) } as unknown as import('../../log.js').Logger;
  await dnsbl(new FakeResolver({ 'A 1.2.0.192.zen.spamhaus.org': 'error' }), config([ZEN]), { logger }).run({ conn: conn() });
  assert.deepEqual(lines, [{ event: 'dnsbl_tempfail', client: '192.0.2.1', lists: ['zen.spamhaus.org: timed out after 2 attempts'] }]);
});
