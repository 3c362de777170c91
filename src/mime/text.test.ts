import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { parseMessage } from './text.js';
import { messageModel } from './model.js';

const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'latin1');

test('header fields are unfolded and encoded-words decoded; raw keeps the encoding', () => {
  const m = parseMessage(crlf('Subject: =?utf-8?B?w4lsw6hndWU=?= offer\nX-Long: a\n  b\nFrom: A <a@example.org>\n\nbody\n'));
  assert.equal(m.subject, 'Élègue offer');
  assert.deepEqual(m.rawHeader('subject'), ['=?utf-8?B?w4lsw6hndWU=?= offer']);
  assert.deepEqual(m.header('X-LONG'), ['a b']);
  assert.deepEqual(m.header('missing'), []);
  assert.equal(m.headerText, 'Subject: =?utf-8?B?w4lsw6hndWU=?= offer\r\nX-Long: a\r\n  b\r\nFrom: A <a@example.org>');
  assert.equal(m.bodyText, 'Élègue offer\nbody');
});

test('multipart/alternative: every part is kept, "body" takes the HTML rendering', () => {
  const m = parseMessage(crlf([
    'Subject: s', 'Content-Type: multipart/alternative; boundary="b1"', '',
    'preamble', '--b1', 'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: quoted-printable', '',
    'Caf=E9 plain', '--b1', 'Content-Type: text/html; charset=utf-8', 'Content-Transfer-Encoding: base64', '',
    Buffer.from('<html><head><style>p{}</style></head><body><p>Caf\u00e9 <b>html</b></p><a href="http://evil.example/x">http://bank.example/</a>' +
      '<span style="display: none">hidden salad words</span><img src="cid:1" alt="pic"></body></html>', 'utf8').toString('base64'),
    '--b1--', 'epilogue', '',
  ].join('\n')));
  assert.deepEqual(m.parts.map((p) => [p.type, p.charset]), [['text/plain', 'iso-8859-1'], ['text/html', 'utf-8']]);
  assert.equal(m.parts[0].text, 'Café plain');
  assert.match(m.parts[1].raw, /<b>html<\/b>/);
  assert.equal(m.bodyText, 's\nCafé html\nhttp://bank.example/ pic');
  assert.match(m.rawBody, /Café plain\n<html>/);
  assert.deepEqual(m.links.map((l) => [l.tag, l.url, l.text]), [['a', 'http://evil.example/x', 'http://bank.example/'], ['img', 'cid:1', '']]);
  assert.equal(m.html.parts, 1);
  assert.equal(m.html.images, 1);
  assert.equal(m.html.invisibleChars, 'hiddensaladwords'.length);
});

test('attachments are listed, not read as text; message/rfc822 is read through', () => {
  const m = parseMessage(crlf([
    'Content-Type: multipart/mixed; boundary=x', '', '--x', 'Content-Type: text/plain', '', 'hello', '--x',
    'Content-Type: application/pdf; name="a.pdf"', 'Content-Transfer-Encoding: base64', '', 'JVBERi0xLjQK', '--x',
    'Content-Type: text/plain; name="notes.txt"', '', 'attached text', '--x', 'Content-Type: message/rfc822', '',
    'Subject: inner', 'Content-Type: text/plain', '', 'inner body', '--x--', '',
  ].join('\n')));
  assert.deepEqual(m.attachments.map((a) => [a.filename, a.contentType, a.size]), [['a.pdf', 'application/pdf', 9], ['notes.txt', 'text/plain', 13]]);
  assert.equal(m.bodyText, '\nhello\ninner body');
});

test('an mbox envelope line is dropped; LF-only messages parse; undeclared 8-bit text is UTF-8 or Windows-1252', () => {
  const m = parseMessage(Buffer.concat([Buffer.from('From a@b  Thu Aug 22 13:17:22 2002\nSubject: x\n\n'), Buffer.from([0x93, 0x71, 0x94])]));
  assert.equal(m.subject, 'x');
  assert.equal(m.parts[0].text, '\u201cq\u201d');
  const u = parseMessage(Buffer.from('Subject: y\n\nna\u00efve\n', 'utf8'));
  assert.equal(u.parts[0].text, 'na\u00efve');
});

test('the scan cap truncates and says so; garbage never throws', () => {
  const big = Buffer.from(`Subject: big\n\n${'word '.repeat(100_000)}`);
  const m = parseMessage(big, { maxBytes: 1000 });
  assert.equal(m.truncated, true);
  assert.equal(m.size, big.length);
  assert.ok(m.full.length <= 1000);
  for (const junk of ['', '\n\n', 'Content-Type: multipart/mixed; boundary=z\n\n--z\n--z\n--z--', 'Content-Type: multipart/x\n\n',
    `Content-Type: multipart/mixed; boundary=a\n\n${'--a\nContent-Type: multipart/mixed; boundary=a\n\n'.repeat(500)}`, '<html>'.repeat(10_000)]) {
    const r = parseMessage(Buffer.from(junk));
    assert.equal(typeof r.bodyText, 'string');
  }
});

test('the model parses once for every check that asks, within the cap its caller gave', async () => {
  let streams = 0;
  const raw = crlf('Subject: once\n\nbody\n');
  const model = messageModel({ size: raw.length, stream: () => (streams++, Readable.from([raw])) }, { maxScanBytes: 1 << 20 });
  const [a, b] = await Promise.all([model.content(), model.content()]);
  assert.equal(a, b);
  assert.equal(streams, 1);
  assert.equal(a.subject, 'once');
  // Another message's model with a small cap: no state shared with the first.
  const big = crlf(`Subject: big\n\n${'word '.repeat(2000)}TAIL\n`);
  const capped = await messageModel({ size: big.length, stream: () => Readable.from([big.subarray(0, 4000), big.subarray(4000)]) }, { maxScanBytes: 3000 }).content();
  assert.equal(capped.truncated, true);
  assert.equal(capped.size, big.length);
  assert.ok(!capped.bodyText.includes('TAIL'));
  assert.ok((await model.content()).bodyText.includes('body'));
});
