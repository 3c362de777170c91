import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIp6, ip6, ip6FromNibbles, ip6Hex, ip6Prefix } from './ip6.js';

function parse(s: string): string {
  const b = Buffer.from(s, 'latin1');
  const p = ip6Prefix(b, 0, b.length);
  if (p < 0) return 'error';
  return `${formatIp6(ip6.bytes)}/${ip6.bits}${p < b.length ? ` tail=${s.slice(p)}` : ''}`;
}

test('prefixes count the groups written; "::" makes a full address', () => {
  assert.equal(parse('2001:db8:1:2'), '2001:db8:1:2::/64');
  assert.equal(parse('2001:DB8:00001:8'), '2001:db8:1:8::/64'); // five digits, value <= ffff
  assert.equal(parse('2001:db8'), '2001:db8::/32');
  assert.equal(parse('2001:db8::'), '2001:db8::/128');
  assert.equal(parse('::'), '::/128');
  assert.equal(parse('::1'), '::1/128');
  assert.equal(parse('1::4:0:0:0:8'), '1:0:0:4::8/128');
  assert.equal(parse('1:2:3:4:5:6:7:8'), '1:2:3:4:5:6:7:8/128');
  assert.equal(parse('2001:db8:1:2/64'), '2001:db8:1:2::/64 tail=/64');
  // After eight groups rbldnsd stops, whatever follows (the caller judges the tail).
  assert.equal(parse('1:2:3:4:5:6:7:8:9'), '1:2:3:4:5:6:7:8/128 tail=:9');
  assert.equal(parse('1:2:3:4:5:6:7:8::'), '1:2:3:4:5:6:7:8/128 tail=::');
  for (const bad of ['2001:db8:12345:1', '1:', 'g::1', '', ':1', '1::2:3:4:5:6:7:8']) assert.equal(parse(bad), 'error', bad);
});

test('addresses are written as rbldnsd writes them ($ in TXT templates)', () => {
  const f = (s: string) => {
    const b = Buffer.from(s);
    ip6Prefix(b, 0, b.length);
    return formatIp6(ip6.bytes);
  };
  assert.equal(f('::1'), '::1');
  assert.equal(f('1::'), '1::');
  assert.equal(f('2001:db8:1:2::3'), '2001:db8:1:2::3');
  assert.equal(f('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1'); // the longest run
  assert.equal(f('2001:0:0:1:0:0:1:1'), '2001::1:0:0:1:1'); // the first of equal runs
  assert.equal(f('1:0:2:0:3:0:4:0'), '1:0:2:0:3:0:4:0'); // a single zero group stays
  assert.equal(f('::'), '::');
});

test('nibble names: 32 lowercase hex labels, least significant first', () => {
  const out = new Uint8Array(16);
  const name = '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2';
  assert.equal(ip6FromNibbles(name, out), true);
  assert.equal(formatIp6(out), '2001:db8:1:2::1');
  assert.equal(ip6Hex(out), '20010db8000100020000000000000001');
  assert.equal(ip6FromNibbles(name.toUpperCase(), out), false);
  assert.equal(ip6FromNibbles(name.slice(2), out), false); // 31 labels
  assert.equal(ip6FromNibbles(`0.${name}`, out), false); // 33 labels
  assert.equal(ip6FromNibbles(name.replace(/^1\./, 'g.'), out), false);
  assert.equal(ip6FromNibbles(name.replace(/^1\.0/, '10'), out), false);
});
