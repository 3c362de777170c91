import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { DataReader } from './data-reader.js';

function read(input: string | Buffer, opts: { max?: number; split?: number } = {}) {
  const parts: Buffer[] = [];
  const r = new DataReader(opts.max ?? 1e6, (b) => parts.push(Buffer.from(b)));
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input, 'latin1');
  const step = opts.split ?? buf.length;
  let consumed = 0;
  let done = false;
  for (let off = 0; off < buf.length && !done; off += step) {
    const chunk = buf.subarray(off, Math.min(off + step, buf.length));
    const res = r.push(chunk);
    if (res.done) {
      done = true;
      consumed = off + res.consumed;
    }
  }
  return { out: Buffer.concat(parts).toString('latin1'), done, rest: done ? buf.subarray(consumed).toString('latin1') : '', reader: r };
}

test('CRLF.CRLF ends the data, the rest stays for the command stream', () => {
  for (const split of [1, 2, 3, 7, 1000]) {
    const r = read('Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n', { split });
    assert.equal(r.done, true);
    assert.equal(r.out, 'Subject: x\r\n\r\nhello\r\n');
    assert.equal(r.rest, 'QUIT\r\n');
  }
});

test('an empty message is just ".CRLF"', () => {
  const r = read('.\r\n');
  assert.equal(r.done, true);
  assert.equal(r.out, '');
});

test('dot-stuffing is undone on proper lines only', () => {
  const r = read('a\r\n..b\r\n..\r\n.x\r\nc\n..d\r\n.\r\n');
  assert.equal(r.out, 'a\r\n.b\r\n.\r\nx\r\nc\r\n..d\r\n');
  assert.equal(r.reader.bareNewlines, 1);
});

test('every smuggling end-of-data variant is content, never the end', () => {
  const file = path.resolve(process.cwd(), '../shared/conformance/smtp/smtp-smuggling-eod-sequences.yaml');
  const doc = YAML.parse(fs.readFileSync(file, 'utf8')) as { sequences: { id: string; bytes_hex: string }[] };
  assert.ok(doc.sequences.length >= 10);
  for (const seq of doc.sequences) {
    const bytes = Buffer.from(seq.bytes_hex.replace(/\s+/g, ''), 'hex');
    const smuggled = Buffer.from('MAIL FROM:<a@evil.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\nforged\r\n');
    const msg = Buffer.concat([Buffer.from('Subject: s\r\n\r\nbody'), bytes, smuggled, Buffer.from('\r\n.\r\nNOOP\r\n')]);
    for (const split of [1, 3, msg.length]) {
      const r = read(msg, { split });
      assert.equal(r.done, true, seq.id);
      assert.equal(r.rest, 'NOOP\r\n', `${seq.id}: only the real CRLF.CRLF ends the data`);
      assert.ok(r.out.includes('MAIL FROM:<a@evil.test>'), `${seq.id}: smuggled text stays inside the message`);
      assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(r.out), `${seq.id}: output has only CRLF line endings`);
    }
  }
});

test('size cap stops output but reading continues to the end', () => {
  const r = read('0123456789\r\n0123456789\r\n.\r\n', { max: 15 });
  assert.equal(r.done, true);
  assert.equal(r.reader.overflow, true);
  assert.ok(r.out.length <= 15);
});

test('lone CR at a chunk edge is completed to CRLF', () => {
  const r = read('ab\rcd\r\n.\r\n', { split: 3 });
  assert.equal(r.out, 'ab\r\ncd\r\n');
  assert.equal(r.reader.bareNewlines, 1);
});
