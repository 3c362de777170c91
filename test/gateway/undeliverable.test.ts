// No backscatter: a message that proves undeliverable after "250" is recorded in data/failed/
// and logged; a failure report goes only to a sender who logged in, into its own mailbox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway } from '../helpers/gateway.js';
import { Sink } from '../helpers/sink.js';
import { mailer } from '../helpers/clients.js';
import { marker, makeMessage } from '../helpers/messages.js';
import { waitFor } from '../helpers/wait.js';

test('undeliverable mail is recorded, never bounced to an unauthenticated sender; a logged-in sender gets a report', { timeout: 90_000 }, async (t) => {
  const sink = await Sink.start({ reject: { 'gone@downstream.test': 550, 'gone@far.example': 550 } });
  t.after(() => sink.close());
  const gw = await startGateway({
    users: { 'alice@example.test': 'Wonderland-pw-123', 'victim@example.test': 'Innocent-pw-456' },
    config: {
      relay: {
        domains: [{ domain: 'downstream.test' }],
        routes: [
          { domain: 'downstream.test', host: '127.0.0.1', port: sink.port, protocol: 'smtp', tls: 'none' },
          { domain: '*', host: '127.0.0.1', port: sink.port, protocol: 'smtp', tls: 'none' },
        ],
      },
    },
  });
  t.after(() => gw.cleanup());

  // 1. Inbound from the internet, claiming to be from a local user: accepted (downstream.test is ours
  //    to relay), then refused downstream with 550. The forged sender must get nothing.
  const inbound = marker('in');
  await mailer({ port: gw.ports.mx, ignoreTLS: true }).sendMail({
    envelope: { from: 'victim@example.test', to: ['gone@downstream.test'] },
    raw: makeMessage({ from: 'victim@example.test', to: 'gone@downstream.test', subject: inbound, body: inbound }),
  });
  // 2. Submission by a logged-in user to an address that fails: the user is told.
  const outbound = marker('out');
  await mailer({ port: gw.ports.submission, requireTLS: true, auth: { user: 'alice@example.test', pass: 'Wonderland-pw-123' } }).sendMail({
    envelope: { from: 'alice@example.test', to: ['gone@far.example'] },
    raw: makeMessage({ from: 'alice@example.test', to: 'gone@far.example', subject: outbound, body: outbound }),
  });

  const failedDir = path.join(gw.dataDir, 'failed');
  await waitFor('two undeliverable records in data/failed', () => fs.existsSync(failedDir) && fs.readdirSync(failedDir).filter((f) => f.endsWith('.json')).length === 2, { timeoutMs: 30_000 });
  const records = fs.readdirSync(failedDir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(fs.readFileSync(path.join(failedDir, f), 'utf8')));
  const byRcpt = new Map(records.map((r) => [r.failed[0].address, r]));
  assert.match(byRcpt.get('gone@downstream.test').failed[0].reply, /550/);
  assert.equal(byRcpt.get('gone@downstream.test').sender, 'victim@example.test');
  const eml = fs.readFileSync(path.join(failedDir, `${byRcpt.get('gone@downstream.test').id}.eml`), 'utf8');
  assert.ok(eml.includes(inbound), 'the undeliverable message itself is kept');

  // The report reaches alice's INBOX, naming the failed recipient and the downstream reply.
  const report = await gw.waitForMail('alice@example.test', outbound, 20_000);
  const text = report.toString();
  assert.match(text, /^From: Mail Delivery System <MAILER-DAEMON@/m);
  assert.match(text, /Content-Type: multipart\/report; report-type=delivery-status/);
  assert.match(text, /Final-Recipient: rfc822; gone@far\.example/);
  assert.match(text, /Status: 5\.\d+\.\d+/);

  // Nothing at all in the forged sender's mailbox, and the sink never got a bounce.
  assert.deepEqual(gw.readMailbox('victim@example.test'), []);
  assert.ok(!sink.messages.some((m) => m.mailFrom === '' || m.rcptTo.includes('victim@example.test')), 'no bounce was sent anywhere');
  await waitFor('the undeliverable log line', () => gw.logs.some((l) => l.event === 'undeliverable' && l.to === 'gone@downstream.test'));
  await waitFor('the dsn log line', () => gw.logs.some((l) => l.event === 'dsn' && l.to === 'alice@example.test'));
  assert.ok(!gw.logs.some((l) => l.event === 'dsn' && l.to === 'victim@example.test'));
});
