import { test } from 'node:test';
import assert from 'node:assert/strict';
import { heloClaimsOurs, heloNoResolve } from './helo-dns.js';
import type { ConnectionFacts, CheckResult } from '../types.js';
import { FakeResolver, type FakeZone } from '../test-support.js';

function conn(helo: string, over: Partial<ConnectionFacts> = {}): ConnectionFacts {
  return {
    sessionId: 's1', listener: 'mx', listenerKind: 'mx', remoteAddress: '192.0.2.1', remotePort: 40000,
    localAddress: '198.51.100.1', localPort: 25, trustedNetwork: false, esmtp: true, helo, ...over,
  };
}

const symbols = (r: CheckResult) => (r.symbols ?? []).map((s) => `${s.name}: ${s.reason}`);

const claims = heloClaimsOurs({ hostname: 'mx.example.org', domains: ['example.org', 'example.net'], addresses: ['2001:db8::25'] });

const claimCases: [string, Partial<ConnectionFacts>, string[]][] = [
  ['mx.example.org', {}, ['HELO_CLAIMS_OURS: HELO mx.example.org from 192.0.2.1 claims to be us (our host name)']],
  ['MX.Example.ORG.', {}, ['HELO_CLAIMS_OURS: HELO mx.example.org from 192.0.2.1 claims to be us (our host name)']],
  ['example.net', {}, ['HELO_CLAIMS_OURS: HELO example.net from 192.0.2.1 claims to be us (our domain)']],
  ['[198.51.100.1]', {}, ['HELO_CLAIMS_OURS: HELO [198.51.100.1] from 192.0.2.1 claims to be us (our own address 198.51.100.1)']],
  ['198.51.100.1', {}, ['HELO_CLAIMS_OURS: HELO 198.51.100.1 from 192.0.2.1 claims to be us (our own address 198.51.100.1)']],
  ['[IPv6:2001:DB8::25]', {}, ['HELO_CLAIMS_OURS: HELO [ipv6:2001:db8::25] from 192.0.2.1 claims to be us (our own address 2001:db8::25)']],
  ['[198.51.100.1]', { localAddress: '::ffff:198.51.100.1' }, ['HELO_CLAIMS_OURS: HELO [198.51.100.1] from 192.0.2.1 claims to be us (our own address 198.51.100.1)']],
  // Not a claim: other names, subdomains of ours (our other hosts), the client's own literal.
  ['mail.example.com', {}, []],
  ['web1.example.org', {}, []],
  ['[192.0.2.1]', {}, []],
  // A client on our own machine: our address is its address.
  ['[127.0.0.1]', { remoteAddress: '127.0.0.1', localAddress: '127.0.0.1' }, []],
  // Trusted networks and authenticated clients are not judged; no HELO, nothing.
  ['mx.example.org', { trustedNetwork: true }, []],
  ['mx.example.org', { authUser: 'alice@example.org' }, []],
  ['', {}, []],
];

for (const [helo, over, expect] of claimCases) {
  test(`HELO_CLAIMS_OURS: ${JSON.stringify(helo)} ${JSON.stringify(over)}`, async () => {
    assert.deepEqual(symbols(await claims.run({ conn: conn(helo, over) })), expect);
  });
}

const ZONE: FakeZone = {
  'A mail.example.com': ['192.0.2.1'],
  'AAAA v6only.example.com': ['2001:db8::1'],
  'MX example.com': [{ exchange: 'mail.example.com', priority: 10 }],
  'A nodata.example.com': 'nodata', 'AAAA nodata.example.com': 'nodata', 'MX nodata.example.com': 'nodata',
  'A broken.example.com': 'error',
  'A half.example.com': 'error', 'AAAA half.example.com': ['2001:db8::2'],
};

const resolveCases: [string, string[]][] = [
  ['mail.example.com', []],
  ['v6only.example.com', []],
  ['example.com', []],
  ['Mail.Example.COM.', []],
  ['half.example.com', []],
  ['nothere.example.com', ['HELO_NO_RESOLVE: HELO nothere.example.com does not resolve: the name does not exist']],
  ['nodata.example.com', ['HELO_NO_RESOLVE: HELO nodata.example.com does not resolve: no A, AAAA or MX record']],
  ['broken.example.com', ['HELO_DNS_TEMPFAIL: lookup of HELO broken.example.com failed: timed out after 2 attempts']],
];

for (const [helo, expect] of resolveCases) {
  test(`HELO_NO_RESOLVE: ${helo}`, async () => {
    assert.deepEqual(symbols(await heloNoResolve(new FakeResolver(ZONE)).run({ conn: conn(helo) })), expect);
  });
}

test('HELO_NO_RESOLVE: asks A, AAAA and MX of the name', async () => {
  const resolver = new FakeResolver({});
  await heloNoResolve(resolver).run({ conn: conn('Nothere.Example.com') });
  assert.deepEqual(resolver.queries.sort(), ['A nothere.example.com', 'AAAA nothere.example.com', 'MX nothere.example.com']);
});

test('HELO_NO_RESOLVE: literals, bare IPs, non-names, trusted and authenticated clients are not looked up', async () => {
  for (const facts of [
    conn('[192.0.2.1]'), conn('192.0.2.1'), conn('localhost'), conn('bad_name!'), conn(''),
    conn('nothere.example.com', { trustedNetwork: true }), conn('nothere.example.com', { authUser: 'bob@example.org' }),
  ]) {
    const resolver = new FakeResolver({});
    assert.deepEqual(await heloNoResolve(resolver).run({ conn: facts }), {});
    assert.deepEqual(resolver.queries, []);
  }
});

test('HELO_DNS_TEMPFAIL is logged', async () => {
  const lines: unknown[] = [];
  const logger = { warn: (obj: unknown) => lines.push(obj) } as unknown as import('../../log.js').Logger;
  await heloNoResolve(new FakeResolver(ZONE), { logger }).run({ conn: conn('broken.example.com') });
  assert.deepEqual(lines, [{ event: 'helo_dns_tempfail', helo: 'broken.example.com', err: 'timed out after 2 attempts' }]);
});
