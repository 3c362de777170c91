// The delivery status notification: per-recipient status, the remote server's answer as
// Diagnostic-Code with Remote-MTA (direct delivery), and our own reasons as x-portcullis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDsn, headerSection } from './dsn.js';

test('a DSN names the remote MTA and its reply, or our own reason', () => {
  const dsn = buildDsn({
    hostname: 'gw.ours.test', id: 'Q1', sender: 'alice@ours.test', arrived: new Date('2026-12-07T10:00:00Z'), now: new Date('2026-12-07T10:05:00Z'),
    failed: [
      { address: 'bob@remote.test', reply: 'host mx1.remote.test[192.0.2.7]:25 said: 550 5.1.1 <bob@remote.test>: no such user (in reply to RCPT TO)' },
      { address: 'carol@nomail.test', reply: '5.1.10 nomail.test accepts no mail: it publishes a null MX (RFC 7505)' },
      { address: 'dave@relay.test', reply: '554 5.7.1 refused' },
    ],
    originalHeaders: headerSection(Buffer.from('Subject: hello\r\nFrom: alice@ours.test\r\n\r\nbody\r\n')),
  }).toString();
  const status = dsn.slice(dsn.indexOf('Content-Type: message/delivery-status'));
  assert.match(status, /Final-Recipient: rfc822; bob@remote\.test\r\nAction: failed\r\nStatus: 5\.1\.1\r\nRemote-MTA: dns; mx1\.remote\.test\r\nDiagnostic-Code: smtp; 550 5\.1\.1 <bob@remote\.test>: no such user\r\n/);
  assert.match(status, /Final-Recipient: rfc822; carol@nomail\.test\r\nAction: failed\r\nStatus: 5\.1\.10\r\nDiagnostic-Code: x-portcullis; 5\.1\.10 nomail\.test accepts no mail/);
  assert.match(status, /Final-Recipient: rfc822; dave@relay\.test\r\nAction: failed\r\nStatus: 5\.7\.1\r\nDiagnostic-Code: smtp; 554 5\.7\.1 refused/);
  assert.doesNotMatch(status.split('dave@relay.test')[1]!.split('--')[0]!, /Remote-MTA/);
  assert.match(dsn, /^To: <alice@ours\.test>\r$/m);
  assert.match(dsn, /Content-Type: text\/rfc822-headers\r\n\r\nSubject: hello\r\nFrom: alice@ours\.test\r\n/);
});
