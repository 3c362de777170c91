import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseMessage } from '../../mime/text.js';
import { readMessages } from '../../cli/corpus/read.js';
import { extractUris } from './extract.js';
import { uriHeuristics } from './heuristics.js';
import { sharedDir } from '../../../test/helpers/paths.js';

function run(html: string, from = 'news@sender.example.org') {
  const msg = parseMessage(Buffer.from(`From: Sender <${from}>\r\nSubject: t\r\nContent-Type: text/html\r\n\r\n${html}\r\n`));
  return uriHeuristics({ msg, uris: extractUris(msg), exempt: () => false, shorteners: [] }).map((h) => h.name);
}

test('PHISH_LINK_MISMATCH: positive cases', () => {
  assert.ok(run('<a href="http://evil-login.example.net/">https://www.paypal.com/signin</a>').includes('PHISH_LINK_MISMATCH'));
  assert.ok(run('<a href="http://203.0.113.5/x">Log in at www.mybank.com now</a>').includes('PHISH_LINK_MISMATCH'));
  assert.ok(run('<a href="http://evil.example.net/">secure.mybank.com/login</a>').includes('PHISH_LINK_MISMATCH'));
});

test('PHISH_LINK_MISMATCH: negative cases', () => {
  for (const html of [
    '<a href="http://evil.example.net/">click here</a>',
    '<a href="https://www.paypal.com/x">www.paypal.com</a>',
    '<a href="https://login.paypal.co.uk/">www.paypal.com</a>', // same organisation
    '<a href="https://www.google.com/url?q=https://shop.example.com/">shop.example.com</a>', // redirects to the shown domain
    '<a href="http://sender.us1.list-manage.com/track/click?u=1">www.shop.example.com</a>', // ESP tracker
    '<a href="http://evil.example.net/">Version 1.2.3</a>',
    '<a href="http://evil.example.net/">readme.md</a>',
    '<a href="http://www.lindows.example.com/">Walmart.com</a>', // a brand named, not an address shown
  ]) assert.ok(!run(html).includes('PHISH_LINK_MISMATCH'), html);
});

test('IP, obfuscated IP, user-info, look-alike, shortener, form, script and data links', () => {
  assert.ok(run('<a href="http://203.0.113.9/login">x</a>').includes('URI_NUMERIC_IP'));
  assert.ok(!run('<a href="http://192.168.1.1/">router</a>').includes('URI_NUMERIC_IP'));
  assert.ok(run('<a href="http://3405803785/">x</a>').includes('URI_OBFUSCATED_IP'));
  assert.ok(!run('<a href="http://203.0.113.9/">x</a>').includes('URI_OBFUSCATED_IP'));
  assert.ok(run('<a href="http://www.paypal.com@evil.example.net/">x</a>').includes('URI_USERINFO_TRICK'));
  assert.ok(!run('<a href="http://www.paypal.com/">x</a>').includes('URI_USERINFO_TRICK'));
  assert.ok(run('<a href="http://xn--pple-43d.com/">x</a>').includes('URI_IDN_LOOKALIKE'));
  assert.ok(!run('<a href="http://xn--mnchen-3ya.de/">x</a>').includes('URI_IDN_LOOKALIKE'));
  assert.ok(run('<a href="https://bit.ly/3abc">x</a>').includes('URI_SHORTENER'));
  assert.ok(run('<form action="http://collect.evil.example.net/p"><input type="password" name="p"></form>').includes('HTML_FORM_FOREIGN'));
  assert.ok(run('<form action="http://collect.evil.example.net/p"><input name="cardnumber"></form>').includes('HTML_FORM_FOREIGN'));
  assert.ok(!run('<form action="http://search.example.net/q"><input name="q"></form>').includes('HTML_FORM_FOREIGN'));
  assert.ok(!run('<form action="https://www.sender.example.org/p"><input type="password"></form>').includes('HTML_FORM_FOREIGN'));
  assert.ok(run('<a href="java&#9;script:alert(1)">x</a>').includes('URI_JAVASCRIPT_LINK'));
  assert.ok(run('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>').includes('URI_DATA_LINK'));
  assert.ok(!run('<img src="data:image/png;base64,iVBORw0KGgo=">').includes('URI_DATA_LINK'));
  assert.deepEqual(run('<p>Plain newsletter, <a href="https://www.sender.example.org/a">read more</a></p>'), []);
});

test('exempt hosts never count', () => {
  const msg = parseMessage(Buffer.from('Subject: t\r\nContent-Type: text/html\r\n\r\n<a href="http://203.0.113.9/">www.bank.example.com</a>\r\n'));
  const hits = uriHeuristics({ msg, uris: extractUris(msg), exempt: (i) => i.host === '203.0.113.9', shorteners: [] });
  assert.deepEqual(hits, []);
});

// False hits on real ham: the mismatch heuristic is the one that can misfire on newsletters.
test('heuristics on the SpamAssassin ham and spam corpus (false hits counted)', async (t) => {
  const tarball = path.join(sharedDir, 'corpus', 'sa2002-dev.tar.gz');
  if (!fs.existsSync(tarball)) return t.skip(`${tarball} missing`);
  const counts = { ham: 0, spam: 0 } as Record<string, number>;
  const hits: Record<string, Record<string, number>> = { ham: {}, spam: {} };
  const examples: string[] = [];
  for await (const m of readMessages(tarball)) {
    const kind = m.name.includes('/ham/') || m.name.includes('ham/') ? 'ham' : m.name.includes('spam/') ? 'spam' : undefined;
    if (!kind) continue;
    counts[kind]!++;
    const msg = parseMessage(m.raw);
    for (const h of uriHeuristics({ msg, uris: extractUris(msg), exempt: () => false, shorteners: [] })) {
      hits[kind]![h.name] = (hits[kind]![h.name] ?? 0) + 1;
      if (kind === 'ham' && h.name === 'PHISH_LINK_MISMATCH' && examples.length < 10) examples.push(`${m.name}: ${h.reason}`);
    }
  }
  t.diagnostic(`messages ${JSON.stringify(counts)}; ham hits ${JSON.stringify(hits.ham)}; spam hits ${JSON.stringify(hits.spam)}`);
  t.diagnostic(`ham mismatch examples: ${examples.join(' | ')}`);
  assert.equal(counts.ham, 2750);
  assert.equal(counts.spam, 500);
  // At most 1 % of ham may show a link mismatch (measured: see docs/uribl.md).
  assert.ok((hits.ham!.PHISH_LINK_MISMATCH ?? 0) <= 27, JSON.stringify(hits.ham));
});
