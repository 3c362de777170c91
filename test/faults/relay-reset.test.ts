// The downstream relay resetting mid-DATA, for real: the relay route points at a TCP proxy in
// front of a capturing sink (test/helpers/sink.ts); the proxy lets the dialogue through to the
// 354, forwards 2 KB of the message and then resets both connections. The accepted message must
// stay queued (deferred, retried), nothing reaches the sink half, and once the next hop behaves
// the message is delivered exactly once.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertReply, EXT_SENDER } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { Sink } from '../helpers/sink.js';
import { SmtpClient, transaction } from '../helpers/smtp-client.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { ResetProxy } from './reset-proxy.js';

const RCPT = 'someone@relay.test';

describe('downstream relay resetting mid-DATA', { timeout: 120_000 }, () => {
  let sink: Sink;
  let proxy: ResetProxy;
  let gw: Gateway;
  before(async () => {
    sink = await Sink.start();
    proxy = await ResetProxy.start(sink.port);
    gw = await startGateway({
      config: {
        queue: { retry_initial: '1s', retry_max: '2s' },
        relay: {
          trusted_networks: [],
          domains: [{ domain: 'relay.test' }],
          routes: [{ domain: 'relay.test', host: '127.0.0.1', port: proxy.port, protocol: 'smtp', tls: 'none' }],
        },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
    await proxy?.close();
    await sink?.close();
  });

  it('the message stays queued while the relay resets, and is delivered once when it behaves', async () => {
    proxy.mode = 'reset';
    const token = marker('reset');
    const body = `${token}\r\n${'x'.repeat(70)}\r\n`.repeat(800) + `END-${token}\r\n`;
    const c = await SmtpClient.connect(gw.ports.mx);
    await c.ehlo('client.example.net');
    const r = await transaction(c, EXT_SENDER, [RCPT], makeMessage({ from: EXT_SENDER, to: RCPT, subject: token, body }));
    assertReply(r.final!, 250, '2.0.0', c.describe());
    await c.quit();

    const rc = await waitFor('two reset attempts, the message still queued', async () => {
      const e = (await gw.queueList()).find((m) => m.recipients.some((x) => x.address === RCPT));
      const x = e?.recipients.find((y) => y.address === RCPT);
      return x && x.status === 'deferred' && x.attempts >= 2 && proxy.resets >= 2 ? x : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200, details: () => gw.tail(20) });
    assert.ok(rc.last_reply, 'the deferral says why');
    assert.equal(sink.find(token).length, 0, 'nothing reached the sink from a reset transaction');
    assert.ok(gw.running);

    proxy.mode = 'pass';
    const got = await sink.waitFor(token, 30_000);
    assert.ok(got.raw.includes(`END-${token}`), 'the copy is whole');
    await waitFor('the queue to drain', async () => (await gw.queueList()).length === 0, { timeoutMs: 15_000, intervalMs: 200 });
    await sleep(1_000);
    assert.equal(sink.find(token).length, 1, 'delivered exactly once');
  });
});
