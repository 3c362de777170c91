// Connect-time DNS defences over real SMTP and real DNS: the real rbldnsd serves a block- and an
// allowlist, a dns2 server on loopback serves PTR/A records; the gateway's resolver asks
// rbldnsd first (it REFUSES names outside its zones, so the resolver moves on to the second server).
// Clients are different loopback source addresses (Linux routes all of 127/8 to lo).
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { assertReply, EXT_SENDER, plainToken, USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { SmtpClient } from '../helpers/smtp-client.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { needRbldnsd, startRbldnsd, type Rbldnsd } from '../helpers/rbldnsd.js';
import { waitFor } from '../helpers/wait.js';
import { deliverFrom } from '../store/node-clients.js';

const LISTED = '127.0.0.2';
const ALLOWED = '127.0.0.9';
const DYNAMIC = '127.0.0.5';
const GOOD = '127.0.0.6';

const deliver = (gw: Gateway, from: string, helo?: string) => deliverFrom(gw, from, { helo, tag: 'dns' });

/** The tests= list of X-Spam-Status as a map symbol → score. */
function spamTests(mail: string): Record<string, number> {
  const m = /X-Spam-Status: [^\r\n]*\r?\n\s+tests=([^\r\n]*)/.exec(mail);
  assert.ok(m, `no X-Spam-Status tests in:\n${mail.slice(0, 1500)}`);
  if (m[1] === 'none') return {};
  return Object.fromEntries(m[1]!.split(',').map((kv) => {
    const [k, v] = kv.split('=');
    return [k!, Number(v)];
  }));
}

describe('DNSBL, DNSWL, rDNS and HELO over real SMTP and real DNS', { timeout: 180_000 }, () => {
  let rbl: Rbldnsd | undefined;
  let dns: DnsServer;
  let gw: Gateway;

  before(async (t) => {
    if (!needRbldnsd(t as never)) return;
    rbl = await startRbldnsd(
      { bl: ':127.0.0.2:listed by test, see https://bl.test/lookup\n127.0.0.2\n', wl: ':127.0.10.1:\n127.0.0.9\n' },
      ['bl.test:ip4set:bl', 'wl.test:ip4set:wl'],
      '2.0.0.127.bl.test',
    );
    dns = await startDnsServer({
      '5.0.0.127.in-addr.arpa': [{ type: 'PTR', data: 'dsl-127-0-0-5.dyn.isp.test' }],
      'dsl-127-0-0-5.dyn.isp.test': [{ type: 'A', data: DYNAMIC }],
      '6.0.0.127.in-addr.arpa': [{ type: 'PTR', data: 'mail.good.test' }],
      'mail.good.test': [{ type: 'A', data: GOOD }, { type: 'MX', data: { priority: 10, exchange: 'mail.good.test' } }],
      'client.example.net': [{ type: 'A', data: '192.0.2.10' }],
    });
    gw = await startGateway({
      users: userMap('alice'),
      config: {
        dns: { servers: [rbl.server, dns.server], timeout: '500ms', attempts: 1 },
        dnsbl: { lists: [{ zone: 'bl.test', weight: 2, codes: ['127.0.0.2'] }, { zone: 'wl.test', weight: -2 }], threshold: 1 },
        tarpit: { score: 1.4, delay: '600ms' },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
    await dns?.close();
    await rbl?.stop();
  });

  it('a listed client is refused at every RCPT with 554 5.7.1 naming the list; postmaster stays reachable; the log has the envelope', async (t) => {
    if (!needRbldnsd(t)) return;
    const c = await SmtpClient.connect(gw.ports.mx, { localAddress: LISTED });
    await c.ehlo();
    assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250, undefined, c.describe());
    const r = await c.cmd(`RCPT TO:<${USERS.alice.address}>`);
    assertReply(r, 554, '5.7.1', c.describe());
    assert.equal(r.text, '5.7.1 Service unavailable; Client host [127.0.0.2] blocked using bl.test; listed by test, see https://bl.test/lookup');
    assertReply(await c.cmd('RCPT TO:<postmaster@example.test>'), 250, undefined, 'role addresses stay reachable for delisting requests');
    await c.quit();
    const line = await waitFor('rcpt_reject', () => gw.logs.find((l) => l.event === 'rcpt_reject' && l.client === LISTED && l.recipient === USERS.alice.address));
    assert.equal(line.sender, EXT_SENDER);
    assert.equal(line.helo, 'client.example.net');
    const symbols = line.symbols as Array<{ name: string; score: number }>;
    assert.deepEqual(symbols.find((s) => s.name === 'DNSBL_BL_TEST')?.score, 2);
  });

  it('the same listed address may send on submission after AUTH (DNS lists apply to mx listeners)', async (t) => {
    if (!needRbldnsd(t)) return;
    const c = await SmtpClient.connect(gw.ports.submission, { localAddress: LISTED });
    await c.ehlo();
    assertReply(await c.startTls(), 220);
    await c.ehlo();
    assertReply(await c.cmd(`AUTH PLAIN ${plainToken(USERS.alice.address, USERS.alice.password)}`), 235, undefined, c.describe());
    assertReply(await c.cmd(`MAIL FROM:<${USERS.alice.address}>`), 250, undefined, c.describe());
    assertReply(await c.cmd(`RCPT TO:<${USERS.alice.address}>`), 250, undefined, c.describe());
    await c.quit();
  });

  it('an allowlisted client is served and DNSWL subtracts in X-Spam-Status', async (t) => {
    if (!needRbldnsd(t)) return;
    const tests = spamTests(await deliver(gw, ALLOWED));
    assert.equal(tests.DNSWL_WL_TEST, -2);
    assert.equal(tests.DNSBL_BL_TEST, undefined);
  });

  it('a client with a dynamic-looking PTR is scored (RDNS_DYNAMIC), delivered, and tarpitted', async (t) => {
    if (!needRbldnsd(t)) return;
    const c = await SmtpClient.connect(gw.ports.mx, { localAddress: DYNAMIC });
    await c.ehlo();
    const started = Date.now();
    assertReply(await c.cmd('NOOP'), 250);
    assert.ok(Date.now() - started >= 550, `the reply waited for the tarpit (${Date.now() - started} ms)`);
    await c.quit();
    const tests = spamTests(await deliver(gw, DYNAMIC));
    assert.ok(tests.RDNS_DYNAMIC! > 0, JSON.stringify(tests));
  });

  it('a client with forward-confirmed, ordinary rDNS gets no rDNS score; HELO naming our host scores HELO_CLAIMS_OURS', async (t) => {
    if (!needRbldnsd(t)) return;
    const mail = await deliver(gw, GOOD, 'mail.good.test');
    assert.match(mail, /Authentication-Results: mx\.example\.test;\r?\n\s+iprev=pass policy\.iprev=127\.0\.0\.6 \(mail\.good\.test\)/);
    const plain = spamTests(mail);
    assert.deepEqual(Object.keys(plain).filter((k) => k.startsWith('RDNS_') || k.startsWith('HELO_')), []);
    const claims = spamTests(await deliver(gw, GOOD, 'mx.example.test'));
    assert.ok(claims.HELO_CLAIMS_OURS! > 0, JSON.stringify(claims));
  });

  it('a client without PTR is scored RDNS_NONE; a HELO name that does not resolve scores HELO_NO_RESOLVE', async (t) => {
    if (!needRbldnsd(t)) return;
    const mail = await deliver(gw, '127.0.0.7', 'nowhere.invalid-host.test');
    assert.match(mail, /iprev=fail policy\.iprev=127\.0\.0\.7/);
    const tests = spamTests(mail);
    assert.ok(tests.RDNS_NONE! > 0, JSON.stringify(tests));
    assert.ok(tests.HELO_NO_RESOLVE! > 0, JSON.stringify(tests));
  });

  it('`portcullis check-ip` explains the decision with the same symbols (exit 1 when refused, 0 when accepted)', async (t) => {
    if (!needRbldnsd(t)) return;
    const listed = await gw.cli(['check-ip', LISTED]);
    assert.equal(listed.code, 1, listed.stdout + listed.stderr);
    assert.match(listed.stdout, /DNSBL_BL_TEST\s+2\s+bl\.test returned 127\.0\.0\.2: listed by test/);
    assert.match(listed.stdout, /decision: REFUSE — every RCPT except role addresses gets: 554 5\.7\.1 Service unavailable; Client host \[127\.0\.0\.2\] blocked using bl\.test/);
    const allowed = await gw.cli(['check-ip', ALLOWED, '--json']);
    assert.equal(allowed.code, 0, allowed.stdout + allowed.stderr);
    const v = JSON.parse(allowed.stdout) as { symbols: Array<{ name: string; score: number }>; refused?: unknown; dnsblSum: number };
    assert.deepEqual(v.symbols.find((s) => s.name === 'DNSWL_WL_TEST')?.score, -2);
    assert.equal(v.refused, undefined);
    assert.equal(v.dnsblSum, -2);
    const dynamic = await gw.cli(['check-ip', DYNAMIC]);
    assert.match(dynamic.stdout, /RDNS_DYNAMIC/);
    assert.match(dynamic.stdout, /tarpit: every reply waits 600 ms/);
    const bad = await gw.cli(['check-ip', 'not-an-ip']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not an IP address/);
  });
});

describe('DNS down: the session goes on, the checks score as unknown', { timeout: 120_000 }, () => {
  let silent: dgram.Socket;
  let gw: Gateway;
  before(async () => {
    // A DNS server that reads every question and never answers.
    silent = dgram.createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
    gw = await startGateway({
      users: userMap('alice'),
      config: {
        dns: { servers: [`127.0.0.1:${silent.address().port}`], timeout: '300ms', attempts: 1 },
        dnsbl: { lists: [{ zone: 'bl.test', weight: 2 }] },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
    silent?.close();
  });

  it('the message is accepted; DNSBL_TEMPFAIL and RDNS_TEMPFAIL are in the log line', async () => {
    await deliver(gw, '127.0.0.11');
    const line = await waitFor('message log line', () => gw.logs.find((l) => l.event === 'message' && l.client === '127.0.0.11'));
    const names = (line.symbols as Array<{ name: string }>).map((s) => s.name);
    assert.ok(names.includes('DNSBL_TEMPFAIL'), names.join(','));
    assert.ok(names.includes('RDNS_TEMPFAIL'), names.join(','));
  });
});
