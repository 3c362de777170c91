import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compileCodeMatcher, formatIp, isValidCodeFilter, parseCodeFilter, parseIp, ptrName, reverseName, sameIp,
} from './ip-names.js';

test('IPv4: reversed labels and in-addr.arpa', () => {
  assert.equal(reverseName('192.0.2.1'), '1.2.0.192');
  assert.equal(reverseName('127.0.0.2'), '2.0.0.127');
  assert.equal(ptrName('198.51.100.23'), '23.100.51.198.in-addr.arpa');
});

test('IPv4-mapped IPv6 is the IPv4 address, in both spellings', () => {
  assert.equal(reverseName('::ffff:192.0.2.1'), '1.2.0.192');
  assert.equal(reverseName('::FFFF:192.0.2.1'), '1.2.0.192');
  assert.equal(ptrName('::ffff:c000:0201'), '1.2.0.192.in-addr.arpa');
  assert.deepEqual(parseIp('::ffff:10.1.2.3'), { family: 4, bytes: [10, 1, 2, 3] });
});

test('IPv6: 32 nibbles, least significant first (RFC 5782 s2.4)', () => {
  // The example of RFC 5782 s2.4.
  assert.equal(reverseName('2001:db8:1:2:3:4:567:89ab'),
    'b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2');
  assert.equal(ptrName('2001:db8::1'),
    '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
  assert.equal(reverseName('::1'), `1${'.0'.repeat(31)}`);
  assert.equal(reverseName('::'), `0${'.0'.repeat(31)}`);
  // Upper case, a zone index, an embedded IPv4 tail that is not a mapped address.
  assert.equal(reverseName('2001:DB8::1'), reverseName('2001:db8::1'));
  assert.equal(reverseName('fe80::1%eth0'), reverseName('fe80::1'));
  assert.equal(reverseName('64:ff9b::192.0.2.1'), reverseName('64:ff9b::c000:201'));
  assert.equal(reverseName('64:ff9b::192.0.2.1')!.split('.').length, 32);
});

test('not an address: undefined, never a bogus name', () => {
  for (const bad of ['', 'localhost', '1.2.3', '1.2.3.256', '2001:db8::1::2', '/tmp/sock', '[192.0.2.1]']) {
    assert.equal(reverseName(bad), undefined, bad);
    assert.equal(ptrName(bad), undefined, bad);
  }
});

test('canonical form and comparison', () => {
  assert.equal(formatIp(parseIp('2001:0db8:0000:0000:0000:0000:0000:0001')!), '2001:db8::1');
  assert.equal(formatIp(parseIp('2001:db8:0:0:1:0:0:1')!), '2001:db8::1:0:0:1');
  assert.equal(formatIp(parseIp('2001:db8:0:1:1:1:1:1')!), '2001:db8:0:1:1:1:1:1');
  assert.equal(formatIp(parseIp('::ffff:192.0.2.1')!), '192.0.2.1');
  assert.ok(sameIp('2001:DB8::0:1', '2001:db8::1'));
  assert.ok(sameIp('::ffff:192.0.2.1', '192.0.2.1'));
  assert.ok(!sameIp('192.0.2.1', '192.0.2.10'));
  assert.ok(!sameIp('192.0.2.1', 'nonsense'));
});

test('code filters: exact, dash range, postscreen brackets', () => {
  const cases: [string, string[], string[]][] = [
    ['127.0.0.2', ['127.0.0.2'], ['127.0.0.3', '127.0.0.20', '127.0.1.2']],
    ['127.0.0.4-7', ['127.0.0.4', '127.0.0.5', '127.0.0.7'], ['127.0.0.3', '127.0.0.8']],
    ['127.0.0.[4..7]', ['127.0.0.4', '127.0.0.7'], ['127.0.0.3', '127.0.0.8']],
    ['127.0.[0..255].[1..3]', ['127.0.0.1', '127.0.200.3'], ['127.0.0.0', '127.0.9.4', '127.1.0.1']],
    ['127.0.0.[2;4;10..11]', ['127.0.0.2', '127.0.0.4', '127.0.0.10', '127.0.0.11'], ['127.0.0.3', '127.0.0.12']],
    ['127.0.[2..15].0', ['127.0.2.0', '127.0.15.0'], ['127.0.1.0', '127.0.2.1']],
  ];
  for (const [filter, yes, no] of cases) {
    const m = compileCodeMatcher([filter]);
    for (const c of yes) assert.ok(m.matches(c), `${filter} should match ${c}`);
    for (const c of no) assert.ok(!m.matches(c), `${filter} should not match ${c}`);
  }
  // Not an IPv4 answer: never a match.
  assert.ok(!compileCodeMatcher(['127.0.0.2']).matches('::1'));
});

test('several filters: any of them', () => {
  const m = compileCodeMatcher(['127.0.0.2', '127.0.0.[10..11]']);
  assert.ok(m.matches('127.0.0.2') && m.matches('127.0.0.11'));
  assert.ok(!m.matches('127.0.0.3'));
  assert.equal(m.description, '127.0.0.2, 127.0.0.[10..11]');
});

test('no filter: any 127.0.0.0/8 answer, except the 127.255.255.0/24 refusals', () => {
  const m = compileCodeMatcher([]);
  for (const c of ['127.0.0.2', '127.0.0.4', '127.0.10.3', '127.1.2.3']) assert.ok(m.matches(c), c);
  // A hijacking resolver's "not found" page, and Spamhaus' "public resolver" / "rate limit" answers.
  for (const c of ['198.51.100.7', '127.255.255.254', '127.255.255.255', '127.255.255.252']) assert.ok(!m.matches(c), c);
  // Asked for explicitly, a refusal code does match.
  assert.ok(compileCodeMatcher(['127.255.255.254']).matches('127.255.255.254'));
});

test('invalid filters are refused with a reason naming them', () => {
  for (const bad of ['127.0.0', '127.0.0.2.1', '127.0.0.256', '127.0.0.7-4', '127.0.0.[4..]', '127.0.0.[a]',
    '127.0.0.*', '127.0.0.[[1]]', '127.0.0.[1', 'zen.spamhaus.org']) {
    const p = parseCodeFilter(bad);
    assert.equal(p.ok, false, bad);
    if (!p.ok) assert.match(p.error, new RegExp(bad.slice(0, 7).replace(/[.[\]*]/g, '\\$&')), bad);
    assert.equal(isValidCodeFilter(bad), false, bad);
  }
  assert.throws(() => compileCodeMatcher(['127.0.0.2', '127.0.0.300']), /127\.0\.0\.300.*greater than 255/);
  assert.ok(isValidCodeFilter(' 127.0.0.2 '));
});
