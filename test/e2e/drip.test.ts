// A client that keeps the line busy without ever finishing: bytes dripped slower than a person
// types restart a socket's idle timer each time, so idle timeouts alone never end such a
// session. SMTP bounds each command line (test/e2e/limits.test.ts); IMAP and POP3 bound the time
// from connecting to logging in (imap.login_timeout, pop3.login_timeout), as Dovecot does.
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
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
