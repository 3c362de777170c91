import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { LineAligner } from './line-aligner.js';

async function align(input: Buffer, step: number, maxLine: number): Promise<{ chunks: Buffer[]; a: LineAligner }> {
  const a = new LineAligner(maxLine);
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length; i += step) parts.push(input.subarray(i, i + step));
  const chunks: Buffer[] = [];
  for await (const c of Readable.from(parts, { objectMode: false }).pipe(a)) chunks.push(c as Buffer);
  return { chunks, a };
}

test('every chunk handed on ends at a line end, and nothing is lost', async () => {
  const input = Buffer.from('first line\r\nsecond\r\n\r\nthird without end');
  for (const step of [1, 2, 5, 13, 1000]) {
    const { chunks, a } = await align(input, step, 1000);
    assert.deepEqual(Buffer.concat(chunks), input);
    for (const c of chunks.slice(0, -1)) assert.equal(c[c.length - 1], 0x0a, `step ${step}`);
    assert.equal(a.longLines, 0);
    assert.equal(a.toOriginal(15), 15);
  }
});

test('a line longer than the limit is cut, and positions map back to the original', async () => {
  const long = 'x'.repeat(100);
  const input = Buffer.from(`ab\r\n${long}\r\ncd\r\n${long}\nend\r\n`);
  for (const step of [1, 7, 64, 1000]) {
    const { chunks, a } = await align(input, step, 10);
    const out = Buffer.concat(chunks).toString();
    assert.equal(out, `ab\r\n${'x'.repeat(10)}\r\ncd\r\n${'x'.repeat(10)}\nend\r\n`, `step ${step}`);
    assert.equal(a.longLines, 2);
    // "cd" starts at 4+10+2 in the output, at 4+100+2 in the input.
    assert.equal(a.toOriginal(out.indexOf('cd')), input.indexOf('cd'));
    assert.equal(a.toOriginal(out.indexOf('end')), input.indexOf('end'));
    // The CRLF of a cut line is kept and maps to the original CRLF.
    assert.equal(a.toOriginal(14), input.indexOf('\r\ncd'));
    assert.equal(a.toOriginal(3), 3);
  }
});

test('a long line at the very end (no line end) is cut too', async () => {
  const { chunks, a } = await align(Buffer.from(`a\n${'y'.repeat(50)}\r`), 4, 8);
  assert.equal(Buffer.concat(chunks).toString(), `a\n${'y'.repeat(8)}\r`);
  assert.equal(a.longLines, 1);
});
