import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MessageScan } from '../pipeline/message-scanner.js';
import type { Action } from '../pipeline/policy.js';
import { processedMessage, rspamdAction, spamReport, symbolList, verdictFields } from './verdict.js';

function scan(action: Action, extra: Partial<MessageScan> = {}): MessageScan {
  const spam = action !== 'deliver';
  return {
    verdict: 'accept', actions: [], issues: [], complete: true, bytes: 0,
    symbols: [{ name: 'GTUBE', score: 1000, reason: 'GTUBE test string in the message text' }, { name: 'MISSING_DATE', score: 0.5, reason: 'no Date header' }],
    score: 1000.5, required: 5, thresholds: { tag: 5, junk: 6, reject: 15 }, action, spam, ...extra,
  } as MessageScan;
}

test('our actions map to rspamd\'s as docs/integrations.md tables them', () => {
  assert.equal(rspamdAction(scan('deliver'), ''), 'no action');
  assert.equal(rspamdAction(scan('tag'), ''), 'add header');
  assert.equal(rspamdAction(scan('junk'), ''), 'add header');
  assert.equal(rspamdAction(scan('tag'), '[SPAM]'), 'rewrite subject');
  assert.equal(rspamdAction(scan('quarantine'), ''), 'reject');
  assert.equal(rspamdAction(scan('reject'), ''), 'reject');
  const tempfail = scan('deliver', { demand: { kind: 'tempfail', reply: { code: 451, enhanced: '4.7.1', text: 'scanner down' } } });
  assert.equal(rspamdAction(tempfail, ''), 'soft reject');
});

test('the verdict fields have the SMTP path\'s format; X-Spam-Flag only for spam', () => {
  const f = Object.fromEntries(verdictFields(scan('reject')));
  assert.equal(f['X-Spam-Status'], 'Yes, score=1000.5 required=5\r\n\ttests=GTUBE=1000,MISSING_DATE=0.5');
  assert.equal(f['X-Spam-Flag'], 'YES');
  assert.equal(Object.fromEntries(verdictFields(scan('deliver', { spam: false })))['X-Spam-Flag'], undefined);
  assert.equal(symbolList(scan('reject')), 'GTUBE,MISSING_DATE');
  assert.match(spamReport(scan('reject'), 'mx.example.test'), /\(1000\.5 points, 5\.0 required\)\r\n[\s\S]*\r\n1000\.0 GTUBE {18}GTUBE test string/);
});

test('PROCESS output: ours on top, forged verdict fields out, Subject tagged, LF input gets LF back with the body byte for byte', () => {
  const body = 'line one\nline two\r\nmixed\n';
  const original = Buffer.from(`From: a@example.org\nX-Spam-Flag: YES\nSubject: hello\n\n${body}`);
  const m = processedMessage(original, scan('tag'), 'mx.example.test', '[SPAM]');
  const headers = m.headers.toString('latin1');
  assert.equal(m.body.toString('latin1'), body);
  assert.ok(!headers.includes('\r'), headers);
  assert.match(headers, /^X-Spam-Status: Yes, score=1000\.5 required=5\n\ttests=GTUBE=1000,MISSING_DATE=0\.5\nX-Spam-Score: 1000\.5\nX-Spam-Flag: YES\nFrom: a@example\.org\nSubject: \[SPAM\] hello\n\n$/);
  const crlf = processedMessage(Buffer.from('Subject: x\r\n\r\nbody\r\n'), scan('deliver', { spam: false }), 'mx.example.test', '[SPAM]');
  assert.equal(crlf.headers.toString('latin1'), 'X-Spam-Status: No, score=1000.5 required=5\r\n\ttests=GTUBE=1000,MISSING_DATE=0.5\r\nX-Spam-Score: 1000.5\r\nSubject: x\r\n\r\n');
  assert.equal(crlf.body.toString('latin1'), 'body\r\n');
});
