import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SymbolHit } from '../types.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatScan, scanFile, scanMessage } from './scan.js';
import { defaultAttachmentsConfig } from './config.js';
import { chunked, compose, fakePe, tinyPdf } from '../../../test/mime/fixtures.js';

test('scan shows each part, the symbols with their weights, and the rewrite', async () => {
  const msg = await compose([
    { filename: 'a.pdf', content: tinyPdf(), contentType: 'application/pdf' },
    { filename: 'x.scr', content: fakePe() },
    { filename: 'y.js', content: 'x' },
  ]);
  const r = await scanMessage(chunked(msg), defaultAttachmentsConfig(), { judge: (hits) => ({ symbols: hits.map((h) => ({ ...h, score: h.name === 'ATTACH_EXE_STRIPPED' ? 4 : 0 })) }) });
  assert.equal(r.verdict, 'rewrite');
  assert.equal(r.complete, true);
  assert.deepEqual(r.actions.map((a) => [a.path, a.name, a.detected, a.action]), [
    ['1', '(part 1, no name)', 'unrecognised content', 'pass'],
    ['2', 'a.pdf', 'PDF document', 'pass'],
    ['3', 'x.scr', 'Windows PE executable', 'strip'],
    ['4', 'y.js', 'unrecognised content', 'defang'],
  ]);
  assert.deepEqual(r.symbols.map((s) => [s.name, s.score]), [['ATTACH_EXE_STRIPPED', 4], ['ATTACH_EXE_DEFANGED', 0]]);
  assert.deepEqual(r.rewrite!.changes.map((c) => c.action), ['strip', 'defang']);
  const text = formatScan('m.eml', r);
  assert.match(text, /^m\.eml: rewrite\n/);
  assert.match(text, /part 3 {2}application\/octet-stream {2}x\.scr {2}\[Windows PE executable, \d+ bytes\] {2}strip: Windows screen saver/);
  assert.match(text, /X-Portcullis-Attachments: stripped "x\.scr"/);
  const json = JSON.parse(JSON.stringify(r));
  assert.equal(json.verdict, 'rewrite');
});

test('scanFile writes what the gateway would deliver, summary header on top; a clean file is accepted as is', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-scan-'));
  try {
    const file = path.join(dir, 'in.eml');
    fs.writeFileSync(file, await compose([{ filename: 'tool.exe', content: fakePe() }]));
    const out = path.join(dir, 'out.eml');
    const r = await scanFile(file, defaultAttachmentsConfig(), { rewriteTo: out });
    assert.equal(r.rewritten, out);
    const text = fs.readFileSync(out, 'utf8');
    assert.match(text, /^X-Portcullis-Attachments: defanged "tool\.exe" as "tool\.exe\.txt" \(Windows program \(\.exe\)\)\r\nFrom: /);
    assert.match(text, /filename="tool\.exe\.txt"/);

    const clean = path.join(dir, 'clean.eml');
    fs.writeFileSync(clean, await compose([]));
    const c = await scanFile(clean, defaultAttachmentsConfig(), { rewriteTo: path.join(dir, 'never.eml') });
    assert.equal(c.verdict, 'accept');
    assert.equal(c.rewritten, undefined);
    assert.equal(fs.existsSync(path.join(dir, 'never.eml')), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('scan gives a refusal its SMTP reply', async () => {
  const msg = Buffer.from('Content-Type: multipart/mixed; boundary=q\r\n\r\n--q  \r\nContent-Type: text/plain\r\n\r\nx\r\n--q--\r\n');
  // The CLI passes the actions layer as `judge`; here a stand-in that sends a finding's reply as
  // the default actions do for MIME_UNSCANNABLE (src/pipeline/actions.test.ts covers the real one).
  const judge = (hits: readonly SymbolHit[]) => {
    const carrying = hits.find((h) => h.reply);
    return { symbols: hits.map((h) => ({ ...h, score: 0 })), ...(carrying ? { demand: { kind: 'reject' as const, reply: carrying.reply! } } : {}) };
  };
  const r = await scanMessage(chunked(msg), defaultAttachmentsConfig(), { judge });
  assert.equal(r.verdict, 'reject');
  assert.equal(r.complete, false);
  assert.match(formatScan('bad.eml', r), /^bad\.eml: reject \(554 5\.6\.0 Error: message structure cannot be inspected safely \(MIME_BAD_BOUNDARY\)\)/);
});
