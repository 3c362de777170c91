import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandIp4Range, formatIp4, ip4, ip4Addr, ip4FromReversed, ip4mask, ip4Prefix, ip4Range } from './ip4.js';

const bytes = (s: string) => Buffer.from(s, 'latin1');

/** "a-b/bits" of a range parse, or "error". */
function range(s: string): string {
  const b = bytes(s);
  const p = ip4Range(b, 0, b.length);
  if (p < 0 || p !== b.length) return 'error';
  return `${formatIp4(ip4.a)}-${formatIp4(ip4.b)}/${ip4.bits}`;
}

test('every form of the rbldnsd manual for 127.0.0.0/24 and 127.16.0.0/12', () => {
  for (const s of ['127.0.0.0/24', '127.0.0', '127/24', '127.0.0.0-127.0.0.255', '127.0.0.1-255']) {
    const r = range(s);
    assert.match(r, /^127\.0\.0\.[01]-127\.0\.0\.255\//, s);
  }
  for (const s of ['127.16.0.0-127.31.255.255', '127.16.0-127.31.255', '127.16-127.31', '127.16-31', '127.16.0.0/12', '127.16.0/12', '127.16/12']) {
    assert.match(range(s), /^127\.16\.0\.0-127\.31\.255\.255\//, s);
  }
  // The manual lists "127-127.0.0" too, but rbldnsd's parser (and so this one) refuses two
  // bounds of different lengths unless the second is a single octet.
  assert.equal(range('127-127.0.0'), 'error');
});

test('ranges, prefixes and CIDRs: edges and refusals', () => {
  assert.equal(range('1.2.3.4'), '1.2.3.4-1.2.3.4/32');
  assert.equal(range('1.2.3'), '1.2.3.0-1.2.3.255/24');
  assert.equal(range('10.1'), '10.1.0.0-10.1.255.255/16');
  assert.equal(range('10/8'), '10.0.0.0-10.255.255.255/8');
  assert.equal(range('0/1'), '0.0.0.0-127.255.255.255/1');
  assert.equal(range('5.6.7.8-20'), '5.6.7.8-5.6.7.20/32');
  assert.equal(range('1.2.3.4/24'), '1.2.3.4-1.2.3.255/24'); // host part: refused by the caller
  assert.equal(range('0.0.0.0/0'), '0.0.0.0-255.255.255.255/0'); // /0: refused by the caller
  for (const bad of ['10', '256.1.1.1', '1.2.3.4/33', '1.2.3.4-1.2.3.3', '1.2-1.2.3.4', '1.2.3.', '1..2.3', 'a.b.c.d', '1.2.3.4/', '-1.2.3.4']) {
    assert.equal(range(bad), 'error', bad);
  }
  // The parser stops where an address ends; the caller judges what follows.
  const b = bytes('1.2.3.4:2:txt');
  assert.equal(ip4Range(b, 0, b.length), 7);
  const five = bytes('1.2.3.4.5');
  assert.equal(ip4Prefix(five, 0, five.length), 7);
  assert.equal(ip4.bits, 32);
  assert.equal(ip4mask(0), 0);
  assert.equal(ip4mask(32), 0xffffffff);
  assert.equal(ip4mask(1), 0x80000000);
});

test('A values: short forms as inet_aton reads them', () => {
  const addr = (s: string) => {
    const b = bytes(s);
    return ip4Addr(b, 0, b.length) < 0 ? 'error' : `${formatIp4(ip4.a)}/${ip4.bits}`;
  };
  assert.equal(addr('2'), '0.0.0.2/8');
  assert.equal(addr('1.2'), '1.0.0.2/16');
  assert.equal(addr('1.2.3'), '1.2.0.3/24');
  assert.equal(addr('127.0.0.3'), '127.0.0.3/32');
  assert.equal(addr('x'), 'error');
});

test('range expansion covers exactly the range, in whole blocks where it can', () => {
  const cover = (a: number, b: number) => {
    const blocks: [number, number, number][] = [];
    expandIp4Range(a, b, (level, first, count) => blocks.push([level, first, count]));
    return blocks;
  };
  assert.deepEqual(cover(0x0a000000, 0x0affffff), [[3, 0x0a000000, 1]]); // 10/8: one /8 entry
  assert.deepEqual(cover(0x01020304, 0x01020304), [[0, 0x01020304, 1]]);
  assert.deepEqual(cover(0x7f100000, 0x7f1fffff), [[2, 0x7f100000, 16]]); // /12: sixteen /16s
  assert.deepEqual(cover(0, 0xffffffff), [[3, 0, 256]]);
  // Random ranges: the blocks, expanded, are exactly a..b with no overlap.
  let x = 99;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  for (let t = 0; t < 300; t++) {
    const a = rnd() >>> 0;
    const b = Math.min(0xffffffff, a + (rnd() % (t % 3 === 0 ? 0x1000000 : 3000)));
    let total = 0;
    let next = a;
    const spans: [number, number][] = [];
    for (const [level, first, count] of cover(a, b)) {
      const size = 2 ** (8 * level);
      assert.equal(first % size, 0, 'blocks are aligned');
      spans.push([first, first + size * count - 1]);
      total += size * count;
    }
    spans.sort((p, q) => p[0] - q[0]);
    for (const [s, e] of spans) {
      assert.equal(s, next, 'contiguous, no overlap');
      next = e + 1;
    }
    assert.equal(total, b - a + 1);
    assert.equal(next, b + 1);
  }
});

test('reversed query names: exactly four labels of 1-3 digits, each <= 255', () => {
  assert.equal(ip4FromReversed('4.3.2.1'), 0x01020304);
  assert.equal(formatIp4(ip4FromReversed('255.255.255.255')), '255.255.255.255');
  assert.equal(ip4FromReversed('0.0.0.0'), 0);
  assert.equal(ip4FromReversed('01.0.0.10'), 0x0a000001); // rbldnsd accepts leading zeros
  assert.equal(ip4FromReversed('001.002.003.010'), 0x0a030201);
  for (const bad of ['3.2.1', '5.4.3.2.1', '256.0.0.1', '1000.0.0.1', '1..2.3', 'a.b.c.d', '1.2.3.4.', '.1.2.3.4', '1.2.3.-4', '']) {
    assert.equal(ip4FromReversed(bad), -1, bad);
  }
});
