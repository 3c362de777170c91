import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applySpecial, emptyHeader, FatalZoneLine } from './specials.js';

const NOW = Date.UTC(2024, 5, 1);

test('$TTL: units, last one wins, 0 means the default', () => {
  const h = emptyHeader();
  assert.equal(applySpecial('TTL 5m', h, 2100, NOW), undefined);
  assert.equal(h.ttl, 300);
  assert.equal(applySpecial('ttl 2h', h, 2100, NOW), undefined);
  assert.equal(h.ttl, 7200);
  assert.equal(applySpecial('TTL 1w', h, 2100, NOW), undefined);
  assert.equal(h.ttl, 604800);
  assert.equal(applySpecial('TTL 0', h, 2100, NOW), undefined);
  assert.equal(h.ttl, undefined);
  assert.ok(applySpecial('TTL 5x', h, 2100, NOW));
  assert.ok(applySpecial('TTL', h, 2100, NOW));
  assert.ok(applySpecial('TTL 5 6', h, 2100, NOW));
});

test('$SOA and $NS: the first one counts, names and times parsed', () => {
  const h = emptyHeader();
  h.ttl = 60;
  assert.equal(applySpecial('SOA 0 ns1.example.net. hostmaster.example.net 7 2h 1h 1w 10m', h, 2100, NOW), undefined);
  assert.deepEqual(h.soa, { ttl: 60, mname: 'ns1.example.net', rname: 'hostmaster.example.net', serial: 7, refresh: 7200, retry: 3600, expire: 604800, minimum: 600 });
  assert.equal(applySpecial('SOA 1 other.example other.example 1 1 1 1 1', h, 2100, NOW), undefined);
  assert.equal(h.soa?.mname, 'ns1.example.net');
  assert.ok(applySpecial('SOA 1 ns1.example.net hm.example.net 1 1 1 1', emptyHeader(), 2100, NOW), 'a field missing');

  assert.equal(applySpecial('NS 1d ns1.example.net -ns9.example.net NS2.example.net ns1.example.net', h, 2100, NOW), undefined);
  assert.deepEqual(h.ns, { ttl: 86400, names: ['ns1.example.net', 'NS2.example.net'] });
  assert.equal(applySpecial('NS 0 ignored.example', h, 2100, NOW), undefined);
  assert.equal(h.ns?.names.length, 2);
  assert.ok(applySpecial('NS 0', emptyHeader(), 2100, NOW));
});

test('substitution variables and the base template: the first assignment wins', () => {
  const h = emptyHeader();
  assert.equal(applySpecial('1 first', h, 2100, NOW), undefined);
  assert.equal(applySpecial('1 second', h, 2100, NOW), undefined);
  assert.equal(applySpecial('9 \t nine', h, 2100, NOW), undefined);
  assert.equal(applySpecial('= base $=', h, 2100, NOW), undefined);
  assert.deepEqual([h.vars[1], h.vars[9], h.base], ['first', 'nine', 'base $=']);
  assert.ok(applySpecial('2', h, 2100, NOW), 'no value');
  assert.ok(applySpecial('=nospace', h, 2100, NOW));
});

test('$MAXRANGE4 as a count or a prefix length, and only ever smaller', () => {
  const h = emptyHeader();
  assert.equal(applySpecial('MAXRANGE4 /16', h, 2100, NOW), undefined);
  assert.equal(h.maxRange4, 65536);
  assert.match(applySpecial('MAXRANGE4 /8', h, 2100, NOW) ?? '', /only decrease/);
  assert.equal(h.maxRange4, 65536);
  assert.equal(applySpecial('MAXRANGE4 256', h, 2100, NOW), undefined);
  assert.equal(h.maxRange4, 256);
  for (const bad of ['MAXRANGE4 0', 'MAXRANGE4 /33', 'MAXRANGE4 /0', 'MAXRANGE4 x']) assert.ok(applySpecial(bad, emptyHeader(), 2100, NOW), bad);
});

test('$TIMESTAMP: expiry kept, a stamp in the future refuses the file', () => {
  const h = emptyHeader();
  assert.equal(applySpecial('TIMESTAMP 2024:01:01 +1d', h, 2100, NOW), undefined);
  assert.equal(h.expiresAt, Date.UTC(2024, 0, 2));
  assert.equal(applySpecial('TIMESTAMP 2024-05-01-12 2024:12:31:23:59:59', h, 2100, NOW), undefined);
  assert.equal(h.expiresAt, Date.UTC(2024, 0, 2), 'the earliest expiry stays');
  assert.equal(applySpecial('TIMESTAMP 0', h, 2100, NOW), undefined);
  assert.throws(() => applySpecial('TIMESTAMP 2030:01:01', emptyHeader(), 2100, NOW), FatalZoneLine);
  for (const bad of ['TIMESTAMP 2099:01:01', 'TIMESTAMP 2024:02:30', 'TIMESTAMP 2024:13:01', 'TIMESTAMP 2024:01:01 +0', 'TIMESTAMP 0 +1d', 'TIMESTAMP x']) {
    assert.ok(applySpecial(bad, emptyHeader(), 2100, NOW), bad);
  }
});

test('unknown specials are reported', () => {
  assert.match(applySpecial('FOO bar', emptyHeader(), 2100, NOW) ?? '', /unrecognized/);
  assert.match(applySpecial('DATASET ip4set x', emptyHeader(), 2100, NOW) ?? '', /unrecognized/);
});
