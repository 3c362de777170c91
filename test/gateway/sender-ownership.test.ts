// A logged-in user may write only as itself or an alias of its own, in MAIL FROM and in From:.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from '../helpers/gateway.js';
import { mailer } from '../helpers/clients.js';
import { makeMessage, marker } from '../helpers/messages.js';

test('From: must belong to the authenticated user', { timeout: 60_000 }, async (t) => {
  const gw = await startGateway({
    users: { 'alice@example.test': 'Wonderland-pw-123', 'bob@example.test': 'Builder-pw-45678' },
    aliases: { 'sales@example.test': ['alice@example.test'] },
  });
  t.after(() => gw.cleanup());
  const alice = mailer({ port: gw.ports.submission, requireTLS: true, auth: { user: 'alice@example.test', pass: 'Wonderland-pw-123' } });
  const send = (from: string, headerFrom: string, subject: string) =>
    alice.sendMail({ envelope: { from, to: ['bob@example.test'] }, raw: makeMessage({ from: headerFrom, to: 'bob@example.test', subject }) });

  const own = marker('own');
  await send('alice@example.test', 'alice@example.test', own);
  const alias = marker('alias');
  await send('sales@example.test', 'sales@example.test', alias);
  await gw.waitForMail('bob@example.test', own);
  await gw.waitForMail('bob@example.test', alias);

  const forged = marker('forged');
  await assert.rejects(send('alice@example.test', 'bob@example.test', forged), (err: { responseCode?: number; response?: string }) => {
    assert.equal(err.responseCode, 553);
    assert.match(err.response ?? '', /5\.7\.1 <bob@example\.test>: From: header address not owned by user alice@example\.test/);
    return true;
  });
  await assert.rejects(send('bob@example.test', 'alice@example.test', marker('env')), (err: { responseCode?: number }) => err.responseCode === 553);
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(!gw.readMailbox('bob@example.test').some((m) => m.content.includes(forged)), 'the forged message was not delivered');
});
