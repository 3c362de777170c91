import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attachments, type AttachmentsCheckResult } from './attachments.js';
import { attachmentsConfigSchema, defaultAttachmentsConfig } from './config.js';
import { rewriteToBuffer } from '../../mime/rewrite.js';
import { walkMessage, type WalkedPart } from '../../mime/walk.js';
import { readBounded, type Inspector } from '../../mime/inspector.js';
import { CheckRunner } from '../../pipeline/runner.js';
import { shippedWeights } from '../../pipeline/weights.js';
import { refusal, testPolicy } from '../test-support.js';
import { parseHeaderBlock } from '../../protocol/headers.js';
import { silentLogger } from '../../log.js';
import type { StageInput } from '../types.js';
import { b64part, chunked, compose, fakePe, multipart, tinyPdf, tinyPng } from '../../../test/mime/fixtures.js';
import { messageModel } from '../../mime/model.js';
import { attachmentsWalk } from './analyse.js';

/** The data-stage input, its message model walking as the gateway's does (attachmentsWalk: limits and inspectors). */
function input(msg: Buffer, walk = attachmentsWalk(defaultAttachmentsConfig())): StageInput['data'] {
  const end = msg.indexOf('\r\n\r\n');
  return {
    conn: {
      sessionId: 's1', listener: 'mx', listenerKind: 'mx', remoteAddress: '192.0.2.1', remotePort: 4000,
      localAddress: '192.0.2.2', localPort: 25, trustedNetwork: false, esmtp: true, helo: 'client.example.org',
    },
    envelope: { sender: 'alice@example.org', recipients: ['bob@example.net'] },
    message: { ...messageModel({ size: msg.length, stream: () => chunked(msg, 4096) }, { maxScanBytes: 1 << 20, walk }), headers: parseHeaderBlock(msg.subarray(0, end + 2)), bareNewlines: 0 },
  };
}

async function parts(msg: Buffer) {
  const list: WalkedPart[] = [];
  const content = new Map<string, Buffer>();
  const keep: Inspector = {
    name: 'keep',
    begin: () => ({ wants: () => true, inspect: async (p, _t, s) => (content.set(p.path, (await readBounded(s, 1 << 20)).buffer), {}) }),
  };
  await walkMessage(chunked(msg), { inspectors: [keep], onPart: (p) => void list.push(p) });
  return { list, content };
}

test('issue #4 done-when: .pif/.scr stripped, .exe/.js/.vbs defanged, renamed executable caught, PDF and PNG byte-identical', async () => {
  const pdf = tinyPdf();
  const png = tinyPng();
  const msg = await compose([
    { filename: 'report.pdf', content: pdf, contentType: 'application/pdf' },
    { filename: 'game.pif', content: fakePe() },
    { filename: 'saver.scr', content: fakePe() },
    { filename: 'setup.exe', content: fakePe() },
    { filename: 'hello.js', content: 'WScript.Echo(1)' },
    { filename: 'macro.vbs', content: 'MsgBox 1' },
    { filename: 'photo.jpg', content: fakePe(), contentType: 'image/jpeg' },
    { filename: 'invoice\u202efdp.exe', content: fakePe() },
    { filename: 'Отчёт за март.exe', content: fakePe() },
    { filename: 'logo.png', content: png, contentType: 'image/png' },
  ]);
  const check = attachments(defaultAttachmentsConfig());
  const r = (await check.run(input(msg))) as AttachmentsCheckResult;
  assert.equal(refusal(r), undefined);
  const names = new Set(r.symbols!.map((s) => s.name));
  for (const s of ['ATTACH_EXE_STRIPPED', 'ATTACH_EXE_DEFANGED', 'ATTACH_EXEC_MAGIC', 'ATTACH_TYPE_MISMATCH', 'ATTACH_RTLO']) assert.ok(names.has(s), s);
  const plan = r.rewrite!;
  assert.deepEqual(plan.changes.map((c) => `${c.action} ${c.name}${c.newName ? ` -> ${c.newName}` : ''}`), [
    'strip game.pif',
    'strip saver.scr',
    'defang setup.exe -> setup.exe.txt',
    'defang hello.js -> hello.js.txt',
    'defang macro.vbs -> macro.vbs.txt',
    'strip photo.jpg',
    'strip invoice<U+202E>fdp.exe',
    'defang Отчёт за март.exe -> Отчёт за март.exe.txt',
  ]);
  assert.match(plan.summaryHeader, /^X-Portcullis-Attachments: /);

  const out = await rewriteToBuffer(chunked(msg), plan);
  const before = await parts(msg);
  const after = await parts(out);
  assert.equal(after.list.length, before.list.length);
  for (const name of ['report.pdf', 'logo.png']) {
    const a = before.list.find((p) => p.filename === name)!;
    const b = after.list.find((p) => p.filename === name)!;
    assert.deepEqual(out.subarray(b.range!.start, b.range!.end), msg.subarray(a.range!.start, a.range!.end), `${name} byte-identical`);
  }
  assert.deepEqual(after.content.get('2'), pdf);
  assert.deepEqual(after.content.get('11'), png);
  assert.deepEqual(after.list.map((p) => p.filename), [
    undefined, 'report.pdf', undefined, undefined, 'setup.exe.txt', 'hello.js.txt', 'macro.vbs.txt', undefined, undefined, 'Отчёт за март.exe.txt', 'logo.png',
  ]);
  assert.match(after.content.get('3')!.toString(), /File: "game.pif"\r\nReason: program information file/);
  assert.match(after.content.get('8')!.toString(), /Windows PE executable disguised as "photo.jpg"/);
  // Analysed again, the rewritten message needs nothing more: the rewrite is complete.
  const again = (await check.run(input(out))) as AttachmentsCheckResult;
  assert.equal(again.rewrite, undefined);
});

test('a clean message: no symbols, no plan, nothing to rewrite', async () => {
  const msg = await compose([{ filename: 'a.pdf', content: tinyPdf(), contentType: 'application/pdf' }, { filename: 'b.png', content: tinyPng() }]);
  const r = (await attachments(defaultAttachmentsConfig()).run(input(msg))) as AttachmentsCheckResult;
  assert.deepEqual(r, { symbols: [] });
});

test('a message the walk cannot see whole is refused by default, or scored when the operator accepts', async () => {
  let body = 'Content-Type: application/octet-stream; name="x.exe"\r\n\r\nMZ';
  for (let i = 0; i < 120; i++) body = `Content-Type: multipart/mixed; boundary="d${i}"\r\n\r\n--d${i}\r\n${body}\r\n--d${i}--`;
  const deep = Buffer.from(`From: a@example.org\r\nSubject: deep\r\n${body}\r\n`);
  const r = await attachments(defaultAttachmentsConfig()).run(input(deep));
  assert.equal(refusal(r)?.kind, 'reject');
  assert.equal(refusal(r)?.reply.code, 554);
  assert.equal(refusal(r)?.reply.enhanced, '5.6.0');
  assert.match(refusal(r)!.reply.text, /MIME_TOO_DEEP/);
  // What used to be attachments.on_unscannable is MIME_UNSCANNABLE's action.
  const tempfail = refusal(r, { actions: { MIME_UNSCANNABLE: 'tempfail' } });
  assert.equal(tempfail?.reply.code, 451);
  assert.match(tempfail!.reply.text, /could not be inspected \(MIME_TOO_DEEP\), try again later/);
  assert.equal(refusal(r, { actions: { MIME_UNSCANNABLE: 'score' } }), undefined);
  assert.ok(r.symbols!.some((s) => s.name === 'MIME_TOO_DEEP'));
});

test('an attachment type set to reject refuses the message', async () => {
  const msg = await compose([{ filename: 'saver.scr', content: fakePe() }]);
  const r = await attachments(attachmentsConfigSchema.parse({ extension_actions: { scr: 'reject' } })).run(input(msg));
  assert.equal(refusal(r)?.kind, 'reject');
  assert.equal(refusal(r)?.reply.enhanced, '5.7.1');
  assert.match(refusal(r)!.reply.text, /saver\.scr/);
  assert.ok(r.symbols!.some((s) => s.name === 'ATTACH_REJECTED'));
});

test('an encoded attached message holding a program is defanged as a whole', async () => {
  const inner = await compose([{ filename: 'tool.exe', content: fakePe() }]);
  const msg = multipart(['Content-Type: text/plain\r\n\r\nfwd', b64part(['Content-Type: message/rfc822; name="fwd.eml"', 'Content-Disposition: attachment; filename="fwd.eml"'], inner)]);
  const r = (await attachments(defaultAttachmentsConfig()).run(input(msg))) as AttachmentsCheckResult;
  assert.deepEqual(r.rewrite!.changes.map((c) => [c.path, c.action, c.newName]), [['2', 'defang', 'fwd.eml.txt']]);
  assert.match(r.rewrite!.changes[0]!.reason, /attached message holds "tool.exe"/);
});

test('inspectors plug in: their symbols, their part actions, their tempfail', async () => {
  const zip = Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(60)]);
  const msg = await compose([{ filename: 'docs.zip', content: zip }, { filename: 'a.pdf', content: tinyPdf() }]);
  const archive: Inspector = {
    name: 'archive',
    begin: () => ({
      wants: (_p, t) => t.category === 'archive',
      inspect: async (_p, _t, content) => {
        content.resume();
        return { symbols: [{ name: 'ARCHIVE_EXE', reason: 'docs.zip/run.exe' }], action: 'strip', reason: 'archive holds run.exe' };
      },
    }),
  };
  const r = (await attachments(defaultAttachmentsConfig()).run(input(msg, attachmentsWalk(defaultAttachmentsConfig(), [archive])))) as AttachmentsCheckResult;
  assert.deepEqual(r.rewrite!.changes.map((c) => [c.name, c.action, c.reason]), [['docs.zip', 'strip', 'archive holds run.exe']]);
  assert.ok(r.symbols!.some((s) => s.name === 'ARCHIVE_EXE'));
  const down: Inspector = { name: 'clamav', begin: () => ({ wants: () => true, inspect: async () => ({ tempfail: 'clamd unreachable' }) }) };
  const t = await attachments(defaultAttachmentsConfig()).run(input(msg, attachmentsWalk(defaultAttachmentsConfig(), [down])));
  assert.equal(refusal(t)?.kind, 'tempfail');
});

test('through the runner: weights from conf/scores.yaml apply; disabled means silent', async () => {
  const msg = await compose([{ filename: 'saver.scr', content: fakePe() }]);
  const runner = new CheckRunner([attachments(defaultAttachmentsConfig())], testPolicy(), silentLogger());
  const outcome = await runner.run('data', input(msg));
  const hit = outcome.symbols.find((s) => s.name === 'ATTACH_EXE_STRIPPED')!;
  assert.equal(hit.score, shippedWeights().get('ATTACH_EXE_STRIPPED'));
  assert.ok(hit.score > 0);
  assert.deepEqual(await attachments(attachmentsConfigSchema.parse({ enabled: false })).run(input(msg)), {});
});
