// The whole small mail system from `portcullis serve`: a message delivered over SMTP is read
// back byte-identical over IMAP (imapflow, STARTTLS) and POP3 (curl, STLS); clear-text logins
// are refused on both; a user moving mail into and out of Junk teaches Bayes through the same
// learning API as `portcullis train`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { mailer } from '../helpers/clients.js';
import { waitFor } from '../helpers/wait.js';

const ALICE = USERS.alice;

function imap(gw: Gateway, doSTARTTLS = true): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1', port: gw.ports.imap, secure: false, doSTARTTLS, tls: { rejectUnauthorized: false },
    auth: { user: ALICE.address, pass: ALICE.password }, logger: false,
  });
}

describe('mailbox access on the running gateway', { timeout: 180_000 }, () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({ users: userMap('alice') });
  });
  after(async () => {
    await gw?.cleanup();
  });

  it('SMTP in, IMAP and POP3 out, byte for byte; no clear-text login anywhere', async () => {
    const mark = marker('mbx');
    const transport = mailer({ port: gw.ports.mx, ignoreTLS: true });
    try {
      await transport.sendMail({ envelope: { from: 'a@sender.example', to: [ALICE.address] }, raw: makeMessage({ from: 'a@sender.example', to: ALICE.address, subject: mark, body: `Body ${mark}` }) });
    } finally {
      transport.close();
    }
    const stored = await gw.waitForMail(ALICE.address, mark);

    // IMAP without STARTTLS: the server says LOGINDISABLED and imapflow cannot log in.
    const plain = imap(gw, false);
    await assert.rejects(plain.connect());
    plain.close();

    const client = imap(gw);
    await client.connect();
    try {
      const lock = await client.getMailboxLock('INBOX');
      try {
        const found = await client.search({ subject: mark }, { uid: true });
        assert.ok(found && found.length === 1, `one message with subject ${mark}`);
        const msg = await client.fetchOne(String(found[0]), { source: true }, { uid: true });
        assert.ok(msg && msg.source!.equals(stored), 'IMAP returns the stored message byte for byte');
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }

    // POP3: curl without TLS cannot log in; with STLS it reads the same bytes.
    const creds = `${ALICE.address}:${ALICE.password}`;
    const clear = spawnSync('curl', ['-sS', '-u', creds, `pop3://127.0.0.1:${gw.ports.pop3}/1`], { encoding: 'latin1', timeout: 20_000 });
    assert.notEqual(clear.status, 0, 'a clear-text POP3 login must fail');
    const tls = spawnSync('curl', ['-sS', '--ssl-reqd', '-k', '-u', creds, `pop3://127.0.0.1:${gw.ports.pop3}/1`], { encoding: 'latin1', timeout: 20_000 });
    assert.equal(tls.status, 0, tls.stderr);
    assert.equal(tls.stdout, stored.toString('latin1'));
  });

  it('moving a message into Junk learns it as spam; moving it back learns it as ham', async () => {
    const mark = marker('junk');
    const transport = mailer({ port: gw.ports.mx, ignoreTLS: true });
    try {
      await transport.sendMail({ envelope: { from: 'b@sender.example', to: [ALICE.address] }, raw: makeMessage({ from: 'b@sender.example', to: ALICE.address, subject: mark, body: 'Cheap offer, act now' }) });
    } finally {
      transport.close();
    }
    await gw.waitForMail(ALICE.address, mark);
    const client = imap(gw);
    await client.connect();
    try {
      let lock = await client.getMailboxLock('INBOX');
      try {
        const uids = await client.search({ subject: mark }, { uid: true });
        assert.ok(uids && uids.length === 1);
        await client.messageMove(String(uids[0]), 'Junk', { uid: true });
      } finally {
        lock.release();
      }
      await waitFor('learned as spam', () => /"event":"bayes_user_learn".*"class":"spam".*"outcome":"learned"/.test(gw.tail(300)), { details: () => gw.tail(30) });
      lock = await client.getMailboxLock('Junk');
      try {
        const uids = await client.search({ subject: mark }, { uid: true });
        assert.ok(uids && uids.length === 1);
        await client.messageMove(String(uids[0]), 'INBOX', { uid: true });
      } finally {
        lock.release();
      }
      // The same message, now ham: its spam lesson is undone, not added to.
      await waitFor('relearned as ham', () => /"event":"bayes_user_learn".*"class":"ham".*"outcome":"relearned"/.test(gw.tail(300)), { details: () => gw.tail(30) });
    } finally {
      await client.logout();
    }
  });
});
