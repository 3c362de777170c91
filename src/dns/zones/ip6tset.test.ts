import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ip6TsetBuilder } from './ip6tset.js';
import { ip6, ip6Prefix } from './ip6.js';

function addr(s: string): Uint8Array {
  const b = Buffer.from(s);
  assert.ok(ip6Prefix(b, 0, b.length) >= 0, s);
  return ip6.bytes.slice();
}

test('a /64 lists all its addresses except the excluded /128s', () => {
  const b = new Ip6TsetBuilder();
  b.add(addr('2001:db8:1:2'));
  b.add(addr('ffff:ffff:ffff:ffff'));
  b.add(addr('::'));
  b.add(addr('2001:db8:1:2')); // a duplicate
  b.add(addr('2001:db8:0:ffff'));
  b.exclude(addr('2001:db8:1:2::ff'));
  b.exclude(addr('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'));
  const set = b.finish();
  assert.equal(set.size, 4);
  assert.equal(set.exclusions, 2);
  assert.equal(set.has(addr('2001:db8:1:2::1')), true);
  assert.equal(set.has(addr('2001:db8:1:2:ffff:ffff:ffff:fffe')), true);
  assert.equal(set.has(addr('2001:db8:1:2::ff')), false);
  assert.equal(set.has(addr('2001:db8:1:3::1')), false);
  assert.equal(set.has(addr('2001:db8:1:1:ffff:ffff:ffff:ffff')), false);
  assert.equal(set.has(addr('2001:db8:0:ffff::')), true);
  assert.equal(set.has(addr('::1')), true);
  assert.equal(set.has(addr('ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe')), true);
  assert.equal(set.has(addr('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')), false);
});

test('sorted as 64-bit keys: high halves that differ only in the low half are all found', () => {
  const b = new Ip6TsetBuilder();
  const listed: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const s = `2001:db8:${((i * 7919) % 65536).toString(16)}:${((i * 104729) % 65536).toString(16)}`;
    listed.push(s);
    b.add(addr(s));
  }
  const set = b.finish();
  for (const s of listed) assert.equal(set.has(addr(`${s}::1`)), true, s);
  assert.equal(set.has(addr('2001:db9::1')), false);
});
