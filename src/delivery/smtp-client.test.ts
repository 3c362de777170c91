// The outbound SMTP client against smtp-server (an independent implementation) behind a
// recording TCP proxy, so that what went out on the wire is visible per write; and against
// scripted servers for what good servers never do: hang, reset, answer garbage or too much.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Readable } from 'node:stream';
import { SMTPServer } from 'smtp-server';
import { DotStuffer, SmtpClientError, SmtpSession, parseExtensions, type SessionOptions } from './smtp-client.js';
import { opportunisticTls, type HostTlsPolicy } from './outbound-tls.js';
import type { Content } from './types.js';

const content = (text: string | Buffer, chunk = 0): Content => {
  const buf = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const parts = chunk ? Array.from({ length: Math.ceil(buf.length / chunk) }, (_, i) => buf.subarray(i * chunk, (i + 1) * chunk)) : [buf];
  return { size: buf.length, stream: () => Readable.from(parts) };
};

interface Received { from: string; to: string[]; raw: Buffer; secure: boolean; helo: string }

async function smtpServer(opts: Record<string, unknown> = {}): Promise<{ port: number; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server = new SMTPServer({
    logger: false, authOptional: true, disableReverseLookup: true, disabledCommands: ['AUTH'], size: 1_000_000, closeTimeout: 500,
    onRcptTo(address, _s, cb) {
      const local = address.address.split('@')[0];
      if (local === 'bad') return cb(Object.assign(new Error('5.1.1 no such user'), { responseCode: 550 }));
      if (local === 'soft') return cb(Object.assign(new Error('4.2.1 mailbox busy'), { responseCode: 450 }));
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks), secure: session.secure, helo: session.hostNameAppearsAs });
        cb(null, 'queued as TEST1');
      });
    },
    ...opts,
  } as ConstructorParameters<typeof SMTPServer>[0]);
  server.on('error', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.server.address() as net.AddressInfo).port;
  return { port, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A TCP proxy that records every chunk the client sent, as it arrived. */
async function recordingProxy(target: number): Promise<{ port: number; chunks: string[]; close: () => Promise<void> }> {
  const chunks: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (d) => { chunks.push(d.toString('latin1')); upstream.write(d); });
    upstream.pipe(client);
    const end = () => { client.destroy(); upstream.destroy(); };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port, chunks,
    close: () => { for (const s of sockets) s.destroy(); return new Promise<void>((r) => server.close(() => r())); },
  };
}

/** A server that runs a script on each connection. */
async function scripted(onConnection: (s: net.Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => { sockets.add(s); s.on('error', () => {}); onConnection(s); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, close: () => { for (const s of sockets) s.destroy(); return new Promise<void>((r) => server.close(() => r())); } };
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

const opts = (port: number, extra: Partial<SessionOptions> = {}): SessionOptions => ({
  address: '127.0.0.1', port, host: 'mx.remote.test', hostname: 'gw.ours.test', tls: undefined,
  timeouts: { connect: 2000, greeting: 2000, command: 2000, dataInit: 2000, dataBlock: 2000, dataDone: 2000 }, ...extra,
});

test('dot-stuffing across chunk boundaries, and the end of data', () => {
  const d = new DotStuffer();
  const out = Buffer.concat([d.push(Buffer.from('.start\r\nok\r')), d.push(Buffer.from('\n.mid\r\n')), d.push(Buffer.from('.')), d.push(Buffer.from('.two\r\nlast')), d.end()]).toString();
  assert.equal(out, '..start\r\nok\r\n..mid\r\n...two\r\nlast\r\n.\r\n');
  const e = new DotStuffer();
  assert.equal(Buffer.concat([e.push(Buffer.from('a\r\n')), e.end()]).toString(), 'a\r\n.\r\n');
  assert.deepEqual([...parseExtensions(['mx.test greets you', 'PIPELINING', 'SIZE 1000', 'size=5', 'STARTTLS'])], [['PIPELINING', ''], ['SIZE', '5'], ['STARTTLS', '']]);
});

test('pipelining: MAIL, every RCPT and DATA go in one write; replies are matched in order per recipient', async () => {
  const srv = await smtpServer();
  const proxy = await recordingProxy(srv.port);
  cleanups.push(srv.close, proxy.close);
  const s = await SmtpSession.open(opts(proxy.port));
  assert.ok(s.extensions.has('PIPELINING'));
  const body = 'Subject: pipelined\r\n\r\n.leading dot\r\nline\r\n..two dots\r\n';
  const r = await s.send({ from: 'alice@ours.test', to: ['ok@remote.test', 'bad@remote.test', 'soft@remote.test', 'ok2@remote.test'] }, content(body, 7));
  assert.equal(r.broken, undefined);
  assert.equal(r.mail?.code, 250);
  assert.deepEqual(r.rcpt.map((x) => x?.code), [250, 550, 450, 250]);
  assert.match(r.rcpt[1]!.text, /5\.1\.1 no such user/);
  assert.equal(r.data?.code, 354);
  assert.equal(r.done.length, 1);
  assert.match(r.done[0]!.text, /queued as TEST1/);
  const group = proxy.chunks.find((c) => c.startsWith('MAIL FROM:'));
  assert.equal(group, `MAIL FROM:<alice@ours.test> SIZE=${Buffer.byteLength(body)} BODY=8BITMIME\r\nRCPT TO:<ok@remote.test>\r\nRCPT TO:<bad@remote.test>\r\nRCPT TO:<soft@remote.test>\r\nRCPT TO:<ok2@remote.test>\r\nDATA\r\n`);
  assert.equal(srv.received.length, 1);
  assert.deepEqual(srv.received[0]!.to, ['ok@remote.test', 'ok2@remote.test']);
  assert.equal(srv.received[0]!.raw.toString(), body);
  assert.equal(srv.received[0]!.helo, 'gw.ours.test');
  // the session carries a second message (no RSET needed after a complete transaction)
  const r2 = await s.send({ from: '', to: ['ok@remote.test'] }, content('Subject: second\r\n\r\nx'));
  assert.equal(r2.done[0]?.code, 250);
  assert.equal(srv.received[1]!.raw.toString(), 'Subject: second\r\n\r\nx\r\n');
  assert.ok(!proxy.chunks.some((c) => c.startsWith('RSET')));
  await s.quit();
});

test('without PIPELINING each command waits for its reply; nothing is sent when every RCPT is refused', async () => {
  const srv = await smtpServer({ hidePIPELINING: true });
  const proxy = await recordingProxy(srv.port);
  cleanups.push(srv.close, proxy.close);
  const s = await SmtpSession.open(opts(proxy.port));
  assert.ok(!s.extensions.has('PIPELINING'));
  const r = await s.send({ from: 'a@ours.test', to: ['ok@remote.test', 'bad@remote.test'] }, content('Subject: x\r\n\r\nbody\r\n'));
  assert.deepEqual(r.rcpt.map((x) => x?.code), [250, 550]);
  assert.equal(r.done[0]?.code, 250);
  const cmds = proxy.chunks.filter((c) => /^(MAIL|RCPT|DATA)/.test(c));
  assert.deepEqual(cmds.map((c) => c.split(' ')[0]!.trim()), ['MAIL', 'RCPT', 'RCPT', 'DATA']);
  const none = await s.send({ from: 'a@ours.test', to: ['bad@remote.test'] }, content('Subject: y\r\n\r\nbody\r\n'));
  assert.equal(none.data, undefined);
  assert.equal(none.dataSent, false);
  assert.equal(srv.received.length, 1);
  // the next transaction begins with RSET (the last one stopped before its end)
  assert.ok(s.needsReset);
  assert.equal(await s.reset(), true);
  await s.quit();
});

test('SIZE and SMTPUTF8: refused before MAIL when the server cannot take the message', async () => {
  const srv = await smtpServer({ size: 100, hideSMTPUTF8: true });
  cleanups.push(srv.close);
  const s = await SmtpSession.open(opts(srv.port));
  const big = await s.send({ from: 'a@ours.test', to: ['ok@remote.test'] }, content(`Subject: big\r\n\r\n${'x'.repeat(200)}\r\n`));
  assert.match(big.refused ?? '', /^5\.3\.4 message of 218 octets exceeds the 100 octets/);
  const utf8 = await s.send({ from: 'a@ours.test', to: ['jörg@remote.test'] }, content('Subject: u\r\n\r\nx\r\n'));
  assert.match(utf8.refused ?? '', /^5\.6\.7 .*SMTPUTF8/);
  await s.quit();
});

test('STARTTLS: opportunistic upgrades; the policy check sees the peer; a required policy that fails refuses the host', async () => {
  const srv = await smtpServer({ disabledCommands: ['AUTH'] });
  cleanups.push(srv.close);
  const policy = await opportunisticTls.forHost('remote.test', 'mx.remote.test');
  const s = await SmtpSession.open(opts(srv.port, { tls: policy }));
  assert.deepEqual(s.tls, { secure: true, result: 'success' });
  const r = await s.send({ from: 'a@ours.test', to: ['ok@remote.test'] }, content('Subject: tls\r\n\r\nx\r\n'));
  assert.equal(r.done[0]?.code, 250);
  assert.equal(srv.received.at(-1)!.secure, true);
  await s.quit();

  let seen: { authorized: boolean; subject?: unknown } | undefined;
  const strict: HostTlsPolicy = {
    mode: 'required', servername: 'mx.remote.test', testing: false, policyType: 'sts',
    check: (peer, authorized) => { seen = { authorized, subject: peer.subject }; return authorized ? { ok: true } : { ok: false, reason: 'self-signed certificate', result: 'certificate-not-trusted' }; },
  };
  await assert.rejects(SmtpSession.open(opts(srv.port, { tls: strict })), (e: SmtpClientError) => e.kind === 'tls' && e.tlsResult === 'certificate-not-trusted' && /TLS certificate refused: self-signed/.test(e.message));
  assert.equal(seen?.authorized, false); // smtp-server's built-in certificate is self-signed
  assert.ok(seen?.subject);
  // testing mode: the failure is reported, the session goes on
  const testing = await SmtpSession.open(opts(srv.port, { tls: { ...strict, testing: true } }));
  assert.deepEqual(testing.tls, { secure: true, result: 'certificate-not-trusted', detail: 'self-signed certificate' });
  await testing.quit();

  const plain = await smtpServer({ hideSTARTTLS: true });
  cleanups.push(plain.close);
  await assert.rejects(SmtpSession.open(opts(plain.port, { tls: strict })), (e: SmtpClientError) => e.tlsResult === 'starttls-not-supported');
  const opp = await SmtpSession.open(opts(plain.port, { tls: policy }));
  assert.deepEqual(opp.tls, { secure: false, result: 'starttls-not-supported', detail: 'STARTTLS not offered' });
  await opp.quit();
});

test('servers that hang, reset or answer garbage: a clear error within the timeouts', async () => {
  const t = { connect: 500, greeting: 400, command: 400, dataInit: 400, dataBlock: 400, dataDone: 400 };
  const cases: [string, (s: net.Socket) => void, RegExp][] = [
    ['silent', () => {}, /no reply to greeting within 400 ms/],
    ['garbage', (s) => s.write('hello, I am not SMTP\r\n'), /protocol error: not an SMTP reply: "hello, I am not SMTP"/],
    ['endless line', (s) => s.write('220 '.padEnd(10_000, 'x')), /reply line longer than 4096 octets/],
    ['endless reply', (s) => s.write('220-x\r\n'.repeat(200)), /reply of more than 100 lines/],
    ['reset', (s) => s.destroy(), /connection closed by the server|ECONNRESET/],
    ['421', (s) => s.end('421 4.3.2 go away\r\n'), /said to greeting: 421 4\.3\.2 go away/],
  ];
  for (const [name, script, expected] of cases) {
    const srv = await scripted(script);
    cleanups.push(srv.close);
    const started = Date.now();
    await assert.rejects(SmtpSession.open(opts(srv.port, { timeouts: t })), (e: Error) => {
      assert.ok(e instanceof SmtpClientError, name);
      assert.match(e.message, expected, name);
      return true;
    });
    assert.ok(Date.now() - started < 1500, `${name} took ${Date.now() - started} ms`);
  }
  // a server that resets after MAIL: the transaction reports the break, nothing else
  const srv = await scripted((s) => {
    s.write('220 ok\r\n');
    s.on('data', (d) => {
      const text = d.toString();
      if (text.startsWith('EHLO')) s.write('250-hi\r\n250 PIPELINING\r\n');
      else if (text.startsWith('MAIL')) s.destroy();
    });
  });
  cleanups.push(srv.close);
  const s = await SmtpSession.open(opts(srv.port, { timeouts: t }));
  const r = await s.send({ from: 'a@ours.test', to: ['x@remote.test'] }, content('x\r\n'));
  assert.ok(r.broken);
  assert.equal(r.mail, undefined);
  assert.equal(r.dataSent, false);
  s.close();
  // a server that takes the data and never answers: bounded by the data timeout
  const slow = await scripted((sock) => {
    sock.write('220 ok\r\n');
    sock.on('data', (d) => {
      const text = d.toString();
      if (text.startsWith('EHLO')) sock.write('250 hi\r\n');
      else if (/^(MAIL|RCPT)/.test(text)) sock.write('250 ok\r\n');
      else if (text.startsWith('DATA')) sock.write('354 go\r\n');
    });
  });
  cleanups.push(slow.close);
  const s2 = await SmtpSession.open(opts(slow.port, { timeouts: t }));
  const started = Date.now();
  const r2 = await s2.send({ from: 'a@ours.test', to: ['x@remote.test'] }, content('x\r\n'));
  assert.ok(Date.now() - started < 1500);
  assert.equal(r2.dataSent, true);
  assert.match(r2.broken?.message ?? '', /no reply to end of data within 400 ms/);
  s2.close();
});
