// Role addresses reach roles.mailbox; when that mailbox is an alias, the people behind it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from '../helpers/gateway.js';
import { SmtpClient, dataBlock } from '../helpers/smtp-client.js';
import { makeMessage, marker } from '../helpers/messages.js';

test('role mail follows roles.mailbox through its alias', { timeout: 60_000 }, async (t) => {
  const gw = await startGateway({
    users: { 'alice@example.test': 'Wonderland-pw-123' },
    aliases: { 'postmaster@example.test': ['alice@example.test'] },
  });
  t.after(() => gw.cleanup());
  const id = marker('role');
  const c = await SmtpClient.connect(gw.ports.mx);
  await c.cmd('EHLO client.example.net');
  await c.cmd('MAIL FROM:<a@example.net>');
  assert.equal((await c.cmd('RCPT TO:<abuse@second.test>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  c.write(dataBlock(makeMessage({ from: 'a@example.net', to: 'abuse@second.test', subject: id })));
  assert.equal((await c.readReply()).code, 250);
  await c.cmd('QUIT');
  const got = await gw.waitForMail('alice@example.test', id);
  assert.ok(got.includes(id));
  assert.deepEqual(gw.readMailbox('postmaster@example.test'), [], 'the alias target receives it, not a stray Maildir');
});
