import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import { walkMessage, type WalkedPart } from './walk.js';
import { readBounded, type Inspector, type MessageInspection } from './inspector.js';
import { b64part, chunked, compose, fakePe, multipart, tinyPdf, tinyPng } from '../../test/mime/fixtures.js';

/** An inspector that keeps every part's decoded content (bounded), and what begin() was told. */
function collector(max = 1 << 20) {
  const seen = new Map<string, Buffer>();
  const subjects: string[] = [];
  const inspector: Inspector = {
    name: 'collector',
    begin(m) {
      subjects.push(m.subject);
      return {
        wants: () => true,
        async inspect(part, _type, content) {
          seen.set(part.path, (await readBounded(content, max)).buffer);
          return {};
        },
      };
    },
  };
  return { seen, subjects, inspector };
}

test('parts, names, types, decoded content and byte ranges of a message built by nodemailer', async () => {
  const pdf = tinyPdf();
  const png = tinyPng();
  const exe = fakePe(5000);
  const msg = await compose([
    { filename: 'report.pdf', content: pdf, contentType: 'application/pdf' },
    { filename: 'Список документов.png', content: png, contentType: 'image/png' },
    { filename: 'invoice\u202efdp.exe', content: exe },
  ], { subject: '=?utf-8?q?Bonjour_caf=C3=A9?=' });
  for (const size of [7, 100, 65536]) {
    const c = collector();
    const parts: WalkedPart[] = [];
    const r = await walkMessage(chunked(msg, size), { inspectors: [c.inspector], onPart: (p) => void parts.push(p) });
    assert.equal(r.complete, true, `chunk ${size}: ${JSON.stringify(r.issues)}`);
    assert.equal(r.mapped, true);
    assert.equal(r.bytes, msg.length);
    assert.deepEqual(r.parts.map((p) => p.path), ['1', '2', '3', '4']);
    assert.deepEqual(r.parts.map((p) => p.filename), [undefined, 'report.pdf', 'Список документов.png', 'invoice\u202efdp.exe']);
    assert.deepEqual(r.parts.map((p) => p.fileType.kind), ['unknown', 'pdf', 'png', 'pe']);
    assert.deepEqual(r.parts.map((p) => p.isAttachment), [false, true, true, true]);
    assert.deepEqual(c.seen.get('2'), pdf);
    assert.deepEqual(c.seen.get('3'), png);
    assert.deepEqual(c.seen.get('4'), exe);
    assert.equal(r.parts[3]!.size, exe.length);
    assert.deepEqual(c.subjects, ['Bonjour café']);
    for (const p of parts) {
      const range = p.range!;
      assert.deepEqual(msg.subarray(range.start, range.bodyStart), p.rawHeader, `header of part ${p.path}`);
      assert.ok(msg.subarray(range.end, range.end + 4).toString().startsWith('\r\n--'), `part ${p.path} ends before its boundary`);
    }
  }
});

test('every name a client might use is found: RFC 2231 continuations, encoded-words, both headers', async () => {
  const msg = multipart([
    'Content-Type: application/octet-stream; name="=?utf-8?B?c2V0dXAuZXhl?="\r\nContent-Disposition: attachment;\r\n filename*0*=utf-8\'\'%E2%80%AEgpj;\r\n filename*1="x.scr"\r\n\r\nhello',
    'Content-Type: application/pdf; name="harmless.pdf"\r\nContent-Disposition: attachment; filename="harmless.pdf"; filename="other.vbs"\r\n\r\n%PDF-1.4',
  ]);
  const r = await walkMessage(chunked(msg));
  assert.deepEqual(r.parts[0]!.filenames, ['\u202egpjx.scr', 'setup.exe']);
  assert.deepEqual(r.parts[1]!.filenames, ['harmless.pdf', 'other.vbs']);
});

test('an inspector gets backpressure, may stop early, may fail, and may add findings at the end', async () => {
  const big = Buffer.alloc(3 * 1024 * 1024, 0x41);
  const msg = await compose([{ filename: 'big.bin', content: big }, { filename: 'small.txt', content: 'tiny' }]);
  let slowBytes = 0;
  const slow: Inspector = {
    name: 'slow',
    begin: () => ({
      wants: (p) => p.filename === 'big.bin',
      async inspect(_p, _t, content) {
        for await (const chunk of content as AsyncIterable<Buffer>) {
          slowBytes += chunk.length;
          await new Promise((r) => setTimeout(r, 1));
        }
        return { symbols: [{ name: 'SLOW_SAW', reason: `${slowBytes}` }] };
      },
    }),
  };
  const early: Inspector = {
    name: 'early',
    begin: () => ({
      wants: () => true,
      async inspect(_p, type, content, ctx) {
        content.destroy();
        return type.kind === 'unknown' && ctx.head.length > 0 ? {} : { action: 'strip', reason: 'odd' };
      },
    }),
  };
  const failing: Inspector = {
    name: 'broken',
    begin: () => ({ wants: () => true, inspect: async () => { throw new Error('boom'); } }),
  };
  const late: Inspector = {
    name: 'late',
    begin(): MessageInspection {
      const names: string[] = [];
      return {
        wants: (p) => { names.push(p.path); return false; },
        inspect: async () => ({}),
        finish: async () => [{ path: '2', action: 'defang', reason: `saw ${names.join(',')}` }],
      };
    },
  };
  const r = await walkMessage(chunked(msg), { inspectors: [slow, early, failing, late], limits: { maxScanBytes: 1024 * 1024 } });
  assert.equal(r.complete, true);
  assert.equal(slowBytes, 1024 * 1024, 'the slow inspector saw max_part_scan_size bytes, no more');
  const big2 = r.parts.find((p) => p.filename === 'big.bin')!;
  assert.equal(big2.truncated, true);
  assert.equal(big2.size, big.length);
  assert.deepEqual(big2.findings.map((f) => f.inspector).sort(), ['broken', 'slow']);
  assert.match(JSON.stringify(big2.findings), /INSPECTOR_FAILED.*boom/);
  assert.deepEqual(r.late, [{ path: '2', action: 'defang', reason: 'saw 1,2,3', inspector: 'late' }]);
});

test('limits: depth, parts, header size, line length — each a fatal issue, within bounds', async () => {
  // 150 nested multiparts.
  let body = 'Content-Type: text/plain\r\n\r\ncore';
  for (let i = 0; i < 150; i++) body = `Content-Type: multipart/mixed; boundary="n${i}"\r\n\r\n--n${i}\r\n${body}\r\n--n${i}--`;
  const deep = await walkMessage(chunked(Buffer.from(`From: a@b\r\n${body}\r\n`)));
  assert.equal(deep.complete, false);
  assert.deepEqual(deep.issues.map((i) => i.symbol), ['MIME_TOO_DEEP']);

  const many = multipart(Array.from({ length: 30 }, (_, i) => `Content-Type: text/plain\r\n\r\npart ${i}`));
  const r2 = await walkMessage(chunked(many), { limits: { maxParts: 10 } });
  assert.deepEqual(r2.issues.map((i) => [i.symbol, i.fatal]), [['MIME_TOO_MANY_PARTS', true]]);

  const fat = multipart([`Content-Type: text/plain\r\nX-Junk: ${'j'.repeat(5000)}\r\n\r\nbody`]);
  const r3 = await walkMessage(chunked(fat), { limits: { maxHeaderBytes: 2048 } });
  assert.deepEqual(r3.issues.map((i) => i.symbol), ['MIME_HEADER_TOO_BIG']);

  const longLine = multipart([`Content-Type: text/plain\r\n\r\n${'x'.repeat(5000)}`]);
  const r4 = await walkMessage(chunked(longLine, 100), { limits: { maxLineBytes: 1000 } });
  assert.deepEqual(r4.issues.map((i) => [i.symbol, i.fatal]), [['MIME_LONG_LINE', true]]);
  assert.equal(r4.parts[0]!.size, 1000);
  assert.equal(r4.parts[0]!.range!.end, longLine.indexOf('x'.repeat(5000)) + 5000, 'the range is in original bytes');
});

test('malformed content is a finding, not an exception', async () => {
  const trunc = multipart([b64part(['Content-Type: application/pdf; name="a.pdf"'], tinyPdf()).slice(0, -3)]);
  const r = await walkMessage(chunked(trunc));
  assert.equal(r.complete, true);
  assert.deepEqual(r.issues.map((i) => i.symbol), ['MIME_BAD_BASE64']);

  const unclosed = Buffer.from('Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\ncut off');
  const r2 = await walkMessage(chunked(unclosed));
  assert.deepEqual(r2.issues.map((i) => i.symbol), ['MIME_UNCLOSED']);
  assert.equal(r2.complete, true);

  const noBoundary = Buffer.from('Content-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n');
  assert.deepEqual((await walkMessage(chunked(noBoundary))).issues.map((i) => i.symbol), ['MIME_NO_BOUNDARY']);
});

test('boundaries that clients and mailsplit would read differently make the walk incomplete', async () => {
  // RFC 2046 allows blanks after a delimiter; mailsplit does not see one there: an .exe could hide.
  const padded = Buffer.from('Content-Type: multipart/mixed; boundary=q\r\n\r\n--q  \r\nContent-Type: application/octet-stream; name=x.exe\r\n\r\nMZ\r\n--q--\r\n');
  const r = await walkMessage(chunked(padded));
  assert.equal(r.complete, false);
  assert.deepEqual(r.issues.map((i) => i.symbol), ['MIME_BAD_BOUNDARY']);
  // An outer delimiter inside an inner multipart that was never closed.
  const nested = Buffer.from('Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n' +
    '--i\r\nContent-Type: text/plain\r\n\r\ntext\r\n--o\r\nContent-Type: application/octet-stream; name=x.exe\r\n\r\nMZ\r\n--o--\r\n');
  const r2 = await walkMessage(chunked(nested));
  assert.deepEqual(r2.issues.map((i) => [i.symbol, i.fatal]), [['MIME_BAD_BOUNDARY', true]]);
});

test('an attached message that is encoded is walked inside, its parts marked with their container', async () => {
  const inner = await compose([{ filename: 'payload.exe', content: fakePe() }]);
  const msg = multipart([
    'Content-Type: text/plain\r\n\r\nsee attached',
    b64part(['Content-Type: message/rfc822', 'Content-Disposition: attachment; filename="fwd.eml"'], inner),
  ]);
  const r = await walkMessage(chunked(msg));
  assert.equal(r.complete, true, JSON.stringify(r.issues));
  const exe = r.parts.find((p) => p.filename === 'payload.exe')!;
  assert.equal(exe.container, '2');
  assert.equal(exe.path, '2.2');
  assert.equal(exe.depth, 3);
  assert.equal(exe.range, undefined);
  assert.equal(exe.fileType.kind, 'pe');
  const container = r.parts.find((p) => p.path === '2')!;
  assert.ok(container.range);
});

test('the walk stops at its time budget when an inspector never reads', async () => {
  const msg = await compose([{ filename: 'a.bin', content: Buffer.alloc(2 * 1024 * 1024, 1) }]);
  const stuck: Inspector = { name: 'stuck', begin: () => ({ wants: () => true, inspect: () => new Promise(() => undefined) }) };
  const t0 = Date.now();
  const r = await walkMessage(chunked(msg) as Readable, { inspectors: [stuck], limits: { timeoutMs: 300 } });
  assert.ok(Date.now() - t0 < 3000);
  assert.deepEqual(r.issues.map((i) => [i.symbol, i.fatal]), [['MIME_SCAN_TIMEOUT', true]]);
});
