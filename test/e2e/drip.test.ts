// A client that keeps the line busy without ever finishing: bytes dripped slower than a person
// types restart a socket's idle timer each time, so idle timeouts alone never end such a
// session. SMTP bounds each command line (test/e2e/limits.test.ts); IMAP and POP3 bound the time
// from connecting to logging in (imap.login_timeout, pop3.login_timeout), as Dovecot does; and
// smtp.max_session_time ends a session kept alive by NOOPs at the next command boundary.
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { assertReply, EXT_SENDER, USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { marker } from '../helpers/messages.js';
import { SmtpClient } from '../helpers/smtp-client.js';
import { sleep, waitFor } from '../helpers/wait.js';

const LOGIN_MS = 2000;

describe('a client that drips bytes and never logs in is dropped at the login timeout', { timeout: 120_000 }, () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({ users: userMap('alice'), config: { imap: { login_timeout: '2s' }, pop3: { login_timeout: '2s' } } });
  });
  after(async () => {
    await gw?.cleanup();
  });

  const cases = [
    { proto: 'IMAP', port: () => gw.ports.imap, line: 'a1 LOGIN alice@example.test this-is-never-finished', bye: /^\* BYE Autologout; no login in time\r\n/m },
    { proto: 'POP3', port: () => gw.ports.pop3, line: 'USER alice@example.test-and-never-finished', bye: /^-ERR Disconnected: no login in time\.\r\n/m },
  ];
  for (const c of cases) {
    it(`${c.proto}: a byte every ${LOGIN_MS / 5} ms keeps no session past ${LOGIN_MS} ms from connecting`, async () => {
      const sock = netConnect(c.port());
      sock.on('error', () => undefined);
      let text = '';
      sock.on('data', (b: Buffer) => {
        text += b.toString('latin1');
      });
      const closed = new Promise<number>((resolve) => sock.once('close', () => resolve(Date.now())));
      const connected = Date.now();
      let sent = 0;
      // Each byte well inside the idle timeout (30m / 10m): only the login deadline ends this.
      const drip = setInterval(() => {
        if (sent < c.line.length && !sock.destroyed) sock.write(c.line[sent++]!);
      }, LOGIN_MS / 5);
      try {
        const at = await Promise.race([closed, sleep(15_000).then(() => undefined)]);
        assert.ok(at !== undefined, `${c.proto}: still open 15 s after connecting (${sent} bytes dripped): ${JSON.stringify(text)}`);
        assert.ok(at - connected >= LOGIN_MS - 300 && at - connected < LOGIN_MS + 4000, `${c.proto}: closed ${at - connected} ms after connecting`);
        assert.ok(sent < c.line.length, 'the line was never finished');
        assert.match(text, c.bye);
        await waitFor(`${c.proto}: login_timeout logged`, () => gw.logs.some((l) => l.event === 'login_timeout'));
      } finally {
        clearInterval(drip);
        sock.destroy();
      }
    });
  }
});

describe('smtp.max_session_time: a session ends at the next command boundary after it, never inside a message', { timeout: 120_000 }, () => {
  const CAP_MS = 3000;
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({ users: userMap('alice'), config: { smtp: { max_session_time: '3s' } } });
  });
  after(async () => {
    await gw?.cleanup();
  });

  it('a NOOP every second keeps no session past the cap: 421 4.4.2', async () => {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      const started = Date.now();
      await c.ehlo();
      let last = await c.cmd('NOOP');
      while (last.code === 250 && Date.now() - started < CAP_MS + 5000) {
        await sleep(1000);
        last = await c.cmd('NOOP');
      }
      assertReply(last, 421, '4.4.2', c.describe());
      assert.match(last.lines.join(' '), /session too long/);
      assert.ok(Date.now() - started >= CAP_MS - 300, `421 after ${Date.now() - started} ms`);
      assert.ok(await c.waitClosed(3000), c.describe());
    } finally {
      c.close();
    }
  });

  it('a message whose DATA runs past the cap is accepted and delivered; the 421 comes after its 250', async () => {
    const subject = marker('session-cap');
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      await c.ehlo();
      assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250);
      assertReply(await c.cmd(`RCPT TO:<${USERS.alice.address}>`), 250);
      assertReply(await c.cmd('DATA'), 354);
      c.write(`From: <${EXT_SENDER}>\r\nTo: <${USERS.alice.address}>\r\nSubject: ${subject}\r\n\r\n`);
      await sleep(CAP_MS + 500);
      c.write('the rest of the body, after the cap\r\n.\r\n');
      const replies = await c.readReplies(2, 10_000);
      assertReply(replies[0]!, 250, undefined, c.describe());
      assertReply(replies[1]!, 421, '4.4.2', c.describe());
      assert.ok(await c.waitClosed(3000), c.describe());
    } finally {
      c.close();
    }
    await gw.waitForMail(USERS.alice.address, subject);
  });
});
