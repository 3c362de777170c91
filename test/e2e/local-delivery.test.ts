// Local delivery on the MX: unknown users refused at RCPT, known users get the message in their
// Maildir byte for byte (after the headers the gateway prepends), role addresses and aliases.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { needTool, pyProbe, swaks } from '../helpers/clients.js';
import { assertReply, EXT_SENDER, plainToken, USERS, userMap } from '../helpers/fixtures.js';
import { LOCAL_DOMAINS, startGateway, type Gateway } from '../helpers/gateway.js';
import { isHeaderBlock, makeMessage, marker, splitPrepended } from '../helpers/messages.js';
import { dataBlock, queuedId, SmtpClient, transaction } from '../helpers/smtp-client.js';
import { sleep } from '../helpers/wait.js';

describe('local delivery to Maildir', { timeout: 180_000 }, () => {
  let gw: Gateway;
  const rolesMailbox = `postmaster@${LOCAL_DOMAINS[0]}`;
  before(async () => {
    gw = await startGateway({ users: userMap('alice', 'bob', 'carol'), aliases: { 'info@example.test': [USERS.bob.address] } });
  });
  after(async () => {
    await gw?.cleanup();
  });

  async function mx(): Promise<SmtpClient> {
    const c = await SmtpClient.connect(gw.ports.mx);
    await c.ehlo();
    return c;
  }

  for (const addr of ['nobody@example.test', 'no.such.user@second.test', 'alice2@example.test']) {
    it(`RCPT to unknown local user ${addr} → 550 5.1.1 at RCPT time`, async () => {
      const c = await mx();
      try {
        assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250, undefined, c.describe());
        assertReply(await c.cmd(`RCPT TO:<${addr}>`), 550, '5.1.1', c.describe());
        const data = await c.cmd('DATA');
        assert.ok(data.code >= 500, `DATA without a valid recipient must fail: ${data.raw}\n${c.describe()}`);
      } finally {
        await c.quit();
      }
    });
  }

  it('known user: message stored in <data_dir>/mail/<domain>/<local>/new/, byte-identical after prepended headers, Received: first', async () => {
    const m = marker('bytes');
    // Dot-stuffing, an 8-bit UTF-8 line, trailing spaces, a long line, a lone "." line and tabs.
    const body =
      `First line ${m}\r\n` +
      '.starts with a dot\r\n' +
      '..two dots\r\n' +
      '.\r\n' +
      'Grüße, Ωμέγα — ✓\r\n' +
      'trailing spaces   \r\n' +
      '\ttab-indented\r\n' +
      `${'x'.repeat(900)}\r\n` +
      '\r\n' +
      'last line\r\n';
    const original = makeMessage({ from: EXT_SENDER, to: USERS.alice.address, subject: m, body });
    const c = await mx();
    try {
      const res = await transaction(c, EXT_SENDER, [USERS.alice.address], original, 'BODY=8BITMIME');
      assertReply(res.final!, 250, '2.0.0', c.describe());
      assert.ok(queuedId(res.final!), c.describe());
    } finally {
      await c.quit();
    }
    const stored = await gw.waitForMail(USERS.alice.address, m);
    const files = gw.readMailbox(USERS.alice.address).filter((f) => f.content.includes(m));
    assert.equal(files.length, 1, 'exactly one copy');
    assert.match(files[0]!.file, /[/\\]mail[/\\]example\.test[/\\]alice[/\\]new[/\\][^/\\]+$/);
    const split = splitPrepended(stored, Buffer.from(original, 'utf8'));
    assert.ok(split, `stored message must end with the original bytes unchanged\n--- stored:\n${stored.toString('utf8').slice(0, 3000)}`);
    assert.match(split.prefix, /^Received: /, `first prepended line is Received:\n${split.prefix}`);
    assert.ok(isHeaderBlock(split.prefix), `prepended part is header fields only (CRLF):\n${JSON.stringify(split.prefix)}`);
  });

  it('known user in the second local domain, domain in upper case (CAROL@SECOND.TEST) → delivered to carol', async () => {
    const m = marker('case');
    const c = await mx();
    try {
      const res = await transaction(c, EXT_SENDER, ['CAROL@SECOND.TEST'], makeMessage({ from: EXT_SENDER, to: 'CAROL@SECOND.TEST', subject: m }));
      assertReply(res.final!, 250, '2.0.0', c.describe());
    } finally {
      await c.quit();
    }
    await gw.waitForMail(USERS.carol.address, m);
  });

  it('one message to two local users is stored once in each mailbox', async () => {
    const m = marker('two');
    const c = await mx();
    try {
      const res = await transaction(c, EXT_SENDER, [USERS.alice.address, USERS.bob.address], makeMessage({ from: EXT_SENDER, to: USERS.alice.address, subject: m }));
      assertReply(res.final!, 250, '2.0.0', c.describe());
    } finally {
      await c.quit();
    }
    await gw.waitForMail(USERS.alice.address, m);
    await gw.waitForMail(USERS.bob.address, m);
    await sleep(300);
    assert.equal(gw.readMailbox(USERS.alice.address).filter((f) => f.content.includes(m)).length, 1);
    assert.equal(gw.readMailbox(USERS.bob.address).filter((f) => f.content.includes(m)).length, 1);
  });

  for (const domain of LOCAL_DOMAINS) {
    for (const role of ['postmaster', 'abuse']) {
      it(`role address ${role}@${domain} is accepted without an account and lands in the roles mailbox (${rolesMailbox})`, async () => {
        const m = marker(`role-${role}`);
        const c = await mx();
        try {
          const res = await transaction(c, EXT_SENDER, [`${role}@${domain}`], makeMessage({ from: EXT_SENDER, to: `${role}@${domain}`, subject: m }));
          assertReply(res.rcpts[0]!, 250, undefined, c.describe());
          assertReply(res.final!, 250, '2.0.0', c.describe());
        } finally {
          await c.quit();
        }
        await gw.waitForMail(rolesMailbox, m);
      });
    }
  }

  it('role addresses are case-insensitive: POSTMASTER@Example.Test is accepted and delivered to the roles mailbox', async () => {
    const m = marker('role-case');
    const c = await mx();
    try {
      const res = await transaction(c, EXT_SENDER, ['POSTMASTER@Example.Test'], makeMessage({ from: EXT_SENDER, to: 'POSTMASTER@Example.Test', subject: m }));
      assertReply(res.final!, 250, '2.0.0', c.describe());
    } finally {
      await c.quit();
    }
    await gw.waitForMail(rolesMailbox, m);
  });

  it('RCPT TO:<postmaster> without a domain is accepted (RFC 5321 4.5.1) and delivered to the roles mailbox', async () => {
    const m = marker('bare-postmaster');
    const c = await mx();
    try {
      const res = await transaction(c, EXT_SENDER, ['postmaster'], makeMessage({ from: EXT_SENDER, to: 'postmaster', subject: m }));
      assertReply(res.rcpts[0]!, 250, undefined, c.describe());
      assertReply(res.final!, 250, '2.0.0', c.describe());
    } finally {
      await c.quit();
    }
    await gw.waitForMail(rolesMailbox, m);
  });

  it('an alias made with `alias add` delivers to its target mailbox (info@example.test → bob)', async () => {
    const m = marker('alias');
    const c = await mx();
    try {
      const res = await transaction(c, EXT_SENDER, ['info@example.test'], makeMessage({ from: EXT_SENDER, to: 'info@example.test', subject: m }));
      assertReply(res.final!, 250, '2.0.0', c.describe());
    } finally {
      await c.quit();
    }
    await gw.waitForMail(USERS.bob.address, m);
    const list = await gw.cliOk(['alias', 'list']);
    assert.match(list.stdout, /info@example\.test/);
  });

  it('swaks to a local user: exit 0 and "250 2.0.0 Ok: queued as <ID>"', async (t) => {
    if (!needTool(t, 'swaks')) return;
    const m = marker('swaks-local');
    const r = await swaks(gw.ports.mx, ['--from', EXT_SENDER, '--to', USERS.bob.address, '--header', `Subject: ${m}`]);
    assert.equal(r.code, 0, r.transcript);
    assert.ok(r.serverLines.some((l) => /^250 2\.0\.0 Ok: queued as \S+/.test(l)), r.transcript);
    await gw.waitForMail(USERS.bob.address, m);
  });

  it('smtplib sendmail-style session to a local user and to an unknown one: the unknown is refused with 550, the message delivered', async (t) => {
    if (!needTool(t, 'python3')) return;
    const m = marker('py-local');
    const r = await pyProbe({
      port: gw.ports.mx, mode: 'starttls', mail_from: EXT_SENDER, rcpt_to: [USERS.carol.address, 'ghost@second.test'],
      message: makeMessage({ from: EXT_SENDER, to: USERS.carol.address, subject: m }),
    });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.refused?.['ghost@second.test']?.[0], 550, JSON.stringify(r));
    assert.match(r.data_reply?.[1] ?? '', /queued as/);
    await gw.waitForMail(USERS.carol.address, m);
  });

  it('a message with bare LF line ends (bare_newline: normalize) is accepted and stored with CRLF line ends only', async () => {
    const m = marker('bare-lf');
    const c = await mx();
    try {
      assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250, undefined, c.describe());
      assertReply(await c.cmd(`RCPT TO:<${USERS.alice.address}>`), 250, undefined, c.describe());
      assertReply(await c.cmd('DATA'), 354, undefined, c.describe());
      c.write(`Subject: ${m}\nFrom: <${EXT_SENDER}>\n\nline one\nline two\r\n.\r\n`);
      assertReply(await c.readReply(30_000), 250, '2.0.0', c.describe());
    } finally {
      await c.quit();
    }
    const stored = (await gw.waitForMail(USERS.alice.address, m)).toString('latin1');
    assert.doesNotMatch(stored, /[^\r]\n/, `bare LF left in the stored message: ${JSON.stringify(stored)}`);
    assert.match(stored, /line one\r\nline two\r\n/);
  });

  it('Received: says "with ESMTPS" for a STARTTLS session and "with ESMTPSA" for an authenticated one (RFC 3848)', async () => {
    const m1 = marker('esmtps');
    const c = await mx();
    try {
      assertReply(await c.startTls(), 220, undefined, c.describe());
      await c.ehlo();
      const res = await transaction(c, EXT_SENDER, [USERS.alice.address], makeMessage({ from: EXT_SENDER, to: USERS.alice.address, subject: m1 }));
      assertReply(res.final!, 250, '2.0.0', c.describe());
    } finally {
      await c.quit();
    }
    const s1 = (await gw.waitForMail(USERS.alice.address, m1)).toString('utf8');
    const rec1 = /^Received:[^]*?(?=\r\n\S)/.exec(s1)?.[0] ?? '';
    assert.match(rec1, /\bwith ESMTPS\b/, rec1);
    assert.match(rec1, /by mx\.example\.test\b/, rec1);

    const m2 = marker('esmtpsa');
    const d = await SmtpClient.connect(gw.ports.submissions, { implicitTls: true });
    try {
      await d.ehlo();
      assertReply(await d.cmd(`AUTH PLAIN ${plainToken(USERS.carol.address, USERS.carol.password)}`), 235, '2.7.0', d.describe());
      const res = await transaction(d, USERS.carol.address, [USERS.alice.address], makeMessage({ from: USERS.carol.address, to: USERS.alice.address, subject: m2 }));
      assertReply(res.final!, 250, '2.0.0', d.describe());
    } finally {
      await d.quit();
    }
    const s2 = (await gw.waitForMail(USERS.alice.address, m2)).toString('utf8');
    const rec2 = /^Received:[^]*?(?=\r\n\S)/.exec(s2)?.[0] ?? '';
    assert.match(rec2, /\bwith ESMTPSA\b/, rec2);
  });

  it('forged verdict headers in an incoming message (X-Spam-Status, Authentication-Results for our hostname) are not delivered as sent', async () => {
    const m = marker('forged');
    const msg = makeMessage({
      from: EXT_SENDER, to: USERS.alice.address, subject: m,
      extraHeaders: ['X-Spam-Status: No, score=-100 forged', 'Authentication-Results: mx.example.test; dkim=pass header.d=bank.example forged'],
    });
    const c = await mx();
    try {
      const res = await transaction(c, EXT_SENDER, [USERS.alice.address], msg);
      assertReply(res.final!, 250, '2.0.0', c.describe());
    } finally {
      await c.quit();
    }
    const stored = (await gw.waitForMail(USERS.alice.address, m)).toString('utf8');
    assert.doesNotMatch(stored, /score=-100 forged/, 'forged X-Spam-Status kept');
    assert.doesNotMatch(stored, /header\.d=bank\.example forged/, 'forged Authentication-Results for our authserv-id kept');
  });

  it('a 250 reply is given only after the message is on disk: the Maildir copy appears even if the gateway is killed right after', async () => {
    const m = marker('durable');
    const c = await mx();
    let id: string | undefined;
    try {
      c.write(`MAIL FROM:<${EXT_SENDER}>\r\nRCPT TO:<${USERS.bob.address}>\r\nDATA\r\n`);
      await c.readReplies(3);
      c.write(dataBlock(makeMessage({ from: EXT_SENDER, to: USERS.bob.address, subject: m })));
      const final = await c.readReply(30_000);
      assertReply(final, 250, '2.0.0', c.describe());
      id = queuedId(final);
    } finally {
      c.close();
    }
    await gw.kill();
    await gw.start();
    await gw.waitForMail(USERS.bob.address, m, 20_000);
    assert.ok(id);
  });
});
