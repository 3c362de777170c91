import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage } from '../../mime/text.js';
import { tokenize } from './tokenize.js';

const msg = (text: string) => parseMessage(Buffer.from(text.replace(/\n/g, '\r\n'), 'utf8'));

const SAMPLE = `From sender@example.org  Thu Aug 22 13:17:22 2002
Received: from mx.relay.example.net (mx.relay.example.net [192.0.2.77])
\tby mail.example.com (Postfix) with ESMTP id 136B943C32
\tfor <you@example.com>; Thu, 22 Aug 2002 08:17:21 -0400 (EDT)
Received: from helo-name ([198.51.100.9]) by mx.relay.example.net; Thu, 22 Aug 2002 13:09:41 +0100
From: "Customer Service" <offers@deals.shop.example.co.uk>
Reply-To: claims@other.example
To: a@example.com, b@example.com, c@example.com
Subject: FREE money for YOU!!!
Message-ID: <abc123@mailer.bulk.example>
X-Mailer: Microsoft Outlook Express 6.00.2600.0000
Date: Wed, 21 Aug 2002 20:31:57 -1600
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=us-ascii

Click here now to claim your FREE prize worth $1,000,000 today
supercalifragilisticexpialidocious 42 claim claim claim
Write to winner@prizes.example.com or see http://www.win.example.com/claim/now.php?id=7
--b1
Content-Type: text/html; charset=iso-8859-1

<html><body><font color="red"><b>Click</b></font> <a href="http://paypal.com@203.0.113.5:8080/login/verify">here</a>
<img src="http://img.example.net/x.gif"><span style="display:none">hidden salad words here</span>
<table><tr><td>prize</td></tr></table></body></html>
--b1--
`;

test('header tokens are prefixed by where they came from; relays are names and address prefixes, never times', () => {
  const t = new Set(tokenize(msg(SAMPLE)));
  for (const want of [
    'subject:free', 'subject:FREE', 'subject:money', 'subject:you', 'subject:punct-run',
    'from:addr:offers@deals.shop.example.co.uk', 'from:domain:example.co.uk', 'from:host:deals.shop.example.co.uk',
    'from:name:customer', 'from:name:service', 'reply-to:host:other.example', 'reply-to:other-domain',
    'to:count:3-4', 'cc:count:0',
    'received:host:mx.relay.example.net', 'received:domain:example.net', 'received:ip:192.0.2', 'received:ip:192.0',
    'received:host:helo-name', 'received:host-no-dot', 'received:ip:198.51.100',
    'message-id:domain:bulk.example', 'message-id:host:mailer.bulk.example',
    'x-mailer:microsoft outlook express 6', 'x-mailer:outlook',
    'date:bad-zone', 'ct:multipart/alternative', 'part:charset:iso-8859-1', 'header:x-mailer',
  ]) assert.ok(t.has(want), `missing ${want}`);
  // The "by" side (ours) and the timestamps are not tokens.
  assert.ok(![...t].some((x) => /example\.com \(postfix\)|aug|2002|08:17/i.test(x) && x.startsWith('received')), [...t].filter((x) => x.startsWith('received')).join(' '));
  assert.ok(!t.has('received:host:mail.example.com'));
  // The mbox envelope line is not a header.
  assert.ok(!t.has('header:from sender@example.org  thu aug 22 13'));
});

test('body words: case-folded, all-caps kept too, numbers bucketed, long words become skip tokens', () => {
  const t = new Set(tokenize(msg(SAMPLE)));
  for (const want of ['click', 'here', 'claim', 'prize', 'FREE', 'free', 'money:7+', 'num:2', 'skip:s 30', 'email:prizes.example.com', 'email:example.com'])
    assert.ok(t.has(want), `missing ${want}`);
  assert.ok(!t.has('supercalifragilisticexpialidocious'));
  assert.ok(!t.has('Click'), 'mixed case is only folded');
  assert.ok(!t.has('to'), 'words under 3 characters are dropped');
  // Deduplicated: "claim" three times in the body is one token.
  const list = tokenize(msg(SAMPLE));
  assert.equal(list.length, new Set(list).size);
  assert.equal(list.filter((x) => x === 'claim').length, 1);
});

test('URL tokens: host, registrable domain, path pieces, userinfo and port disguises; HTML facts', () => {
  const t = new Set(tokenize(msg(SAMPLE)));
  for (const want of [
    'url:host:www.win.example.com', 'url:domain:example.com', 'url:path:claim', 'url:path:now', 'url:path:php', 'url:query',
    'url:userinfo', 'url:port', 'url:ip:203.0.113', 'url:path:login', 'url:path:verify', 'url:host:img.example.net',
    'html:invisible:20-199', 'mime:text:1:html:1:attach:0',
  ]) assert.ok(t.has(want), `missing ${want}\n${[...t].filter((x) => x.startsWith('url') || x.startsWith('html') || x.startsWith('mime')).join(' ')}`);
  assert.ok([...t].some((x) => /^html:tags:.*font/.test(x) && x.includes('table')), 'one summary token of the notable tags');
  assert.equal([...t].filter((x) => x.startsWith('html:tags:')).length, 1);
  // Images and text as one fact, the part types only in the outline: correlated tokens would
  // count "this is HTML" several times over.
  assert.equal([...t].filter((x) => /^html:images:1:text:/.test(x)).length, 1, [...t].filter((x) => x.startsWith('html:')).join(' '));
  assert.equal([...t].filter((x) => x.startsWith('html:text:') || x.startsWith('part:text/')).length, 0);
});

test('attachments give type, extension and name tokens', () => {
  const m = msg(`From: a@example.org
Subject: invoice
Content-Type: multipart/mixed; boundary=x

--x
Content-Type: text/plain

see attached
--x
Content-Type: application/zip; name="Invoice_2024.zip"
Content-Disposition: attachment; filename="Invoice_2024.zip"
Content-Transfer-Encoding: base64

UEsDBAo=
--x--
`);
  const t = new Set(tokenize(m));
  for (const want of ['attach:type:application/zip', 'attach:ext:zip', 'attach:name:invoice_2024', 'mime:text:1:html:0:attach:1'])
    assert.ok(t.has(want), `missing ${want}: ${[...t].filter((x) => x.startsWith('attach') || x.startsWith('mime')).join(' ')}`);
});

test('our own added fields are ignored; our Received field stands for the SMTP client', () => {
  const body = 'Subject: hello\nFrom: x@example.org\n\nhello there friend\n';
  const atSmtp = tokenize(msg(body), { client: { ip: '203.0.113.9', helo: 'client.example.net' } });
  const stored = tokenize(msg(
    'Received: from client.example.net (unknown [203.0.113.9])\n\tby gw.example.com (Portcullis) with ESMTPS id 1A2B\n\tfor <u@example.com>; Sat, 28 Nov 2026 19:00:00 +0000\n' +
    'Authentication-Results: gw.example.com; spf=pass smtp.mailfrom=x@example.org\nX-Spam-Status: Yes, score=9 required=5\n\ttests=BAYES_99=3.5\nX-Spam-Score: 9\nX-Spam-Flag: YES\n' + body));
  assert.deepEqual([...stored].sort(), [...atSmtp].sort());
  assert.ok(atSmtp.includes('received:host:client.example.net') && atSmtp.includes('received:ip:203.0.113'));
});

test('bounded on a hostile 20 MB single-line body: capped tokens, well under a second', () => {
  // 20 MB of distinct random 7-letter words on one line.
  const line = Buffer.alloc(20 * 1024 * 1024);
  let seed = 12345;
  for (let i = 0; i < line.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    line[i] = i % 8 === 7 ? 0x20 : 0x61 + (seed >>> 16) % 26;
  }
  const raw = Buffer.concat([Buffer.from('From: a@example.org\r\nSubject: big\r\n\r\n'), line]);
  assert.ok(raw.length > 20 * 1024 * 1024);
  // The gateway's path: the parser's own cap, then the tokenizer.
  let t0 = performance.now();
  const capped = tokenize(parseMessage(raw));
  assert.ok(capped.length <= 3000 && performance.now() - t0 < 3000, `${capped.length} tokens in ${performance.now() - t0} ms`);
  // The tokenizer's own bounds, on 20 MB of text handed to it uncapped.
  const huge = line.toString('latin1');
  const parsed = { ...parseMessage(Buffer.from('From: a@example.org\r\nSubject: big\r\n\r\nx\r\n')), bodyText: `big\n${huge}`, parts: [{ type: 'text/plain', charset: '', raw: huge, text: huge }] };
  t0 = performance.now();
  const tokens = tokenize(parsed);
  const ms = performance.now() - t0;
  assert.ok(tokens.length <= 3000, `${tokens.length} tokens`);
  assert.ok(ms < 1000, `${ms} ms`);
  // One 20 MB "word": a single skip token, no huge strings in the output.
  const blob = 'a'.repeat(20 * 1024 * 1024);
  const one = tokenize({ ...parsed, bodyText: `x\n${blob}`, parts: [{ type: 'text/plain', charset: '', raw: blob, text: blob }] });
  assert.ok(one.includes('skip:a 200000'), one.filter((x) => x.startsWith('skip')).join(' '));
  assert.ok(one.every((x) => x.length < 200));
  // A tighter cap is honoured.
  assert.ok(tokenize(parsed, { maxTokens: 50 }).length <= 50);
});

test('what the receiving side adds gives no token: upstream verdicts, other hosts\' results, list fields', () => {
  const plain = SAMPLE.replace(/^From sender[^\n]*\n/, '');
  const added = [
    'X-Spam-Status: Yes, score=9.1 required=5.0', 'X-Spam-Flag: YES', 'X-Virus-Scanned: amavisd-new', 'X-CRM114-Status: GOOD',
    'Authentication-Results: mx.collector.example; spf=pass', 'ARC-Seal: i=1; a=rsa-sha256; cv=none; d=collector.example',
    'List-Id: Some list <some.lists.example>', 'List-Unsubscribe: <mailto:leave@lists.example>', 'List-Post: <mailto:some@lists.example>', 'Precedence: list',
    'X-Mailman-Version: 2.1.29', 'X-BeenThere: some@lists.example', 'Delivered-To: lists+some@collector.example',
    'X-Microsoft-Antispam: BCL:0;', 'X-Portcullis-Score: 3.2',
  ].join('\n');
  const withAdded = plain.replace(/^Received:/, `${added}\nReceived:`);
  const a = tokenize(msg(plain)).sort();
  const b = tokenize(msg(withAdded)).sort();
  assert.deepEqual(b, a, `tokens that only the added fields gave: ${b.filter((t) => !a.includes(t)).join(' ')}`);
  // The sender's own bulk markers still count: Precedence: bulk, an unsubscribe link without a
  // discussion list's List-Post.
  const bulk = tokenize(msg(plain.replace(/^Subject:/m, 'List-Unsubscribe: <https://news.shop.example/u?x=1>\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\nSubject:')));
  assert.ok(bulk.includes('bulk:unsubscribe') && bulk.includes('bulk:one-click'), bulk.filter((x) => x.startsWith('bulk')).join(' '));
  assert.ok(!tokenize(msg(withAdded.replace(/^Subject:/m, 'List-Post: <mailto:some@lists.example>\nSubject:'))).includes('bulk:unsubscribe'));
  assert.ok(tokenize(msg(plain.replace(/^Subject:/m, 'Precedence: bulk\nSubject:'))).includes('precedence:bulk'));
});

test('mail program family and the multipart skeleton', () => {
  const t = new Set(tokenize(msg(SAMPLE)));
  assert.ok(t.has('mua:outlook'), [...t].filter((x) => x.startsWith('mua:')).join(' '));
  assert.ok(t.has('mime:multipart:alternative'));
  const gmail = SAMPLE.replace(/^X-Mailer:[^\n]*\n/m, '').replace(/^Message-ID:[^\n]*/m, 'Message-ID: <CAF+x=1@mail.gmail.com>');
  assert.ok(tokenize(msg(gmail)).includes('mua:gmail'));
  const nested = SAMPLE.replace('multipart/alternative; boundary="b1"', 'multipart/mixed; boundary="m0"')
    .replace('\n--b1\n', '\n--m0\nContent-Type: multipart/alternative; boundary="b1"\n\n--b1\n').replace(/--b1--\n$/, '--b1--\n--m0--\n');
  assert.ok(tokenize(msg(nested)).includes('mime:multipart:alternative,mixed'), tokenize(msg(nested)).filter((x) => x.startsWith('mime:')).join(' '));
});
