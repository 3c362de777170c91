// Hostile and careless clients: over-long lines, binary garbage, commands in the wrong state,
// error floods, idle clients, too many connections, password guessing through the shared
// brute-force defence, and a graceful shutdown. After each, the server must still serve.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { OTHER, OTHER_PASSWORD, PASSWORD, RawClient, USER, loggedIn, startHarness } from './harness.js';

test('a 1 MB line, binary garbage and wrong-state commands get -ERR; the session and the server go on', async () => {
  const h = await startHarness({ pop3: { max_errors: 50 } });
  try {
    const c = await RawClient.connect(h.tlsPort, { implicitTls: true });
    await c.line();
    c.write(Buffer.alloc(1024 * 1024, 0x41));
    assert.equal(await c.cmd(''), '-ERR Line too long.');
    // 255 octets with CRLF is the RFC 2449 limit: accepted; one more is not.
    assert.equal(await c.cmd(`NOOP${' '.repeat(255 - 2 - 4)}`), '-ERR Not logged in.');
    assert.equal(await c.cmd(`NOOP${' '.repeat(255 - 2 - 3)}`), '-ERR Line too long.');
    c.write(Buffer.from(crypto.randomBytes(200).map((b) => (b === 0x0a ? 0x20 : b))));
    assert.equal(await c.cmd(''), '-ERR Unknown command.');
    c.write(Buffer.from(crypto.randomBytes(4096).map((b) => (b === 0x0a ? 0x20 : b))));
    assert.equal(await c.cmd(''), '-ERR Line too long.');
    assert.equal(await c.cmd('\x00\x01\x02\xff'), '-ERR Unknown command.');
    assert.equal(await c.cmd('GET / HTTP/1.1'), '-ERR Unknown command.');
    for (const cmd of ['STAT', 'LIST', 'UIDL 1', 'RETR 1', 'TOP 1 1', 'DELE 1', 'RSET', 'NOOP']) {
      assert.equal(await c.cmd(cmd), '-ERR Not logged in.', cmd);
    }
    assert.equal(await c.cmd(`PASS ${PASSWORD}`), '-ERR No username given.');
    assert.equal(await c.cmd('APOP alice c4c9334bac560ecc979e58001b3e22fb'), '-ERR APOP not enabled.');
    assert.equal(await c.cmd(`USER ${USER}`), '+OK');
    assert.equal(await c.cmd(`PASS ${PASSWORD}`), '+OK Logged in.');
    assert.equal(await c.cmd('RETR 1 x'), '-ERR Too many arguments.');
    assert.equal(await c.cmd('FOOBAR'), '-ERR Unknown command: FOOBAR');
    assert.equal(await c.cmd('XYZZ'), '-ERR Unknown command: XYZZ');
    assert.equal(await c.cmd('STAT'), '+OK 0 0');
    assert.equal(await c.cmd('QUIT'), '+OK Logging out.');
    const d = await loggedIn(h, OTHER, OTHER_PASSWORD);
    assert.equal(await d.cmd('NOOP'), '+OK');
    d.destroy();
  } finally {
    await h.close();
  }
});

test('too many bad commands close the connection', async () => {
  const h = await startHarness({ pop3: { max_errors: 5 } });
  try {
    const c = await RawClient.connect(h.plainPort);
    await c.line();
    for (let i = 0; i < 4; i++) assert.equal(await c.cmd('BOGUS'), '-ERR Unknown command.');
    assert.equal(await c.cmd('BOGUS'), '-ERR Unknown command.');
    assert.equal(await c.line(), '-ERR Too many bad commands.');
    await c.waitClosed();
  } finally {
    await h.close();
  }
});

test('an idle client is disconnected; a pipelined burst is answered in order', async () => {
  const h = await startHarness({ pop3: { idle_timeout: '1s' } });
  try {
    const c = await RawClient.connect(h.tlsPort, { implicitTls: true });
    await c.line();
    await h.deliver('Subject: p\r\n\r\np\r\n');
    c.write(`USER ${USER}\r\nPASS ${PASSWORD}\r\nSTAT\r\nNOOP\r\nLIST 1\r\n`);
    assert.equal(await c.line(), '+OK');
    assert.equal(await c.line(), '+OK Logged in.');
    assert.match(await c.line(), /^\+OK 1 \d+$/);
    assert.equal(await c.line(), '+OK');
    assert.match(await c.line(), /^\+OK 1 \d+$/);
    const t0 = Date.now();
    assert.equal(await c.line(), '-ERR Disconnected for inactivity.');
    assert.ok(Date.now() - t0 >= 800);
    await c.waitClosed();
    // The lock went with the session.
    const d = await loggedIn(h);
    d.destroy();
  } finally {
    await h.close();
  }
});

test('per-IP, per-user and total connection limits', async () => {
  const h = await startHarness({ pop3: { max_connections_per_ip: 2, max_connections_per_user: 1, max_connections: 3 } });
  try {
    const a = await RawClient.connect(h.plainPort);
    const b = await RawClient.connect(h.plainPort);
    assert.equal(await a.line(), '+OK Portcullis ready.');
    assert.equal(await b.line(), '+OK Portcullis ready.');
    const c = await RawClient.connect(h.plainPort);
    assert.equal(await c.line(), '-ERR [SYS/TEMP] Too many connections from your address.');
    await c.waitClosed();
    // Another loopback address is another client.
    const other = await RawClient.connect(h.tlsPort, { implicitTls: true, localAddress: '127.0.0.2' });
    assert.equal(await other.line(), '+OK Portcullis ready.');
    const over = await RawClient.connect(h.plainPort, { localAddress: '127.0.0.3' });
    assert.equal(await over.line(), '-ERR [SYS/TEMP] Too many connections, try again later.');
    a.destroy();
    b.destroy();
    // Per user: one session of alice's may be logging in or logged in at a time.
    await new Promise((r) => setTimeout(r, 100));
    const first = await loggedIn(h);
    await other.cmd(`USER ${USER}`);
    assert.equal(await other.cmd(`PASS ${PASSWORD}`), '-ERR [IN-USE] Too many sessions for this account.');
    first.destroy();
    await new Promise((r) => setTimeout(r, 100));
    await other.cmd(`USER ${USER}`);
    assert.equal(await other.cmd(`PASS ${PASSWORD}`), '+OK Logged in.');
    other.destroy();
    assert.ok(h.logs.some((l) => l.event === 'pop3_limit' && l.limit === 'ip'));
    assert.ok(h.logs.some((l) => l.event === 'pop3_login' && l.result === 'user_limit'));
  } finally {
    await h.close();
  }
});

test('password guessing is slowed and blocked by the shared brute-force defence; the user still logs in from elsewhere', { timeout: 60_000 }, async () => {
  const h = await startHarness({ bruteForce: { pair_limit: 3, base_delay: 100, max_delay: 400 } });
  try {
    const c = await RawClient.connect(h.tlsPort, { implicitTls: true });
    await c.line();
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      await c.cmd(`USER ${USER}`);
      assert.equal(await c.cmd(`PASS wrong-password-${i}`), '-ERR [AUTH] Authentication failed.');
      times.push(Date.now() - t0);
    }
    assert.ok(times[2]! >= 180, `the tarpit grows: ${times.join(', ')} ms`);
    // Blocked now: the right password gets the same answer, unchecked.
    await c.cmd(`USER ${USER}`);
    assert.equal(await c.cmd(`PASS ${PASSWORD}`), '-ERR [AUTH] Authentication failed.');
    const d = await RawClient.connect(h.tlsPort, { implicitTls: true });
    await d.line();
    assert.equal(await d.cmd(`AUTH PLAIN ${Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64')}`), '-ERR [AUTH] Authentication failed.');
    const results = h.logs.filter((l) => l.event === 'pop3_login').map((l) => l.result);
    assert.deepEqual(results.slice(0, 5), ['failed', 'failed', 'failed', 'blocked', 'blocked']);
    assert.ok((await h.store.scan('bf:b:pair:127.0.0.1|alice@example.org', 10)).length === 1, 'the block is in the shared store');
    // From another address the real user is not blocked.
    const e = await RawClient.connect(h.tlsPort, { implicitTls: true, localAddress: '127.0.0.2' });
    await e.line();
    await e.cmd(`USER ${USER}`);
    assert.equal(await e.cmd(`PASS ${PASSWORD}`), '+OK Logged in.');
    for (const x of [c, d, e]) x.destroy();
  } finally {
    await h.close();
  }
});

test('graceful close: idle sessions are told, a QUIT in progress is not cut, nothing listens afterwards', async () => {
  const h = await startHarness();
  const c = await RawClient.connect(h.plainPort);
  await c.line();
  const d = await loggedIn(h);
  await h.server.close(2000);
  assert.equal(await c.line(), '-ERR [SYS/TEMP] Server shutting down.');
  assert.equal(await d.line(), '-ERR [SYS/TEMP] Server shutting down.');
  await c.waitClosed();
  await assert.rejects(RawClient.connect(h.plainPort));
  await h.close();
});

test('a client that pipelines commands and never reads its answers is not buffered for without end', { timeout: 60_000 }, async () => {
  const h = await startHarness();
  try {
    for (let i = 0; i < 20; i++) await h.deliver(`Subject: ${i}\r\n\r\nbody\r\n`);
    const c = await loggedIn(h);
    c.socket.pause(); // never read again
    const burst = Buffer.from('UIDL\r\n'.repeat(4 * 1024 * 1024)); // 24 MiB of commands, ~4 GB of answers
    c.write(burst);
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(c.socket.writableLength > 0, 'the server stopped reading commands: our burst is still queued on our side');
    const rss = process.memoryUsage().rss;
    assert.ok(rss < 1024 ** 3, `memory stays bounded (rss ${Math.round(rss / 1024 ** 2)} MiB)`);
    c.destroy();
    const d = await loggedIn(h, OTHER, OTHER_PASSWORD);
    assert.equal(await d.cmd('NOOP'), '+OK');
    d.destroy();
  } finally {
    await h.close();
  }
});
