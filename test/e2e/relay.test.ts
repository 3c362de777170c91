// Relay: the open-relay battery (shared/conformance/smtp/open-relay-battery.yaml and the
// suggested extras) must be refused at RCPT in every context, nothing unauthenticated ever
// reaches a next hop, and legitimate relaying reaches the right route (SMTP, LMTP, TLS).
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { fillPlaceholders, relayBattery, type RelayCase } from '../helpers/conformance.js';
import { assertReply, EXT_SENDER, plainToken, USERS, userMap } from '../helpers/fixtures.js';
import { HOSTNAME, startGateway, type Gateway } from '../helpers/gateway.js';
import { isHeaderBlock, makeMessage, marker, splitPrepended } from '../helpers/messages.js';
import { Sink } from '../helpers/sink.js';
import { dataBlock, type Reply, SmtpClient, transaction } from '../helpers/smtp-client.js';
import { sleep } from '../helpers/wait.js';

const EXT = 'external.test';
const PLACEHOLDERS = { to: 'relaytest', from: 'antispam', ext: EXT, srvname: HOSTNAME, ip: '127.0.0.1' };

/** The battery from shared/, then the extras the file suggests. */
function cases(): RelayCase[] {
  const extras: RelayCase[] = [
    { id: 'extra-upper', source: 'suggested', mail_from: '{from}@{ext}', rcpt_to: '{to}@EXTERNAL.TEST', technique: 'upper-case external domain' },
    { id: 'extra-mixed', source: 'suggested', mail_from: '{from}@{ext}', rcpt_to: '{to}@External.Test', technique: 'mixed-case external domain' },
    { id: 'extra-trailing-dot', source: 'suggested', mail_from: '{from}@{ext}', rcpt_to: '{to}@{ext}.', technique: 'trailing dot on the domain' },
    { id: 'extra-pct-local', source: 'suggested', mail_from: '{from}@{ext}', rcpt_to: '{to}%{ext}@example.test', technique: '%-hack whose right side is a local domain' },
    { id: 'extra-pct-second', source: 'suggested', mail_from: '{from}@{ext}', rcpt_to: '{to}%{ext}@second.test', technique: '%-hack at the second local domain' },
    { id: 'extra-bang-local', source: 'suggested', mail_from: '{from}@{ext}', rcpt_to: '{ext}!{to}@example.test', technique: 'bang path at a local domain' },
    { id: 'extra-quoted-local', source: 'suggested', mail_from: '{from}@{ext}', rcpt_to: '"{to}@{ext}"@example.test', technique: 'quoted local part with @ at a local domain' },
    { id: 'extra-ipv6-loopback', source: 'suggested', mail_from: '{from}@{ext}', rcpt_to: '{to}@[IPv6:::1]', technique: 'IPv6 literal (loopback)' },
    { id: 'extra-ipv6-doc', source: 'suggested', mail_from: '{from}@{ext}', rcpt_to: '{to}@[IPv6:2001:db8::25]', technique: 'IPv6 literal (documentation range)' },
    { id: 'extra-ipv4-literal', source: 'suggested', mail_from: '{from}@{ext}', rcpt_to: '{to}@[{ip}]', technique: 'IPv4 literal of the gateway itself' },
    { id: 'extra-suffix-lookalike', source: 'suggested', mail_from: '{from}@{ext}', rcpt_to: '{to}@notrelay.test', technique: 'domain ending in a relay domain name without a dot boundary' },
    { id: 'extra-local-as-subdomain', source: 'suggested', mail_from: '{from}@{ext}', rcpt_to: '{to}@example.test.{ext}', technique: 'local domain as a left part of an external name' },
    { id: 'extra-source-route-local', source: 'suggested', mail_from: '{from}@{ext}', rcpt_to: '@example.test:{to}@{ext}', technique: 'source route via a local domain' },
  ];
  return [...relayBattery(), ...extras];
}

function addresses(c: RelayCase): { from: string; rcpt: string } {
  return { from: fillPlaceholders(c.mail_from, PLACEHOLDERS), rcpt: fillPlaceholders(c.rcpt_to, PLACEHOLDERS) };
}

const MX_REFUSALS = [550, 553, 554, 501];
const SUBMISSION_REFUSALS = [530, 550, 553, 554, 501];

describe('relay control and relay delivery', { timeout: 300_000 }, () => {
  let gw: Gateway;
  let relaySink: Sink;
  let starSink: Sink;
  let lmtpSink: Sink;
  let tlsSink: Sink;
  /** Markers of messages that, had the gateway relayed them, would show up at a sink. */
  const forbidden: string[] = [];

  before(async () => {
    relaySink = await Sink.start();
    starSink = await Sink.start();
    lmtpSink = await Sink.start({ lmtp: true });
    tlsSink = await Sink.start({ starttls: true });
    const route = (domain: string, sink: Sink, extra: Record<string, string | boolean> = {}) =>
      ({ domain, host: '127.0.0.1', port: sink.port, protocol: sink.lmtp ? 'lmtp' : 'smtp', tls: 'none', ...extra });
    gw = await startGateway({
      users: userMap('alice', 'bob'),
      config: {
        smtp: { max_errors: 1000 }, tarpit: { errors: 0 },
        relay: {
          trusted_networks: [],
          domains: [{ domain: 'relay.test' }, { domain: 'listed.test', recipients: ['known@listed.test'] }, { domain: 'lmtp.test' }, { domain: 'tlsrelay.test' }],
          routes: [
            route('relay.test', relaySink),
            route('listed.test', relaySink),
            route('lmtp.test', lmtpSink),
            route('tlsrelay.test', tlsSink, { tls: 'required', tls_verify: false }),
            route('*', starSink),
          ],
        },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
    await Promise.all([relaySink, starSink, lmtpSink, tlsSink].map((s) => s?.close()));
  });

  /** MAIL, RCPT, then DATA (and a message if the server wrongly says 354); returns the replies. */
  async function probe(c: SmtpClient, rc: RelayCase): Promise<{ mail: Reply; rcpt: Reply; data: Reply }> {
    const { from, rcpt } = addresses(rc);
    const mail = await c.cmd(`MAIL FROM:<${from}>`);
    const rr = await c.cmd(`RCPT TO:<${rcpt}>`);
    const data = await c.cmd('DATA');
    if (data.code === 354) {
      const m = marker(`relay-${rc.id}`);
      forbidden.push(m);
      c.write(dataBlock(makeMessage({ from: from || 'null@sender', to: rcpt, subject: m })));
      await c.readReply(30_000);
    }
    return { mail, rcpt: rr, data };
  }

  function check(t: TestContext, rc: RelayCase, res: { mail: Reply; rcpt: Reply; data: Reply }, allowed: number[], c: SmtpClient): void {
    t.diagnostic(`MAIL → ${res.mail.raw} | RCPT → ${res.rcpt.raw}`);
    const ctx = `case ${rc.id} (${rc.technique})\n${c.describe()}`;
    assert.ok(![250, 251, 252].includes(res.rcpt.code), `RELAY ACCEPTED: RCPT got ${res.rcpt.raw}\n${ctx}`);
    if (res.mail.code === 250) assert.ok(allowed.includes(res.rcpt.code), `RCPT must be refused with ${allowed.join('/')}, got ${res.rcpt.raw}\n${ctx}`);
    else assert.ok(res.rcpt.code >= 500 && res.rcpt.code < 600, `RCPT after refused MAIL must be 5xx, got ${res.rcpt.raw}\n${ctx}`);
    assert.notEqual(res.data.code, 354, `DATA must not be accepted after the refused RCPT\n${ctx}`);
  }

  describe('open-relay battery on MX (unauthenticated, one connection per case)', () => {
    for (const rc of cases()) {
      const { from, rcpt } = addresses(rc);
      it(`${rc.id}: MAIL FROM:<${from}> RCPT TO:<${rcpt}> (${rc.technique}) → 5xx at RCPT, never 250`, async (t) => {
        const c = await SmtpClient.connect(gw.ports.mx);
        try {
          await c.ehlo();
          check(t, rc, await probe(c, rc), MX_REFUSALS, c);
        } finally {
          await c.quit();
        }
      });
    }
  });

  describe('open-relay battery on submission after STARTTLS without AUTH', () => {
    for (const rc of cases()) {
      const { rcpt } = addresses(rc);
      it(`${rc.id}: RCPT TO:<${rcpt}> without AUTH → 5xx (530 5.7.0 or relay refusal), never 250`, async (t) => {
        const c = await SmtpClient.connect(gw.ports.submission);
        try {
          await c.ehlo();
          assertReply(await c.startTls(), 220, undefined, c.describe());
          await c.ehlo();
          check(t, rc, await probe(c, rc), SUBMISSION_REFUSALS, c);
        } finally {
          await c.quit();
        }
      });
    }
  });

  describe('open-relay battery on MX before EHLO', () => {
    for (const rc of cases()) {
      it(`${rc.id}: commands before EHLO → RCPT refused with 5xx`, async () => {
        const c = await SmtpClient.connect(gw.ports.mx);
        try {
          const res = await probe(c, rc);
          assert.ok(res.rcpt.code >= 500 && res.rcpt.code < 600, `RCPT before EHLO: ${res.rcpt.raw}\n${c.describe()}`);
          assert.notEqual(res.data.code, 354, c.describe());
        } finally {
          await c.quit();
        }
      });
    }
  });

  describe('open-relay battery on submission after a failed AUTH (one session, RSET between cases)', () => {
    let c: SmtpClient;
    before(async () => {
      c = await SmtpClient.connect(gw.ports.submission);
      await c.ehlo();
      assertReply(await c.startTls(), 220, undefined, c.describe());
      await c.ehlo();
      const r = await c.cmd(`AUTH PLAIN ${plainToken(USERS.alice.address, 'definitely-wrong-pw')}`);
      assertReply(r, 535, '5.7.8', c.describe());
    });
    after(async () => {
      await c?.quit();
    });
    for (const rc of cases()) {
      it(`${rc.id}: after 535, RCPT TO:<${addresses(rc).rcpt}> → 5xx, never 250`, async (t) => {
        const rs = await c.cmd('RSET');
        assertReply(rs, 250, undefined, c.describe());
        check(t, rc, await probe(c, rc), SUBMISSION_REFUSALS, c);
      });
    }
  });

  it('MX: unauthenticated mail to a relay domain (relay.test) is accepted and delivered to its route, byte-identical after prepended headers', async () => {
    const m = marker('relay-ok');
    const original = makeMessage({
      from: EXT_SENDER, to: 'someone@relay.test', subject: m,
      body: `hello ${m}\r\n.dot line\r\n..two dots\r\nGrüße\r\n`,
    });
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      await c.ehlo();
      const res = await transaction(c, EXT_SENDER, ['someone@relay.test'], original);
      assertReply(res.final!, 250, '2.0.0', c.describe());
    } finally {
      await c.quit();
    }
    const got = await relaySink.waitFor(m);
    assert.equal(got.mailFrom, EXT_SENDER);
    assert.deepEqual(got.rcptTo, ['someone@relay.test']);
    assert.equal(got.helo.toLowerCase(), HOSTNAME, 'the gateway greets the next hop with its hostname');
    const split = splitPrepended(got.raw, Buffer.from(original, 'utf8'));
    assert.ok(split, `relayed bytes must end with the original message\n${got.raw.toString('utf8')}`);
    assert.match(split.prefix, /^Received: /);
    assert.ok(isHeaderBlock(split.prefix), JSON.stringify(split.prefix));
    assert.equal(starSink.find(m).length, 0, 'the specific route wins over "*"');
  });

  it('relay domain with a recipients list: a listed recipient is accepted, an unlisted one → 550 5.1.1', async () => {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      await c.ehlo();
      assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250, undefined, c.describe());
      assertReply(await c.cmd('RCPT TO:<known@listed.test>'), 250, undefined, c.describe());
      assertReply(await c.cmd('RCPT TO:<unknown@listed.test>'), 550, '5.1.1', c.describe());
    } finally {
      await c.quit();
    }
  });

  it('LMTP route: a message for two lmtp.test recipients reaches the LMTP sink', async () => {
    const m = marker('lmtp');
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      await c.ehlo();
      const res = await transaction(c, EXT_SENDER, ['one@lmtp.test', 'two@lmtp.test'], makeMessage({ from: EXT_SENDER, to: 'one@lmtp.test', subject: m }));
      assertReply(res.final!, 250, '2.0.0', c.describe());
    } finally {
      await c.quit();
    }
    await lmtpSink.waitFor(m);
    await sleep(300);
    const rcpts = lmtpSink.find(m).flatMap((x) => x.rcptTo).sort();
    assert.deepEqual(rcpts, ['one@lmtp.test', 'two@lmtp.test']);
  });

  it('route with tls: required reaches the next hop over STARTTLS (the sink sees a TLS session)', async () => {
    const m = marker('tls-route');
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      await c.ehlo();
      const res = await transaction(c, EXT_SENDER, ['x@tlsrelay.test'], makeMessage({ from: EXT_SENDER, to: 'x@tlsrelay.test', subject: m }));
      assertReply(res.final!, 250, '2.0.0', c.describe());
    } finally {
      await c.quit();
    }
    const got = await tlsSink.waitFor(m);
    assert.equal(got.secure, true, 'delivered without TLS on a tls: required route');
  });

  it('authenticated submission relays to an external domain through the "*" route', async () => {
    const m = marker('auth-relay');
    const c = await SmtpClient.connect(gw.ports.submission);
    try {
      await c.ehlo();
      assertReply(await c.startTls(), 220, undefined, c.describe());
      await c.ehlo();
      assertReply(await c.cmd(`AUTH PLAIN ${plainToken(USERS.alice.address, USERS.alice.password)}`), 235, '2.7.0', c.describe());
      const res = await transaction(c, USERS.alice.address, [`friend@${EXT}`], makeMessage({ from: USERS.alice.address, to: `friend@${EXT}`, subject: m }));
      assertReply(res.final!, 250, '2.0.0', c.describe());
    } finally {
      await c.quit();
    }
    const got = await starSink.waitFor(m);
    assert.deepEqual(got.rcptTo, [`friend@${EXT}`]);
    assert.equal(got.mailFrom, USERS.alice.address);
  });

  it('authenticated submission to a relay domain uses that domain\'s route, not "*"', async () => {
    const m = marker('auth-relay-domain');
    const c = await SmtpClient.connect(gw.ports.submissions, { implicitTls: true });
    try {
      await c.ehlo();
      assertReply(await c.cmd(`AUTH PLAIN ${plainToken(USERS.bob.address, USERS.bob.password)}`), 235, '2.7.0', c.describe());
      const res = await transaction(c, USERS.bob.address, ['partner@relay.test'], makeMessage({ from: USERS.bob.address, to: 'partner@relay.test', subject: m }));
      assertReply(res.final!, 250, '2.0.0', c.describe());
    } finally {
      await c.quit();
    }
    await relaySink.waitFor(m);
    assert.equal(starSink.find(m).length, 0);
  });

  it('outbound smuggling: bare LF and "\\n.\\n" inside an accepted message are sent on as CRLF, in ONE message, never as end-of-data', async () => {
    const m = marker('outbound');
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      await c.ehlo();
      assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250, undefined, c.describe());
      assertReply(await c.cmd('RCPT TO:<victim@relay.test>'), 250, undefined, c.describe());
      assertReply(await c.cmd('DATA'), 354, undefined, c.describe());
      c.write(`Subject: ${m}\r\nFrom: <${EXT_SENDER}>\r\n\r\nbefore\n.\nMAIL FROM:<x@evil.test>\r\nRCPT TO:<victim@relay.test>\r\nDATA\r\nsmuggled-${m}\r\n.\r\n`);
      const final = await c.readReply(30_000);
      // Rejecting the message outright is also safe; then there is nothing to relay.
      if (final.code !== 250) {
        assert.ok(final.code >= 500, `bare LF message: ${final.raw}\n${c.describe()}`);
        return;
      }
    } finally {
      await c.quit();
    }
    const got = await relaySink.waitFor(m);
    await sleep(500);
    assert.equal(relaySink.messages.filter((x) => x.raw.includes(m)).length, 1, 'exactly one message at the next hop');
    const text = got.raw.toString('latin1');
    assert.ok(text.includes(`smuggled-${m}`) && text.includes('MAIL FROM:<x@evil.test>'), `smuggled text stays inside the one message:\n${text}`);
    assert.doesNotMatch(text, /[^\r]\n|\r[^\n]/, `bare CR or LF passed on to the next hop: ${JSON.stringify(text)}`);
    assert.ok(!relaySink.messages.some((x) => x.mailFrom === 'x@evil.test'), 'no message from the smuggled sender');
  });

  it('from unauthenticated clients nothing was ever relayed: no battery recipient reached any sink or the queue (after `queue flush`)', async () => {
    await gw.cliOk(['queue', 'flush']);
    await sleep(2000);
    const sinks = [relaySink, starSink, lmtpSink, tlsSink];
    const seen = sinks.flatMap((s) => s.rcptLog.map((r) => r.address));
    const bad = seen.filter((a) => /relaytest|external\.test\.?$/i.test(a) && !/^friend@external\.test$/i.test(a));
    assert.deepEqual(bad, [], `relay-battery recipients reached a next hop: ${bad.join(', ')}`);
    for (const m of forbidden) {
      assert.equal(sinks.some((s) => s.find(m).length > 0), false, `message ${m} was relayed`);
    }
    assert.deepEqual(forbidden, [], `the gateway answered 354 to DATA in ${forbidden.length} battery case(s)`);
    const queue = await gw.queueList();
    const queued = queue.flatMap((e) => e.recipients.map((r) => r.address)).filter((a) => /relaytest/i.test(a));
    assert.deepEqual(queued, [], `battery recipients in the queue: ${queued.join(', ')}`);
  });
});
