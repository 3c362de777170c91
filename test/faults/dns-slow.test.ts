// The DNS server slow, then silent, for real: the gateway's only resolver is a UDP proxy in
// front of a dns2 server holding the zone (test/helpers/dns-server.ts); the proxy holds every
// answer back for a set delay, or drops it. Slow but within dns.timeout: the checks get their
// real answers (rDNS verified, SPF pass), and the session waits for them, no longer. Silent:
// mail still flows, each DNS check yields its temperror symbol (rDNS, DNSBL, SPF, DMARC), and
// the transaction ends within the timeouts. test/edge/dns-checks-smtp.test.ts has the plain
// "DNS down" case for DNSBL and rDNS; this adds the slow server, SPF and DMARC, and the timing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertReply, USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { SmtpClient, dataBlock } from '../helpers/smtp-client.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { waitFor } from '../helpers/wait.js';
import { SlowDns } from './slow-dns.js';

const CLIENT = '127.0.0.31';
const SENDER = 'news@sender.test';
const ALICE = USERS.alice.address;

async function deliver(gw: Gateway, subject: string, client = CLIENT, sender = SENDER): Promise<{ ms: number; names: string[] }> {
  const from = gw.logs.length;
  const started = Date.now();
  const c = await SmtpClient.connect(gw.ports.mx, { localAddress: client, timeoutMs: 30_000 });
  await c.ehlo(`mail.${sender.split('@')[1]}`);
  assertReply(await c.cmd(`MAIL FROM:<${sender}>`, 30_000), 250, undefined, c.describe());
  assertReply(await c.cmd(`RCPT TO:<${ALICE}>`, 30_000), 250, undefined, c.describe());
  assertReply(await c.cmd('DATA', 30_000), 354);
  c.write(dataBlock(makeMessage({ from: sender, to: ALICE, subject })));
  assertReply(await c.readReply(30_000), 250, '2.0.0', c.describe());
  const ms = Date.now() - started;
  await c.quit();
  await gw.waitForMail(ALICE, subject);
  const line = await waitFor('the message log line', () => gw.logs.slice(from).find((l) => l.event === 'message' && l.client === client));
  return { ms, names: (line.symbols as Array<{ name: string }>).map((s) => s.name) };
}

describe('DNS slow, then silent: mail flows within the timeouts', { timeout: 180_000 }, () => {
  let dns: DnsServer;
  let slow: SlowDns;
  let gw: Gateway;
  before(async () => {
    dns = await startDnsServer({
      '31.0.0.127.in-addr.arpa': [{ type: 'PTR', data: 'mail.sender.test' }],
      'mail.sender.test': [{ type: 'A', data: CLIENT }],
      'sender.test': [{ type: 'TXT', data: 'v=spf1 ip4:127.0.0.31 -all' }],
      '_dmarc.sender.test': [{ type: 'TXT', data: 'v=DMARC1; p=none' }],
    });
    slow = await SlowDns.start(dns.port);
    gw = await startGateway({
      users: userMap('alice'),
      config: {
        dns: { servers: [`127.0.0.1:${slow.port}`], timeout: '1s', attempts: 1 },
        dnsbl: { lists: [{ zone: 'bl.test', weight: 2 }] },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
    slow?.close();
    await dns?.close();
  });

  it('slow (400 ms an answer, under dns.timeout): the real answers are used', async () => {
    slow.delayMs = 400;
    const { names } = await deliver(gw, marker('slow'));
    assert.ok(slow.answered > 0, 'the answers went through the slow proxy');
    assert.ok(names.includes('RDNS_VERIFIED'), names.join(','));
    assert.ok(names.includes('SPF_PASS'), names.join(','));
    for (const n of ['RDNS_TEMPFAIL', 'DNSBL_TEMPFAIL', 'SPF_TEMPERROR', 'DMARC_TEMPERROR']) assert.ok(!names.includes(n), `${n} in ${names.join(',')}`);
  });

  it('silent: accepted with the temperror symbols, within the DNS timeouts', async () => {
    slow.silent = true;
    // Another client and sender domain: nothing the slow test asked is in the resolver's cache.
    const { ms, names } = await deliver(gw, marker('silent'), '127.0.0.32', 'news@quiet.test');
    assert.ok(slow.dropped > 0, 'questions were asked and dropped');
    for (const n of ['RDNS_TEMPFAIL', 'DNSBL_TEMPFAIL', 'SPF_TEMPERROR']) assert.ok(names.includes(n), `${n} missing from ${names.join(',')}`);
    assert.ok(names.includes('DMARC_TEMPERROR') || !names.some((n) => n.startsWith('DMARC_')), `DMARC says temperror or nothing: ${names.join(',')}`);
    // Each stage waits at most its checks' DNS deadlines (1 s, one attempt; a few lookups in a row).
    assert.ok(ms < 15_000, `the transaction took ${ms} ms`);
    slow.silent = false;
  });
});
