import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { defangEdit, makePlan, mergePlans, noticeText, rewriteStream, rewriteToBuffer, stripEdit, summaryHeader, writeRewritten, type RewriteEdit } from './rewrite.js';
import { walkMessage, type WalkedPart } from './walk.js';
import { readBounded, type Inspector } from './inspector.js';
import { chunked, compose, fakePe, tinyPdf, tinyPng } from '../../test/mime/fixtures.js';

async function walk(msg: Buffer) {
  const parts: WalkedPart[] = [];
  const content = new Map<string, Buffer>();
  const keep: Inspector = {
    name: 'keep',
    begin: () => ({ wants: () => true, inspect: async (p, _t, s) => (content.set(p.path, (await readBounded(s, 1 << 20)).buffer), {}) }),
  };
  const r = await walkMessage(chunked(msg), { inspectors: [keep], onPart: (p) => void parts.push(p) });
  assert.equal(r.complete, true, JSON.stringify(r.issues));
  return { parts, content, byName: (n: string) => parts.find((p) => p.filename === n)! };
}

/** What the output must be: the original with each range replaced. */
function splice(src: Buffer, edits: readonly RewriteEdit[]): Buffer {
  const out: Buffer[] = [];
  let pos = 0;
  for (const e of edits) {
    out.push(src.subarray(pos, e.start), e.replacement);
    pos = e.end;
  }
  out.push(src.subarray(pos));
  return Buffer.concat(out);
}

test('defang and strip change only their parts; every other byte is copied as it came', async () => {
  const pdf = tinyPdf();
  const png = tinyPng();
  const js = Buffer.from('WScript.Echo("hi");\r\n');
  const msg = await compose([
    { filename: 'report.pdf', content: pdf, contentType: 'application/pdf' },
    { filename: 'a.js', content: js },
    { filename: 'x.scr', content: fakePe() },
    { filename: 'photo.png', content: png, contentType: 'image/png' },
  ]);
  const w = await walk(msg);
  const edits = [
    defangEdit(w.byName('a.js'), 'a.js.txt'),
    stripEdit(w.byName('x.scr'), noticeText('Removed {filename}: {reason}.\n', 'x.scr', 'Windows screen saver')),
  ];
  const plan = makePlan(msg.length, edits, [
    { path: '3', action: 'defang', name: 'a.js', newName: 'a.js.txt', reason: 'JScript script (.js)' },
    { path: '4', action: 'strip', name: 'x.scr', reason: 'Windows screen saver (.scr)' },
  ])!;
  const expected = splice(msg, plan.edits);
  for (const size of [1, 7, 1000, 65536]) {
    assert.deepEqual(await rewriteToBuffer(chunked(msg, size), plan), expected, `chunk ${size}`);
  }
  // The result, walked again: same parts, the PDF and PNG byte-identical, the script renamed, the saver gone.
  const after = await walk(expected);
  assert.deepEqual(after.parts.map((p) => p.path), ['1', '2', '3', '4', '5']);
  for (const name of ['report.pdf', 'photo.png']) {
    const a = w.byName(name).range!;
    const b = after.byName(name).range!;
    assert.deepEqual(expected.subarray(b.start, b.end), msg.subarray(a.start, a.end), `${name} raw bytes`);
  }
  assert.deepEqual(after.content.get('2'), pdf);
  assert.deepEqual(after.content.get('5'), png);
  const defanged = after.parts[2]!;
  assert.deepEqual(defanged.filenames, ['a.js.txt']);
  assert.equal(defanged.contentType, 'application/octet-stream');
  assert.equal(defanged.disposition, 'attachment');
  assert.deepEqual(after.content.get('3'), js, 'defanged content is unchanged');
  const notice = after.parts[3]!;
  assert.equal(notice.contentType, 'text/plain');
  assert.deepEqual(notice.filenames, []);
  assert.equal(after.content.get('4')!.toString(), 'Removed "x.scr": Windows screen saver.\r\n');
  assert.equal(plan.summaryHeader,
    'X-Portcullis-Attachments: defanged "a.js" as "a.js.txt" (JScript script (.js)); stripped "x.scr" (Windows screen saver (.scr))');
});

test('a message that is itself the attachment keeps its other header fields', async () => {
  const msg = Buffer.from('From: a@example.org\r\nTo: b@example.net\r\nSubject: s\r\nContent-Type: application/x-msdownload;\r\n name="tool.exe"\r\n' +
    `Content-Transfer-Encoding: base64\r\n\r\n${fakePe(300).toString('base64')}\r\n`);
  const w = await walk(msg);
  const out = await rewriteToBuffer(chunked(msg), makePlan(msg.length, [defangEdit(w.parts[0]!, 'tool.exe.txt')], [])!);
  assert.match(out.toString(), /^From: a@example.org\r\nTo: b@example.net\r\nSubject: s\r\nContent-Type: application\/octet-stream; name="tool.exe.txt"\r\n/);
  assert.match(out.toString(), /\r\nContent-Disposition: attachment; filename="tool.exe.txt"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVq/);
  const stripped = await rewriteToBuffer(chunked(msg), makePlan(msg.length, [stripEdit(w.parts[0]!, 'gone ✓\n')], [])!);
  const again = await walk(stripped);
  assert.equal(again.parts[0]!.contentType, 'text/plain');
  assert.equal(again.content.get('1')!.toString('utf8'), 'gone ✓\r\n');
  assert.match(stripped.toString(), /^From: a@example.org\r\nTo: b@example.net\r\nSubject: s\r\nContent-Type: text\/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n/);
});

test('non-ASCII names are written as RFC 2231 parameters that read back the same', async () => {
  const msg = await compose([{ filename: 'Счёт\u202eexe.txt', content: 'x' }]);
  const w = await walk(msg);
  const name = 'Счёт за март — очень длинное имя файла, которое не влезает в одну строку.exe.txt';
  const out = await rewriteToBuffer(chunked(msg), makePlan(msg.length, [defangEdit(w.parts[1]!, name)], [])!);
  const again = await walk(out);
  assert.deepEqual(again.parts[1]!.filenames, [name]);
  for (const line of out.toString('latin1').split('\r\n')) assert.ok(line.length <= 998);
});

test('nothing to change means no rewriting at all', async () => {
  const src = Readable.from([Buffer.from('x')]);
  assert.equal(rewriteStream(src, undefined), src);
  assert.equal(makePlan(10, [], []), undefined);
});

test('a source that is not the one analysed is refused, never mangled', async () => {
  const msg = await compose([{ filename: 'a.js', content: 'x' }]);
  const w = await walk(msg);
  const plan = makePlan(msg.length, [defangEdit(w.byName('a.js'), 'a.js.txt')], [])!;
  const changed = Buffer.from(msg);
  changed[w.byName('a.js').range!.start + 5] ^= 0x20;
  await assert.rejects(rewriteToBuffer(chunked(changed, 10), plan), /differs from the one analysed/);
  await assert.rejects(rewriteToBuffer(chunked(Buffer.concat([msg, Buffer.from('more')])), plan), /plan was made for/);
  await assert.rejects(rewriteToBuffer(chunked(msg.subarray(0, msg.length - 10)), plan), /plan was made for/);
});

test('writeRewritten replaces the file only when complete, and leaves nothing behind on failure', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-rewrite-'));
  try {
    const msg = await compose([{ filename: 'a.vbs', content: 'MsgBox 1' }]);
    const dest = path.join(dir, 'q1.eml');
    fs.writeFileSync(dest, msg);
    const w = await walk(msg);
    const plan = makePlan(msg.length, [defangEdit(w.byName('a.vbs'), 'a.vbs.txt')], [])!;
    // Failure: a source that does not match. The destination keeps the original.
    await assert.rejects(writeRewritten(chunked(Buffer.concat([msg, Buffer.from('x')])), plan, dest), /plan was made for/);
    assert.deepEqual(fs.readFileSync(dest), msg);
    assert.deepEqual(fs.readdirSync(dir), ['q1.eml']);
    // Success: read from the destination itself, as the session does with a spilled message.
    const r = await writeRewritten(fs.createReadStream(dest), plan, dest);
    const out = fs.readFileSync(dest);
    assert.equal(r.size, out.length);
    assert.deepEqual(r.headerBlock, out.subarray(0, out.indexOf('\r\n\r\n') + 4));
    assert.match(out.toString(), /filename="a\.vbs\.txt"/);
    assert.deepEqual(fs.readdirSync(dir), ['q1.eml']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('plans merge (a strip covers a defang of the same part); the summary header stays ASCII', () => {
  const e = (start: number, end: number, r: string): RewriteEdit => ({ start, end, replacement: Buffer.from(r), expect: Buffer.alloc(0) });
  const a = makePlan(100, [e(10, 20, 'D')], [{ path: '2', action: 'defang', name: 'a.exe', newName: 'a.exe.txt', reason: 'r' }])!;
  const b = makePlan(100, [e(10, 50, 'S'), e(60, 70, 'T')], [{ path: '2', action: 'strip', name: 'a.exe', reason: 'r2' }])!;
  const m = mergePlans(a, b);
  assert.deepEqual(m.edits.map((x) => x.replacement.toString()), ['S', 'T']);
  assert.deepEqual(m.changes.map((c) => c.action), ['strip']);
  assert.throws(() => mergePlans(a, makePlan(99, [e(1, 2, 'x')], [])!));
  const h = summaryHeader([{ path: '1', action: 'strip', name: 'Счёт.scr', reason: 'screen saver' }]);
  assert.match(h, /^X-Portcullis-Attachments: [\x20-\x7e]+$/);
  assert.match(h, /=\?UTF-8\?Q\?/);
});
