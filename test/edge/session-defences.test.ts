// Edge defences inside the SMTP session, over real SMTP: early talkers caught during the greeting
// delay, the error tarpit, connection limits and rates per client, message and recipient rates.
// Each client is a different loopback source address (Linux routes all of 127/8 to lo).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertReply, EXT_SENDER, USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { dataBlock, SmtpClient } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';

const GREETING_DELAY_MS = 1500;

async function send(c: SmtpClient, to: string, subject: string): Promise<void> {
  assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250, undefined, c.describe());
  assertReply(await c.cmd(`RCPT TO:<${to}>`), 250, undefined, c.describe());
  assertReply(await c.cmd('DATA'), 354);
  c.write(dataBlock(makeMessage({ from: EXT_SENDER, to, subject })));
  assertReply(await c.readReply(), 250, '2.0.0', c.describe());
}

describe('early talkers', { timeout: 120_000 }, () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({
      users: userMap('alice'),
      config: { greeting: { delay: `${GREETING_DELAY_MS}ms`, early_talker: 'reject' }, tarpit: { delay: '100ms' } },
    });
  });
  after(async () => {
    await gw?.cleanup();
  });

  it('a client that talks before the banner is refused at RCPT, with the envelope logged; postmaster stays reachable', async () => {
    const c = await SmtpClient.connect(gw.ports.mx, { localAddress: '127.0.0.21', readGreeting: false });
    const started = Date.now();
    c.send('EHLO pregreet.example.net');
    const greeting = await c.readReply();
    assertReply(greeting, 220, undefined, c.describe());
    assert.ok(Date.now() - started >= GREETING_DELAY_MS - 100, `the banner waited for the greeting delay (${Date.now() - started} ms)`);
    assertReply(await c.readReply(), 250, undefined, c.describe()); // the EHLO, answered after the banner
    assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250);
    const refused = await c.cmd(`RCPT TO:<${USERS.alice.address}>`);
    assertReply(refused, 550, '5.5.1', c.describe());
    assert.match(refused.text, /talked before my greeting/);
    assertReply(await c.cmd('RCPT TO:<postmaster@example.test>'), 250, undefined, 'postmaster is exempt');
    await c.quit();
    const early = await waitFor('early_talker log line', () => gw.logs.find((l) => l.event === 'early_talker' && l.client === '127.0.0.21'));
    assert.equal(early.first, 'EHLO pregreet.example.net..');
    const rejected = await waitFor('rcpt_reject log line', () => gw.logs.find((l) => l.event === 'rcpt_reject' && l.recipient === USERS.alice.address));
    assert.equal(rejected.sender, EXT_SENDER);
    assert.ok((rejected.symbols as Array<{ name: string }>).some((s) => s.name === 'EARLY_TALKER'));
  });

  it('a client that waits is served, and is not delayed again (greeting.pass_ttl)', async () => {
    const c = await SmtpClient.connect(gw.ports.mx, { localAddress: '127.0.0.22' });
    await c.ehlo();
    const subject = marker('patient');
    await send(c, USERS.alice.address, subject);
    await c.quit();
    await gw.waitForMail(USERS.alice.address, subject);
    const started = Date.now();
    const again = await SmtpClient.connect(gw.ports.mx, { localAddress: '127.0.0.22' });
    assertReply(again.greeting!, 220);
    assert.ok(Date.now() - started < GREETING_DELAY_MS, `second greeting came without the delay (${Date.now() - started} ms)`);
    await again.quit();
  });
});

describe('early talkers scored instead of refused', { timeout: 120_000 }, () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({ users: userMap('alice'), config: { greeting: { delay: '800ms', early_talker: 'score' }, tarpit: { delay: '100ms' } } });
  });
  after(async () => {
    await gw?.cleanup();
  });

  it('the message is accepted and carries EARLY_TALKER in X-Spam-Status', async () => {
    const c = await SmtpClient.connect(gw.ports.mx, { localAddress: '127.0.0.23', readGreeting: false });
    c.send('EHLO eager.example.net');
    assertReply(await c.readReply(), 220);
    assertReply(await c.readReply(), 250);
    const subject = marker('eager');
    await send(c, USERS.alice.address, subject);
    await c.quit();
    const mail = (await gw.waitForMail(USERS.alice.address, subject)).toString();
    assert.match(mail, /X-Spam-Status: .*\r?\n?\s*tests=[^\r\n]*EARLY_TALKER=/);
  });
});

describe('tarpit and client limits', { timeout: 180_000 }, () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({
      users: userMap('alice'),
      config: {
        tarpit: { errors: 2, error_delay: '1s' },
        limits: { connections_per_ip: 2, connection_rate_per_net: 6, messages_per_ip: 2, recipients_per_ip: 3, window: '1m' },
        relay: { trusted_networks: ['127.0.0.99/32'] },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
  });

  it('after two bad commands every reply waits for the tarpit delay', async () => {
    const c = await SmtpClient.connect(gw.ports.mx, { localAddress: '127.0.1.31' });
    await c.ehlo();
    let t = Date.now();
    assertReply(await c.cmd('NOOP'), 250);
    const quick = Date.now() - t;
    assertReply(await c.cmd('BOGUS'), 500);
    assertReply(await c.cmd('MAIL FROM:<broken'), 501);
    t = Date.now();
    assertReply(await c.cmd('NOOP'), 250);
    const slow = Date.now() - t;
    assert.ok(slow >= 950, `NOOP after two errors waited ${slow} ms (before the errors: ${quick} ms)`);
    await c.quit();
  });

  it('a third concurrent connection from one address gets 421 4.7.0; closing one lets the next in', async () => {
    const a = await SmtpClient.connect(gw.ports.mx, { localAddress: '127.0.2.41' });
    const b = await SmtpClient.connect(gw.ports.mx, { localAddress: '127.0.2.41' });
    assertReply(a.greeting!, 220);
    assertReply(b.greeting!, 220);
    const third = await SmtpClient.connect(gw.ports.mx, { localAddress: '127.0.2.41' });
    assertReply(third.greeting!, 421, '4.7.0');
    assert.match(third.greeting!.text, /too many connections from 127\.0\.2\.41/);
    await waitFor('third closed', () => third.closed || undefined);
    const other = await SmtpClient.connect(gw.ports.mx, { localAddress: '127.0.2.42' });
    assertReply(other.greeting!, 220, undefined, 'another address in the same /24 is still under the network limit');
    const closedBefore = gw.logs.filter((l) => l.event === 'disconnect' && l.client === '127.0.2.41').length;
    await a.quit();
    await waitFor('the gateway saw the close', () => gw.logs.filter((l) => l.event === 'disconnect' && l.client === '127.0.2.41').length > closedBefore || undefined);
    const fourth = await SmtpClient.connect(gw.ports.mx, { localAddress: '127.0.2.41' });
    assertReply(fourth.greeting!, 220, undefined, 'a connection is admitted again once one has closed');
    for (const c of [b, other, fourth]) await c.quit();
  });

  it('the connection rate per network is limited over the window; trusted networks are exempt', async () => {
    const codes: number[] = [];
    for (let k = 0; k < 7; k++) {
      const c = await SmtpClient.connect(gw.ports.mx, { localAddress: `127.0.3.${10 + k}` });
      codes.push(c.greeting!.code);
      if (c.greeting!.code === 421) assert.match(c.greeting!.text, /too many connections from 127\.0\.3\.0\/24/);
      await c.quit().catch(() => undefined);
    }
    assert.deepEqual(codes, [220, 220, 220, 220, 220, 220, 421]);
    for (let k = 0; k < 8; k++) {
      const c = await SmtpClient.connect(gw.ports.mx, { localAddress: '127.0.0.99' });
      assertReply(c.greeting!, 220, undefined, 'trusted clients are not rate limited');
      await c.quit();
    }
  });

  it('messages and recipients per client are limited with 450 4.7.1', async () => {
    const c = await SmtpClient.connect(gw.ports.mx, { localAddress: '127.0.4.51' });
    await c.ehlo();
    await send(c, USERS.alice.address, marker('rate1'));
    await send(c, USERS.alice.address, marker('rate2'));
    const third = await c.cmd(`MAIL FROM:<${EXT_SENDER}>`);
    assertReply(third, 450, '4.7.1', c.describe());
    assert.match(third.text, /too much mail from 127\.0\.4\.51/);
    await c.quit();
    const d = await SmtpClient.connect(gw.ports.mx, { localAddress: '127.0.4.52' });
    await d.ehlo();
    assertReply(await d.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250);
    for (let k = 0; k < 3; k++) assertReply(await d.cmd(`RCPT TO:<${USERS.alice.address}>`), 250);
    const fourth = await d.cmd(`RCPT TO:<${USERS.alice.address}>`);
    assertReply(fourth, 450, '4.7.1', d.describe());
    assert.match(fourth.text, /too many recipients from 127\.0\.4\.52/);
    await d.quit();
  });
});
