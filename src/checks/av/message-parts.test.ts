import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { headerParam, readMessageParts } from './message-parts.js';
import { zipOf } from '../../../test/helpers/archive-fixtures.js';

const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');
const b64 = (b: Buffer) => b.toString('base64').replace(/.{76}/g, '$&\n');
const stream = (s: string | Buffer, chunk = 7) => {
  const buf = Buffer.isBuffer(s) ? s : Buffer.from(s, 'latin1');
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) parts.push(buf.subarray(i, i + chunk));
  return Readable.from(parts);
};

const ZIP = zipOf([{ name: 'a.txt', data: Buffer.alloc(3000, 0x61) }]);

function message(parts: string): string {
  return crlf(`From: a@example.org\nTo: b@example.net\nSubject: =?utf-8?B?${Buffer.from('Rechnung – Passwort: 4711').toString('base64')}?=\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="outer"\n\npreamble\n${parts}--outer--\nepilogue\n`);
}

test('texts (quoted-printable, base64 HTML) and a base64 zip attachment', async () => {
  const raw = message(`--outer
Content-Type: multipart/alternative; boundary=alt

--alt
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Mot de passe =E0 utiliser : pw=3D1 and a soft=
 break
--alt
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

${b64(Buffer.from('<p>Password: <b>héllo</b></p>'))}
--alt--
--outer
Content-Type: application/octet-stream; name="doc.zip"
Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.zip
Content-Transfer-Encoding: base64

${b64(ZIP)}
`);
  const p = await readMessageParts(stream(raw));
  assert.equal(p.subject, 'Rechnung – Passwort: 4711');
  assert.deepEqual(p.texts.map((t) => t.type), ['text/plain', 'text/html']);
  assert.equal(p.texts[0]!.text, 'Mot de passe à utiliser : pw=1 and a soft break\r\n');
  assert.equal(p.texts[1]!.text, '<p>Password: <b>héllo</b></p>');
  assert.equal(p.archives.length, 1);
  assert.equal(p.archives[0]!.name, 'résumé.zip');
  assert.ok(p.archives[0]!.data.equals(ZIP));
});

test('an archive is recognised by its bytes whatever its type and name; other binaries are not kept', async () => {
  const raw = message(`--outer
Content-Type: application/pdf; name=scan.pdf
Content-Transfer-Encoding: base64

${b64(ZIP)}
--outer
Content-Type: application/pdf; name=real.pdf
Content-Transfer-Encoding: base64

${b64(Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(40_000, 0x20)]))}
--outer
Content-Type: image/png; name=photo.png
Content-Transfer-Encoding: base64

${b64(ZIP)}
`);
  const p = await readMessageParts(stream(raw, 4096));
  assert.deepEqual(p.archives.map((a) => a.name), ['scan.pdf']);
});

test('a forwarded message (message/rfc822) with a zip inside', async () => {
  const inner = `From: x@example.org\nSubject: fwd\nContent-Type: multipart/mixed; boundary=in\n\n--in\nContent-Type: text/plain\n\npassword: abc\n--in\nContent-Type: application/zip; name=x.zip\nContent-Transfer-Encoding: base64\n\n${b64(ZIP)}\n--in--\n`;
  const raw = message(`--outer\nContent-Type: message/rfc822\n\n${inner}`);
  const p = await readMessageParts(stream(crlf(raw)));
  assert.equal(p.archives.length, 1);
  assert.ok(p.archives[0]!.data.equals(ZIP));
  assert.ok(p.texts.some((t) => t.text.includes('password: abc')));
});

test('bounds: an archive over maxArchiveSize is listed as oversized, not kept', async () => {
  const big = zipOf([{ name: 'r.bin', data: Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 131) % 256)), method: 'store' }]);
  const raw = message(`--outer\nContent-Type: application/zip; name=big.zip\nContent-Transfer-Encoding: base64\n\n${b64(big)}\n`);
  const p = await readMessageParts(stream(raw, 65536), { maxArchiveSize: 100_000 });
  assert.deepEqual(p.archives, []);
  assert.deepEqual(p.oversized, ['big.zip']);
});

test('a single-part message, and broken structure, never throw', async () => {
  const single = await readMessageParts(stream(crlf('Subject: hi\n\nPassword: 99\n')));
  assert.deepEqual(single.texts.map((t) => t.text), ['Password: 99\r\n']);
  const broken = await readMessageParts(stream(crlf('Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: application/zip\nContent-Transfer-Encoding: base64\n\n!!!not base64@@@\n')));
  assert.deepEqual(broken.archives, []);
  const noHeaders = await readMessageParts(stream(''));
  assert.deepEqual(noHeaders.texts, []);
});

test('header parameters: quoted, RFC 2231 continuations', () => {
  assert.equal(headerParam('multipart/mixed; boundary="a b;c"', 'boundary'), 'a b;c');
  assert.equal(headerParam("attachment; filename*0*=utf-8''a%20; filename*1=b.zip", 'filename'), 'a b.zip');
  assert.equal(headerParam('text/plain', 'charset'), undefined);
});
