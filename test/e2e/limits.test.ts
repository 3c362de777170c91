// Protocol limits: message size (SIZE= and actual bytes), recipients per message, line length,
// idle timeout and error count; and a configured roles.mailbox.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { needTool, swaks } from '../helpers/clients.js';
import { assertReply, EXT_SENDER, USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { dataBlock, SmtpClient, transaction } from '../helpers/smtp-client.js';
import { sleep } from '../helpers/wait.js';

const MAX_SIZE = 64 * 1024;
const MAX_ERRORS = 5;
const MAX_RECIPIENTS = 3;
const MAX_LINE = 512;
const IDLE_MS = 2000;

describe('protocol limits', { timeout: 180_000 }, () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({
      users: { ...userMap('alice', 'bob'), 'security@example.test': 'Bx9*mQ5t-Gv3kJd8' },
      config: {
        smtp: { max_message_size: '64KiB', max_errors: MAX_ERRORS, max_recipients: MAX_RECIPIENTS, max_line_length: MAX_LINE, idle_timeout: '2s' },
        roles: { mailbox: 'security@example.test' },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
  });

  async function mx(): Promise<SmtpClient> {
    const c = await SmtpClient.connect(gw.ports.mx);
    await c.ehlo();
    return c;
  }

  it(`EHLO advertises SIZE ${MAX_SIZE} (64KiB)`, async () => {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      const { keywords } = await c.ehlo();
      assert.equal(keywords.get('SIZE'), String(MAX_SIZE), c.describe());
    } finally {
      await c.quit();
    }
  });

  it('MAIL FROM with SIZE= above smtp.max_message_size → 552 5.3.4', async () => {
    const c = await mx();
    try {
      assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}> SIZE=${MAX_SIZE + 1}`), 552, '5.3.4', c.describe());
      assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}> SIZE=${MAX_SIZE - 1024}`), 250, undefined, c.describe());
    } finally {
      await c.quit();
    }
  });

  it('a body larger than smtp.max_message_size → 552 5.3.4 after the data, nothing delivered, session still usable', async () => {
    const m = marker('big');
    const line = `${'y'.repeat(998)}\r\n`;
    const body = line.repeat(Math.ceil((MAX_SIZE * 2) / line.length));
    const c = await mx();
    try {
      const res = await transaction(c, EXT_SENDER, [USERS.alice.address], makeMessage({ from: EXT_SENDER, to: USERS.alice.address, subject: m, body }));
      assert.ok(res.final, `DATA should have been accepted first\n${c.describe()}`);
      assertReply(res.final!, 552, '5.3.4', c.describe());
      assertReply(await c.cmd('NOOP'), 250, undefined, `the session must stay in sync after 552\n${c.describe()}`);
      // And a small message in the same session still goes through.
      const ok = marker('small-after-big');
      const res2 = await transaction(c, EXT_SENDER, [USERS.alice.address], makeMessage({ from: EXT_SENDER, to: USERS.alice.address, subject: ok }));
      assertReply(res2.final!, 250, '2.0.0', c.describe());
      await gw.waitForMail(USERS.alice.address, ok);
    } finally {
      await c.quit();
    }
    assert.equal(gw.readMailbox(USERS.alice.address).filter((f) => f.content.includes(m)).length, 0, 'the oversized message was stored');
    const queue = await gw.queueList();
    const big = queue.filter((e) => e.size > MAX_SIZE);
    assert.deepEqual(big, [], 'the oversized message must not be queued');
  });

  it('swaks with a body above the limit gets 552 5.3.4 (swaks exit 26)', async (t) => {
    if (!needTool(t, 'swaks')) return;
    const r = await swaks(gw.ports.mx, ['--from', EXT_SENDER, '--to', USERS.bob.address, '--body', 'z'.repeat(MAX_SIZE + 4096)]);
    assert.equal(r.code, 26, r.transcript.slice(0, 4000));
    assert.ok(r.serverLines.some((l) => /^552 5\.3\.4/.test(l)), r.transcript.slice(-2000));
  });

  it(`a message just under the limit is accepted (control)`, async () => {
    const m = marker('under');
    const body = `${'a'.repeat(70)}\r\n`.repeat(Math.floor((MAX_SIZE - 4096) / 72));
    const c = await mx();
    try {
      const res = await transaction(c, EXT_SENDER, [USERS.bob.address], makeMessage({ from: EXT_SENDER, to: USERS.bob.address, subject: m, body }));
      assertReply(res.final!, 250, '2.0.0', c.describe());
    } finally {
      await c.quit();
    }
    await gw.waitForMail(USERS.bob.address, m);
  });

  it(`more than smtp.max_recipients (${MAX_RECIPIENTS}) RCPTs → 452 4.5.3 for the extra ones`, async () => {
    const c = await mx();
    try {
      assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250, undefined, c.describe());
      // Distinct recipients: the gateway may fold a repeated RCPT into one.
      for (const r of [USERS.alice.address, USERS.bob.address, 'security@example.test']) assertReply(await c.cmd(`RCPT TO:<${r}>`), 250, undefined, c.describe());
      assertReply(await c.cmd('RCPT TO:<postmaster@example.test>'), 452, '4.5.3', c.describe());
    } finally {
      await c.quit();
    }
  });

  it(`a command line longer than smtp.max_line_length (${MAX_LINE}) → 500 5.5.2, one reply, session still in sync`, async () => {
    const c = await mx();
    try {
      const r = await c.cmd(`NOOP ${'x'.repeat(MAX_LINE * 4)}`);
      assertReply(r, 500, '5.5.2', c.describe());
      const extra = await c.collect(500);
      assert.deepEqual(extra.map((x) => x.raw), [], `only one reply for the long line\n${c.describe()}`);
      assertReply(await c.cmd('NOOP'), 250, undefined, c.describe());
    } finally {
      await c.quit();
    }
  });

  it(`idle for longer than smtp.idle_timeout (2s) → 421 4.4.2 and the connection is closed`, async () => {
    const c = await mx();
    try {
      const started = Date.now();
      const r = await c.readReply(IDLE_MS + 8000);
      const waited = Date.now() - started;
      assertReply(r, 421, '4.4.2', c.describe());
      assert.ok(waited >= IDLE_MS - 300, `421 came after ${waited} ms, before the idle timeout`);
      assert.ok(await c.waitClosed(3000), `connection should be closed after 421\n${c.describe()}`);
    } finally {
      c.close();
    }
  });

  it('a command dripped one byte at a time is cut smtp.idle_timeout after its first byte (Postfix smtpd_per_record_deadline) → 421 4.4.2', async () => {
    const c = await mx();
    const line = `MAIL FROM:<${EXT_SENDER}>`;
    let sent = 0;
    // Each byte comes well inside the idle timeout, so only a per-line deadline ends this.
    const drip = setInterval(() => {
      if (sent < line.length) c.write(line[sent++]!);
    }, IDLE_MS / 5);
    try {
      const started = Date.now();
      const r = await c.readReply(IDLE_MS + 8000);
      const waited = Date.now() - started;
      assertReply(r, 421, '4.4.2', c.describe());
      assert.ok(sent < line.length, `the whole line was sent (${sent} bytes) before the 421`);
      assert.ok(waited >= IDLE_MS - 300 && waited < IDLE_MS * 2.5, `421 after ${waited} ms; expected about ${IDLE_MS}`);
      assert.ok(await c.waitClosed(3000), c.describe());
    } finally {
      clearInterval(drip);
      c.close();
    }
  });

  it('idle timeout applies before EHLO too (silent client after connect) → 421 4.4.2', async () => {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      const r = await c.readReply(IDLE_MS + 8000);
      assertReply(r, 421, '4.4.2', c.describe());
      assert.ok(await c.waitClosed(3000), c.describe());
    } finally {
      c.close();
    }
  });

  it(`too many errors (smtp.max_errors ${MAX_ERRORS}) → 421 4.7.0 and close`, async () => {
    const c = await mx();
    try {
      const replies = [];
      let got421 = false;
      for (let i = 0; i < MAX_ERRORS + 2 && !got421; i++) {
        const r = await c.cmd(`BOGUS${i}`);
        replies.push(r);
        if (r.code === 421) {
          got421 = true;
          assertReply(r, 421, '4.7.0', c.describe());
          assert.ok(i >= MAX_ERRORS - 1, `421 after only ${i + 1} errors\n${c.describe()}`);
        } else {
          assertReply(r, [500, 502], /^5\.5\./, c.describe());
          // Some servers send the 421 right after the error reply that crossed the limit.
          const more = await c.collect(i >= MAX_ERRORS - 1 ? 300 : 0);
          for (const x of more) {
            if (x.code === 421) {
              got421 = true;
              assertReply(x, 421, '4.7.0', c.describe());
            }
          }
        }
      }
      assert.ok(got421, `no 421 after ${MAX_ERRORS + 2} bad commands\n${c.describe()}`);
      assert.ok(await c.waitClosed(3000), `connection should be closed after 421\n${c.describe()}`);
    } finally {
      c.close();
    }
  });

  it('roles.mailbox set to security@example.test: postmaster@ and abuse@ of both domains are delivered there', async () => {
    const m = marker('roles-custom');
    // Two transactions of two recipients each: smtp.max_recipients is 3 here.
    for (const rcpts of [['postmaster@example.test', 'abuse@second.test'], ['abuse@example.test', 'postmaster@second.test']]) {
      const c = await mx();
      try {
        const res = await transaction(c, EXT_SENDER, rcpts, makeMessage({ from: EXT_SENDER, to: rcpts[0]!, subject: `${m} ${rcpts.join(' ')}` }));
        for (const r of res.rcpts) assertReply(r, 250, undefined, c.describe());
        assertReply(res.final!, 250, '2.0.0', c.describe());
      } finally {
        await c.quit();
      }
      await gw.waitForMail('security@example.test', `${m} ${rcpts.join(' ')}`);
    }
    await sleep(300);
    assert.equal(gw.readMailbox('postmaster@example.test').filter((f) => f.content.includes(m)).length, 0,
      'nothing should go to postmaster@example.test when roles.mailbox points elsewhere');
  });

  it('the data phase is raw bytes: a large message written in one burst without waiting is handled (no deadlock)', async () => {
    const m = marker('burst');
    const c = await mx();
    try {
      c.write(`MAIL FROM:<${EXT_SENDER}>\r\nRCPT TO:<${USERS.bob.address}>\r\nDATA\r\n`);
      const [a, b, d] = await c.readReplies(3);
      assert.deepEqual([a!.code, b!.code, d!.code], [250, 250, 354], c.describe());
      c.write(dataBlock(makeMessage({ from: EXT_SENDER, to: USERS.bob.address, subject: m, body: `${'q'.repeat(76)}\r\n`.repeat(700) })));
      assertReply(await c.readReply(30_000), 250, '2.0.0', c.describe());
    } finally {
      await c.quit();
    }
    await gw.waitForMail(USERS.bob.address, m);
  });
});
