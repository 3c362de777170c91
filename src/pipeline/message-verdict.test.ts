// The end-of-message answer both the SMTP session and the milter give: refused only when every
// recipient refuses, in the block list's words when that is why; the allow lists' sender facts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHeaderBlock } from '../protocol/headers.js';
import { decide, type RecipientPolicy } from './policy.js';
import { contentRefusal, messageRefusal, senderFacts } from './message-verdict.js';

const site = { tag: 5, junk: 8, reject: 15 };
const symbols = [{ name: 'GTUBE', score: 1000, reason: 'GTUBE' }, { name: 'MISSING_DATE', score: 1, reason: '' }, { name: 'HAM_HINT', score: -1, reason: '' }];

test('one recipient accepting is enough: no refusal; all refusing: the content refusal naming the top symbols', () => {
  const accepting: RecipientPolicy[] = [{ exempt: false }, { exempt: true }];
  assert.equal(messageRefusal(decide(symbols, accepting, site, false), accepting, symbols), undefined);
  const all: RecipientPolicy[] = [{ exempt: false }, { exempt: false }];
  const r = messageRefusal(decide(symbols, all, site, false), all, symbols)!;
  assert.deepEqual([r.code, r.enhanced], [554, '5.7.1']);
  assert.equal(r.text, 'Error: message refused by content policy (score 1000: GTUBE, MISSING_DATE, HAM_HINT)');
  assert.deepEqual(contentRefusal(1000, symbols), r);
});

test('every recipient blocking the sender: refused in the block list\'s words, even for a clean message', () => {
  const blocked: RecipientPolicy[] = [{ exempt: false, list: 'block' }];
  const r = messageRefusal(decide([], blocked, site, false), blocked, [])!;
  assert.deepEqual([r.code, r.enhanced, r.text], [550, '5.7.1', 'Error: message refused: the recipient does not accept mail from this sender']);
});

test('observe mode never refuses', () => {
  const all: RecipientPolicy[] = [{ exempt: false }];
  assert.equal(messageRefusal(decide(symbols, all, site, true), all, symbols), undefined);
});

test('senderFacts: From addresses from the header, authenticated only as SPF and DMARC proved', () => {
  const headers = parseHeaderBlock(Buffer.from('From: Alice <alice@example.org>\r\nSubject: x\r\n\r\n'));
  assert.deepEqual(senderFacts('bounce@example.org', headers, { spf: { result: 'pass', domain: 'example.org' } }), {
    envelope: 'bounce@example.org', from: ['alice@example.org'], envelopeAuthenticated: true, fromAuthenticated: false,
  });
});
