import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseZone } from './zone.js';
import type { ZoneType } from './loaded-zone.js';

const load = (type: ZoneType, text: string) => parseZone(Buffer.from(text, 'latin1'), { type, file: 'f', defaultTtl: 60 });

test('records of a hit: A values and TXT texts once each, empty TXT left out', () => {
  const z = load('ip4set', '1.2.3.4 :2:same\n1.2.3.4 :2:other\n1.2.3.4 :3:same\n1.2.3.4 :3:\n');
  const hit = z.lookup('4.3.2.1');
  assert.ok(hit);
  assert.deepEqual(z.aRecords(hit), ['127.0.0.2', '127.0.0.3']);
  assert.deepEqual(z.txtRecords(hit), ['same', 'other']);
  assert.equal(z.lookup('5.3.2.1'), undefined);
});

test('each type reads only its own kind of query name', () => {
  const v6 = '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2';
  const ip6 = load('ip6tset', '2001:db8:1:2\n');
  assert.ok(ip6.lookup(v6));
  assert.equal(ip6.lookup('4.3.2.1'), undefined);
  const dn = load('dnset', '4.3.2.1\n');
  assert.equal(dn.lookup('4.3.2.1')?.listed, '4.3.2.1');
  const t = load('ip4tset', '1.2.3.4\n');
  assert.equal(t.lookup(v6), undefined);
  assert.equal(t.lookup('4.3.2.1')?.listed, '1.2.3.4');
});

test('stored blocks, TTL and expiry', () => {
  const z = load('ip4set', '$TIMESTAMP 2020:01:01 +1h\n10.0.0.0/8\n10.1.0.0-10.1.1.255\n10.2.3.4\n');
  assert.equal(z.stored, 1 + 2 + 1);
  assert.equal(z.entries, 3);
  assert.equal(z.ttl, 60);
  const expiry = Date.UTC(2020, 0, 1, 1);
  assert.equal(z.expired(expiry), false);
  assert.equal(z.expired(expiry + 1), true);
});
