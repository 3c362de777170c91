import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gatherU32, GrowI32, GrowU32, GrowU8, lowerBound, sortOrder, sortPairsInPlace } from './typed-arrays.js';

function randomU32(n: number, seed = 1): Uint32Array {
  const a = new Uint32Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    a[i] = (x ^ (x << 7)) >>> 0;
  }
  return a;
}

test('growable arrays keep every value across growth and finish right-sized', () => {
  const u = new GrowU32(16);
  for (let i = 0; i < 1000; i++) u.push(i * 3);
  u.pushSeries(0xfffffff0, 1, 16);
  const f = u.finish();
  assert.equal(f.length, 1016);
  assert.equal(f.buffer.byteLength, 1016 * 4);
  assert.equal(f[999], 2997);
  assert.equal(f[1015], 0xffffffff);
  const i32 = new GrowI32(16);
  i32.pushRepeat(-1, 100);
  i32.push(7);
  assert.deepEqual([...i32.finish().slice(98)], [-1, -1, 7]);
  const b = new GrowU8(64);
  for (let i = 0; i < 300; i++) b.push(i & 255);
  assert.equal(b.finish()[299], 299 & 255);
});

test('sortOrder sorts like a comparison sort, stably, and chains for wider keys', () => {
  const keys = randomU32(5000);
  const order = sortOrder(keys);
  const sorted = gatherU32(keys, order);
  assert.deepEqual([...sorted], [...keys].sort((x, y) => x - y));
  // Stability: equal keys keep their original order.
  const dup = new Uint32Array([5, 1, 5, 1, 0x10000, 5]);
  assert.deepEqual([...sortOrder(dup)], [1, 3, 0, 2, 5, 4]);
  // Two keys, least significant first: (hi, lo) pairs in lexicographic order.
  const hi = new Uint32Array([2, 1, 2, 1]);
  const lo = new Uint32Array([0, 9, 0xffffffff, 3]);
  const o = sortOrder(hi, sortOrder(lo));
  assert.deepEqual([...o].map((i) => `${hi[i]}:${lo[i]}`), ['1:3', '1:9', '2:0', '2:4294967295']);
  // An already sorted input is returned as is.
  assert.deepEqual([...sortOrder(new Uint32Array([1, 2, 2, 9]))], [0, 1, 2, 3]);
});

test('sortPairsInPlace moves the values with their keys, stably', () => {
  const keys = randomU32(3000, 7);
  keys[10] = keys[20]; // equal keys: values must stay in input order
  const vals = new Int32Array(keys.length).map((_, i) => i);
  const expect = [...keys].map((k, i) => [k, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  sortPairsInPlace(keys, vals);
  assert.deepEqual([...keys], expect.map((e) => e[0]));
  assert.deepEqual([...vals], expect.map((e) => e[1]));
});

test('lowerBound finds the first key >= k', () => {
  const a = new Uint32Array([1, 3, 3, 3, 7, 0xffffffff]);
  assert.equal(lowerBound(a, 0), 0);
  assert.equal(lowerBound(a, 3), 1);
  assert.equal(lowerBound(a, 4), 4);
  assert.equal(lowerBound(a, 0xffffffff), 5);
  assert.equal(lowerBound(new Uint32Array(0), 5), 0);
  assert.equal(lowerBound(a, 8, 4), 4);
});
