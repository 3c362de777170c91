import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Base64Decoder, QuotedPrintableDecoder, decoderFor, type Decoder } from './decoders.js';

function run(d: Decoder, input: Buffer, step: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i += step) out.push(d.write(input.subarray(i, i + step)));
  out.push(d.end());
  return Buffer.concat(out);
}

test('base64 decodes the same whatever the chunking, with no problem reported', () => {
  const data = crypto.randomBytes(1000);
  for (const n of [1000, 999, 998]) {
    const slice = data.subarray(0, n);
    const encoded = Buffer.from(slice.toString('base64').replace(/.{76}/g, '$&\r\n'));
    for (const step of [1, 3, 7, 77, 4096]) {
      const d = new Base64Decoder();
      assert.deepEqual(run(d, encoded, step), slice, `n=${n} step=${step}`);
      assert.deepEqual(d.problems, []);
    }
  }
});

test('truncated, invalid and concatenated base64 is decoded as far as it goes and reported', () => {
  const cut = new Base64Decoder();
  assert.deepEqual(run(cut, Buffer.from('SGVsbG8gd29ybGQ'), 5), Buffer.from('Hello world'));
  assert.match(cut.problems.join(), /truncated/);
  const lone = new Base64Decoder();
  run(lone, Buffer.from('SGVsbA'), 2);
  run(lone, Buffer.from('x'), 1);
  assert.match(lone.problems.join(), /truncated/);
  const junk = new Base64Decoder();
  assert.deepEqual(run(junk, Buffer.from('SGVs*bG8=!'), 3), Buffer.from('Hello'));
  assert.match(junk.problems.join(), /2 invalid/);
  const joined = new Base64Decoder();
  assert.deepEqual(run(joined, Buffer.from('SGk=SGk='), 1), Buffer.from('HiHi'));
  assert.match(joined.problems.join(), /after padding/);
});

test('quoted-printable: escapes and soft breaks split across chunks', () => {
  const input = Buffer.from('caf=C3=A9 au lait=\r\n avec =\r\nsucre=3D=\r\n\r\nfin');
  for (const step of [1, 2, 3, 5, 100]) {
    const d = new QuotedPrintableDecoder();
    assert.equal(run(d, input, step).toString('utf8'), 'café au lait avec sucre=\r\nfin', `step=${step}`);
    assert.deepEqual(d.problems, []);
  }
  const bad = new QuotedPrintableDecoder();
  assert.equal(run(bad, Buffer.from('a=ZZb=4'), 2).toString('latin1'), 'a=ZZb=4');
  assert.match(bad.problems.join(), /broken/);
});

test('unknown transfer encodings pass bytes through and say so', () => {
  assert.equal(decoderFor('base64').known, true);
  assert.equal(decoderFor('8bit').known, true);
  const x = decoderFor('x-uuencode');
  assert.equal(x.known, false);
  assert.deepEqual(x.decoder.write(Buffer.from('begin 644 a')), Buffer.from('begin 644 a'));
});
