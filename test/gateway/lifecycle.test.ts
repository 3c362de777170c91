// The gateway's life: metrics over HTTP, certificates reloaded on SIGHUP, graceful SIGTERM that
// finishes a DATA in progress, and a queue that resumes after a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { prepareGateway, runCli, showCli, startGateway } from '../helpers/gateway.js';
import { SmtpClient, dataBlock } from '../helpers/smtp-client.js';
import { Sink } from '../helpers/sink.js';
import { freePorts, tcpAccepts, waitFor } from '../helpers/wait.js';
import { makeMessage, marker } from '../helpers/messages.js';

const pidOf = (dataDir: string) => Number(fs.readFileSync(path.join(dataDir, 'portcullis.pid'), 'utf8'));

function makeCert(dir: string, cn: string): { cert: string; key: string } {
  const cert = path.join(dir, `${cn}.crt`);
  const key = path.join(dir, `${cn}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=DNS:${cn}`], { stdio: 'ignore' });
  return { cert, key };
}

function peerCn(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'mx.example.test' }, () => {
      const cn: string | string[] | undefined = s.getPeerCertificate().subject.CN;
      s.destroy();
      resolve(String(Array.isArray(cn) ? cn[0] : cn));
    });
    s.on('error', reject);
  });
}

test('metrics are served with the counters of the traffic seen', { timeout: 60_000 }, async (t) => {
  const [metricsPort] = await freePorts(1);
  const gw = await startGateway({ config: { metrics: { enabled: true, address: '127.0.0.1', port: metricsPort! } } });
  t.after(() => gw.cleanup());
  const c = await SmtpClient.connect(gw.ports.mx);
  await c.cmd('EHLO client.example.net');
  await c.cmd('MAIL FROM:<a@example.net>');
  assert.equal((await c.cmd('RCPT TO:<nobody@example.test>')).code, 550);
  assert.equal((await c.cmd('RCPT TO:<postmaster@example.test>')).code, 250);
  await c.cmd('DATA');
  c.write(dataBlock(makeMessage({ from: 'a@example.net', to: 'postmaster@example.test', subject: 'metrics' })));
  assert.equal((await c.readReply()).code, 250);
  await c.cmd('QUIT');
  const body = await waitFor('delivery counted in metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    return /portcullis_deliveries_total\{transport="maildir",outcome="delivered"\} 1/.test(text) ? text : undefined;
  });
  assert.match(body, /portcullis_smtp_connections_total\{listener="mx"\} [1-9]/);
  assert.match(body, /portcullis_smtp_replies_total\{listener="mx",code="550"\} 1/);
  assert.match(body, /portcullis_messages_total\{outcome="deliver"\} 1/);
  assert.match(body, /portcullis_queue_messages 0/);
  assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status, 404);
});

test('SIGHUP reloads certificates for new connections; a broken file keeps the old one', { timeout: 60_000 }, async (t) => {
  const gw = await startGateway({
    config: ({ tmpDir }) => {
      const first = makeCert(tmpDir, 'first.example.test');
      fs.copyFileSync(first.cert, path.join(tmpDir, 'live.crt'));
      fs.copyFileSync(first.key, path.join(tmpDir, 'live.key'));
      return { tls: { certificates: [{ cert: path.join(tmpDir, 'live.crt'), key: path.join(tmpDir, 'live.key') }] } };
    },
  });
  t.after(() => gw.cleanup());
  assert.equal(await peerCn(gw.ports.submissions), 'first.example.test');
  const second = makeCert(gw.tmpDir, 'second.example.test');
  fs.copyFileSync(second.cert, path.join(gw.tmpDir, 'live.crt'));
  fs.copyFileSync(second.key, path.join(gw.tmpDir, 'live.key'));
  process.kill(pidOf(gw.dataDir), 'SIGHUP');
  await waitFor('the new certificate to be served', async () => (await peerCn(gw.ports.submissions)) === 'second.example.test');
  fs.writeFileSync(path.join(gw.tmpDir, 'live.key'), 'not a key');
  process.kill(pidOf(gw.dataDir), 'SIGHUP');
  await waitFor('reload failure logged', () => gw.logs.some((l) => l.event === 'reload_failed'));
  assert.equal(await peerCn(gw.ports.submissions), 'second.example.test');
  assert.ok(gw.running, 'a bad reload does not stop the gateway');
});

test('SIGTERM lets a DATA in progress finish, answers idle sessions 421, and exits 0', { timeout: 60_000 }, async (t) => {
  const gw = await startGateway();
  t.after(() => gw.cleanup());
  const idle = await SmtpClient.connect(gw.ports.mx);
  await idle.cmd('EHLO idle.example.net');
  const busy = await SmtpClient.connect(gw.ports.mx);
  await busy.cmd('EHLO busy.example.net');
  await busy.cmd('MAIL FROM:<a@example.net>');
  await busy.cmd('RCPT TO:<postmaster@example.test>');
  assert.equal((await busy.cmd('DATA')).code, 354);
  const id = marker('term');
  const block = dataBlock(makeMessage({ from: 'a@example.net', to: 'postmaster@example.test', subject: id }));
  busy.write(block.subarray(0, 40));
  const stopping = gw.stop(20_000);
  const r421 = await idle.readReply(10_000);
  assert.equal(r421.code, 421);
  assert.equal(r421.enhanced, '4.3.2');
  busy.write(block.subarray(40));
  const final = await busy.readReply(10_000);
  assert.equal(final.code, 250, 'the message in flight is accepted');
  const exit = await stopping;
  assert.equal(exit?.code, 0);
  assert.ok(gw.readMailbox('postmaster@example.test').some((m) => m.content.includes(id)) || (await gw.queueList()).length === 1,
    'the accepted message is delivered or still queued');
});

test('a deferred message survives a restart and is delivered by queue flush once the route is up', { timeout: 90_000 }, async (t) => {
  const [sinkPort] = await freePorts(1);
  const gw = await startGateway({
    config: {
      relay: { domains: [{ domain: 'downstream.test' }], routes: [{ domain: 'downstream.test', host: '127.0.0.1', port: sinkPort!, tls: 'none' }] },
      queue: { retry_initial: '1h' },
    },
  });
  t.after(() => gw.cleanup());
  const id = marker('resume');
  const c = await SmtpClient.connect(gw.ports.mx);
  await c.cmd('EHLO client.example.net');
  await c.cmd('MAIL FROM:<a@example.net>');
  await c.cmd('RCPT TO:<bob@downstream.test>');
  await c.cmd('DATA');
  c.write(dataBlock(makeMessage({ from: 'a@example.net', to: 'bob@downstream.test', subject: id })));
  assert.equal((await c.readReply()).code, 250);
  await waitFor('the delivery to be deferred', () => gw.logs.some((l) => l.event === 'deferred'));
  assert.equal((await gw.stop())?.code, 0);
  const queued = await gw.queueList();
  assert.equal(queued.length, 1, 'queue list works while the gateway is down');
  assert.equal(queued[0]!.recipients[0]!.status, 'deferred');
  await gw.start();
  const sink = await Sink.start({ port: sinkPort });
  t.after(() => sink.close());
  await gw.cliOk(['queue', 'flush']);
  const got = await sink.waitFor(id, 20_000);
  assert.deepEqual(got.rcptTo, ['bob@downstream.test']);
  await waitFor('the queue to be empty', async () => (await gw.queueList()).length === 0);
});

test('a listener that cannot bind stops the start: serve exits 1 naming it, the SMTP listeners opened before it are closed', { timeout: 60_000 }, async (t) => {
  const gw = await prepareGateway();
  t.after(() => gw.cleanup());
  // IMAP starts after the SMTP listeners: hold its port so that they are open when it fails.
  const holder = net.createServer();
  await new Promise<void>((resolve, reject) => holder.once('error', reject).listen(gw.ports.imaps, '127.0.0.1', () => resolve()));
  t.after(() => new Promise<void>((r) => holder.close(() => r())));
  const r = await runCli(['serve', '--config', gw.configFile], { timeoutMs: 20_000 });
  const show = showCli(['serve'], r);
  assert.equal(r.code, 1, show);
  assert.match(r.stderr, /imap\.listeners: imaps cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/, show);
  for (const port of [gw.ports.mx, gw.ports.submission, gw.ports.submissions]) {
    assert.equal(await tcpAccepts(port), false, `port ${port} still accepts after the failed start\n${show}`);
  }
});
