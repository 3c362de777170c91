import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compactRuns, EXCLUDED, Ip4SetBuilder } from './ip4set.js';

const ip = (s: string) => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);

function build(entries: [string, string, number][]) {
  const b = new Ip4SetBuilder();
  for (const [from, to, v] of entries) b.add(ip(from), ip(to), v);
  return b.finish();
}

test('the most specific level decides: /32, then /24, /16, /8', () => {
  const set = build([
    ['10.0.0.0', '10.255.255.255', 1],
    ['10.1.0.0', '10.1.255.255', 2],
    ['10.1.2.0', '10.1.2.255', EXCLUDED],
    ['10.1.2.3', '10.1.2.3', 3],
  ]);
  assert.deepEqual(set.lookup(ip('10.0.0.1')), [1]);
  assert.deepEqual(set.lookup(ip('10.1.0.1')), [2]); // the /16 hides the /8
  assert.equal(set.lookup(ip('10.1.2.4')), undefined); // excluded /24
  assert.deepEqual(set.lookup(ip('10.1.2.3')), [3]); // a single address under the exclusion
  assert.equal(set.lookup(ip('11.0.0.0')), undefined);
  assert.deepEqual(set.sizes, [1, 1, 1, 1]);
});

test('CIDR edges: the first and last address in, their neighbours out', () => {
  const set = build([
    ['192.168.10.0', '192.168.11.255', 1], // /23: two /24 blocks
    ['192.168.11.128', '192.168.11.255', EXCLUDED], // /25: 128 single addresses
    ['5.6.7.8', '5.6.7.20', 2],
    ['0.0.0.0', '0.0.0.0', 3],
    ['255.255.255.255', '255.255.255.255', 4],
  ]);
  assert.deepEqual(set.lookup(ip('192.168.10.0')), [1]);
  assert.deepEqual(set.lookup(ip('192.168.11.127')), [1]);
  assert.equal(set.lookup(ip('192.168.11.128')), undefined);
  assert.equal(set.lookup(ip('192.168.11.255')), undefined);
  assert.equal(set.lookup(ip('192.168.9.255')), undefined);
  assert.equal(set.lookup(ip('192.168.12.0')), undefined);
  assert.equal(set.lookup(ip('5.6.7.7')), undefined);
  assert.deepEqual(set.lookup(ip('5.6.7.8')), [2]);
  assert.deepEqual(set.lookup(ip('5.6.7.20')), [2]);
  assert.equal(set.lookup(ip('5.6.7.21')), undefined);
  assert.deepEqual(set.lookup(0), [3]);
  assert.deepEqual(set.lookup(0xffffffff), [4]);
});

test('an address listed twice gives both values; an exclusion at the same level wins over all', () => {
  const set = build([
    ['8.8.8.0', '8.8.8.127', 1],
    ['8.8.8.8', '8.8.8.8', EXCLUDED],
    ['8.8.8.9', '8.8.8.9', 2],
    ['8.8.8.9', '8.8.8.9', 1],
    ['8.8.8.9', '8.8.8.9', 2],
  ]);
  assert.equal(set.lookup(ip('8.8.8.8')), undefined);
  assert.deepEqual(set.lookup(ip('8.8.8.9')), [1, 2]);
  assert.deepEqual(set.lookup(ip('8.8.8.10')), [1]);
});

test('an exclusion with nothing listed around it lists nothing', () => {
  const set = build([['90.0.0.1', '90.0.0.1', EXCLUDED]]);
  assert.equal(set.lookup(ip('90.0.0.1')), undefined);
  assert.equal(set.lookup(ip('90.0.0.2')), undefined);
});

test('compactRuns keeps one exclusion per run, else distinct values in order', () => {
  const [k, v] = compactRuns(new Uint32Array([1, 1, 1, 2, 3, 3, 3, 4]), new Int32Array([5, 6, 5, 7, 8, EXCLUDED, 9, 0]));
  assert.deepEqual([...k], [1, 1, 2, 3, 4]);
  assert.deepEqual([...v], [5, 6, 7, EXCLUDED, 0]);
});

test('a hundred thousand random entries: lookups agree with a plain set', () => {
  let x = 7;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  const b = new Ip4SetBuilder();
  const listed: number[] = [];
  for (let i = 0; i < 100_000; i++) {
    const a = rnd() >>> 8; // within 0/8: dense enough for neighbours to matter
    b.add(a, a, i % 3);
    listed.push(a);
  }
  const set = b.finish();
  const all = new Set(listed);
  let hits = 0;
  for (let i = 0; i < 20_000; i++) {
    // Half the queries listed addresses, half their neighbours or random ones.
    const q = i % 2 ? listed[rnd() % listed.length] : (listed[rnd() % listed.length] + (i % 4) - 2) >>> 0;
    const got = set.lookup(q);
    assert.equal(got !== undefined, all.has(q), q.toString(16));
    if (got) hits++;
  }
  assert.ok(hits >= 10_000, `hits: ${hits}`);
});
