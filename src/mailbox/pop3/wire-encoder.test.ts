import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { WireEncoder, encodeForWire } from './wire-encoder.js';

/** The rules stated plainly, on whole strings: LF → CRLF unless after CR, "." stuffed at line starts, a final line end added. */
function reference(msg: Buffer): Buffer {
  let s = msg.toString('latin1').replace(/(?<!\r)\n/g, '\r\n');
  s = s.split('\n').map((l) => (l.startsWith('.') ? `.${l}` : l)).join('\n');
  if (s.length && !s.endsWith('\n')) s += s.endsWith('\r') ? '\n' : '\r\n';
  return Buffer.from(s, 'latin1');
}

function chunked(msg: Buffer, sizes: number[], opts: ConstructorParameters<typeof WireEncoder>[0]): Buffer {
  const enc = new WireEncoder(opts);
  const out: Buffer[] = [];
  let i = 0;
  let k = 0;
  while (i < msg.length) {
    const n = Math.max(1, sizes[k++ % sizes.length]!);
    out.push(enc.push(msg.subarray(i, i + n)));
    i += n;
  }
  out.push(enc.end());
  return Buffer.concat(out);
}

test('CRLF messages pass unchanged apart from stuffing; LF messages get CRLF', () => {
  assert.equal(encodeForWire(Buffer.from('a\r\nb\r\n'), { stuff: true }).toString(), 'a\r\nb\r\n');
  assert.equal(encodeForWire(Buffer.from('a\nb\n'), { stuff: true }).toString(), 'a\r\nb\r\n');
  assert.equal(encodeForWire(Buffer.from('.a\n..b\n.\nc.d\n'), { stuff: true }).toString(), '..a\r\n...b\r\n..\r\nc.d\r\n');
  assert.equal(encodeForWire(Buffer.from('.a\n'), { stuff: false }).toString(), '.a\r\n');
  assert.equal(encodeForWire(Buffer.from('no newline'), { stuff: true }).toString(), 'no newline\r\n');
  assert.equal(encodeForWire(Buffer.from('ends in CR\r'), { stuff: true }).toString(), 'ends in CR\r\n');
  assert.equal(encodeForWire(Buffer.alloc(0), { stuff: true }).length, 0);
  assert.equal(encodeForWire(Buffer.from('bare\rCR\n'), { stuff: true }).toString(), 'bare\rCR\r\n');
});

test('octets count the CRLF message without stuffing or the added final line end', () => {
  const enc = new WireEncoder({ stuff: true });
  enc.push(Buffer.from('.x\n.y\nlast'));
  enc.end();
  assert.equal(enc.octets, '.x\r\n.y\r\nlast'.length);
});

test('any chunking gives the same bytes as the reference rules (random messages)', () => {
  const alphabet = Buffer.from('..\r\n\n\rab x');
  for (let round = 0; round < 300; round++) {
    const len = crypto.randomInt(0, 200);
    const msg = Buffer.from(Array.from({ length: len }, () => alphabet[crypto.randomInt(alphabet.length)]!));
    const expected = reference(msg);
    assert.deepEqual(encodeForWire(msg, { stuff: true }), expected, JSON.stringify(msg.toString('latin1')));
    assert.deepEqual(chunked(msg, [1], { stuff: true }), expected);
    assert.deepEqual(chunked(msg, [crypto.randomInt(1, 7), crypto.randomInt(1, 13)], { stuff: true }), expected);
  }
});

test('TOP: the header, the blank line, then n body lines, whatever the line ends and chunking', () => {
  const crlfMsg = Buffer.from('A: 1\r\nB: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n');
  const lfMsg = Buffer.from('A: 1\nB: 2\n\nl1\n.l2\nl3\n');
  for (const msg of [crlfMsg, lfMsg]) {
    for (const sizes of [[1000], [1], [2, 3]]) {
      assert.equal(chunked(msg, sizes, { stuff: true, bodyLines: 0 }).toString(), 'A: 1\r\nB: 2\r\n\r\n');
      assert.equal(chunked(msg, sizes, { stuff: true, bodyLines: 2 }).toString(), 'A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n');
      assert.equal(chunked(msg, sizes, { stuff: true, bodyLines: 99 }).toString(), 'A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n');
    }
  }
  // A header with no body at all, and one that does not even end in a newline.
  assert.equal(encodeForWire(Buffer.from('A: 1\r\n'), { stuff: true, bodyLines: 0 }).toString(), 'A: 1\r\n');
  assert.equal(encodeForWire(Buffer.from('A: 1'), { stuff: true, bodyLines: 5 }).toString(), 'A: 1\r\n');
  const enc = new WireEncoder({ stuff: true, bodyLines: 1 });
  enc.push(Buffer.from('A: 1\r\n\r\nbody\r\nmore'));
  assert.ok(enc.done, 'the reader can stop early');
  assert.equal(enc.push(Buffer.from('ignored\r\n')).length, 0);
});

test('a 20 MB message streams in bounded pieces', () => {
  const line = Buffer.from('.'.repeat(998) + '\n');
  const enc = new WireEncoder({ stuff: true });
  let total = 0;
  for (let i = 0; i < 20_000; i++) {
    const out = enc.push(line);
    assert.ok(out.length <= line.length * 2 + 1);
    total += out.length;
  }
  assert.equal(total, 20_000 * 1001);
  assert.equal(enc.octets, 20_000 * 1000);
});
