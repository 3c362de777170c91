// Direct MX delivery end to end: a user logs in on submission (nodemailer, a real client) and
// writes to addresses at remote domains; the gateway resolves their MX hosts through a real DNS
// server on loopback (dns2, test/helpers/dns-server.ts) and delivers to receivers on 127.0.0.x
// (smtp-server behind a recording front, and Postfix's smtpd). outbound.delivery.port and
// allow_loopback_mx exist for exactly this (tests and labs only): real MX delivery is port 25.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { mailer, sendRaw } from '../helpers/clients.js';
import { freePorts, sleep, waitFor } from '../helpers/wait.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { MxReceiver, scriptedMx } from './mx-receivers.js';
import { missingTools, removeDir, startPostfix, tempDir, type Daemon } from '../audit/daemons.js';

const ALICE = { address: 'alice@example.test', password: 'correct horse battery 1' };
const MX1 = '127.0.0.2';
const MX2 = '127.0.0.3';
const DEAD = '127.0.0.4'; // nothing listens there: connections are refused
const HANG = '127.0.0.6';
const GARBAGE = '127.0.0.7';
const POSTFIX = '127.0.0.8';
const PLAIN = '127.0.0.9'; // a receiver without STARTTLS, so that the commands are readable on the wire
const noPostfix = missingTools('postfix');

describe('direct delivery to MX hosts', () => {
  let gw: Gateway;
  let dns: DnsServer;
  let mx1: MxReceiver;
  let mx2: MxReceiver;
  let plain: MxReceiver;
  let postfix: Daemon | undefined;
  let pfDir: string | undefined;
  const stops: (() => Promise<void>)[] = [];

  before(async () => {
    // one port for every receiver, as every real MX listens on 25
    let port = 0;
    for (let attempt = 0; attempt < 5 && !port; attempt++) {
      const [p] = await freePorts(1);
      try {
        mx1 = await MxReceiver.start(MX1, p!, { name: 'mx1', reject: { 'bad@remote.test': 550, 'soft@remote.test': 450 } });
        mx2 = await MxReceiver.start(MX2, p!, { name: 'mx2' });
        plain = await MxReceiver.start(PLAIN, p!, { name: 'plain', starttls: false, reject: { 'no@plain.test': 550 } });
        port = p!;
      } catch {
        await mx1?.close().catch(() => {});
        await mx2?.close().catch(() => {});
      }
    }
    assert.ok(port, 'no common free port for the receivers');
    stops.push(() => mx1.close(), () => mx2.close(), () => plain.close());
    const hang = await scriptedMx(HANG, port, () => {}); // accepts, never greets
    const garbage = await scriptedMx(GARBAGE, port, (s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    stops.push(hang.close, garbage.close);
    if (!noPostfix) {
      pfDir = await tempDir('portcullis-mx-postfix-');
      postfix = await startPostfix(path.join(pfDir, 'pf'), {
        address: POSTFIX, hostname: 'mx.postfix.test', ports: [port],
        main: [
          'mydestination =',
          'relay_domains = postfix.test',
          'relay_recipient_maps = inline:{ { bob@postfix.test = x } }',
          'transport_maps = inline:{ { postfix.test = discard:kept by the test } }',
          'smtpd_tls_security_level = none',
        ],
        services: [`{address}:${port} inet n - n - - smtpd`],
      });
      stops.push(() => postfix!.stop());
    }
    dns = await startDnsServer({
      'remote.test': [{ type: 'MX', data: { priority: 20, exchange: 'mx2.remote.test' } }, { type: 'MX', data: { priority: 10, exchange: 'mx1.remote.test' } }],
      'mx1.remote.test': [{ type: 'A', data: MX1 }],
      'mx2.remote.test': [{ type: 'A', data: MX2 }],
      'fallback.test': [{ type: 'MX', data: { priority: 10, exchange: 'dead.fallback.test' } }, { type: 'MX', data: { priority: 20, exchange: 'mx2.remote.test' } }],
      'dead.fallback.test': [{ type: 'A', data: DEAD }],
      'implicit.test': [{ type: 'A', data: MX2 }],
      'nomail.test': [{ type: 'MX', data: { priority: 0, exchange: '.' } }, { type: 'A', data: MX1 }],
      'loop.test': [{ type: 'MX', data: { priority: 10, exchange: 'mx.example.test' } }],
      'mx.example.test': [{ type: 'A', data: '127.0.0.1' }],
      'hang.test': [{ type: 'MX', data: { priority: 10, exchange: 'mx.hang.test' } }],
      'mx.hang.test': [{ type: 'A', data: HANG }],
      'garbage.test': [{ type: 'MX', data: { priority: 10, exchange: 'mx.garbage.test' } }],
      'mx.garbage.test': [{ type: 'A', data: GARBAGE }],
      'postfix.test': [{ type: 'MX', data: { priority: 10, exchange: 'mx.postfix.test' } }],
      'mx.postfix.test': [{ type: 'A', data: POSTFIX }],
      'plain.test': [{ type: 'MX', data: { priority: 10, exchange: 'mx.plain.test' } }],
      'mx.plain.test': [{ type: 'A', data: PLAIN }],
    });
    stops.push(() => dns.close());
    gw = await startGateway({
      users: { [ALICE.address]: ALICE.password },
      aliases: { 'fwd@example.test': ['zed@nomail.test'] },
      config: {
        dns: { servers: [dns.server] },
        outbound: { delivery: { port, allow_loopback_mx: true, greeting_timeout: '1s', command_timeout: '2s', connect_timeout: '2s', host_down_delay: '30s' } },
      },
    });
    stops.push(() => gw.cleanup());
  });

  after(async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
    if (pfDir) await removeDir(pfDir);
  });

  async function submit(to: string[], subject: string): Promise<void> {
    const t = mailer({ port: gw.ports.submission, auth: { user: ALICE.address, pass: ALICE.password } });
    try {
      await t.sendMail({ envelope: { from: ALICE.address, to }, raw: makeMessage({ from: ALICE.address, to: to[0]!, subject, body: `.a line with a leading dot\r\n${subject}\r\n` }) });
    } finally {
      t.close();
    }
  }

  it('an authenticated submission to user@remote.test arrives at the best MX, EHLO with our name, over STARTTLS', async () => {
    const m = marker('mx-best');
    await submit(['bob@remote.test'], m);
    const got = await waitFor('mx1 to receive the message', () => mx1.find(m)[0], { timeoutMs: 15_000, details: () => gw.tail() });
    assert.deepEqual(got.to, ['bob@remote.test']);
    assert.equal(got.from, ALICE.address);
    assert.equal(got.helo, 'mx.example.test');
    assert.match(got.raw.toString(), /^\.a line with a leading dot\r$/m); // dot-stuffed on the wire, unstuffed by the server
    assert.equal(mx2.find(m).length, 0);
    assert.ok(got.secure, 'opportunistic STARTTLS was used (smtp-server offers it)');
  });

  it('per-recipient results: 250 delivered, 550 failed, 450 deferred, each with the remote reply', async () => {
    const m = marker('mx-rcpt');
    await submit(['ok@remote.test', 'bad@remote.test', 'soft@remote.test'], m);
    const got = await waitFor('mx1 to receive the message', () => mx1.find(m)[0], { timeoutMs: 15_000, details: () => gw.tail() });
    assert.deepEqual(got.to, ['ok@remote.test']);
    // The DSN for bad@ goes out when the message is finished (the queue reports failures once per
    // message), i.e. after soft@'s retries; here the queue record shows each recipient's result.
    const rs = await waitFor('the outcomes in the queue', async () => {
      const e = (await gw.queueList()).find((q) => q.recipients.some((r) => r.address === 'soft@remote.test'));
      return e?.recipients.every((r) => r.status !== 'pending') ? e.recipients : undefined;
    }, { timeoutMs: 15_000, intervalMs: 300, details: () => gw.tail() });
    const by = Object.fromEntries(rs.map((r) => [r.address, r]));
    assert.equal(by['ok@remote.test']!.status, 'delivered');
    assert.equal(by['bad@remote.test']!.status, 'failed');
    assert.match(by['bad@remote.test']!.last_reply ?? '', /^host mx1\.remote\.test\[127\.0\.0\.2\]:\d+ said: 550 5\.1\.1 no such user here \(in reply to RCPT TO\)$/);
    assert.equal(by['soft@remote.test']!.status, 'deferred');
    assert.match(by['soft@remote.test']!.last_reply ?? '', /^host mx1\.remote\.test\[127\.0\.0\.2\]:\d+ said: 450 4\.2\.1 mailbox busy/);
    // a 4xx for one recipient is its own answer: mx2 (same mailboxes) is not asked
    assert.equal(mx2.find(m).length, 0);
  });

  it('falls back to the second MX when the first refuses connections', async () => {
    const m = marker('mx-fallback');
    await submit(['carol@fallback.test'], m);
    const got = await waitFor('mx2 to receive the message', () => mx2.find(m)[0], { timeoutMs: 15_000, details: () => gw.tail() });
    assert.deepEqual(got.to, ['carol@fallback.test']);
    assert.match(gw.output, /mx\.connect_failed.*dead\.fallback\.test|dead\.fallback\.test.*mx\.connect_failed/);
  });

  it('a domain without MX records gets its mail at its address (implicit MX)', async () => {
    const m = marker('mx-implicit');
    await submit(['dan@implicit.test'], m);
    const got = await waitFor('mx2 to receive the message', () => mx2.find(m)[0], { timeoutMs: 15_000, details: () => gw.tail() });
    assert.deepEqual(got.to, ['dan@implicit.test']);
  });

  it('null MX: a DSN to the authenticated sender with 5.1.10, no connection made', async () => {
    const m = marker('mx-null');
    const before1 = mx1.chunks.length;
    await submit(['erin@nomail.test'], m);
    const dsn = (await gw.waitForMail(ALICE.address, m, 20_000)).toString();
    assert.match(dsn, /Final-Recipient: rfc822; erin@nomail\.test\r\nAction: failed\r\nStatus: 5\.1\.10\r\nDiagnostic-Code: x-portcullis; 5\.1\.10 nomail\.test accepts no mail: it publishes a null MX \(RFC 7505\)/);
    assert.equal(mx1.chunks.length, before1);
  });

  it('a mail loop (the MX is our own host name) fails with the reason', async () => {
    const m = marker('mx-loop');
    await submit(['frank@loop.test'], m);
    const dsn = (await gw.waitForMail(ALICE.address, m, 20_000)).toString();
    assert.match(dsn, /Final-Recipient: rfc822; frank@loop\.test\r\nAction: failed\r\nStatus: 5\.4\.6\r\nDiagnostic-Code: x-portcullis; 5\.4\.6 mail for loop\.test loops back to myself/);
  });

  it('a server that never greets, and one that answers garbage: deferred in bounded time, kept in the queue', async () => {
    const m = marker('mx-bad');
    const started = Date.now();
    await submit(['gina@hang.test', 'hank@garbage.test'], m);
    const replies = await waitFor('both recipients to be deferred', async () => {
      const e = (await gw.queueList()).find((q) => q.recipients.some((r) => r.address === 'gina@hang.test'));
      const rs = e?.recipients ?? [];
      return rs.length === 2 && rs.every((r) => r.status === 'deferred') ? rs : undefined;
    }, { timeoutMs: 15_000, intervalMs: 300, details: () => gw.tail() });
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
    assert.match(replies.find((r) => r.address === 'gina@hang.test')!.last_reply ?? '', /^4\.4\.1 .*no reply to greeting within 1 s/);
    assert.match(replies.find((r) => r.address === 'hank@garbage.test')!.last_reply ?? '', /^4\.4\.1 .*protocol error: not an SMTP reply: "HTTP\/1\.1 400 Bad Request"/);
  });

  it('Postfix as the MX: the accepted recipient is delivered, the unknown one bounced with Postfix\'s own reply', { skip: noPostfix }, async () => {
    const m = marker('mx-postfix');
    await submit(['bob@postfix.test', 'nobody@postfix.test'], m);
    const dsn = (await gw.waitForMail(ALICE.address, m, 20_000)).toString();
    assert.match(dsn, /Final-Recipient: rfc822; nobody@postfix\.test\r\nAction: failed\r\nStatus: 5\.1\.1\r\nRemote-MTA: dns; mx\.postfix\.test\r\nDiagnostic-Code: smtp; 550 5\.1\.1 <nobody@postfix\.test>: Recipient address rejected: User unknown in relay recipient table/);
    assert.doesNotMatch(dsn, /Final-Recipient: rfc822; bob@postfix\.test/);
    await waitFor('Postfix to log the delivery', () => /to=<bob@postfix\.test>.*status=sent/.test(postfix!.output()), { timeoutMs: 15_000, details: () => postfix!.output() });
  });

  it('pipelining on the wire: MAIL, every RCPT and DATA arrive in one packet', async () => {
    const m = marker('mx-wire');
    await submit(['a@plain.test', 'no@plain.test', 'b@plain.test'], m);
    const got = await waitFor('the plain receiver to get the message', () => plain.find(m)[0], { timeoutMs: 15_000, details: () => gw.tail() });
    assert.deepEqual(got.to, ['a@plain.test', 'b@plain.test']);
    const conn = plain.chunks.find((c) => c.some((x) => x.includes('a@plain.test')))!;
    assert.equal(conn[0], 'EHLO mx.example.test\r\n');
    const group = conn.find((x) => x.startsWith('MAIL FROM:'));
    assert.match(group ?? '', /^MAIL FROM:<alice@example\.test> SIZE=\d+ BODY=8BITMIME\r\nRCPT TO:<a@plain\.test>\r\nRCPT TO:<no@plain\.test>\r\nRCPT TO:<b@plain\.test>\r\nDATA\r\n$/, JSON.stringify(conn));
  });

  it('a failure for mail from an unauthenticated sender is recorded, never bounced (even when it names a local user)', async () => {
    const m = marker('mx-noauth');
    // over the MX port, no AUTH, to a local alias that forwards to a null-MX domain
    const sent = await sendRaw(gw.ports.mx, { from: ALICE.address, to: ['fwd@example.test'] }, makeMessage({ from: ALICE.address, to: 'fwd@example.test', subject: m }));
    assert.deepEqual(sent, { ok: true });
    const line = await waitFor('the failure to be recorded', () => gw.output.split('\n').find((l) => l.includes('"event":"undeliverable"') && l.includes('zed@nomail.test')), { timeoutMs: 15_000, details: () => gw.tail() });
    assert.match(line, /"authenticated":false/);
    assert.match(line, /5\.1\.10 nomail\.test accepts no mail/);
    await sleep(1000);
    const id = /"id":"([^"]+)"/.exec(line)![1]!;
    assert.ok(!gw.output.split('\n').some((l) => l.includes('"event":"dsn"') && l.includes(id)), 'no DSN for an unauthenticated sender');
    assert.equal(gw.readMailbox(ALICE.address).filter((f) => f.content.includes(m)).length, 0);
  });
});
