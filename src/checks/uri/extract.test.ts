import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage } from '../../mime/text.js';
import { emailDomains, extractUris, uriStrings, type ExtractedUri } from './extract.js';

function textMsg(body: string) {
  return parseMessage(Buffer.from(`From: a@sender.example.org\r\nSubject: test\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`));
}
function htmlMsg(html: string) {
  return parseMessage(Buffer.from(`From: a@sender.example.org\r\nSubject: test\r\nContent-Type: text/html; charset=utf-8\r\n\r\n${html}\r\n`));
}
const hosts = (l: ExtractedUri[]) => l.map((u) => u.host);
const one = (l: ExtractedUri[], host: string) => {
  const u = l.find((x) => x.host === host);
  assert.ok(u, `${host} not extracted from ${JSON.stringify(l.map((x) => x.url))}`);
  return u;
};

// [text, expected host, expected domain, flag that must be present]
const TEXT_CASES: [string, string, string, string?][] = [
  ['see http://www.Example.COM/path for more', 'www.example.com', 'example.com'],
  ['https://sub.shop.example.co.uk/x?y=1.', 'sub.shop.example.co.uk', 'example.co.uk'],
  ['visit www.spam-site.biz today', 'www.spam-site.biz', 'spam-site.biz', 'schemeless'],
  ['go to cheap-pills.info/buy now', 'cheap-pills.info', 'cheap-pills.info', 'unlinked'],
  ['hxxp://evil-host.com/payload', 'evil-host.com', 'evil-host.com', 'defanged'],
  ['http://evil-host[.]com/payload', 'evil-host.com', 'evil-host.com', 'defanged'],
  ['http://evil-host(.)com/', 'evil-host.com', 'evil-host.com', 'defanged'],
  ['http://%65vil-host.com/', 'evil-host.com', 'evil-host.com', 'percent-host'],
  ['http://&#101;vil-host&#46;com/', 'evil-host.com', 'evil-host.com', 'entity-encoded'],
  ['http://3232235777/', '192.168.1.1', '192.168.1.1', 'encoded-ip'],
  ['http://0xC0A80101/x', '192.168.1.1', '192.168.1.1', 'encoded-ip'],
  ['http://0300.0250.0001.0001/', '192.168.1.1', '192.168.1.1', 'encoded-ip'],
  ['http://0xC0.168.1.1/', '192.168.1.1', '192.168.1.1', 'encoded-ip'],
  ['http://203.0.113.9/login', '203.0.113.9', '203.0.113.9', 'ip'],
  ['http://paypal.com@evil-host.com/login', 'evil-host.com', 'evil-host.com', 'userinfo'],
  ['http://www.paypal.com:secure@203.0.113.7/', '203.0.113.7', '203.0.113.7', 'userinfo'],
  ['http:\\\\evil-host.com\\path', 'evil-host.com', 'evil-host.com', 'backslash'],
  ['http://аpple.com/', 'xn--pple-43d.com', 'xn--pple-43d.com', 'idn'],
  ['http://www。evil-host。com/', 'www.evil-host.com', 'evil-host.com'],
  ['http://evil.blogspot.com/', 'evil.blogspot.com', 'evil.blogspot.com'],
  ['(see http://in-parens.example.net/page)', 'in-parens.example.net', 'example.net'],
  ['http://trailing.example.org/path!!!', 'trailing.example.org', 'example.org'],
  ['ftp.files.example.com/pub', 'ftp.files.example.com', 'example.com', 'schemeless'],
];

test('text: URLs, schemeless forms and each obfuscation', () => {
  for (const [text, host, domain, flag] of TEXT_CASES) {
    const l = extractUris(textMsg(text));
    const u = one(l, host);
    assert.equal(u.domain, domain, text);
    assert.equal(u.source, 'text');
    if (flag) assert.ok(u.flags.includes(flag as never), `${text}: flags ${u.flags.join(',')} lack ${flag}`);
  }
});

test('text: what must not be taken for a host', () => {
  const body = [
    'Please read readme.md and setup.py, then file.txt and report.pdf.',
    'Version 1.2.3 and 10.0.19045 build, pi is 3.14159, at 12.30 today.',
    'It was over.Then we left. New.Live shows. e.g. this, i.e. that.',
    'The parser is Node.js, the file main.rs and archive.zip.',
    'cid:image001.png@01D4986E.E3459640 and mid:foo',
    'javascript:alert(1) data:text/html,hi',
    'no dots here: localhost intranet',
  ].join('\n');
  const l = extractUris(textMsg(body));
  assert.deepEqual(hosts(l), [], JSON.stringify(l.map((u) => u.url)));
});

test('e-mail addresses are kept apart and flagged', () => {
  const l = extractUris(textMsg('Write to Bob.Smith+x@Mail.Corp.example.org or mailto:sales@shop.example.com?subject=hi, not to user@localhost or vi@gra.'));
  const mails = l.filter((u) => u.email);
  assert.deepEqual(mails.map((u) => u.host).sort(), ['mail.corp.example.org', 'shop.example.com']);
  assert.deepEqual(emailDomains(l).sort(), ['example.com', 'example.org']);
  // The address's domain is not also taken as a bare web host.
  assert.equal(l.filter((u) => !u.email).length, 0, JSON.stringify(l));
});

test('html: links, base href, protocol-relative, mailto, scripts skipped', () => {
  const l = extractUris(htmlMsg(`<html><head><base href="http://base.example.com/dir/"></head><body>
    <a href="offer.html">cheap</a>
    <a href="//cdn.example.net/x">cdn</a>
    <img src="http://img.example.org/p.gif">
    <form action="https://collect.example.info/post"></form>
    <td background="http://bg.example.biz/b.jpg">x</td>
    <a href="mailto:info@mailer.example.co.uk">mail</a>
    <a href="javascript:void(0)">js</a>
    <a href="#top">top</a>
  </body></html>`));
  assert.equal(one(l, 'base.example.com').source, 'html');
  assert.ok(l.some((u) => u.url === 'http://base.example.com/dir/offer.html' && u.tag === 'a' && u.linkText === 'cheap'));
  one(l, 'cdn.example.net');
  assert.equal(one(l, 'img.example.org').tag, 'img');
  assert.equal(one(l, 'collect.example.info').tag, 'form');
  assert.equal(one(l, 'bg.example.biz').tag, 'td');
  assert.ok(one(l, 'mailer.example.co.uk').email);
  assert.ok(!l.some((u) => /javascript|#top/.test(u.url)));
});

test('html links come before text URIs, and duplicates are merged', () => {
  const l = extractUris(htmlMsg('<p>Visit http://text-only.example.com/ now</p><a href="http://linked.example.net/">http://linked.example.net/</a>'));
  assert.deepEqual(l.map((u) => [u.host, u.source]), [['linked.example.net', 'html'], ['text-only.example.com', 'text']]);
});

test('redirectors: configured parameter, generic ?url=http…, path form, nested', () => {
  const l = extractUris(textMsg([
    'http://www.google.com/url?sa=t&q=http%3A%2F%2Ftarget-one.example.com%2Fx&usg=1',
    'http://www.google.de/url?q=target-two.example.com/landing',
    'http://tracker.example.org/click?id=5&url=https://target-three.example.net/',
    'http://go.example.org/r/http://target-four.example.info/',
    'http://custom.example.biz/out?dest=target-five.example.com',
  ].join('\n')), { redirectors: [{ host: 'custom.example.biz', path: '/out', param: 'dest' }] });
  for (const h of ['target-one.example.com', 'target-two.example.com', 'target-three.example.net', 'target-four.example.info', 'target-five.example.com']) {
    const u = one(l, h);
    assert.ok(u.flags.includes('redirect-target'), h);
    assert.ok(u.via, h);
  }
  one(l, 'www.google.com');
});

test('bounds: max URIs and text cap; hostile text is fast', () => {
  const many = Array.from({ length: 5000 }, (_, i) => `http://h${i}.example.com/`).join(' ');
  const l = extractUris(textMsg(many), { maxUris: 50 });
  assert.equal(l.length, 50);
  const capped = extractUris(textMsg(`${'x'.repeat(300_000)} http://late.example.com/`));
  assert.ok(!capped.some((u) => u.host === 'late.example.com'), 'text beyond maxTextChars must not be scanned');
  const t0 = Date.now();
  extractUris(textMsg(`${'a.'.repeat(100_000)} ${'a-'.repeat(50_000)} ${'@a.'.repeat(30_000)} ${'http://'.repeat(20_000)}`));
  assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
});

test('uriStrings gives the forms SpamAssassin uri rules see', () => {
  const l = extractUris(textMsg('www.spam-site.biz/a and http://%77%77%77.pct.example.com/ and http://paypal.com@evil-host.com/x and mailto:a@b.example.com'));
  const s = uriStrings(l);
  for (const want of [
    'www.spam-site.biz/a', 'http://www.spam-site.biz/a',
    'http://%77%77%77.pct.example.com/', 'http://www.pct.example.com/',
    'http://paypal.com@evil-host.com/x', 'http://evil-host.com/x',
    'mailto:a@b.example.com',
  ]) assert.ok(s.includes(want), `${want} missing from ${JSON.stringify(s)}`);
  assert.equal(new Set(s).size, s.length);
});
