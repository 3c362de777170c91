import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { generate } from 'selfsigned';
import { RelayDelivery, type RelayOptions } from './relay.js';
import type { Content, RecipientOutcome } from './types.js';
import type { RouteConfig } from '../config/schema.js';
import { silentLogger } from '../log.js';

// ---- a real peer on loopback -------------------------------------------------------------

interface Received {
  from: string | false;
  mailArgs: Record<string, unknown>;
  to: string[];
  data: Buffer;
  secure: boolean;
  helo: string;
}

interface SinkOptions {
  lmtp?: boolean;
  size?: number;
  tls?: { key: string; cert: string };
  port?: number;
  onMailFrom?: (address: string, session: SMTPServerSession, transaction: number) => Error | 'drop' | undefined;
  onRcptTo?: (address: string) => Error | undefined;
  /** SMTP: one error for the message; LMTP: one entry per recipient. 'hang' never answers. */
  onData?: (rcpts: string[]) => Error | (string | Error)[] | 'hang' | undefined;
}

interface Sink {
  port: number;
  server: SMTPServer;
  received: Received[];
  connections: number;
  closed: number;
  stop(): Promise<void>;
}

const reply = (code: number, text: string) => Object.assign(new Error(text), { responseCode: code });

// Whatever a test opened is closed at the end even when an assertion failed, so a failure
// never leaves the process hanging.
const cleanups: (() => Promise<void> | void)[] = [];

/** A raw TCP server whose sockets are destroyed at the end. */
async function listenRaw(onSocket: (sock: net.Socket) => void): Promise<{ port: number; stop(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    onSocket(sock);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const stop = () => {
    for (const sock of sockets) sock.destroy();
    server.close();
  };
  cleanups.push(stop);
  return { port: (server.address() as AddressInfo).port, stop };
}

async function startSink(o: SinkOptions = {}): Promise<Sink> {
  const transactions = new Map<string, number>();
  const sink: Sink = {
    port: 0,
    server: undefined as unknown as SMTPServer,
    received: [],
    connections: 0,
    closed: 0,
    stop: () => new Promise<void>((resolve) => sink.server.close(() => resolve())),
  };
  const server = new SMTPServer({
    lmtp: o.lmtp ?? false,
    ...(o.size ? { size: o.size } : {}),
    secure: false,
    authOptional: true,
    disabledCommands: o.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    ...(o.tls ? { key: o.tls.key, cert: o.tls.cert } : {}),
    logger: false,
    closeTimeout: 200,
    onConnect(_session, cb) {
      sink.connections += 1;
      cb();
    },
    onClose() {
      sink.closed += 1;
    },
    onMailFrom(address, session, cb) {
      const n = (transactions.get(session.id) ?? 0) + 1;
      transactions.set(session.id, n);
      const r = o.onMailFrom?.(address.address, session, n);
      if (r === 'drop') {
        for (const c of sink.server.connections) if (c.session === session) c._socket.destroy();
        return;
      }
      cb(r);
    },
    onRcptTo(address, _session, cb) {
      cb(o.onRcptTo?.(address.address));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const to = session.envelope.rcptTo.map((a) => a.address);
        const r = o.onData?.(to);
        if (r === 'hang') return;
        const mailFrom = session.envelope.mailFrom;
        if (!(r instanceof Error)) {
          const ok = Array.isArray(r) ? to.filter((_, i) => !(r[i] instanceof Error)) : to;
          sink.received.push({
            from: mailFrom ? mailFrom.address : false,
            mailArgs: (mailFrom ? (mailFrom as { args?: Record<string, unknown> }).args : undefined) ?? {},
            to: ok,
            data: Buffer.concat(chunks),
            secure: session.secure,
            helo: session.hostNameAppearsAs,
          });
        }
        (cb as (err: Error | null, message?: unknown) => void)(r instanceof Error ? r : null, r);
      });
    },
  });
  sink.server = server;
  cleanups.push(() => (server.server.listening ? sink.stop() : undefined));
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(o.port ?? 0, '127.0.0.1', resolve));
  sink.port = (server.server.address() as AddressInfo).port;
  return sink;
}

let certs: Promise<{ key: string; cert: string }> | undefined;
function testCert() {
  certs ??= generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048, algorithm: 'sha256', days: 1 } as never)
    .then((p) => ({ key: p.private, cert: p.cert }));
  return certs;
}

function route(port: number, extra: Partial<RouteConfig> = {}): RouteConfig {
  return { domain: '*', host: '127.0.0.1', port, protocol: 'smtp', tls: 'none', tls_verify: true, max_connections: 2, ...extra };
}

function contentOf(buf: Buffer, chunkSizes: number[] = [buf.length]): Content {
  return {
    size: buf.length,
    stream: () => {
      const parts: Buffer[] = [];
      let off = 0;
      for (let i = 0; off < buf.length; i++) {
        const n = chunkSizes[i % chunkSizes.length];
        parts.push(buf.subarray(off, off + n));
        off += n;
      }
      return Readable.from(parts);
    },
  };
}

const simple = (n: number) => contentOf(Buffer.from(`Subject: ${n}\r\n\r\nmessage ${n}\r\n`));

const relays: RelayDelivery[] = [];
function relay(extra: Partial<RelayOptions> = {}): RelayDelivery {
  const r = new RelayDelivery({ hostname: 'gw.example.org', logger: silentLogger(), ...extra });
  relays.push(r);
  return r;
}
after(async () => {
  await Promise.all(relays.map((r) => r.close()));
  await Promise.all(cleanups.map((c) => c()));
});

const statuses = (o: RecipientOutcome[]) => o.map((x) => x.status);

// ---- tests -------------------------------------------------------------------------------

test('SMTP: the message arrives byte-identical, dot-stuffing undone by the peer', async () => {
  const sink = await startSink();
  const r = relay();
  const body = Buffer.from(
    'From: <a@example.org>\r\nSubject: dots\r\n\r\n' +
    '.starts with a dot\r\n' +
    '.\r\n' +
    '..two dots\r\n' +
    'middle . dot\r\n' +
    'x\r\n.\r\n' +
    'caf\xc3\xa9 8-bit\r\n' +
    '.last\r\n', 'latin1');
  // chunk sizes that cut between CR and LF and between LF and "."
  for (const chunks of [[body.length], [1], [3, 7, 2], [41, 1, 1]]) {
    const out = await r.deliver(route(sink.port), { from: 'a@example.org', to: ['b@example.net'] }, contentOf(body, chunks));
    assert.deepEqual(statuses(out), ['delivered']);
    assert.match(out[0].reply, /^250 /);
    const got = sink.received.at(-1)!;
    assert.deepEqual(got.data, body, `chunks ${chunks.join(',')}`);
    assert.equal(got.from, 'a@example.org');
    assert.deepEqual(got.to, ['b@example.net']);
    assert.equal(got.helo, 'gw.example.org');
    assert.equal(got.mailArgs.BODY, '8BITMIME');
  }
  assert.equal(sink.received.length, 4);
  await r.close();
  await sink.stop();
});

test('SMTP: the null sender and an internationalised recipient (SMTPUTF8)', async () => {
  const sink = await startSink();
  const r = relay();
  const out = await r.deliver(route(sink.port), { from: '', to: ['jürgen@exämple.de'] }, simple(1));
  assert.deepEqual(statuses(out), ['delivered']);
  assert.equal(sink.received[0].from, '');
  assert.deepEqual(sink.received[0].to, ['jürgen@exämple.de']);
  assert.equal(sink.received[0].mailArgs.SMTPUTF8, true);
  await r.close();
  await sink.stop();
});

test('SMTP: per-recipient outcomes from mixed 250/450/550 RCPT replies', async () => {
  const sink = await startSink({
    onRcptTo: (a) => (a.startsWith('busy') ? reply(450, 'Mailbox busy, try later')
      : a.startsWith('nobody') ? reply(550, `<${a}>: user unknown`) : undefined),
  });
  const r = relay();
  const to = ['ok1@example.net', 'busy@example.net', 'nobody@example.net', 'ok2@example.net'];
  const out = await r.deliver(route(sink.port), { from: 'a@example.org', to }, simple(2));
  assert.deepEqual(statuses(out), ['delivered', 'deferred', 'failed', 'delivered']);
  assert.match(out[1].reply, /^450 .*Mailbox busy/);
  assert.match(out[2].reply, /^550 .*<nobody@example\.net>: user unknown/);
  assert.match(out[0].reply, /^250 /);
  assert.deepEqual(sink.received.map((m) => m.to), [['ok1@example.net', 'ok2@example.net']]);
  await r.close();
  await sink.stop();
});

test('SMTP: all recipients refused, then the same connection carries the next message', async () => {
  const sink = await startSink({ onRcptTo: (a) => (a.startsWith('nobody') ? reply(550, 'no such user') : undefined) });
  const r = relay();
  const rt = route(sink.port, { max_connections: 1 });
  const out = await r.deliver(rt, { from: 'a@example.org', to: ['nobody1@x.test', 'nobody2@x.test'] }, simple(3));
  assert.deepEqual(statuses(out), ['failed', 'failed']);
  assert.equal(sink.received.length, 0);
  const next = await r.deliver(rt, { from: 'a@example.org', to: ['someone@x.test'] }, simple(4));
  assert.deepEqual(statuses(next), ['delivered']);
  assert.equal(sink.received.length, 1);
  assert.equal(sink.connections, 1);
  await r.close();
  await sink.stop();
});

test('SMTP: MAIL FROM and DATA refusals apply to the recipients the server did not refuse itself', async () => {
  const sink = await startSink({
    onMailFrom: (a) => (a === 'greylisted@example.org' ? reply(451, 'Greylisted, come back later') : undefined),
    onRcptTo: (a) => (a.startsWith('nobody') ? reply(550, 'no such user') : undefined),
    onData: () => reply(554, 'Message refused: content policy'),
  });
  const r = relay();
  const grey = await r.deliver(route(sink.port), { from: 'greylisted@example.org', to: ['x@y.test', 'z@y.test'] }, simple(5));
  assert.deepEqual(statuses(grey), ['deferred', 'deferred']);
  assert.match(grey[0].reply, /^451 .*Greylisted/);
  const refused = await r.deliver(route(sink.port), { from: 'a@example.org', to: ['nobody@y.test', 'x@y.test'] }, simple(6));
  assert.deepEqual(statuses(refused), ['failed', 'failed']);
  assert.match(refused[0].reply, /no such user/);
  assert.match(refused[1].reply, /^554 .*content policy/);
  await r.close();
  await sink.stop();
});

/** A bare ESMTP peer that records every command line (smtp-server hides RSET). */
async function startRecorder(): Promise<{ port: number; lines: string[]; stop(): void }> {
  const lines: string[] = [];
  const server = await listenRaw((sock) => {
    sock.write('220 recorder ESMTP\r\n');
    let buf = '';
    let inData = false;
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let out = '';
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) break;
          buf = buf.slice(end + 5);
          inData = false;
          out += '250 2.0.0 queued\r\n';
          continue;
        }
        const eol = buf.indexOf('\r\n');
        if (eol < 0) break;
        const line = buf.slice(0, eol);
        buf = buf.slice(eol + 2);
        lines.push(line);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') out += '250-recorder\r\n250-PIPELINING\r\n250 8BITMIME\r\n';
        else if (verb === 'RCPT' && /nobody/.test(line)) out += '550 5.1.1 no such user\r\n';
        else if (verb === 'DATA') { out += '354 go on\r\n'; inData = true; buf = '\r\n' + buf; }
        else if (verb === 'QUIT') { sock.end(out + '221 bye\r\n'); return; }
        else out += '250 2.0.0 ok\r\n';
      }
      if (out) sock.write(out);
    });
  });
  return { port: server.port, lines, stop: server.stop };
}

test('RSET goes before a message only when the previous transaction ended early', async () => {
  const rec = await startRecorder();
  const r = relay();
  const rt = route(rec.port, { max_connections: 1 });
  const env = (to: string) => ({ from: 'a@x.test', to: [to] });
  assert.deepEqual(statuses(await r.deliver(rt, env('one@y.test'), simple(1))), ['delivered']);
  assert.deepEqual(statuses(await r.deliver(rt, env('two@y.test'), simple(2))), ['delivered']);
  assert.deepEqual(statuses(await r.deliver(rt, env('nobody@y.test'), simple(3))), ['failed']);
  assert.deepEqual(statuses(await r.deliver(rt, env('three@y.test'), simple(4))), ['delivered']);
  await r.close();
  rec.stop();
  const verbs = rec.lines.map((l) => l.split(/[ :]/)[0].toUpperCase());
  assert.equal(rec.lines[0], 'EHLO gw.example.org');
  // The recorder offers PIPELINING, so DATA goes with MAIL and RCPT even when the RCPT is then
  // refused (RFC 2920 3.1); this recorder wrongly answers it 354, and gets an empty data at once.
  assert.deepEqual(verbs, ['EHLO',
    'MAIL', 'RCPT', 'DATA',
    'MAIL', 'RCPT', 'DATA',
    'MAIL', 'RCPT', 'DATA',
    'RSET', 'MAIL', 'RCPT', 'DATA',
    'QUIT']);
  assert.equal(rec.lines[1], 'MAIL FROM:<a@x.test> BODY=8BITMIME');
});

test('an address SMTP cannot carry fails alone; the others are still delivered', async () => {
  const sink = await startSink();
  const r = relay();
  const out = await r.deliver(route(sink.port), { from: 'a@example.org', to: ['bad<x>@y.test', 'good@y.test'] }, simple(7));
  assert.deepEqual(statuses(out), ['failed', 'delivered']);
  assert.deepEqual(sink.received.map((m) => m.to), [['good@y.test']]);
  await r.close();
  await sink.stop();
});

test('a message larger than the SIZE the server announces fails without being sent', async () => {
  const sink = await startSink({ size: 100 });
  const r = relay();
  const big = contentOf(Buffer.from(`Subject: big\r\n\r\n${'x'.repeat(200)}\r\n`));
  const out = await r.deliver(route(sink.port), { from: 'a@x.test', to: ['b@y.test', 'c@y.test'] }, big);
  assert.deepEqual(statuses(out), ['failed', 'failed']);
  assert.match(out[0].reply, /^5\.3\.4 message of \d+ octets exceeds the 100 octets 127\.0\.0\.1 accepts \(SIZE\)$/);
  assert.equal(sink.received.length, 0);
  assert.deepEqual(statuses(await r.deliver(route(sink.port), { from: 'a@x.test', to: ['b@y.test'] }, simple(1))), ['delivered']);
  assert.equal(sink.connections, 1);
  await r.close();
  await sink.stop();
});

test('LMTP: one outcome per recipient from the replies after the data', async () => {
  const sink = await startSink({
    lmtp: true,
    onRcptTo: (a) => (a.startsWith('unknown') ? reply(550, 'unknown user') : undefined),
    onData: (rcpts) => rcpts.map((a) => (a.startsWith('full') ? reply(452, `<${a}> mailbox full`)
      : a.startsWith('gone') ? reply(550, `<${a}> mailbox disabled`) : `<${a}> saved`)),
  });
  const r = relay();
  const to = ['alice@local.test', 'unknown@local.test', 'full@local.test', 'gone@local.test', 'bob@local.test'];
  const body = Buffer.from('Subject: lmtp\r\n\r\n.\r\n..\r\nend\r\n');
  const out = await r.deliver(route(sink.port, { protocol: 'lmtp' }), { from: 'a@example.org', to }, contentOf(body, [17, 1]));
  assert.deepEqual(statuses(out), ['delivered', 'failed', 'deferred', 'failed', 'delivered']);
  assert.match(out[0].reply, /^250 .*<alice@local\.test> saved/);
  assert.match(out[1].reply, /^550 .*unknown user/);
  assert.match(out[2].reply, /^452 .*<full@local\.test> mailbox full/);
  assert.match(out[3].reply, /^550 .*<gone@local\.test> mailbox disabled/);
  assert.match(out[4].reply, /^250 .*<bob@local\.test> saved/);
  assert.equal(sink.received.length, 1);
  assert.deepEqual(sink.received[0].data, body);
  assert.deepEqual(sink.received[0].to, ['alice@local.test', 'bob@local.test']);
  await r.close();
  await sink.stop();
});

test('TLS required: delivered over STARTTLS; refused when the peer has no STARTTLS or a bad certificate', async () => {
  const tlsSink = await startSink({ tls: await testCert() });
  const plainSink = await startSink();
  const r = relay();

  const ok = await r.deliver(route(tlsSink.port, { tls: 'required', tls_verify: false }), { from: 'a@x.test', to: ['b@y.test'] }, simple(8));
  assert.deepEqual(statuses(ok), ['delivered']);
  assert.equal(tlsSink.received[0].secure, true);

  const noTls = await r.deliver(route(plainSink.port, { tls: 'required', tls_verify: false }), { from: 'a@x.test', to: ['b@y.test', 'c@y.test'] }, simple(9));
  assert.deepEqual(statuses(noTls), ['deferred', 'deferred']);
  assert.match(noTls[0].reply, /TLS is required/);
  assert.match(noTls[0].reply, new RegExp(`127\\.0\\.0\\.1:${plainSink.port}`));
  assert.equal(plainSink.received.length, 0);

  const badCert = await r.deliver(route(tlsSink.port, { tls: 'required', tls_verify: true }), { from: 'a@x.test', to: ['b@y.test'] }, simple(10));
  assert.deepEqual(statuses(badCert), ['deferred']);
  assert.match(badCert[0].reply, /TLS is required.*(self[- ]signed|certificate)/i);
  assert.equal(tlsSink.received.length, 1);

  await r.close();
  await Promise.all([tlsSink.stop(), plainSink.stop()]);
});

test('TLS opportunistic uses STARTTLS when offered, falls back to plain text on a failed handshake; none never uses it', async () => {
  const tlsSink = await startSink({ tls: await testCert() });
  const plainSink = await startSink();
  const r = relay();
  const env = { from: 'a@x.test', to: ['b@y.test'] };

  assert.deepEqual(statuses(await r.deliver(route(tlsSink.port, { tls: 'opportunistic', tls_verify: false }), env, simple(11))), ['delivered']);
  assert.equal(tlsSink.received[0].secure, true);
  assert.deepEqual(statuses(await r.deliver(route(plainSink.port, { tls: 'opportunistic' }), env, simple(12))), ['delivered']);
  assert.equal(plainSink.received[0].secure, false);
  // self-signed certificate with verification on: the handshake fails, the message goes in clear
  assert.deepEqual(statuses(await r.deliver(route(tlsSink.port, { tls: 'opportunistic', tls_verify: true }), env, simple(13))), ['delivered']);
  assert.equal(tlsSink.received[1].secure, false);
  assert.deepEqual(statuses(await r.deliver(route(tlsSink.port, { tls: 'none' }), env, simple(14))), ['delivered']);
  assert.equal(tlsSink.received[2].secure, false);

  await r.close();
  await Promise.all([tlsSink.stop(), plainSink.stop()]);
});

test('pool: sequential messages share one connection; concurrent ones never exceed max_connections', async () => {
  const sink = await startSink();
  const r = relay();
  const rt = route(sink.port, { max_connections: 3 });
  for (let i = 0; i < 10; i++) {
    assert.deepEqual(statuses(await r.deliver(rt, { from: 'a@x.test', to: [`r${i}@y.test`] }, simple(i))), ['delivered']);
  }
  assert.equal(sink.connections, 1);

  const many = await Promise.all(Array.from({ length: 60 }, (_, i) =>
    r.deliver(rt, { from: 'a@x.test', to: [`c${i}@y.test`] }, simple(100 + i))));
  assert.ok(many.every((o) => o[0].status === 'delivered'));
  assert.equal(sink.received.length, 70);
  assert.ok(sink.connections <= 3, `opened ${sink.connections} connections`);
  assert.ok(sink.connections >= 2, 'concurrent messages should use more than one connection');
  const bodies = new Set(sink.received.map((m) => m.data.toString()));
  assert.equal(bodies.size, 70);

  await r.close();
  await sleep(50);
  assert.equal(sink.closed, sink.connections, 'close() closes every pooled connection');
  await sink.stop();
});

test('pool: idle connections are closed after idleTimeout', async () => {
  const sink = await startSink();
  const r = relay({ idleTimeout: 150 });
  await r.deliver(route(sink.port), { from: 'a@x.test', to: ['b@y.test'] }, simple(1));
  assert.equal(sink.closed, 0);
  await sleep(500);
  assert.equal(sink.closed, 1);
  assert.deepEqual(statuses(await r.deliver(route(sink.port), { from: 'a@x.test', to: ['b@y.test'] }, simple(2))), ['delivered']);
  assert.equal(sink.connections, 2);
  await r.close();
  await sink.stop();
});

test('pool: a pooled connection that breaks is retried once on a fresh connection', async () => {
  let dropped = 0;
  const sink = await startSink({
    // the second transaction on any connection finds it dead (once)
    onMailFrom: (_a, _s, n) => (n === 2 && dropped++ === 0 ? 'drop' : undefined),
  });
  const r = relay();
  const rt = route(sink.port, { max_connections: 1 });
  assert.deepEqual(statuses(await r.deliver(rt, { from: 'a@x.test', to: ['b@y.test'] }, simple(1))), ['delivered']);
  const out = await r.deliver(rt, { from: 'a@x.test', to: ['c@y.test'] }, simple(2));
  assert.deepEqual(statuses(out), ['delivered']);
  assert.equal(dropped, 1);
  assert.equal(sink.connections, 2);
  assert.deepEqual(sink.received.map((m) => m.to[0]), ['b@y.test', 'c@y.test']);
  await r.close();
  await sink.stop();
});

test('a connection dropped on a fresh connection defers (no second try)', async () => {
  const sink = await startSink({ onMailFrom: () => 'drop' });
  const r = relay();
  const out = await r.deliver(route(sink.port), { from: 'a@x.test', to: ['b@y.test', 'c@y.test'] }, simple(1));
  assert.deepEqual(statuses(out), ['deferred', 'deferred']);
  assert.match(out[0].reply, /closed/i);
  assert.equal(sink.connections, 1);
  await r.close();
  await sink.stop();
});

test('connection refused defers with the reason, then the route is suspended briefly', async () => {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));

  const r = relay({ hostDownDelay: 1000 });
  const out = await r.deliver(route(port), { from: 'a@x.test', to: ['b@y.test', 'c@y.test'] }, simple(1));
  assert.deepEqual(statuses(out), ['deferred', 'deferred']);
  assert.equal(out[0].reply, `connect ECONNREFUSED 127.0.0.1:${port}`);

  const sink = await startSink({ port });
  const suspended = await r.deliver(route(port), { from: 'a@x.test', to: ['b@y.test'] }, simple(2));
  assert.deepEqual(statuses(suspended), ['deferred']);
  assert.match(suspended[0].reply, /temporarily suspended: connect ECONNREFUSED/);
  assert.equal(sink.connections, 0);

  await sleep(1100);
  assert.deepEqual(statuses(await r.deliver(route(port), { from: 'a@x.test', to: ['b@y.test'] }, simple(3))), ['delivered']);
  await r.close();
  await sink.stop();
});

test('timeouts: no greeting, and no reply after the data, both defer', async () => {
  const silent = await listenRaw(() => { /* accept and say nothing */ });
  const silentPort = silent.port;
  const r = relay({ greetingTimeout: 200, commandTimeout: 300, hostDownDelay: 0 });

  const t0 = Date.now();
  const out = await r.deliver(route(silentPort), { from: 'a@x.test', to: ['b@y.test'] }, simple(1));
  assert.deepEqual(statuses(out), ['deferred']);
  assert.match(out[0].reply, /greeting/i);
  assert.ok(Date.now() - t0 < 2000);

  const hang = await startSink({ onData: () => 'hang' });
  const out2 = await r.deliver(route(hang.port), { from: 'a@x.test', to: ['b@y.test'] }, simple(2));
  assert.deepEqual(statuses(out2), ['deferred']);
  assert.match(out2[0].reply, new RegExp(`127\\.0\\.0\\.1:${hang.port}: no reply to end of data within 300 ms`));

  await r.close();
  silent.stop();
  await hang.stop();
});

test('a content stream that fails defers the message and drops that connection', async () => {
  const sink = await startSink();
  const r = relay();
  const rt = route(sink.port, { max_connections: 1 });
  const failing: Content = {
    size: 300_000,
    stream: () => Readable.from((async function* () {
      yield Buffer.alloc(100_000, 0x61);
      throw new Error('spool read failed');
    })()),
  };
  const out = await r.deliver(rt, { from: 'a@x.test', to: ['b@y.test'] }, failing);
  assert.deepEqual(statuses(out), ['deferred']);
  assert.match(out[0].reply, /spool read failed/);
  assert.equal(sink.received.length, 0);
  assert.deepEqual(statuses(await r.deliver(rt, { from: 'a@x.test', to: ['b@y.test'] }, simple(2))), ['delivered']);
  assert.equal(sink.connections, 2);
  await r.close();
  await sink.stop();
});

test('close(): later deliveries are deferred, nothing stays open', async () => {
  const sink = await startSink();
  const r = relay();
  await r.deliver(route(sink.port), { from: 'a@x.test', to: ['b@y.test'] }, simple(1));
  await r.close();
  const out = await r.deliver(route(sink.port), { from: 'a@x.test', to: ['b@y.test'] }, simple(2));
  assert.deepEqual(statuses(out), ['deferred']);
  assert.match(out[0].reply, /shutting down/);
  await sleep(50);
  assert.equal(sink.closed, 1);
  assert.equal(sink.connections, 1);
  await sink.stop();
});
