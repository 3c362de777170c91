import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spf } from 'mailauth/lib/spf/index.js';
import type { Lookup, RRType, Resolver } from '../../dns/types.js';
import { errorCode, isQueryableName, nodeStyleResolver, type DnsError } from './node-style.js';
import { memoryResolver } from './memory-resolver.js';

/** A resolver giving one fixed lookup, counting calls. */
function fixed(lookup: Lookup<RRType>): Resolver & { calls: number } {
  const r = {
    calls: 0,
    lookup<T extends RRType>(): Promise<Lookup<T>> {
      r.calls++;
      return Promise.resolve(lookup as Lookup<T>);
    },
  };
  return r;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as DnsError).code;
  }
  return 'resolved';
}

test('TXT records keep their character-strings, as arrays, and are copies', async () => {
  const records = [['v=spf1 ip4:192.0.2.0/24 ', '-all'], ['other']];
  const resolve = nodeStyleResolver(fixed({ status: 'ok', records, ttl: 60, source: 'dns' }));
  const out = (await resolve('example.org', 'TXT')) as string[][];
  assert.deepEqual(out, [['v=spf1 ip4:192.0.2.0/24 ', '-all'], ['other']]);
  out[0]!.push('changed');
  assert.equal(records[0]!.length, 2, 'the resolver (and its cache) must not see changes');
});

test('MX records as node:dns gives them; the null MX exchange "." is ""', async () => {
  const resolve = nodeStyleResolver(fixed({
    status: 'ok', ttl: 60, source: 'dns',
    records: [{ exchange: 'mx1.example.org.', priority: 10 }, { exchange: '.', priority: 0 }],
  }));
  assert.deepEqual(await resolve('example.org', 'MX'), [{ exchange: 'mx1.example.org', priority: 10 }, { exchange: '', priority: 0 }]);
  const ptr = nodeStyleResolver(fixed({ status: 'ok', ttl: 60, source: 'dns', records: ['host.example.org.'] }));
  assert.deepEqual(await ptr('1.2.0.192.in-addr.arpa', 'PTR'), ['host.example.org']);
});

test('negative answers and errors become node:dns error codes', async () => {
  const cases: [Lookup<RRType>, string][] = [
    [{ status: 'nxdomain', source: 'dns' }, 'ENOTFOUND'],
    [{ status: 'nodata', source: 'dns' }, 'ENODATA'],
    [{ status: 'error', code: 'timeout', reason: '127.0.0.1:53: timed out after 2000 ms', source: 'dns' }, 'ETIMEOUT'],
    [{ status: 'error', code: 'servfail', reason: '127.0.0.1:53: SERVFAIL', source: 'dns' }, 'ESERVFAIL'],
    [{ status: 'error', code: 'refused', reason: '127.0.0.1:53: REFUSED', source: 'dns' }, 'EREFUSED'],
    [{ status: 'error', code: 'malformed', reason: '127.0.0.1:53: malformed answer', source: 'dns' }, 'EBADRESP'],
    [{ status: 'error', code: 'network', reason: '127.0.0.1:53: connect ECONNREFUSED', source: 'dns' }, 'ECONNREFUSED'],
    [{ status: 'error', code: 'overload', reason: 'too many DNS queries in flight (500)', source: 'dns' }, 'ESERVFAIL'],
  ];
  for (const [lookup, code] of cases) {
    assert.equal(await codeOf(nodeStyleResolver(fixed(lookup))('example.org', 'TXT')), code, JSON.stringify(lookup));
  }
  try {
    await nodeStyleResolver(fixed({ status: 'nxdomain', source: 'dns' }))('nx.example.org', 'TXT');
    assert.fail('must throw');
  } catch (err) {
    const e = err as DnsError;
    assert.ok(e instanceof Error);
    assert.equal(e.hostname, 'nx.example.org');
    assert.equal(e.syscall, 'queryTxt');
    assert.match(e.message, /^queryTxt ENOTFOUND nx\.example\.org/);
  }
  assert.equal(errorCode('invalid'), 'ESERVFAIL');
});

test('a name that cannot exist in the DNS is ENOTFOUND without a query', async () => {
  const r = fixed({ status: 'ok', records: ['192.0.2.1'], ttl: 60, source: 'dns' });
  const resolve = nodeStyleResolver(r);
  assert.equal(await codeOf(resolve(`${'a'.repeat(64)}.example.org`, 'A')), 'ENOTFOUND');
  assert.equal(await codeOf(resolve('mail.example...org', 'A')), 'ENOTFOUND');
  assert.equal(await codeOf(resolve(`${'abcdefghi.'.repeat(26)}org`, 'A')), 'ENOTFOUND');
  assert.equal(r.calls, 0);
  assert.equal(isQueryableName('example.org.'), true);
  assert.equal(isQueryableName(`${'a'.repeat(63)}.example.org`), true);
  assert.equal(await codeOf(resolve('example.org', 'SRV')), 'ENOTIMP');
});

test('mailauth evaluates SPF through the adapter', async () => {
  const zone = memoryResolver({
    'example.org': { TXT: [['v=spf1 ', 'a:mail.example.org -all']] },
    'mail.example.org': { A: ['192.0.2.10'] },
  });
  const pass = await spf({ sender: 'a@example.org', ip: '192.0.2.10', helo: 'mail.example.org', mta: 'mx.test', resolver: nodeStyleResolver(zone) as never });
  assert.equal(pass.status.result, 'pass');
  assert.equal(pass.rr, 'v=spf1 a:mail.example.org -all');
  const fail = await spf({ sender: 'a@example.org', ip: '192.0.2.11', helo: 'mail.example.org', mta: 'mx.test', resolver: nodeStyleResolver(zone) as never });
  assert.equal(fail.status.result, 'fail');
  assert.ok(zone.asked.includes('TXT example.org'));
});
