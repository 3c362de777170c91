// Greeting, EHLO keywords per listener (before and after TLS), and RFC 2920 pipelining.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { needTool, pyProbe } from '../helpers/clients.js';
import { assertReply, EXT_SENDER, USERS, userMap } from '../helpers/fixtures.js';
import { HOSTNAME, startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { dataBlock, queuedId, SmtpClient } from '../helpers/smtp-client.js';

const MAX_SIZE = 10 * 1024 * 1024;

describe('greeting, EHLO keywords and pipelining', { timeout: 120_000 }, () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({ config: { smtp: { max_message_size: MAX_SIZE } }, users: userMap('alice', 'bob') });
  });
  after(async () => {
    await gw?.cleanup();
  });

  it('MX greets with 220 and the configured hostname', async () => {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      assert.equal(c.greeting?.code, 220, c.describe());
      assert.match(c.greeting!.text, new RegExp(`^${HOSTNAME.replace(/\./g, '\\.')}\\b`), `banner should start with the hostname\n${c.describe()}`);
    } finally {
      await c.quit();
    }
  });

  it('submission greets with 220 in plaintext; submissions greets with 220 over TLS', async () => {
    const sub = await SmtpClient.connect(gw.ports.submission);
    const subs = await SmtpClient.connect(gw.ports.submissions, { implicitTls: true });
    try {
      assert.equal(sub.greeting?.code, 220, sub.describe());
      assert.equal(subs.greeting?.code, 220, subs.describe());
    } finally {
      await sub.quit();
      await subs.quit();
    }
  });

  it('MX EHLO advertises PIPELINING, SIZE <max_message_size>, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, STARTTLS and no AUTH', async () => {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      const { reply, keywords } = await c.ehlo();
      assertReply(reply, 250, undefined, c.describe());
      assert.match(reply.lines[0]!, new RegExp(`^${HOSTNAME.replace(/\./g, '\\.')}`), `EHLO first line names the hostname\n${c.describe()}`);
      for (const kw of ['PIPELINING', 'SIZE', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'STARTTLS']) {
        assert.ok(keywords.has(kw), `MX EHLO lacks ${kw}\n${c.describe()}`);
      }
      assert.equal(keywords.get('SIZE'), String(MAX_SIZE), `SIZE should be smtp.max_message_size\n${c.describe()}`);
      assert.ok(!keywords.has('AUTH'), `AUTH must not be advertised before TLS on MX\n${c.describe()}`);
      assert.ok(![...keywords.keys()].some((k) => k.startsWith('AUTH=')), `no AUTH= either\n${c.describe()}`);
    } finally {
      await c.quit();
    }
  });

  it('submission EHLO before TLS advertises STARTTLS and no AUTH', async () => {
    const c = await SmtpClient.connect(gw.ports.submission);
    try {
      const { reply, keywords } = await c.ehlo();
      assertReply(reply, 250, undefined, c.describe());
      assert.ok(keywords.has('STARTTLS'), `submission must offer STARTTLS\n${c.describe()}`);
      assert.ok(!keywords.has('AUTH') && ![...keywords.keys()].some((k) => k.startsWith('AUTH')),
        `AUTH must not be advertised before TLS on submission\n${c.describe()}`);
    } finally {
      await c.quit();
    }
  });

  it('submission after STARTTLS advertises AUTH PLAIN LOGIN and no longer STARTTLS', async () => {
    const c = await SmtpClient.connect(gw.ports.submission);
    try {
      await c.ehlo();
      const r = await c.startTls();
      assertReply(r, 220, undefined, c.describe());
      const { reply, keywords } = await c.ehlo();
      assertReply(reply, 250, undefined, c.describe());
      const mechs = (keywords.get('AUTH') ?? '').toUpperCase().split(/\s+/);
      assert.ok(mechs.includes('PLAIN') && mechs.includes('LOGIN'), `AUTH PLAIN LOGIN expected after TLS\n${c.describe()}`);
      assert.ok(!keywords.has('STARTTLS'), `STARTTLS must not be offered again inside TLS\n${c.describe()}`);
    } finally {
      await c.quit();
    }
  });

  it('submissions (implicit TLS) EHLO advertises AUTH PLAIN LOGIN and no STARTTLS', async () => {
    const c = await SmtpClient.connect(gw.ports.submissions, { implicitTls: true });
    try {
      const { reply, keywords } = await c.ehlo();
      assertReply(reply, 250, undefined, c.describe());
      const mechs = (keywords.get('AUTH') ?? '').toUpperCase().split(/\s+/);
      assert.ok(mechs.includes('PLAIN') && mechs.includes('LOGIN'), `AUTH PLAIN LOGIN expected on submissions\n${c.describe()}`);
      assert.ok(!keywords.has('STARTTLS'), `STARTTLS makes no sense inside implicit TLS\n${c.describe()}`);
    } finally {
      await c.quit();
    }
  });

  it('MX after STARTTLS still advertises no AUTH (auth.on_mx is false by default)', async () => {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      await c.ehlo();
      assertReply(await c.startTls(), 220, undefined, c.describe());
      const { reply, keywords } = await c.ehlo();
      assertReply(reply, 250, undefined, c.describe());
      assert.ok(!keywords.has('AUTH'), `MX must not offer AUTH unless auth.on_mx\n${c.describe()}`);
      assert.ok(keywords.has('PIPELINING') && keywords.has('SIZE'), `keywords still there after TLS\n${c.describe()}`);
    } finally {
      await c.quit();
    }
  });

  it('smtplib sees the same MX keywords (esmtp_features) and the same SIZE', async (t) => {
    if (!needTool(t, 'python3')) return;
    const r = await pyProbe({ port: gw.ports.mx, mode: 'plain' });
    assert.ok(r.ok, JSON.stringify(r));
    for (const kw of ['pipelining', 'size', '8bitmime', 'smtputf8', 'enhancedstatuscodes', 'starttls']) {
      assert.ok(r.features && kw in r.features, `smtplib did not see ${kw}: ${JSON.stringify(r.features)}`);
    }
    assert.equal(r.features!.size, String(MAX_SIZE));
    assert.ok(!('auth' in r.features!), `no auth before TLS: ${JSON.stringify(r.features)}`);
  });

  it('MAIL before EHLO/HELO gets 503 5.5.1', async () => {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      const r = await c.cmd(`MAIL FROM:<${EXT_SENDER}>`);
      assertReply(r, 503, '5.5.1', c.describe());
    } finally {
      await c.quit();
    }
  });

  it('HELO (not EHLO) is accepted with 250 and a plain transaction works', async () => {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      assertReply(await c.cmd('HELO old-client.example.net'), 250, undefined, c.describe());
      assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250, undefined, c.describe());
      assertReply(await c.cmd(`RCPT TO:<${USERS.alice.address}>`), 250, undefined, c.describe());
    } finally {
      await c.quit();
    }
  });

  it('VRFY and EXPN do not enumerate users (502 5.5.1, or 252 without an answer)', async () => {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      await c.ehlo();
      for (const cmd of [`VRFY ${USERS.alice.address}`, 'VRFY nobody-here@example.test', 'EXPN staff@example.test']) {
        const r = await c.cmd(cmd);
        assert.ok(r.code === 502 || r.code === 252, `${cmd} → ${r.raw}\n${c.describe()}`);
      }
      const known = await c.cmd(`VRFY ${USERS.alice.address}`);
      const unknown = await c.cmd('VRFY nobody-here@example.test');
      assert.equal(known.raw, unknown.raw, `VRFY must answer the same for known and unknown users\n${c.describe()}`);
    } finally {
      await c.quit();
    }
  });

  it('a UTF-8 recipient without the SMTPUTF8 parameter → 553 5.6.7; with SMTPUTF8 it is looked up (550 5.1.1 unknown)', async () => {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      await c.ehlo();
      assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250, undefined, c.describe());
      assertReply(await c.cmd('RCPT TO:<jörg@example.test>'), 553, '5.6.7', c.describe());
      assertReply(await c.cmd('RSET'), 250, undefined, c.describe());
      assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}> SMTPUTF8`), 250, undefined, c.describe());
      assertReply(await c.cmd('RCPT TO:<jörg@example.test>'), 550, '5.1.1', c.describe());
    } finally {
      await c.quit();
    }
  });

  it('pipelining: MAIL, three RCPTs and DATA in one write get five replies in order (250, 250, 550 5.1.1, 250, 354)', async () => {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      await c.ehlo();
      c.write(
        `MAIL FROM:<${EXT_SENDER}>\r\n` +
          `RCPT TO:<${USERS.alice.address}>\r\n` +
          'RCPT TO:<nobody-here@example.test>\r\n' +
          `RCPT TO:<${USERS.bob.address}>\r\n` +
          'DATA\r\n',
      );
      const [mail, r1, r2, r3, data] = await c.readReplies(5);
      assertReply(mail!, 250, undefined, c.describe());
      assertReply(r1!, 250, undefined, c.describe());
      assertReply(r2!, 550, '5.1.1', c.describe());
      assertReply(r3!, 250, undefined, c.describe());
      assertReply(data!, 354, undefined, c.describe());
      const m = marker('pipe');
      c.write(dataBlock(makeMessage({ from: EXT_SENDER, to: USERS.alice.address, subject: m })));
      const final = await c.readReply(30_000);
      assertReply(final, 250, '2.0.0', c.describe());
      assert.ok(queuedId(final), `250 should say "queued as <ID>"\n${c.describe()}`);
      await gw.waitForMail(USERS.alice.address, m);
      await gw.waitForMail(USERS.bob.address, m);
    } finally {
      await c.quit();
    }
  });

  it('pipelining: NOOP, RSET, NOOP and QUIT in one write get 250, 250, 250, 221 in order, then the server closes', async () => {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      await c.ehlo();
      c.write('NOOP\r\nRSET\r\nNOOP\r\nQUIT\r\n');
      const replies = await c.readReplies(4);
      assert.deepEqual(replies.map((r) => r.code), [250, 250, 250, 221], c.describe());
      assert.ok(await c.waitClosed(5000), `connection should close after QUIT\n${c.describe()}`);
    } finally {
      c.close();
    }
  });

  it('pipelining: two whole transactions in one write each get their replies (second after RSET)', async () => {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      await c.ehlo();
      const m1 = marker('pipe1');
      const m2 = marker('pipe2');
      // RFC 2920: DATA ends a group; the content, then the next group.
      c.write(`MAIL FROM:<${EXT_SENDER}>\r\nRCPT TO:<${USERS.alice.address}>\r\nDATA\r\n`);
      const first = await c.readReplies(3);
      assert.deepEqual(first.map((r) => r.code), [250, 250, 354], c.describe());
      c.write(dataBlock(makeMessage({ from: EXT_SENDER, to: USERS.alice.address, subject: m1 })));
      assertReply(await c.readReply(30_000), 250, '2.0.0', c.describe());
      c.write(`RSET\r\nMAIL FROM:<${EXT_SENDER}>\r\nRCPT TO:<${USERS.bob.address}>\r\nDATA\r\n`);
      const second = await c.readReplies(4);
      assert.deepEqual(second.map((r) => r.code), [250, 250, 250, 354], c.describe());
      c.write(dataBlock(makeMessage({ from: EXT_SENDER, to: USERS.bob.address, subject: m2 })));
      assertReply(await c.readReply(30_000), 250, '2.0.0', c.describe());
      await gw.waitForMail(USERS.alice.address, m1);
      await gw.waitForMail(USERS.bob.address, m2);
    } finally {
      await c.quit();
    }
  });
});
