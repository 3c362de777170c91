import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ip4TsetBuilder } from './ip4tset.js';

test('single addresses, duplicates stored once, the ends of the address space included', () => {
  const b = new Ip4TsetBuilder();
  for (const a of [0x0a000001, 0xc0000201, 0x0a000001, 0, 0xffffffff, 0xc0000202]) b.add(a);
  const set = b.finish();
  assert.equal(set.size, 5);
  for (const a of [0x0a000001, 0xc0000201, 0, 0xffffffff, 0xc0000202]) assert.equal(set.has(a), true, a.toString(16));
  for (const a of [0x0a000000, 0x0a000002, 0xc0000200, 0xc0000203, 1, 0xfffffffe]) assert.equal(set.has(a), false, a.toString(16));
});

test('an empty set lists nothing', () => {
  const set = new Ip4TsetBuilder().finish();
  assert.equal(set.size, 0);
  assert.equal(set.has(0), false);
});
