// MX resolution against an in-memory zone: preference order, shuffling among equals, implicit
// MX, null MX, loops, caps, CNAME and numeric MX names. (The DNS path itself is exercised end
// to end in test/outbound/mx-*.test.ts with a real DNS server.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveMx, isSelf, type MxResolveOptions } from './mx-resolve.js';
import type { Lookup, RRType, Resolver } from '../dns/types.js';
import { createLogger } from '../log.js';
import { Writable } from 'node:stream';

type Zone = Record<string, Partial<Record<RRType, unknown[] | 'error'>>>;

function zoneResolver(zone: Zone, asked: string[] = []): Resolver {
  return {
    async lookup<T extends RRType>(name: string, type: T): Promise<Lookup<T>> {
      asked.push(`${type} ${name}`);
      const node = zone[name.toLowerCase()];
      if (!node) return { status: 'nxdomain', source: 'dns' };
      const rr = node[type];
      if (rr === 'error') return { status: 'error', code: 'servfail', reason: 'SERVFAIL', source: 'dns' };
      if (!rr || !rr.length) return { status: 'nodata', source: 'dns' };
      return { status: 'ok', records: rr as never, ttl: 60, source: 'dns' };
    },
  };
}

function captureLog(): { logger: ReturnType<typeof createLogger>; lines: () => string } {
  let out = '';
  const sink = new Writable({ write(c, _e, cb) { out += String(c); cb(); } });
  return { logger: createLogger('debug', sink), lines: () => out };
}

const base = (zone: Zone, extra: Partial<MxResolveOptions> = {}): MxResolveOptions => ({
  resolver: zoneResolver(zone), hostname: 'mx.ours.test', ownAddresses: ['192.0.2.25'], allowLoopback: false,
  maxHosts: 10, maxAddresses: 20, ipv6: 'prefer', random: () => 0.99, ...extra,
});

const mx = (priority: number, exchange: string) => ({ priority, exchange });

test('MX hosts come in preference order, each with IPv6 then IPv4 addresses', async () => {
  const zone: Zone = {
    'remote.test': { MX: [mx(20, 'b.remote.test'), mx(10, 'a.remote.test.'), mx(30, 'c.remote.test')] },
    'a.remote.test': { A: ['198.51.100.1'], AAAA: ['2001:db8::1'] },
    'b.remote.test': { A: ['198.51.100.2'] },
    'c.remote.test': { AAAA: ['2001:db8::3'] },
  };
  const plan = await resolveMx('Remote.Test.', base(zone));
  assert.equal(plan.kind, 'hosts');
  assert.deepEqual(plan.kind === 'hosts' && plan.hosts.map((h) => [h.host, h.preference, h.addresses]), [
    ['a.remote.test', 10, ['2001:db8::1', '198.51.100.1']],
    ['b.remote.test', 20, ['198.51.100.2']],
    ['c.remote.test', 30, ['2001:db8::3']],
  ]);
  const v4 = await resolveMx('remote.test', base(zone, { ipv6: 'never' }));
  assert.deepEqual(v4.kind === 'hosts' && v4.hosts.map((h) => h.host), ['a.remote.test', 'b.remote.test']);
});

test('hosts of equal preference are shuffled, and only among themselves', async () => {
  const zone: Zone = {
    'remote.test': { MX: [mx(10, 'a.remote.test'), mx(10, 'b.remote.test'), mx(10, 'c.remote.test'), mx(5, 'first.remote.test'), mx(50, 'last.remote.test')] },
  };
  for (const h of ['a', 'b', 'c', 'first', 'last']) zone[`${h}.remote.test`] = { A: ['198.51.100.9'] };
  const orders = new Set<string>();
  let seed = 1;
  const random = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
  for (let i = 0; i < 60; i++) {
    const plan = await resolveMx('remote.test', base(zone, { random }));
    assert.equal(plan.kind, 'hosts');
    const names = plan.kind === 'hosts' ? plan.hosts.map((h) => h.host.split('.')[0]) : [];
    assert.equal(names[0], 'first');
    assert.equal(names[4], 'last');
    orders.add(names.slice(1, 4).join(','));
  }
  // 6 permutations of three hosts; 60 draws from a fair shuffle miss one with probability ~1e-4
  assert.equal(orders.size, 6, [...orders].join(' '));
});

test('no MX records: the domain itself is the implicit MX; no address at all is permanent', async () => {
  const zone: Zone = { 'remote.test': { A: ['198.51.100.7'], TXT: [['x']] }, 'bare.test': { TXT: [['x']] } };
  const plan = await resolveMx('remote.test', base(zone));
  assert.deepEqual(plan, { kind: 'hosts', hosts: [{ host: 'remote.test', preference: 0, addresses: ['198.51.100.7'], implicit: true }] });
  const none = await resolveMx('bare.test', base(zone));
  assert.equal(none.kind, 'fail');
  assert.equal(none.kind === 'fail' && none.permanent, true);
  assert.match(none.kind === 'fail' ? none.reply : '', /^5\.1\.2 bare\.test has neither MX nor address records/);
});

test('null MX (RFC 7505) and an MX set of only "." fail permanently with 5.1.10', async () => {
  for (const records of [[mx(0, '.')], [mx(0, '')], [mx(10, '.')]]) {
    const plan = await resolveMx('nomail.test', base({ 'nomail.test': { MX: records, A: ['198.51.100.8'] } }));
    assert.equal(plan.kind, 'fail');
    assert.equal(plan.kind === 'fail' && plan.permanent, true);
    assert.match(plan.kind === 'fail' ? plan.reply : '', /^5\.1\.10 nomail\.test accepts no mail: it publishes a null MX \(RFC 7505\)/);
  }
  // "." beside a real host: the host is used, the broken zone logged
  const log = captureLog();
  const plan = await resolveMx('mixed.test', base({ 'mixed.test': { MX: [mx(0, '.'), mx(10, 'mx.mixed.test')] }, 'mx.mixed.test': { A: ['198.51.100.3'] } }, { logger: log.logger }));
  assert.deepEqual(plan.kind === 'hosts' && plan.hosts.map((h) => h.host), ['mx.mixed.test']);
  assert.match(log.lines(), /mx\.null_beside_hosts/);
});

test('NXDOMAIN is permanent (5.1.2); a DNS failure is temporary (4.4.3)', async () => {
  const gone = await resolveMx('gone.test', base({}));
  assert.deepEqual(gone, { kind: 'fail', permanent: true, reply: '5.1.2 the domain gone.test does not exist (NXDOMAIN)' });
  const broken = await resolveMx('broken.test', base({ 'broken.test': { MX: 'error' } }));
  assert.deepEqual(broken, { kind: 'fail', permanent: false, reply: '4.4.3 cannot look up the MX records of broken.test: SERVFAIL' });
  // the MX host's address lookup fails: temporary, not a bounce
  const hostErr = await resolveMx('remote.test', base({ 'remote.test': { MX: [mx(10, 'mx.remote.test')] }, 'mx.remote.test': { A: 'error', AAAA: 'error' } }));
  assert.equal(hostErr.kind === 'fail' && hostErr.permanent, false);
  assert.match(hostErr.kind === 'fail' ? hostErr.reply : '', /^4\.4\.3 .*mx\.remote\.test: SERVFAIL/);
  // MX hosts that do not exist: permanent
  const noHost = await resolveMx('remote.test', base({ 'remote.test': { MX: [mx(10, 'nowhere.remote.test')] } }));
  assert.equal(noHost.kind === 'fail' && noHost.permanent, true);
  assert.match(noHost.kind === 'fail' ? noHost.reply : '', /^5\.4\.4 no MX host of remote\.test has an address/);
});

test('loops: our host name, our address or loopback as best MX fail with 5.4.6; as a lesser MX they cut the list', async () => {
  const loops: Zone[] = [
    { 'remote.test': { MX: [mx(10, 'mx.ours.test')] }, 'mx.ours.test': { A: ['198.51.100.99'] } },
    { 'remote.test': { MX: [mx(10, 'mx.remote.test')] }, 'mx.remote.test': { A: ['192.0.2.25'] } },
    { 'remote.test': { MX: [mx(10, 'mx.remote.test')] }, 'mx.remote.test': { A: ['127.0.0.5'] } },
    { 'remote.test': { MX: [mx(10, 'mx.remote.test')] }, 'mx.remote.test': { AAAA: ['::1'] } },
    { 'remote.test': { MX: [mx(10, 'localhost')] }, localhost: { A: ['127.0.0.1'] } },
    { 'remote.test': { A: ['127.0.0.1'] } },
  ];
  for (const zone of loops) {
    const plan = await resolveMx('remote.test', base(zone));
    assert.deepEqual(plan, { kind: 'fail', permanent: true, reply: '5.4.6 mail for remote.test loops back to myself' }, JSON.stringify(zone));
  }
  // we are the backup MX (preference 20): only the better one remains, and ours and worse go
  const zone: Zone = {
    'remote.test': { MX: [mx(10, 'primary.remote.test'), mx(20, 'mx.ours.test'), mx(30, 'tertiary.remote.test')] },
    'primary.remote.test': { A: ['198.51.100.1'] }, 'mx.ours.test': { A: ['192.0.2.25'] }, 'tertiary.remote.test': { A: ['198.51.100.3'] },
  };
  const plan = await resolveMx('remote.test', base(zone));
  assert.deepEqual(plan.kind === 'hosts' && plan.hosts.map((h) => h.host), ['primary.remote.test']);
  // allowLoopback (tests only): a loopback MX is delivered to; our own listener address still loops
  const lab = await resolveMx('remote.test', base({ 'remote.test': { MX: [mx(10, 'mx.remote.test')] }, 'mx.remote.test': { A: ['127.0.0.5'] } }, { allowLoopback: true }));
  assert.deepEqual(lab.kind === 'hosts' && lab.hosts[0]!.addresses, ['127.0.0.5']);
  assert.equal(isSelf('127.0.0.1', { ownAddresses: ['127.0.0.1'], allowLoopback: true }), true);
  assert.equal(isSelf('::ffff:127.0.0.9', { ownAddresses: [], allowLoopback: false }), true);
  assert.equal(isSelf('198.51.100.1', { ownAddresses: [], allowLoopback: false }), false);
});

test('an enormous MX set costs a bounded number of lookups and addresses', async () => {
  const zone: Zone = { 'big.test': { MX: [] } };
  const records = [];
  for (let i = 0; i < 500; i++) {
    records.push(mx(i, `mx${i}.big.test`));
    zone[`mx${i}.big.test`] = { A: ['198.51.100.1', '198.51.100.2', '198.51.100.3'] };
  }
  zone['big.test']!.MX = records;
  const asked: string[] = [];
  const plan = await resolveMx('big.test', base(zone, { resolver: zoneResolver(zone, asked), maxHosts: 4, maxAddresses: 5, ipv6: 'never' }));
  assert.equal(plan.kind, 'hosts');
  assert.deepEqual(plan.kind === 'hosts' && plan.hosts.map((h) => [h.host, h.addresses.length]), [['mx0.big.test', 3], ['mx1.big.test', 2]]);
  // 1 MX question, then A and CNAME for each of the 4 hosts kept
  assert.equal(asked.length, 1 + 4 * 2);
});

test('a CNAME MX is followed and logged; a numeric MX is looked up as a name; a bracketed literal is skipped', async () => {
  const log = captureLog();
  const zone: Zone = {
    'remote.test': { MX: [mx(10, 'alias.remote.test'), mx(20, '198.51.100.77'), mx(30, '[198.51.100.78]')] },
    'alias.remote.test': { CNAME: ['real.remote.test'], A: ['198.51.100.5'] },
  };
  const plan = await resolveMx('remote.test', base(zone, { logger: log.logger }));
  // the numeric name has no A record as a name, so only the alias remains
  assert.deepEqual(plan.kind === 'hosts' && plan.hosts.map((h) => [h.host, h.addresses]), [['alias.remote.test', ['198.51.100.5']]]);
  assert.match(log.lines(), /mx\.cname.*is an alias \(CNAME to real\.remote\.test\)/);
  assert.match(log.lines(), /mx\.numeric_name.*looked up as a name/);
  assert.match(log.lines(), /mx\.invalid_name/);
  // a numeric MX name alone: looked up as a name, nothing found → permanent, never connected to
  const only = await resolveMx('num.test', base({ 'num.test': { MX: [mx(10, '198.51.100.77')] } }));
  assert.equal(only.kind, 'fail');
  assert.match(only.kind === 'fail' ? only.reply : '', /^5\.4\.4/);
});
