import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeResolver, conn, refusal, type FakeZone } from '../test-support.js';
import { rdns, resolveClientName } from './rdns.js';
import type { RdnsConfig } from './config.js';
import type { ConnectionFacts, CheckResult } from '../types.js';

const CONFIG: RdnsConfig = { enabled: true, dynamic_patterns: [] };
const PTR4 = 'PTR 1.2.0.192.in-addr.arpa';
const PTR6 = 'PTR 5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa';

const symbols = (r: CheckResult) => (r.symbols ?? []).map((s) => `${s.name}: ${s.reason}`);

interface Case { title: string; ip?: string; zone: FakeZone; config?: RdnsConfig; expect: string[] }

const cases: Case[] = [
  {
    title: 'forward-confirmed, a server name: only the name, in RDNS_VERIFIED',
    zone: { [PTR4]: ['mail.example.org.'], 'A mail.example.org': ['192.0.2.1'] },
    expect: ['RDNS_VERIFIED: client name mail.example.org (forward-confirmed)'],
  },
  {
    title: 'no PTR (NXDOMAIN)',
    zone: {},
    expect: ['RDNS_NONE: no PTR record for 192.0.2.1'],
  },
  {
    title: 'no PTR (NODATA)',
    zone: { [PTR4]: 'nodata' },
    expect: ['RDNS_NONE: no PTR record for 192.0.2.1'],
  },
  {
    title: 'PTR whose name does not exist',
    zone: { [PTR4]: ['mail.example.org'] },
    expect: ['RDNS_NOT_FCRDNS: PTR mail.example.org does not resolve back to 192.0.2.1'],
  },
  {
    title: 'PTR whose name resolves elsewhere',
    zone: { [PTR4]: ['mail.example.org'], 'A mail.example.org': ['192.0.2.99', '192.0.2.100'] },
    expect: ['RDNS_NOT_FCRDNS: PTR mail.example.org does not resolve back to 192.0.2.1'],
  },
  {
    title: 'PTR that is not a host name: not looked up, not confirmed',
    zone: { [PTR4]: ['bad name\r\n.example.org'] },
    expect: ['RDNS_NOT_FCRDNS: PTR bad name??.example.org does not resolve back to 192.0.2.1'],
  },
  {
    title: 'several PTR names: one confirming is enough',
    zone: { [PTR4]: ['a.example.org', 'b.example.org'], 'A a.example.org': ['192.0.2.9'], 'A b.example.org': ['192.0.2.1'] },
    expect: ['RDNS_VERIFIED: client name b.example.org (forward-confirmed)'],
  },
  {
    title: 'dynamic and confirmed: both facts',
    zone: { [PTR4]: ['c-192-0-2-1.hsd1.example.net'], 'A c-192-0-2-1.hsd1.example.net': ['192.0.2.1'] },
    expect: [
      'RDNS_VERIFIED: client name c-192-0-2-1.hsd1.example.net (forward-confirmed)',
      'RDNS_DYNAMIC: client name c-192-0-2-1.hsd1.example.net looks dynamic or generic: the address is in the name (decimal, in order)',
    ],
  },
  {
    title: 'dynamic and not confirmed',
    zone: { [PTR4]: ['adsl-1.pool.example.net'] },
    expect: [
      'RDNS_NOT_FCRDNS: PTR adsl-1.pool.example.net does not resolve back to 192.0.2.1',
      'RDNS_DYNAMIC: client name adsl-1.pool.example.net looks dynamic or generic: label word "adsl"',
    ],
  },
  {
    title: 'an operator pattern',
    zone: { [PTR4]: ['mta9.bulk.example.net'], 'A mta9.bulk.example.net': ['192.0.2.1'] },
    config: { enabled: true, dynamic_patterns: ['^mta\\d+\\.bulk\\.'] },
    expect: [
      'RDNS_VERIFIED: client name mta9.bulk.example.net (forward-confirmed)',
      'RDNS_DYNAMIC: client name mta9.bulk.example.net looks dynamic or generic: pattern /^mta\\d+\\.bulk\\./',
    ],
  },
  {
    title: 'PTR lookup error: RDNS_TEMPFAIL only',
    zone: { [PTR4]: 'error' },
    expect: ['RDNS_TEMPFAIL: PTR lookup of 1.2.0.192.in-addr.arpa: timed out after 2 attempts'],
  },
  {
    title: 'forward lookup error: RDNS_TEMPFAIL, and the PTR name is still classified',
    zone: { [PTR4]: ['dhcp-7.example.net'], 'A dhcp-7.example.net': 'error' },
    expect: [
      'RDNS_TEMPFAIL: A lookup of dhcp-7.example.net: timed out after 2 attempts',
      'RDNS_DYNAMIC: client name dhcp-7.example.net looks dynamic or generic: label word "dhcp"',
    ],
  },
  {
    title: 'forward error on one name, another confirms: verified',
    zone: { [PTR4]: ['a.example.org', 'b.example.org'], 'A a.example.org': 'error', 'A b.example.org': ['192.0.2.1'] },
    expect: ['RDNS_VERIFIED: client name b.example.org (forward-confirmed)'],
  },
  {
    title: 'IPv6: ip6.arpa PTR, AAAA forward (any spelling of the address)',
    ip: '2001:db8::25',
    zone: { [PTR6]: ['mail6.example.org'], 'AAAA mail6.example.org': ['2001:0db8:0:0:0:0:0:25'] },
    expect: ['RDNS_VERIFIED: client name mail6.example.org (forward-confirmed)'],
  },
  {
    title: 'IPv6 without PTR',
    ip: '2001:db8::25',
    zone: {},
    expect: ['RDNS_NONE: no PTR record for 2001:db8::25'],
  },
  {
    title: 'IPv4-mapped client: in-addr.arpa, A records',
    ip: '::ffff:192.0.2.1',
    zone: { [PTR4]: ['mail.example.org'], 'A mail.example.org': ['192.0.2.1'] },
    expect: ['RDNS_VERIFIED: client name mail.example.org (forward-confirmed)'],
  },
];

for (const c of cases) {
  test(`rdns: ${c.title}`, async () => {
    const r = await rdns(new FakeResolver(c.zone), c.config ?? CONFIG).run({ conn: conn({ remoteAddress: c.ip ?? '192.0.2.1' }) });
    assert.deepEqual(symbols(r), c.expect);
    assert.equal(refusal(r, { stage: 'connect' }), undefined);
  });
}

test('rdns: not on submission listeners, not for trusted networks, not when disabled: no query', async () => {
  const skipped: [ConnectionFacts, RdnsConfig][] = [
    [conn({ listenerKind: 'submission' }), CONFIG], [conn({ trustedNetwork: true }), CONFIG],
    [conn(), { enabled: false, dynamic_patterns: [] }], [conn({ remoteAddress: 'not-an-ip' }), CONFIG],
  ];
  for (const [facts, config] of skipped) {
    const resolver = new FakeResolver({});
    assert.deepEqual(await rdns(resolver, config).run({ conn: facts }), {});
    assert.deepEqual(resolver.queries, []);
  }
});

test('rdns: a bad pattern is a start-up error', () => {
  assert.throws(() => rdns(new FakeResolver({}), { enabled: true, dynamic_patterns: ['[x'] }), /rdns\.dynamic_patterns\[0\]/);
});

test('rdns: at most 5 PTR names are checked, at once', async () => {
  const names = Array.from({ length: 8 }, (_, i) => `n${i}.example.org`);
  const resolver = new FakeResolver({ [PTR4]: names });
  const r = await resolveClientName(resolver, '192.0.2.1');
  assert.deepEqual(r, { status: 'unverified', names: names.slice(0, 5) });
  assert.equal(resolver.queries.length, 6);
});

test('resolveClientName: the verified name, for the Received header', async () => {
  const resolver = new FakeResolver({ [PTR4]: ['MAIL.Example.org.'], 'A mail.example.org': ['192.0.2.1'] });
  assert.deepEqual(await resolveClientName(resolver, '192.0.2.1'), { status: 'verified', name: 'mail.example.org', names: ['mail.example.org'] });
  assert.deepEqual(await resolveClientName(resolver, 'garbage'), { status: 'none' });
});
