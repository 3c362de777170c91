// POP3 dialogues with a raw client, where the exact bytes matter: the TLS policy before login,
// STLS, the RFC 1939 examples, byte-stuffing and CRLF, the session semantics against a Maildir
// that delivery and IMAP change underneath, and the UPDATE state.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { OTHER, OTHER_PASSWORD, PASSWORD, RawClient, USER, crlf, loggedIn, startHarness, unstuff, type Harness } from './harness.js';

const plain = (authz: string, user: string, pass: string) => Buffer.from(`${authz}\0${user}\0${pass}`).toString('base64');

/** The files of the INBOX (new/ and cur/), sorted. */
function inboxFiles(h: Harness, user = USER): string[] {
  const out: string[] = [];
  for (const sub of ['new', 'cur']) {
    const d = path.join(h.mailbox(user), sub);
    if (fs.existsSync(d)) for (const f of fs.readdirSync(d)) out.push(`${sub}/${f}`);
  }
  return out.sort();
}

function emptyInbox(h: Harness, user = USER): void {
  for (const sub of ['new', 'cur']) {
    const d = path.join(h.mailbox(user), sub);
    if (fs.existsSync(d)) for (const f of fs.readdirSync(d)) fs.rmSync(path.join(d, f));
  }
}

describe('POP3 before TLS', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test('CAPA offers STLS and neither USER nor SASL; every way to send a credential is refused', async () => {
    const c = await RawClient.connect(h.plainPort);
    assert.equal(await c.line(), '+OK Portcullis ready.');
    assert.equal(await c.cmd('CAPA'), '+OK');
    const caps = (await c.multiline()).toString().split('\r\n').filter(Boolean);
    assert.ok(caps.includes('STLS'), caps.join(','));
    assert.ok(!caps.includes('USER'), caps.join(','));
    assert.ok(!caps.some((l) => l.startsWith('SASL')), caps.join(','));
    // Dovecot's answers with disable_plaintext_auth = yes, word for word.
    assert.equal(await c.cmd(`USER ${USER}`), '-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.');
    assert.equal(await c.cmd(`PASS ${PASSWORD}`), '-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.');
    assert.equal(await c.cmd(`AUTH PLAIN ${plain('', USER, PASSWORD)}`), '-ERR [AUTH] Plaintext authentication disabled.');
    assert.equal(await c.cmd('AUTH PLAIN'), '-ERR [AUTH] Plaintext authentication disabled.');
    assert.equal(await c.cmd('AUTH'), '+OK');
    assert.equal((await c.multiline()).length, 0, 'no mechanism is usable before TLS');
    assert.equal(await c.cmd('STAT'), '-ERR Not logged in.');
    assert.equal(await c.cmd('QUIT'), '+OK Logging out.');
    await c.waitClosed();
    const refusals = h.logs.filter((l) => l.event === 'pop3_login' && l.result === 'tls_required');
    assert.equal(refusals.length, 4);
    // The password sent in clear was never checked: no failure was counted against anyone.
    assert.equal((await h.store.scan('bf:f:', 100)).length, 0);
  });

  test('STLS upgrades; the capabilities change; a login works inside TLS', async () => {
    const c = await RawClient.connect(h.plainPort);
    await c.line();
    assert.equal(await c.cmd('STLS'), '+OK Begin TLS negotiation now.');
    await c.starttls();
    assert.equal(await c.cmd('CAPA'), '+OK');
    const caps = (await c.multiline()).toString().split('\r\n').filter(Boolean);
    assert.ok(!caps.includes('STLS'));
    assert.ok(caps.includes('USER'));
    assert.ok(caps.includes('SASL PLAIN'));
    assert.equal(await c.cmd('STLS'), '-ERR TLS is already active.');
    assert.equal(await c.cmd(`USER ${USER}`), '+OK');
    assert.equal(await c.cmd(`PASS ${PASSWORD}`), '+OK Logged in.');
    assert.equal(await c.cmd('QUIT'), '+OK Logging out.');
  });

  test('commands pipelined behind STLS are thrown away, not run inside TLS (CVE-2011-0411)', async () => {
    const c = await RawClient.connect(h.plainPort);
    await c.line();
    c.write(`STLS\r\nUSER ${USER}\r\n`);
    assert.equal(await c.line(), '+OK Begin TLS negotiation now.');
    await c.starttls();
    // Had "USER" survived, PASS would now be accepted.
    assert.equal(await c.cmd(`PASS ${PASSWORD}`), '-ERR No username given.');
    assert.ok(h.logs.some((l) => l.event === 'stls_injection'));
    c.destroy();
  });
});

describe('POP3 without a certificate', () => {
  test('no STLS, no implicit listener, no login possible', async () => {
    const h = await startHarness({ tls: false });
    try {
      assert.equal(h.tlsPort, 0);
      const c = await RawClient.connect(h.plainPort);
      await c.line();
      assert.equal(await c.cmd('CAPA'), '+OK');
      assert.ok(!(await c.multiline()).toString().includes('STLS'));
      assert.equal(await c.cmd('STLS'), "-ERR TLS support isn't enabled.");
      assert.match(await c.cmd(`USER ${USER}`), /^-ERR \[AUTH\] Plaintext/);
      c.destroy();
    } finally {
      await h.close();
    }
  });
});

describe('POP3 transaction', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test('the RFC 1939 examples (sizes 120 and 200 octets, as in the RFC)', async () => {
    emptyInbox(h);
    const pad = (head: string, size: number) => {
      const base = `${head}\r\n\r\n`;
      const body = 'x'.repeat(size - base.length - 2);
      const m = `${base}${body}\r\n`;
      assert.equal(m.length, size);
      return m;
    };
    await h.deliver(pad('Subject: one', 120));
    await new Promise((r) => setTimeout(r, 5));
    await h.deliver(pad('Subject: two', 200));
    const c = await loggedIn(h);
    const u2 = (await c.cmd('UIDL 2')).split(' ')[2]!;
    // [command, expected status line (string or pattern), expected multi-line body or undefined]
    const table: [string, string | RegExp, string | undefined][] = [
      ['STAT', '+OK 2 320', undefined],
      ['LIST', '+OK 2 messages:', '1 120\r\n2 200\r\n'],
      ['LIST 2', '+OK 2 200', undefined],
      ['LIST 3', "-ERR There's no message 3.", undefined],
      ['UIDL 2', `+OK 2 ${u2}`, undefined],
      ['RETR 1', '+OK 120 octets', undefined],
      ['TOP 1 0', '+OK', 'Subject: one\r\n\r\n'],
      ['TOP 100 3', "-ERR There's no message 100.", undefined],
      ['DELE 1', '+OK Marked to be deleted.', undefined],
      ['DELE 1', '-ERR Message is deleted.', undefined],
      ['RETR 1', '-ERR Message is deleted.', undefined],
      ['STAT', '+OK 1 200', undefined],
      ['LIST', '+OK 1 messages:', '2 200\r\n'],
      ['NOOP', '+OK', undefined],
      ['RSET', '+OK', undefined],
      ['STAT', '+OK 2 320', undefined],
      ['APOP mrose c4c9334bac560ecc979e58001b3e22fb', '-ERR Already logged in.', undefined],
      ['LAST', '-ERR Unknown command: LAST', undefined],
    ];
    for (const [command, status, body] of table) {
      const got = await c.cmd(command);
      if (typeof status === 'string') assert.equal(got, status, command);
      else assert.match(got, status, command);
      if (command === 'RETR 1' && got.startsWith('+OK')) {
        assert.equal((await c.multiline()).length, 120, 'RETR sends exactly the LIST size');
      } else if (body !== undefined) {
        assert.equal((await c.multiline()).toString(), body, command);
      }
    }
    const uidl = await c.cmd('UIDL');
    assert.equal(uidl, '+OK');
    const lines = (await c.multiline()).toString().split('\r\n').filter(Boolean);
    assert.equal(lines.length, 2);
    for (const l of lines) assert.match(l, /^[12] [\x21-\x7e]{1,70}$/);
    assert.equal(await c.cmd('QUIT'), '+OK Logging out.');
    assert.equal(inboxFiles(h).length, 2, 'RSET undid the deletion');
  });

  test('RETR: a message delivered by the gateway comes back byte-identical (CRLF, un-stuffed); LF files are sent as CRLF', async () => {
    emptyInbox(h);
    const smtp = Buffer.from('From: a@example.net\r\nTo: alice@example.org\r\nSubject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n\u00e9\u00e8 8-bit \xff\r\n', 'latin1');
    await h.deliver(smtp);
    // A file another tool wrote with LF line ends, no final newline, a bare CR inside a line.
    const lfFile = Buffer.from('Subject: lf\n\n.x\nline\rwith CR\nlast line without newline', 'latin1');
    fs.mkdirSync(path.join(h.mailbox(), 'cur'), { recursive: true });
    fs.writeFileSync(path.join(h.mailbox(), 'cur', `9999999999.M1P1Q1.other,S=${lfFile.length}:2,S`), lfFile);
    const c = await loggedIn(h);
    assert.equal(await c.cmd('STAT'), `+OK 2 ${smtp.length + crlf(lfFile).length}`);
    assert.equal(await c.cmd('RETR 1'), `+OK ${smtp.length} octets`);
    const body = await c.multiline();
    assert.ok(body.toString('latin1').includes('\r\n..leading dot\r\n...two dots\r\n..\r\n'), 'lines starting with "." are stuffed');
    assert.deepEqual(unstuff(body), smtp);
    assert.equal(await c.cmd('RETR 2'), `+OK ${crlf(lfFile).length} octets`);
    const body2 = await c.multiline();
    assert.equal(unstuff(body2).toString('latin1'), `${crlf(lfFile).toString('latin1')}\r\n`, 'a final CRLF is added before "."');
    assert.ok(!/[^\r]\n/.test(body2.toString('latin1')), 'no bare LF on the wire');
    assert.equal(await c.cmd('TOP 1 1'), '+OK');
    assert.equal((await c.multiline()).toString('latin1'), 'From: a@example.net\r\nTo: alice@example.org\r\nSubject: dots\r\n\r\n..leading dot\r\n');
    assert.equal(await c.cmd('TOP 2 99'), '+OK');
    assert.deepEqual(await c.multiline(), body2, 'TOP with more lines than the body sends it all');
    assert.match(await c.cmd('TOP 1 x'), /^-ERR Invalid number of lines/);
    assert.match(await c.cmd('RETR 0'), /^-ERR There's no message 0/);
    assert.match(await c.cmd('RETR -1'), /^-ERR Invalid message number/);
    assert.match(await c.cmd('RETR 1 2'), /^-ERR Too many arguments/);
    assert.match(await c.cmd('RETR 99999999999'), /^-ERR Invalid message number/);
    await c.cmd('QUIT');
  });

  test('new/ is moved to cur/ at login; UIDL is the Maildir base name and stable across sessions', async () => {
    emptyInbox(h);
    const name = await h.deliver('Subject: u\r\n\r\nbody\r\n');
    assert.deepEqual(inboxFiles(h), [`new/${name}`]);
    const c = await loggedIn(h);
    assert.deepEqual(inboxFiles(h), [`cur/${name}:2,`]);
    assert.equal(await c.cmd('UIDL 1'), `+OK 1 ${name}`);
    await c.cmd('QUIT');
    // IMAP sets \Seen: the file is renamed, its UIDL stays.
    fs.renameSync(path.join(h.mailbox(), 'cur', `${name}:2,`), path.join(h.mailbox(), 'cur', `${name}:2,S`));
    const d = await loggedIn(h);
    assert.equal(await d.cmd('UIDL 1'), `+OK 1 ${name}`);
    await d.cmd('QUIT');
  });

  test('DELE + QUIT removes; DELE + RSET and DELE + a dropped connection do not', async () => {
    emptyInbox(h);
    await h.deliver('Subject: a\r\n\r\na\r\n');
    await h.deliver('Subject: b\r\n\r\nb\r\n');
    let c = await loggedIn(h);
    await c.cmd('DELE 1');
    c.destroy();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(inboxFiles(h).length, 2, 'a dropped connection deletes nothing');
    c = await loggedIn(h); // the lock of the dropped session is gone
    await c.cmd('DELE 1');
    await c.cmd('DELE 2');
    await c.cmd('RSET');
    assert.equal(await c.cmd('QUIT'), '+OK Logging out.');
    assert.equal(inboxFiles(h).length, 2);
    c = await loggedIn(h);
    const kept = (await c.cmd('UIDL 2')).split(' ')[2];
    assert.equal(await c.cmd('DELE 1'), '+OK Marked to be deleted.');
    assert.equal(await c.cmd('QUIT'), '+OK Logging out, messages deleted.');
    await c.waitClosed();
    assert.deepEqual(inboxFiles(h), [`cur/${kept}:2,`]);
    assert.ok(h.logs.some((l) => l.event === 'pop3_update' && l.removed === 1));
  });

  test('one session per mailbox: the second gets [IN-USE]; other users are not affected', async () => {
    const first = await loggedIn(h);
    const second = await RawClient.connect(h.tlsPort, { implicitTls: true });
    await second.line();
    await second.cmd(`USER ${USER}`);
    assert.equal(await second.cmd(`PASS ${PASSWORD}`), '-ERR [IN-USE] Mailbox is locked by another POP3 session.');
    const bob = await loggedIn(h, OTHER, OTHER_PASSWORD);
    assert.equal(await bob.cmd('QUIT'), '+OK Logging out.');
    assert.equal(await first.cmd('QUIT'), '+OK Logging out.');
    await first.waitClosed();
    await second.cmd(`USER ${USER}`);
    assert.equal(await second.cmd(`PASS ${PASSWORD}`), '+OK Logged in.');
    await second.cmd('QUIT');
    assert.ok(h.logs.some((l) => l.event === 'pop3_login' && l.result === 'in_use'));
  });

  test('concurrent IMAP-style changes: expunged messages answer -ERR and are skipped at UPDATE; renamed ones are still found; new mail waits', async () => {
    emptyInbox(h);
    for (const s of ['one', 'two', 'three']) {
      await h.deliver(`Subject: ${s}\r\n\r\n${s}\r\n`);
      await new Promise((r) => setTimeout(r, 2));
    }
    const c = await loggedIn(h);
    assert.match(await c.cmd('STAT'), /^\+OK 3 /);
    const files = inboxFiles(h);
    // Another client expunges message 1 and flags message 2 (rename), a delivery adds a 4th.
    fs.rmSync(path.join(h.mailbox(), files[0]!));
    fs.renameSync(path.join(h.mailbox(), files[1]!), path.join(h.mailbox(), `${files[1]!}FS`));
    await h.deliver('Subject: four\r\n\r\nfour\r\n');
    assert.equal(await c.cmd('RETR 1'), '-ERR Message was removed by another client.');
    assert.match(await c.cmd('RETR 2'), /^\+OK \d+ octets$/);
    assert.match((await c.multiline()).toString(), /Subject: two/);
    assert.match(await c.cmd('STAT'), /^\+OK 3 /, 'the snapshot does not change during the session');
    assert.match(await c.cmd('LIST 4'), /^-ERR There's no message 4/);
    await c.cmd('DELE 1');
    await c.cmd('DELE 2');
    assert.equal(await c.cmd('QUIT'), '+OK Logging out, messages deleted.');
    await c.waitClosed();
    const left = inboxFiles(h);
    assert.equal(left.length, 2, left.join(' '));
    const d = await loggedIn(h);
    assert.match(await d.cmd('STAT'), /^\+OK 2 /, 'the mail delivered meanwhile shows in the next session');
    await d.cmd('QUIT');
  });

  test('UPDATE reports -ERR when a marked message cannot be removed, and removes the others', async () => {
    emptyInbox(h);
    await h.deliver('Subject: x\r\n\r\nx\r\n');
    await h.deliver('Subject: y\r\n\r\ny\r\n');
    const c = await loggedIn(h);
    await c.cmd('DELE 1');
    await c.cmd('DELE 2');
    // unlink() of a directory fails (EISDIR) even for root, where permission bits would not.
    const [first] = inboxFiles(h);
    const file = path.join(h.mailbox(), first!);
    fs.rmSync(file);
    fs.mkdirSync(file);
    try {
      assert.equal(await c.cmd('QUIT'), '-ERR [SYS/TEMP] Some deleted messages could not be removed.');
      await c.waitClosed();
      assert.deepEqual(inboxFiles(h), [first], 'the other marked message was removed');
      assert.ok(h.logs.some((l) => l.event === 'pop3_update_failed'));
    } finally {
      fs.rmSync(file, { recursive: true });
    }
  });

  test('AUTH PLAIN with an initial response, with a "+ " continuation, cancelled, malformed', async () => {
    const c = await RawClient.connect(h.tlsPort, { implicitTls: true });
    await c.line();
    assert.equal(await c.cmd('AUTH PLAIN'), '+ ');
    assert.equal(await c.cmd('*'), '-ERR Authentication aborted by client.');
    assert.equal(await c.cmd('AUTH PLAIN'), '+ ');
    assert.equal(await c.cmd('!!notbase64'), '-ERR [AUTH] Invalid base64 in response.');
    assert.equal(await c.cmd(`AUTH PLAIN ${Buffer.from('no separators').toString('base64')}`), '-ERR [AUTH] Invalid base64 in response.');
    assert.equal(await c.cmd('AUTH CRAM-MD5'), '-ERR [AUTH] Unsupported authentication mechanism.');
    assert.equal(await c.cmd(`AUTH PLAIN ${plain(OTHER, USER, PASSWORD)}`), '-ERR [AUTH] Authentication failed.', 'no authorising as someone else');
    assert.equal(await c.cmd('AUTH PLAIN'), '+ ');
    assert.equal(await c.cmd(plain('', USER, PASSWORD)), '+OK Logged in.');
    assert.equal(await c.cmd('QUIT'), '+OK Logging out.');
    const d = await RawClient.connect(h.tlsPort, { implicitTls: true });
    await d.line();
    assert.equal(await d.cmd(`AUTH PLAIN ${plain(USER, USER, PASSWORD)}`), '+OK Logged in.');
    assert.equal(await d.cmd(`USER ${USER}`), '-ERR Already logged in.');
    assert.equal(await d.cmd('STLS'), '-ERR STLS is only allowed before login.');
    assert.equal(await d.cmd('QUIT'), '+OK Logging out.');
    const logins = h.logs.filter((l) => l.event === 'pop3_login' && l.mechanism === 'PLAIN');
    assert.ok(logins.some((l) => l.result === 'ok' && l.user === USER));
    assert.ok(logins.some((l) => l.result === 'malformed'));
  });
});
