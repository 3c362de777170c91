// The DNSBL check over real DNS: a real rbldnsd (Debian's /usr/sbin/rbldnsd) serves test zones
// on a free loopback UDP port, the gateway's resolver asks it, the check weighs the answers.
// Without rbldnsd the test is skipped, unless CI=true or PORTCULLIS_TEST_STRICT=1 (then it fails).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import { createResolver } from '../../src/dns/resolver.js';
import { dnsbl, type DnsblConfig } from '../../src/checks/dnsbl/dnsbl.js';
import type { ConnectionFacts, CheckResult } from '../../src/checks/types.js';
import type { Resolver } from '../../src/dns/types.js';
import { formatReply } from '../../src/protocol/reply.js';
import { refusal } from '../../src/checks/test-support.js';
import { needRbldnsd, RBLDNSD, startRbldnsd, type Rbldnsd } from '../helpers/rbldnsd.js';

// Zones, in rbldnsd's ip4set / ip6trie formats (":A:TXT" sets the value of the lines below it).
const ZONES: Record<string, string> = {
  bl1: ':127.0.0.2:listed by test\n127.0.0.2\n',
  bl1v6: ':127.0.0.2:v6 listed\n2001:db8::25/128\n',
  bl2: '127.0.0.3 :127.0.0.4:listed with code 4\n',
  wl: ':127.0.10.1:allowlisted\n127.0.0.2\n127.0.0.5\n',
};
const ZONE_SPECS = ['bl1.test:ip4set:bl1', 'bl1.test:ip6trie:bl1v6', 'bl2.test:ip4set:bl2', 'wl.test:ip4set:wl'];

let rbl: Rbldnsd | undefined;
let port = 0;

function resolverFor(servers: string[], timeoutMs = 1000, attempts = 2) {
  return createResolver({ servers, timeoutMs, attempts, maxInflight: 100, cacheEntries: 1000, maxTtlMs: 60_000, negativeTtlMs: 1000 });
}

before(async () => {
  if (!fs.existsSync(RBLDNSD)) return;
  rbl = await startRbldnsd(ZONES, ZONE_SPECS, '2.0.0.127.bl1.test');
  port = rbl.port;
});

after(async () => {
  await rbl?.stop();
});

function conn(remoteAddress: string): ConnectionFacts {
  return {
    sessionId: 't', listener: 'mx', listenerKind: 'mx', remoteAddress, remotePort: 40000,
    localAddress: '127.0.0.1', localPort: 25, trustedNetwork: false, esmtp: true,
  };
}

const CONFIG: DnsblConfig = {
  threshold: 1,
  lists: [
    { zone: 'bl1.test', weight: 2, codes: ['127.0.0.2'] },
    { zone: 'bl2.test', weight: 1, codes: ['127.0.0.[4..7]'] },
    // The same zone with a filter no answer passes: never a symbol.
    { zone: 'bl2.test', name: 'BL2_CODE2', weight: 5, codes: ['127.0.0.2'] },
    { zone: 'wl.test', weight: -1, codes: [] },
  ],
};

const scores = (r: CheckResult) => Object.fromEntries((r.symbols ?? []).filter((s) => s.name !== 'DNSBL_LISTED').map((s) => [s.name, s.score]));
const wire = (r: CheckResult) => {
  const d = refusal(r, { stage: 'connect' });
  return d ? formatReply(d.reply).trimEnd() : undefined;
};

test('rbldnsd: listed with TXT, partly offset by an allowlist, still over the threshold', async (t) => {
  if (!needRbldnsd(t)) return;
  const r = await dnsbl(resolverFor([`127.0.0.1:${port}`]), CONFIG).run({ conn: conn('127.0.0.2') });
  assert.deepEqual(scores(r), { DNSBL_BL1_TEST: 2, DNSWL_WL_TEST: -1 });
  assert.equal(wire(r), '554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using bl1.test; listed by test');
});

test('rbldnsd: return code 127.0.0.4 passes one filter of the zone and not the other', async (t) => {
  if (!needRbldnsd(t)) return;
  const r = await dnsbl(resolverFor([`127.0.0.1:${port}`]), CONFIG).run({ conn: conn('127.0.0.3') });
  assert.deepEqual(scores(r), { DNSBL_BL2_TEST: 1 });
  assert.equal(r.symbols![0]!.reason, 'bl2.test returned 127.0.0.4: listed with code 4');
  assert.equal(wire(r), '554 5.7.1 Service unavailable; Client host [127.0.0.3] blocked using bl2.test; listed with code 4');
});

test('rbldnsd: allowlisted only, and listed nowhere', async (t) => {
  if (!needRbldnsd(t)) return;
  const resolver = resolverFor([`127.0.0.1:${port}`]);
  const wl = await dnsbl(resolver, CONFIG).run({ conn: conn('127.0.0.5') });
  assert.deepEqual(scores(wl), { DNSWL_WL_TEST: -1 });
  assert.equal(refusal(wl), undefined);
  const none = await dnsbl(resolver, CONFIG).run({ conn: conn('127.0.0.9') });
  assert.deepEqual(none, { symbols: [] });
});

test('rbldnsd: threshold not reached when the allowlist weighs as much as the list', async (t) => {
  if (!needRbldnsd(t)) return;
  const config: DnsblConfig = { ...CONFIG, lists: [{ zone: 'bl1.test', weight: 1, codes: [] }, { zone: 'wl.test', weight: -1, codes: [] }] };
  const r = await dnsbl(resolverFor([`127.0.0.1:${port}`]), config).run({ conn: conn('127.0.0.2') });
  assert.deepEqual(scores(r), { DNSBL_BL1_TEST: 1, DNSWL_WL_TEST: -1 });
  assert.equal(refusal(r), undefined);
});

test('rbldnsd: IPv6 client, nibble query name', async (t) => {
  if (!needRbldnsd(t)) return;
  const r = await dnsbl(resolverFor([`127.0.0.1:${port}`]), CONFIG).run({ conn: conn('2001:db8::25') });
  assert.deepEqual(scores(r), { DNSBL_BL1_TEST: 2 });
  assert.equal(wire(r), '554 5.7.1 Service unavailable; Client host [2001:db8::25] blocked using bl1.test; v6 listed');
  const other = await dnsbl(resolverFor([`127.0.0.1:${port}`]), CONFIG).run({ conn: conn('2001:db8::26') });
  assert.deepEqual(other, { symbols: [] });
});

test('rbldnsd: a zone the server does not serve is a tempfail symbol, and the other lists still count', async (t) => {
  if (!needRbldnsd(t)) return;
  const config: DnsblConfig = { ...CONFIG, lists: [...CONFIG.lists, { zone: 'unserved.test', weight: 3, codes: [] }] };
  const r = await dnsbl(resolverFor([`127.0.0.1:${port}`]), config).run({ conn: conn('127.0.0.2') });
  assert.deepEqual(scores(r), { DNSBL_BL1_TEST: 2, DNSWL_WL_TEST: -1, DNSBL_TEMPFAIL: undefined });
  assert.match(r.symbols!.find((s) => s.name === 'DNSBL_TEMPFAIL')!.reason, /^unserved\.test: /);
  assert.equal(refusal(r)?.reply.code, 554);
});

test('a DNS server that never answers: DNSBL_TEMPFAIL after the resolver\'s own timeout, no refusal', async () => {
  // A UDP socket that reads and never replies.
  const mute = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => mute.bind(0, '127.0.0.1', resolve));
  try {
    const resolver: Resolver = resolverFor([`127.0.0.1:${mute.address().port}`], 150, 2);
    const started = Date.now();
    const r = await dnsbl(resolver, CONFIG).run({ conn: conn('127.0.0.2') });
    const took = Date.now() - started;
    assert.deepEqual(scores(r), { DNSBL_TEMPFAIL: undefined });
    assert.match(r.symbols![0]!.reason, /bl1\.test: .*bl2\.test: .*wl\.test: /);
    assert.equal(refusal(r), undefined);
    // Lists are asked at once: about 2 × 150 ms, not 3 lists × 2 × 150 ms.
    assert.ok(took >= 250 && took < 800, `took ${took} ms`);
  } finally {
    mute.close();
  }
});
