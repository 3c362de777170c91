// Bad input never crashes the gateway: random bytes in every protocol state (command, AUTH
// exchange after TLS, DATA), from a seeded generator so a failure can be replayed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { startGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { SmtpClient } from '../helpers/smtp-client.js';

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const PREFIXES = [
  '', 'EHLO x\r\n', 'EHLO x\r\nMAIL FROM:<a@example.net>\r\n', 'EHLO x\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<postmaster@example.test>\r\nDATA\r\n',
  'EHLO x\r\nAUTH LOGIN\r\n', 'HELO x\r\nMAIL FROM:<', 'EHLO x\r\nRCPT TO:<"', 'EHLO x\r\nMAIL FROM:<a@b.example> SIZE=',
];

function garbage(rand: () => number): Buffer {
  const n = Math.floor(rand() * 3000);
  const b = Buffer.alloc(n);
  const pool = '\r\n.\0:<>@"%!\\ \tMAILFROMRCPTDATAEHLOAUTH=+/';
  for (let i = 0; i < n; i++) b[i] = rand() < 0.6 ? pool.charCodeAt(Math.floor(rand() * pool.length)) : Math.floor(rand() * 256);
  return b;
}

function blast(port: number, payload: Buffer, secure: boolean): Promise<void> {
  return new Promise((resolve) => {
    const sock: net.Socket = secure ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : net.connect({ port, host: '127.0.0.1' });
    const done = () => {
      sock.destroy();
      resolve();
    };
    sock.on('error', done);
    sock.on('close', done);
    sock.once(secure ? 'secureConnect' : 'connect', () => {
      sock.write(payload);
      setTimeout(() => sock.end(), 30);
    });
    sock.setTimeout(3000, done);
    sock.resume();
  });
}

test('random bytes in every state get answers, never a crash', { timeout: 120_000 }, async (t) => {
  const gw = await startGateway({ config: { smtp: { max_errors: 1000 }, tarpit: { errors: 0 } } });
  t.after(() => gw.cleanup());
  const rand = prng(20261128);
  for (let round = 0; round < 30; round++) {
    const jobs: Promise<void>[] = [];
    for (let k = 0; k < 8; k++) {
      const prefix = Buffer.from(PREFIXES[Math.floor(rand() * PREFIXES.length)]!);
      const secure = rand() < 0.3;
      jobs.push(blast(secure ? gw.ports.submissions : gw.ports.mx, Buffer.concat([prefix, garbage(rand)]), secure));
    }
    await Promise.all(jobs);
  }
  assert.ok(gw.running, 'the gateway is still running');
  const errorsLogged = () => gw.logs.filter((l) => l.event === 'disconnect').reduce((n, l) => n + Number(l.errors ?? 0), 0);
  // Log lines arrive through the child's stdout a moment after the connections close.
  await waitFor('the garbage to be answered with errors (> 100)', () => errorsLogged() > 100);
  assert.ok(!gw.logs.some((l) => l.event === 'crash' || l.event === 'internal_error'), 'no internal error was logged');
  const c = await SmtpClient.connect(gw.ports.mx);
  assert.equal((await c.cmd('EHLO after.example.net')).code, 250);
  await c.cmd('QUIT');
});
