// Junk training in the console (docs/console.md): a user sees the newest messages of their own
// Junk and INBOX, marks one as spam (moved to Junk) and back as not spam (moved to INBOX), and
// Bayes learns each exactly as it does from an IMAP MOVE (the same code, src/mailbox/junk-move.ts):
// the log says `bayes_user_learn` spam "learned", then ham "relearned". The folders are checked
// with a real IMAP client (imapflow). Another user's UID, a stale UIDVALIDITY and a form without
// the CSRF token move nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { USERS, userMap } from '../helpers/fixtures.js';
import type { Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { mailer } from '../helpers/clients.js';
import { waitFor } from '../helpers/wait.js';
import { ConsoleClient, startConsoleGateway } from './console-client.js';

const ALICE = USERS.alice;

describe('console: Junk training', { timeout: 180_000 }, () => {
  let gw: Gateway;
  let port: number;
  before(async () => {
    ({ gw, consolePort: port } = await startConsoleGateway({ users: userMap('alice', 'bob') }));
  });
  after(async () => {
    await gw?.cleanup();
  });

  /** The subjects in one of alice's folders, as IMAP shows them. */
  async function subjects(folder: string): Promise<string[]> {
    const client = new ImapFlow({
      host: '127.0.0.1', port: gw.ports.imap, secure: false, doSTARTTLS: true, tls: { rejectUnauthorized: false },
      auth: { user: ALICE.address, pass: ALICE.password }, logger: false,
    });
    await client.connect();
    try {
      const lock = await client.getMailboxLock(folder);
      try {
        const out: string[] = [];
        for await (const m of client.fetch('1:*', { envelope: true })) out.push(m.envelope?.subject ?? '');
        return out;
      } catch {
        return []; // an empty folder: no message matches 1:*
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }
  }

  it('mark as spam, then not spam: moved as by IMAP MOVE and learnt the same way; hostile fields are text', async () => {
    const mark = marker('junkpage');
    const subject = `${mark} <script>alert(1)</script>`;
    const t = mailer({ port: gw.ports.mx, ignoreTLS: true });
    try {
      await t.sendMail({ envelope: { from: 'b@sender.example', to: [ALICE.address] }, raw: makeMessage({ from: 'b@sender.example', to: ALICE.address, subject, body: 'Cheap offer, act now' }) });
    } finally {
      t.close();
    }
    await gw.waitForMail(ALICE.address, mark);
    const c = new ConsoleClient(port);
    await c.login(ALICE.address, ALICE.password);
    const page = await c.get('/junk');
    assert.equal(page.status, 200);
    assert.match(page.body, /<a href="\/junk">Junk<\/a>/, 'the navigation links the page');
    assert.ok(page.body.includes(`${mark} &lt;script&gt;alert(1)&lt;/script&gt;`), 'the subject is shown escaped');
    assert.doesNotMatch(page.body, /<script/);
    const row = new RegExp(`${mark}.*?action="/junk/spam".*?name="uid" value="(\\d+)".*?name="v" value="(\\d+)"`, 's').exec(page.body);
    assert.ok(row, page.body);
    const [, uid, v] = row;

    // Without the token: refused, nothing moved.
    assert.equal((await c.request('POST', '/junk/spam', { uid: uid!, v: v!, _csrf: 'forged' })).status, 403);
    assert.ok((await subjects('INBOX')).includes(subject));

    // Another user names alice's UID: it is looked up in bob's own folders only.
    const bob = new ConsoleClient(port);
    await bob.login(USERS.bob.address, USERS.bob.password);
    await bob.get('/junk');
    assert.notEqual((await bob.post('/junk/spam', { uid: uid!, v: v! })).status, 200);
    assert.ok((await subjects('INBOX')).includes(subject), "bob's request moved nothing of alice's");

    // A stale UIDVALIDITY: refused with the page again.
    await c.get('/junk');
    const stale = await c.post('/junk/spam', { uid: uid!, v: String(Number(v) + 1) });
    assert.equal(stale.status, 409);
    assert.ok((await subjects('INBOX')).includes(subject));

    await c.get('/junk');
    const spam = await c.post('/junk/spam', { uid: uid!, v: v! });
    assert.equal(spam.status, 200, spam.body);
    assert.match(spam.body, /Moved to Junk and learnt as spam/);
    assert.ok((await subjects('Junk')).includes(subject), 'the message is in Junk over IMAP');
    assert.ok(!(await subjects('INBOX')).includes(subject), 'and no longer in INBOX');
    await waitFor('learned as spam', () => /"event":"bayes_user_learn".*"class":"spam".*"outcome":"learned"/.test(gw.tail(300)), { details: () => gw.tail(30) });
    assert.ok(gw.logs.some((l) => l.event === 'junk_train' && l.cls === 'spam' && l.user === ALICE.address), 'the same junk_train event as an IMAP move');

    const back = /action="\/junk\/not-spam".*?name="uid" value="(\d+)".*?name="v" value="(\d+)"/s.exec(spam.body);
    assert.ok(back, spam.body);
    const ham = await c.post('/junk/not-spam', { uid: back[1]!, v: back[2]! });
    assert.equal(ham.status, 200, ham.body);
    assert.match(ham.body, /Moved to INBOX and learnt as not spam/);
    assert.ok((await subjects('INBOX')).includes(subject));
    assert.ok(!(await subjects('Junk')).includes(subject));
    // The same message, now ham: its spam lesson is undone, as after an IMAP move back.
    await waitFor('relearned as ham', () => /"event":"bayes_user_learn".*"class":"ham".*"outcome":"relearned"/.test(gw.tail(300)), { details: () => gw.tail(30) });

    // The same UID again: gone from Junk now.
    await c.get('/junk');
    assert.equal((await c.post('/junk/not-spam', { uid: back[1]!, v: back[2]! })).status, 404);
    assert.equal((await new ConsoleClient(port).get('/junk')).status, 303, 'not logged in: to the login page');
  });
});
