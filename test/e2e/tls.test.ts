// TLS: STARTTLS with real clients, implicit TLS on submissions, old protocol versions refused,
// and the STARTTLS plaintext command injection probes (CVE-2011-0411).
import assert from 'node:assert/strict';
import type net from 'node:net';
import { connect as netConnect } from 'node:net';
import tls from 'node:tls';
import selfsigned from 'selfsigned';
import { after, before, describe, it } from 'node:test';
import { mailer, needTool, pyProbe, swaks } from '../helpers/clients.js';
import { startTlsInjection } from '../helpers/conformance.js';
import { assertReply, EXT_SENDER, plainToken, USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { SmtpClient } from '../helpers/smtp-client.js';
import { sleep, waitFor } from '../helpers/wait.js';

describe('TLS', { timeout: 180_000 }, () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({ users: userMap('alice') });
  });
  after(async () => {
    await gw?.cleanup();
  });

  it('swaks --tls on MX: STARTTLS, then a message to a local user gets 250 over TLS and is delivered', async (t) => {
    if (!needTool(t, 'swaks')) return;
    const m = marker('swaks-tls');
    const r = await swaks(gw.ports.mx, ['--tls', '--from', EXT_SENDER, '--to', USERS.alice.address, '--header', `Subject: ${m}`]);
    assert.equal(r.code, 0, r.transcript);
    assert.ok(r.tls, `swaks should have talked TLS\n${r.transcript}`);
    assert.ok(r.serverLines.some((l) => /^220 /.test(l)) && r.serverLines.some((l) => /^250 2\.0\.0 .*queued as/i.test(l)), r.transcript);
    await gw.waitForMail(USERS.alice.address, m);
  });

  it('smtplib starttls() on MX negotiates TLS 1.2 or 1.3', async (t) => {
    if (!needTool(t, 'python3')) return;
    const r = await pyProbe({ port: gw.ports.mx, mode: 'starttls' });
    assert.ok(r.ok, JSON.stringify(r));
    assert.ok(r.tls_version === 'TLSv1.2' || r.tls_version === 'TLSv1.3', `TLS version ${r.tls_version}`);
    assert.ok(r.features_before_tls && 'starttls' in r.features_before_tls);
  });

  it('smtplib starttls() on submission, then AUTH is advertised', async (t) => {
    if (!needTool(t, 'python3')) return;
    const r = await pyProbe({ port: gw.ports.submission, mode: 'starttls' });
    assert.ok(r.ok, JSON.stringify(r));
    assert.ok(r.features && 'auth' in r.features, `AUTH after STARTTLS: ${JSON.stringify(r.features)}`);
  });

  it('swaks --tlsc on submissions: implicit TLS from the first byte, 220 greeting and EHLO over TLS', async (t) => {
    if (!needTool(t, 'swaks')) return;
    const r = await swaks(gw.ports.submissions, ['--tlsc', '--quit-after', 'EHLO']);
    assert.equal(r.code, 0, r.transcript);
    assert.ok(r.tls, r.transcript);
    assert.ok(r.serverLines.some((l) => /^220 /.test(l)), r.transcript);
    assert.ok(r.serverLines.some((l) => /^250[ -]AUTH\b/i.test(l)), `AUTH in EHLO on submissions\n${r.transcript}`);
  });

  it('smtplib.SMTP_SSL on submissions: TLS 1.2+ and AUTH PLAIN LOGIN advertised', async (t) => {
    if (!needTool(t, 'python3')) return;
    const r = await pyProbe({ port: gw.ports.submissions, mode: 'ssl' });
    assert.ok(r.ok, JSON.stringify(r));
    assert.ok(r.tls_version === 'TLSv1.2' || r.tls_version === 'TLSv1.3', `TLS version ${r.tls_version}`);
    const mechs = (r.features?.auth ?? '').toUpperCase().split(/\s+/);
    assert.ok(mechs.includes('PLAIN') && mechs.includes('LOGIN'), JSON.stringify(r.features));
  });

  it('nodemailer with requireTLS delivers to a local user over STARTTLS on MX', async () => {
    const m = marker('nm-tls');
    const info = await mailer({ port: gw.ports.mx, requireTLS: true }).sendMail({
      from: EXT_SENDER, to: USERS.alice.address, subject: m, text: `body ${m}`,
    });
    assert.match(info.response, /^250 2\.0\.0 Ok: queued as \S+/, info.response);
    await gw.waitForMail(USERS.alice.address, m);
  });

  it('control: the TLS 1.1 test client really speaks TLS 1.1 (against a local TLS server that allows it)', async (t) => {
    if (!needTool(t, 'python3')) return;
    const pems = await selfsigned.generate([{ name: 'commonName', value: 'tls11.example.test' }], { keySize: 2048 });
    const server = tls.createServer({ key: pems.private, cert: pems.cert, minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' }, (s) => {
      s.on('error', () => {});
      s.write('220 tls11 ready\r\n');
      s.on('data', (d: Buffer) => s.write(d.toString().startsWith('QUIT') ? '221 bye\r\n' : '250 ok\r\n'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = (server.address() as net.AddressInfo).port;
      const r = await pyProbe({ port, mode: 'ssl', tls_min: 'TLSv1_1', tls_max: 'TLSv1_1', tls_seclevel0: true });
      assert.equal(r.tls_version, 'TLSv1.1', `the client could not do TLS 1.1 at all, so the refusal tests below would prove nothing: ${JSON.stringify(r)}`);
    } finally {
      server.close();
    }
  });

  for (const [name, port, mode] of [
    ['MX STARTTLS', 'mx', 'starttls'],
    ['submission STARTTLS', 'submission', 'starttls'],
    ['submissions implicit TLS', 'submissions', 'ssl'],
  ] as const) {
    it(`TLS 1.1 is refused on ${name} (a client limited to TLS 1.1 fails the handshake; the same client allowing TLS 1.2 succeeds)`, async (t) => {
      if (!needTool(t, 'python3')) return;
      const p = gw.ports[port];
      const old = await pyProbe({ port: p, mode, tls_min: 'TLSv1_1', tls_max: 'TLSv1_1', tls_seclevel0: true });
      assert.equal(old.ok, false, `TLS 1.1 handshake should fail: ${JSON.stringify(old)}`);
      assert.equal(old.error?.stage, mode === 'ssl' ? 'connect' : 'starttls', JSON.stringify(old));
      assert.match(`${old.error?.type} ${old.error?.message}`, /SSL|TLS|protocol|version|EOF|reset/i, JSON.stringify(old));
      const ok = await pyProbe({ port: p, mode, tls_min: 'TLSv1_1', tls_max: 'TLSv1_2', tls_seclevel0: true });
      assert.ok(ok.ok && ok.tls_version === 'TLSv1.2', `control: the same client with TLS 1.2 must work: ${JSON.stringify(ok)}`);
    });
  }

  it('STARTTLS inside TLS gets 503 5.5.1 (or 5xx), not a second handshake', async () => {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      await c.ehlo();
      assertReply(await c.startTls(), 220, undefined, c.describe());
      await c.ehlo();
      const r = await c.cmd('STARTTLS');
      assert.ok(r.code >= 500 && r.code < 600, `second STARTTLS: ${r.raw}\n${c.describe()}`);
    } finally {
      await c.quit();
    }
  });

  // ----- CVE-2011-0411: commands injected after STARTTLS in the same plaintext segment
  const yaml = startTlsInjection();
  const auth = plainToken(USERS.alice.address, USERS.alice.password);
  const probes: Array<{ name: string; port: 'mx' | 'submission'; segments: string[]; partial?: boolean }> = [
    { name: `yaml server_side_test ${JSON.stringify(yaml.server_side_test.send_in_one_write)}`, port: 'mx', segments: [yaml.server_side_test.send_in_one_write] },
    { name: 'STARTTLS + RSET on submission', port: 'submission', segments: [yaml.server_side_test.send_in_one_write] },
    { name: 'STARTTLS + MAIL FROM', port: 'mx', segments: ['STARTTLS\r\nMAIL FROM:<a@example.org>\r\n'] },
    { name: 'STARTTLS + AUTH PLAIN on submission', port: 'submission', segments: [`STARTTLS\r\nAUTH PLAIN ${auth}\r\n`] },
    { name: 'STARTTLS + a partial command with no CRLF', port: 'mx', segments: ['STARTTLS\r\nNOOP'], partial: true },
    { name: 'STARTTLS split across two TCP segments, then RSET', port: 'mx', segments: ['STARTT', 'LS\r\nRSET\r\n'] },
  ];
  for (const probe of probes) {
    it(`STARTTLS injection (CVE-2011-0411): ${probe.name}: no reply to injected plaintext arrives inside TLS`, async (t) => {
      const c = await SmtpClient.connect(gw.ports[probe.port]);
      try {
        await c.ehlo();
        for (const [i, seg] of probe.segments.entries()) {
          if (i > 0) await sleep(150);
          c.write(seg);
        }
        const r = await c.readReply();
        if (r.code !== 220) {
          // Refusing STARTTLS when plaintext follows it is a safe answer (Momentum "reject").
          assert.ok(r.code >= 400, `STARTTLS answered ${r.raw}\n${c.describe()}`);
          t.diagnostic(`gateway refused STARTTLS: ${r.raw}`);
          return;
        }
        try {
          await c.upgrade();
        } catch (err) {
          // Dropping the connection instead of a handshake is safe too; plaintext replies are not.
          const plain = c.plaintextAfterStartTls.toString('latin1');
          assert.equal(plain, '', `server sent plaintext after its 220 to STARTTLS: ${JSON.stringify(plain)}\n${c.describe()}`);
          assert.ok(c.closed || /reset|closed|EOF|socket/i.test((err as Error).message), `handshake failed: ${(err as Error).message}\n${c.describe()}`);
          t.diagnostic(`gateway dropped the connection instead of the handshake: ${(err as Error).message}`);
          return;
        }
        assert.equal(c.plaintextAfterStartTls.length, 0, `plaintext after 220: ${JSON.stringify(c.plaintextAfterStartTls.toString('latin1'))}\n${c.describe()}`);
        const early = await c.collect(800);
        assert.deepEqual(early.map((x) => x.raw), [], `the server answered injected commands inside TLS before the client said anything\n${c.describe()}`);
        if (c.closed) {
          t.diagnostic('gateway closed the connection after the handshake');
          return; // nothing was executed
        }
        t.diagnostic('handshake done, injected plaintext discarded');
        const { reply, keywords } = await c.ehlo();
        assert.equal(reply.code, 250, `EHLO inside TLS must get the EHLO reply, not a reply to injected text\n${c.describe()}`);
        assert.ok(keywords.size > 0 && reply.lines.length > 1, `first reply inside TLS should be the multi-line EHLO reply\n${c.describe()}`);
        if (probe.partial) {
          const n = await c.cmd('NOOP');
          assertReply(n, 250, undefined, c.describe());
        }
        const late = await c.collect(300);
        assert.deepEqual(late.map((x) => x.raw), [], `stray replies after EHLO inside TLS\n${c.describe()}`);
        if (probe.port === 'submission' && probe.segments.some((s) => s.includes('AUTH'))) {
          // The injected AUTH must not have logged the session in: MAIL still needs AUTH.
          const mail = await c.cmd(`MAIL FROM:<${USERS.alice.address}>`);
          const rcpt = mail.code === 250 ? await c.cmd('RCPT TO:<someone@example.net>') : mail;
          assertReply(rcpt, 530, '5.7.0', `injected AUTH must not authenticate\n${c.describe()}`);
        }
      } finally {
        await c.quit();
      }
    });
  }

  it('nodemailer (opportunistic STARTTLS) sends a raw message to MX; stored copy starts with Received:', async () => {
    const m = marker('nm-msg');
    const info = await mailer({ port: gw.ports.mx }).sendMail({
      envelope: { from: EXT_SENDER, to: [USERS.alice.address] },
      raw: makeMessage({ from: EXT_SENDER, to: USERS.alice.address, subject: m }),
    });
    assert.match(info.response, /^250 /);
    const stored = await gw.waitForMail(USERS.alice.address, m);
    assert.match(stored.toString('utf8'), /^Received:/, 'stored message starts with the Received header');
  });
});

describe('a client that says STARTTLS and then nothing is dropped at the idle timeout', { timeout: 120_000 }, () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({
      users: userMap('alice'),
      config: { smtp: { idle_timeout: '2s' }, pop3: { idle_timeout: '2s' }, imap: { login_timeout: '2s' } },
    });
  });
  after(async () => {
    await gw?.cleanup();
  });

  // Each dialogue up to the server's go-ahead for the handshake; then the client stays silent.
  const dialogues: Array<{ proto: string; port: () => number; say: string[]; goAhead: RegExp }> = [
    { proto: 'SMTP', port: () => gw.ports.mx, say: ['EHLO client.example\r\n', 'STARTTLS\r\n'], goAhead: /^220 .*\r\n$/m },
    { proto: 'POP3', port: () => gw.ports.pop3, say: ['STLS\r\n'], goAhead: /^\+OK .*\r\n$/m },
    { proto: 'IMAP', port: () => gw.ports.imap, say: ['a1 STARTTLS\r\n'], goAhead: /^a1 OK .*\r\n$/m },
  ];
  for (const d of dialogues) {
    it(`${d.proto}: the silent handshake is closed after about 2 s, not held open`, async () => {
      const sock = netConnect(d.port());
      let text = '';
      const closed = new Promise<number>((resolve) => sock.once('close', () => resolve(Date.now())));
      sock.on('error', () => undefined);
      const waitText = async (re: RegExp) => {
        for (const t0 = Date.now(); !re.test(text); await sleep(20)) if (Date.now() - t0 > 10_000) throw new Error(`no ${re} in ${JSON.stringify(text)}`);
      };
      sock.on('data', (b: Buffer) => {
        text += b.toString('latin1');
      });
      await waitText(/\r\n/); // the greeting
      for (const line of d.say) {
        const before = text.length;
        sock.write(line);
        for (const t0 = Date.now(); text.length === before || !text.endsWith('\r\n'); await sleep(20)) if (Date.now() - t0 > 10_000) throw new Error(`no answer to ${line.trim()}: ${text}`);
      }
      assert.match(text.split('\r\n').filter(Boolean).at(-1)! + '\r\n', d.goAhead, text);
      const silentFrom = Date.now();
      const at = await Promise.race([closed, sleep(15_000).then(() => undefined)]);
      sock.destroy();
      assert.ok(at !== undefined, `${d.proto}: the connection was still open 15 s after STARTTLS with no handshake`);
      assert.ok(at - silentFrom >= 1500, `${d.proto}: closed after ${at - silentFrom} ms, before the 2 s timeout`);
      await waitFor(`${d.proto}: tls_failed logged`, () => gw.logs.some((l) => l.event === 'tls_failed' && /timed out/.test(String(l.err))));
    });
  }
});
