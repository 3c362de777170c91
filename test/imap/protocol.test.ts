// Raw IMAP dialogues against the server started in-process: the TLS policy (no login before
// TLS), the RFC 3501 examples that fit a fresh mailbox, FETCH sections and partials, UIDPLUS,
// concurrent sessions, UIDs across a restart.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OTHER, OTHER_PASSWORD, PASSWORD, RawImap, USER, message, startHarness, type Harness } from './harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function loggedIn(h: Harness): Promise<RawImap> {
  const c = await RawImap.connect(h.tlsPort, true);
  const r = await c.login();
  assert.equal(r.status, 'OK', r.raw);
  return c;
}

describe('IMAP protocol (raw dialogues)', { timeout: 120_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h?.close();
  });

  it('before TLS: STARTTLS and LOGINDISABLED advertised, LOGIN and AUTHENTICATE refused with NO', async () => {
    const c = await RawImap.connect(h.plainPort);
    assert.match(c.greeting, /^\* OK \[CAPABILITY IMAP4rev1 .*STARTTLS LOGINDISABLED\]/);
    const cap = await c.cmd('CAPABILITY');
    assert.match(cap.untagged[0]!, /^\* CAPABILITY IMAP4rev1 .*STARTTLS/);
    assert.match(cap.untagged[0]!, /LOGINDISABLED/);
    assert.doesNotMatch(cap.untagged[0]!, /AUTH=/);
    const login = await c.login();
    assert.equal(login.status, 'NO');
    assert.match(login.text, /PRIVACYREQUIRED/);
    const auth = await c.cmd(`AUTHENTICATE PLAIN ${Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64')}`);
    assert.equal(auth.status, 'NO');
    const sel = await c.cmd('SELECT INBOX');
    assert.equal(sel.status, 'BAD');
    // After STARTTLS: AUTH=PLAIN, no LOGINDISABLED, login works.
    assert.equal((await c.starttls()).status, 'OK');
    const cap2 = await c.cmd('CAPABILITY');
    assert.match(cap2.untagged[0]!, /AUTH=PLAIN/);
    assert.doesNotMatch(cap2.untagged[0]!, /LOGINDISABLED|STARTTLS/);
    const ok = await c.login();
    assert.equal(ok.status, 'OK', ok.raw);
    assert.match(ok.text, /CAPABILITY .*UIDPLUS/);
    c.close();
  });

  it('plaintext pipelined behind STARTTLS is discarded (CVE-2011-0411)', async () => {
    const c = await RawImap.connect(h.plainPort);
    c.write(`a STARTTLS\r\nb LOGIN ${USER} ${PASSWORD}\r\n`);
    await c.readUntil((t) => t.includes('a OK'));
    c.take();
    // Upgrade by hand: the "b" command must never be answered.
    const r = await (async () => {
      const tls = await import('node:tls');
      const plain = c.socket;
      plain.removeAllListeners('data');
      const s = tls.connect({ socket: plain, rejectUnauthorized: false });
      await new Promise((res) => s.once('secureConnect', res));
      let got = '';
      s.on('data', (d) => (got += d.toString()));
      s.write('c NOOP\r\n');
      await sleep(300);
      s.destroy();
      return got;
    })();
    assert.match(r, /^c OK/m);
    assert.doesNotMatch(r, /^b /m);
  });

  it('AUTHENTICATE PLAIN with SASL-IR and with a continuation; wrong password NO [AUTHENTICATIONFAILED]', async () => {
    const c = await RawImap.connect(h.tlsPort, true);
    const bad = await c.cmd(`AUTHENTICATE PLAIN ${Buffer.from(`\0${USER}\0wrong-password-1`).toString('base64')}`);
    assert.equal(bad.status, 'NO');
    assert.match(bad.text, /AUTHENTICATIONFAILED/);
    c.write('A1 AUTHENTICATE PLAIN\r\n');
    await c.readUntil((t) => t.startsWith('+ '));
    c.take();
    c.write(`${Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64')}\r\n`);
    const r = await c.waitTagged('A1');
    assert.equal(r.status, 'OK', r.raw);
    assert.ok(h.logs.some((l) => l.event === 'auth' && l.user === USER && l.protocol === 'imap'));
    assert.ok(h.logs.some((l) => l.event === 'auth_failed' && l.protocol === 'imap'));
    c.close();
  });

  it('RFC 3501 examples: CREATE, LIST, STATUS, APPEND (6.3.11), SELECT, FETCH, STORE, EXPUNGE, LOGOUT', async () => {
    const c = await loggedIn(h);
    assert.equal((await c.cmd('CREATE owatagusiam.')).status, 'OK');
    assert.equal((await c.cmd('CREATE owatagusiam.blurdybloop')).status, 'OK');
    const list = await c.cmd('LIST "" *');
    for (const n of ['INBOX', 'Junk', 'Sent', 'Trash', 'Drafts', 'owatagusiam', 'owatagusiam.blurdybloop']) {
      assert.ok(list.untagged.some((l) => l.endsWith(` "${n}"`)), `${n} in ${list.raw}`);
    }
    assert.ok(list.untagged.some((l) => /\\Junk/.test(l) && l.endsWith('"Junk"')), list.raw);
    assert.ok(list.untagged.some((l) => /\\Sent/.test(l) && l.endsWith('"Sent"')));
    assert.ok(list.untagged.some((l) => /\\HasChildren/.test(l) && l.endsWith('"owatagusiam"')));
    const empty = await c.cmd('LIST "" ""');
    assert.equal(empty.untagged[0], '* LIST (\\Noselect) "." ""');
    const pct = await c.cmd('LIST "" %');
    assert.ok(!pct.untagged.some((l) => l.includes('blurdybloop')), pct.raw);
    // RFC 3501 6.3.11
    const msg = 'Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred Foobar <foobar@Blurdybloop.COM>\r\n' +
      'Subject: afternoon meeting\r\nTo: mooch@owatagu.siam.edu\r\nMessage-Id: <B27397-0100000@Blurdybloop.COM>\r\n' +
      'MIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\nHello Joe, do you think we can meet at 3:30 tomorrow?\r\n';
    const tryc = await c.cmd(Buffer.from(`APPEND saved-messages (\\Seen) {${msg.length}+}\r\n${msg}`), 'A003');
    assert.equal(tryc.status, 'NO');
    assert.match(tryc.text, /TRYCREATE/);
    assert.equal((await c.cmd('CREATE saved-messages')).status, 'OK');
    c.write(`A003 APPEND saved-messages (\\Seen) {${msg.length}}\r\n`);
    await c.readUntil((t) => t.startsWith('+'));
    c.take();
    c.write(`${msg}\r\n`);
    const app = await c.waitTagged('A003');
    assert.equal(app.status, 'OK', app.raw);
    const [, uidv, uid] = /APPENDUID (\d+) (\d+)/.exec(app.text)!;
    const status = await c.cmd('STATUS saved-messages (UIDNEXT MESSAGES UNSEEN UIDVALIDITY)');
    assert.equal(status.untagged[0], `* STATUS "saved-messages" (UIDNEXT ${Number(uid) + 1} MESSAGES 1 UNSEEN 0 UIDVALIDITY ${uidv})`);
    const sel = await c.cmd('SELECT saved-messages');
    assert.equal(sel.status, 'OK');
    assert.match(sel.text, /^\[READ-WRITE\]/);
    assert.ok(sel.untagged.includes('* 1 EXISTS'));
    assert.ok(sel.untagged.includes(`* OK [UIDVALIDITY ${uidv}] UIDs valid`));
    // Fetched back byte-identical.
    const full = await c.cmd('FETCH 1 (BODY.PEEK[] RFC822.SIZE)');
    assert.ok(full.raw.includes(`{${msg.length}}\r\n${msg}`), full.raw);
    assert.match(full.raw, new RegExp(`RFC822.SIZE ${msg.length}`));
    const env = await c.cmd('FETCH 1 (ENVELOPE BODYSTRUCTURE FLAGS INTERNALDATE)');
    assert.match(env.raw, /ENVELOPE \("Mon, 7 Feb 1994 21:52:25 -0800 \(PST\)" "afternoon meeting" \(\("Fred Foobar" NIL "foobar" "Blurdybloop.COM"\)\)/);
    assert.match(env.raw, /BODYSTRUCTURE \("TEXT" "PLAIN" \("CHARSET" "US-ASCII"\) NIL NIL "7BIT" 55 1 NIL NIL NIL NIL\)/);
    assert.match(env.raw, /FLAGS \(\\Seen\)/);
    assert.match(env.raw, /INTERNALDATE "\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d \+0000"/);
    // RFC 3501 6.4.6 STORE
    const st = await c.cmd('STORE 1 +FLAGS (\\Deleted)');
    assert.match(st.untagged[0]!, /^\* 1 FETCH \(FLAGS \(\\Seen \\Deleted\)\)$|^\* 1 FETCH \(FLAGS \(\\Deleted \\Seen\)\)$/);
    const ex = await c.cmd('EXPUNGE');
    assert.deepEqual(ex.untagged, ['* 1 EXPUNGE']);
    const bye = await c.cmd('LOGOUT');
    assert.equal(bye.untagged[0], '* BYE Logging out');
    assert.equal(bye.status, 'OK');
  });

  it('FETCH sections of a multipart message: HEADER.FIELDS (NOT), TEXT, MIME, nested parts, partial ranges; implicit \\Seen', async () => {
    const inner = 'From: inner@example.net\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary="in"\r\n\r\n' +
      '--in\r\nContent-Type: text/plain\r\n\r\ninner plain\r\n--in\r\nContent-Type: text/html\r\n\r\n<b>inner</b>\r\n--in--\r\n';
    const body = 'This is a multi-part message.\r\n--outer\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nFirst part\r\nline two\r\n' +
      '--outer\r\nContent-Type: message/rfc822\r\n\r\n' + inner +
      '--outer\r\nContent-Type: application/octet-stream; name="a.bin"\r\nContent-Disposition: attachment; filename="a.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--outer--\r\n';
    const raw = message('multipart', body, 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="outer"\r\n');
    await h.deliver(raw);
    const c = await loggedIn(h);
    const sel = await c.cmd('SELECT INBOX');
    const exists = Number(/\* (\d+) EXISTS/.exec(sel.raw)![1]);
    const f = async (item: string) => (await c.cmd(`FETCH ${exists} (${item})`)).raw;
    assert.match(await f('BODY.PEEK[HEADER.FIELDS (SUBJECT)]'), /BODY\[HEADER.FIELDS \(SUBJECT\)\] \{22\}\r\nSubject: multipart\r\n\r\n/);
    assert.doesNotMatch(await f('BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT)]'), /Subject: multipart/);
    assert.match(await f('BODY.PEEK[1]'), /BODY\[1\] \{20\}\r\nFirst part\r\nline two\)/);
    assert.match(await f('BODY.PEEK[1.MIME]'), /Content-Type: text\/plain; charset=utf-8\r\n\r\n/);
    assert.match(await f('BODY.PEEK[2.HEADER]'), /From: inner@example.net\r\nSubject: inner\r\n/);
    assert.match(await f('BODY.PEEK[2.1]'), /BODY\[2.1\] \{11\}\r\ninner plain\)/);
    assert.match(await f('BODY.PEEK[2.2]'), /<b>inner<\/b>/);
    assert.match(await f('BODY.PEEK[3]'), /BODY\[3\] \{8\}\r\nAAECAw==\)/);
    assert.match(await f('BODY.PEEK[1]<6.4>'), /BODY\[1\]<6> \{4\}\r\npart\)/);
    assert.match(await f('BODY.PEEK[9]'), /BODY\[9\] NIL/);
    const bs = await f('BODYSTRUCTURE');
    assert.match(bs, /\("TEXT" "PLAIN" \("CHARSET" "utf-8"\) NIL NIL "7BIT" 20 2 NIL NIL NIL NIL\)/);
    assert.match(bs, /\("MESSAGE" "RFC822" NIL NIL NIL "7BIT" \d+ \(NIL "inner" \(\(NIL NIL "inner" "example.net"\)\)/);
    assert.match(bs, /"APPLICATION" "OCTET-STREAM" \("NAME" "a.bin"\) NIL NIL "BASE64" 8 NIL \("attachment" \("FILENAME" "a.bin"\)\)/);
    assert.match(bs, /"MIXED" \("BOUNDARY" "outer"\) NIL NIL NIL\)\)/);
    assert.doesNotMatch(await f('FLAGS'), /\\Seen/);
    const seen = await f('BODY[TEXT]<0.10>');
    assert.match(seen, /BODY\[TEXT\]<0> \{10\}\r\nThis is a /);
    assert.match(seen, /FLAGS \([^)]*\\Seen/);
    c.close();
  });

  it('SEARCH: flags, OR/NOT, sequence sets, dates, HEADER, BODY/TEXT, LARGER/SMALLER, UID, CHARSET', async () => {
    const c = await loggedIn(h);
    assert.equal((await c.cmd('CREATE search')).status, 'OK');
    const add = async (m: string, flags = '') => {
      const r = await c.cmd(Buffer.from(`APPEND search (${flags}) "05-Mar-2021 10:00:00 +0000" {${Buffer.byteLength(m)}+}\r\n${m}`));
      assert.equal(r.status, 'OK', r.raw);
    };
    await add(message('apples', 'I like green apples.\r\n'), '\\Seen');
    await add(message('pears', 'Pears are nice =E2=9C=93 tr\u00e8s bien\r\n', 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n'), '\\Flagged');
    await add(message('=?utf-8?q?caf=C3=A9?=', 'x'.repeat(5000) + '\r\n'));
    await c.cmd('SELECT search');
    const s = async (q: string) => {
      const r = await c.cmd(q);
      assert.equal(r.status, 'OK', r.raw);
      return r.untagged.find((l) => l.startsWith('* SEARCH'))!.replace('* SEARCH', '').trim();
    };
    assert.equal(await s('SEARCH ALL'), '1 2 3');
    assert.equal(await s('SEARCH SEEN'), '1');
    assert.equal(await s('SEARCH UNSEEN'), '2 3');
    assert.equal(await s('SEARCH FLAGGED'), '2');
    assert.equal(await s('SEARCH OR SEEN FLAGGED'), '1 2');
    assert.equal(await s('SEARCH NOT SEEN NOT FLAGGED'), '3');
    assert.equal(await s('SEARCH 2:*'), '2 3');
    assert.equal(await s('SEARCH SUBJECT pears'), '2');
    assert.equal(await s('SEARCH CHARSET UTF-8 SUBJECT caf\u00c3\u00a9'.replace(/\u00c3\u00a9/, '\u00e9')), '3');
    assert.equal(await s('SEARCH FROM sender@example.net'), '1 2 3');
    assert.equal(await s('SEARCH HEADER Message-ID apples'), '1');
    assert.equal(await s('SEARCH BODY "green apples"'), '1');
    assert.equal(await s('SEARCH BODY "\u2713"'.replace('\u2713', '\u00e2\u009c\u0093')), '');
    assert.equal(await s('SEARCH TEXT pears'), '2');
    assert.equal(await s('SEARCH LARGER 4000'), '3');
    assert.equal(await s('SEARCH SMALLER 4000'), '1 2');
    assert.equal(await s('SEARCH ON 5-Mar-2021'), '1 2 3');
    assert.equal(await s('SEARCH BEFORE 5-Mar-2021'), '');
    assert.equal(await s('SEARCH SINCE 1-Jan-2021 SENTBEFORE 1-Jan-2000'), '1 2 3');
    assert.equal(await s('SEARCH SENTON 8-Feb-1994'), '1 2 3');
    const uids = (await s('UID SEARCH ALL')).split(' ');
    assert.equal(await s(`UID SEARCH UID ${uids[1]}`), uids[1]);
    assert.equal(await s('SEARCH (OR (SEEN) (FLAGGED)) NOT 1'), '2');
    const badCs = await c.cmd('SEARCH CHARSET KOI8-R ALL');
    assert.equal(badCs.status, 'NO');
    assert.match(badCs.text, /BADCHARSET/);
    assert.equal((await c.cmd('SEARCH FOO')).status, 'BAD');
    assert.equal((await c.cmd('SEARCH BEFORE 31-Foo-2020')).status, 'BAD');
    c.close();
  });

  it('UIDPLUS: COPYUID, UID EXPUNGE; MOVE sends COPYUID and EXPUNGE; Junk training hook', async () => {
    const c = await loggedIn(h);
    await c.cmd('CREATE moves');
    for (const n of [1, 2, 3]) {
      const m = message(`move${n}`);
      await c.cmd(Buffer.from(`APPEND moves {${m.length}+}\r\n${m}`));
    }
    const sel = await c.cmd('SELECT moves');
    assert.ok(sel.untagged.includes('* 3 EXISTS'));
    const uids = (await c.cmd('UID SEARCH ALL')).untagged[0]!.split(' ').slice(2).map(Number);
    const cp = await c.cmd(`UID COPY ${uids[0]} Trash`);
    assert.match(cp.text, new RegExp(`^\\[COPYUID \\d+ ${uids[0]} \\d+\\]`));
    const junkBefore = h.junk.length;
    const mv = await c.cmd('MOVE 2 Junk');
    assert.equal(mv.status, 'OK', mv.raw);
    assert.match(mv.untagged[0]!, new RegExp(`^\\* OK \\[COPYUID \\d+ ${uids[1]} \\d+\\]`));
    assert.ok(mv.untagged.includes('* 2 EXPUNGE'), mv.raw);
    await waitFor(() => h.junk.length > junkBefore);
    const ev = h.junk.at(-1)!;
    assert.equal(ev.cls, 'spam');
    assert.equal(ev.user, USER);
    assert.match(ev.message.toString(), /Subject: move2/);
    // UID EXPUNGE removes only the named message even if others are \Deleted.
    await c.cmd('STORE 1:2 +FLAGS.SILENT (\\Deleted)');
    const ue = await c.cmd(`UID EXPUNGE ${uids[2]}`);
    assert.deepEqual(ue.untagged, ['* 2 EXPUNGE']);
    assert.equal((await c.cmd('SEARCH DELETED')).untagged[0], '* SEARCH 1');
    // Out of Junk to INBOX: ham.
    await c.cmd('SELECT Junk');
    const jm = await c.cmd('UID MOVE 1:* INBOX');
    assert.equal(jm.status, 'OK', jm.raw);
    await waitFor(() => h.junk.at(-1)!.cls === 'ham');
    c.close();
  });

  it('two sessions see each other\'s flags and expunges; IDLE reports a delivery as EXISTS', async () => {
    const a = await loggedIn(h);
    const b = await loggedIn(h);
    await a.cmd('CREATE shared');
    for (const n of [1, 2]) {
      const m = message(`shared${n}`);
      await a.cmd(Buffer.from(`APPEND shared {${m.length}+}\r\n${m}`));
    }
    await a.cmd('SELECT shared');
    await b.cmd('SELECT shared');
    await a.cmd('STORE 1 +FLAGS (\\Flagged)');
    const n1 = await b.cmd('NOOP');
    assert.ok(n1.untagged.some((l) => /^\* 1 FETCH \(UID \d+ FLAGS \(\\Flagged\)\)$/.test(l)), n1.raw);
    await a.cmd('STORE 1 +FLAGS (\\Deleted)');
    await a.cmd('EXPUNGE');
    const n2 = await b.cmd('NOOP');
    assert.ok(n2.untagged.includes('* 1 EXPUNGE'), n2.raw);
    // IDLE in INBOX, then a delivery by the SMTP side's Maildir writer.
    await b.cmd('SELECT INBOX');
    b.write('I1 IDLE\r\n');
    await b.readUntil((t) => t.includes('+ idling'));
    b.take();
    await h.deliver(message('idle-delivery'));
    const got = await b.readUntil((t) => / EXISTS\r\n/.test(t), 8000);
    assert.match(got, /^\* \d+ EXISTS/m);
    b.write('DONE\r\n');
    const done = await b.waitTagged('I1');
    assert.equal(done.status, 'OK');
    // A flag change made by another process (rename in cur/) reaches an IDLE client too.
    b.write('I2 IDLE\r\n');
    await b.readUntil((t) => t.includes('+ idling'));
    b.take();
    const cur = path.join(h.mailbox(), 'cur');
    const file = fs.readdirSync(cur).find((f) => !f.split(':2,')[1]!.includes('S'))!;
    const base = file.split(':2,')[0]!;
    fs.renameSync(path.join(cur, file), path.join(cur, `${base}:2,FS`));
    const flagged = await b.readUntil((t) => /FETCH \(UID \d+ FLAGS \(\\Flagged \\Seen\)\)/.test(t), 8000);
    assert.ok(flagged);
    b.write('DONE\r\n');
    await b.waitTagged('I2');
    a.close();
    b.close();
  });

  it('UIDVALIDITY and UIDs survive a restart; a message added while stopped gets the next UID', async () => {
    const c = await loggedIn(h);
    await c.cmd('CREATE persist');
    for (const n of [1, 2]) {
      const m = message(`persist${n}`);
      await c.cmd(Buffer.from(`APPEND persist {${m.length}+}\r\n${m}`));
    }
    await c.cmd('SELECT persist');
    const before1 = (await c.cmd('UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])')).raw;
    const status1 = (await c.cmd('STATUS persist (UIDVALIDITY UIDNEXT)')).untagged[0];
    c.close();
    await h.restart();
    fs.writeFileSync(path.join(h.mailbox(), '.persist', 'new', '1700000000.M1P1.test'), message('persist3'));
    const d = await RawImap.connect(h.tlsPort, true);
    await d.login();
    await d.cmd('SELECT persist');
    const after1 = (await d.cmd('UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])')).raw;
    const uidOf = (raw: string, subj: string) => new RegExp(`UID (\\d+) BODY\\[HEADER.FIELDS \\(SUBJECT\\)\\] \\{\\d+\\}\\r\\nSubject: ${subj}`).exec(raw)?.[1];
    assert.equal(uidOf(after1, 'persist1'), uidOf(before1, 'persist1'));
    assert.equal(uidOf(after1, 'persist2'), uidOf(before1, 'persist2'));
    assert.equal(Number(uidOf(after1, 'persist3')), Number(uidOf(before1, 'persist2')) + 1);
    const status2 = (await d.cmd('STATUS persist (UIDVALIDITY UIDNEXT)')).untagged[0]!;
    assert.equal(/UIDVALIDITY \d+/.exec(status2)![0], /UIDVALIDITY \d+/.exec(status1!)![0]);
    d.close();
  });

  it('another user\'s mail is out of reach: OTHER logs in and sees only its own INBOX', async () => {
    const c = await RawImap.connect(h.tlsPort, true);
    assert.equal((await c.login(OTHER, OTHER_PASSWORD)).status, 'OK');
    const sel = await c.cmd('SELECT INBOX');
    assert.ok(sel.untagged.includes('* 0 EXISTS'), sel.raw);
    for (const name of ['../alice', '../../example.org/alice', 'INBOX/../x', '.', '..', '.hidden', 'a..b', 'x/y', '~root', 'a\\b']) {
      const r = await c.cmd(`SELECT ${JSON.stringify(name)}`);
      assert.notEqual(r.status, 'OK', `${name}: ${r.raw}`);
      const cr = await c.cmd(`CREATE ${JSON.stringify(name)}`);
      assert.notEqual(cr.status, 'OK', `${name}: ${cr.raw}`);
    }
    const traversal = await c.cmd(`APPEND "../../../example.org/alice" {3+}\r\nabc`);
    assert.equal(traversal.status, 'NO');
    assert.equal(fs.existsSync(path.join(h.dir, 'mail', 'example.org', 'alice', 'x')), false);
    c.close();
  });
});

async function waitFor(probe: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(25);
  }
}
