// Hostile input: every fault gets BAD or NO, memory stays bounded, the server keeps serving.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { RawImap, startHarness, type Harness } from './harness.js';

describe('IMAP hostile input', { timeout: 120_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ imap: { max_bad_commands: 5, max_connections_per_ip: 40 }, maxMessageSize: 1024 * 1024 });
  });
  after(async () => {
    await h?.close();
  });

  async function serves(): Promise<void> {
    const c = await RawImap.connect(h.tlsPort, true);
    assert.equal((await c.login()).status, 'OK');
    assert.equal((await c.cmd('SELECT INBOX')).status, 'OK');
    c.close();
  }

  it('a huge literal announced (sync) gets NO [TOOBIG] without a "+"; a non-sync one is discarded, then BAD/NO', async () => {
    const c = await RawImap.connect(h.tlsPort, true);
    await c.login();
    const r = await c.cmd('APPEND INBOX {999999999999}');
    assert.equal(r.status, 'NO');
    assert.match(r.text, /TOOBIG/);
    assert.ok(!r.untagged.some((l) => l.startsWith('+')));
    const big = 2 * 1024 * 1024;
    c.write(`X1 APPEND INBOX {${big}+}\r\n`);
    c.write(Buffer.alloc(big, 0x61));
    c.write('\r\n');
    const r2 = await c.waitTagged('X1');
    assert.equal(r2.status, 'NO');
    assert.equal((await c.cmd('NOOP')).status, 'OK');
    const lit = await c.cmd('LIST "" {100000}');
    assert.equal(lit.status, 'BAD'); // literals outside APPEND are limited to max_line
    c.close();
    await serves();
  });

  it('a 100 KB line is refused with BAD and the connection goes on', async () => {
    const c = await RawImap.connect(h.tlsPort, true);
    const r = await c.cmd(`NOOP ${'x'.repeat(100 * 1024)}`);
    assert.equal(r.status, 'BAD');
    assert.equal((await c.cmd('NOOP')).status, 'OK');
    c.close();
  });

  it('deep parentheses, unbalanced lists, bad quoting, unknown commands: BAD; too many BADs close the connection', async () => {
    const c = await RawImap.connect(h.tlsPort, true);
    await c.login();
    await c.cmd('SELECT INBOX');
    assert.equal((await c.cmd(`FETCH 1 ${'('.repeat(5000)}${')'.repeat(5000)}`)).status, 'BAD');
    assert.equal((await c.cmd('LIST "" "unterminated')).status, 'BAD');
    assert.equal((await c.cmd('FROBNICATE')).status, 'BAD');
    assert.equal((await c.cmd('SEARCH ((((((((((((((((((((((((((((((((((((ALL))))))))))))))))))))))))))))))))))')).status, 'BAD');
    const last = await c.cmd('FETCH 1:* (BODY[1.2.3.4.5.6.7.8.9.1.2.3.4.5.6.7.8.9.1.2.3.4.5.6.7.8.9.1.2.3.4.5.6.7.8])');
    assert.equal(last.status, 'BAD');
    await c.readUntil(() => c.closed, 5000);
    assert.ok(c.closed, 'connection closed after max_bad_commands');
    await serves();
  });

  it('garbage bytes and NUL never crash the server', async () => {
    for (let i = 0; i < 5; i++) {
      const c = await RawImap.connect(h.plainPort);
      c.write(crypto.randomBytes(20_000));
      c.write('\r\n\x00\x00 LOGIN \x00 \x00\r\n* * *\r\n{5}\r\n');
      await new Promise((r) => setTimeout(r, 100));
      c.close();
    }
    await serves();
  });

  it('sequence numbers beyond the mailbox, bad sets and bad STORE items are BAD, not a crash', async () => {
    await h.deliver('Subject: one\r\n\r\nbody\r\n');
    for (const q of ['FETCH 99 FLAGS', 'FETCH 0 FLAGS', 'FETCH 1:x FLAGS', 'FETCH 1 (BODY[HEADER.FIELDS ()])', 'STORE 1 FLAGZ (\\Seen)',
      'STORE 1 +FLAGS (\\Bogus)', 'UID FETCH 1:4294967296 FLAGS', 'COPY 1']) {
      // One connection per probe: max_bad_commands is 5 here.
      const c = await RawImap.connect(h.tlsPort, true);
      await c.login();
      await c.cmd('SELECT INBOX');
      const r = await c.cmd(q);
      assert.equal(r.status, 'BAD', `${q}: ${r.raw}`);
      c.close();
    }
  });

  it('connection limit per IP: the connection over the limit gets BYE', async () => {
    const clients: RawImap[] = [];
    try {
      for (let i = 0; i < 40; i++) clients.push(await RawImap.connect(h.plainPort));
      const extra = await RawImap.connect(h.plainPort);
      assert.match(extra.greeting, /^\* BYE Too many connections/);
      extra.close();
    } finally {
      for (const c of clients) c.close();
    }
    await new Promise((r) => setTimeout(r, 200));
    await serves();
  });
});
