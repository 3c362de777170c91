// Password guessing: many parallel connections from one IP against one account. The gateway
// must slow the guesses down, block the source, log the block, and still let the real user in
// from another address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { startGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

/** A tiny line-based SMTP client over implicit TLS, bound to a chosen loopback source address. */
async function session(port: number, localAddress: string) {
  const raw = net.connect({ port, host: '127.0.0.1', localAddress });
  const sock = tls.connect({ socket: raw, rejectUnauthorized: false });
  let buf = '';
  const waiters: ((line: string) => void)[] = [];
  const lines: string[] = [];
  let closed = false;
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (/^\d{3}-/.test(line)) continue;
      const w = waiters.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const done = () => {
    closed = true;
    for (const w of waiters.splice(0)) w('');
  };
  sock.on('close', done);
  sock.on('error', done);
  const reply = () => new Promise<string>((resolve) => (lines.length ? resolve(lines.shift()!) : closed ? resolve('') : waiters.push(resolve)));
  await new Promise<void>((resolve, reject) => {
    sock.once('secureConnect', () => resolve());
    sock.once('error', reject);
  });
  await reply();
  return {
    async cmd(line: string) {
      if (closed) return '';
      sock.write(`${line}\r\n`);
      return reply();
    },
    close: () => sock.destroy(),
    get closed() {
      return closed;
    },
  };
}

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

test('password guessing is slowed, blocked and logged; the real user still logs in from elsewhere', { timeout: 180_000 }, async (t) => {
  const gw = await startGateway({
    users: { 'target@example.test': 'Real-secret-pw-31337' },
    config: {
      auth: { brute_force: { pair_limit: 5, ip_limit: 30, net_limit: 1_000_000, base_delay: '20ms', max_delay: '250ms', block_time: '10m' } },
      log: { level: 'info' },
    },
  });
  t.after(() => gw.cleanup());
  const attacker = '127.0.0.1';
  const seconds = 20;
  const deadline = Date.now() + seconds * 1000;
  let guesses = 0;
  let successes = 0;
  const worker = async (w: number) => {
    let k = 0;
    while (Date.now() < deadline) {
      const s = await session(gw.ports.submissions, attacker);
      await s.cmd(`EHLO attacker${w}.example.net`);
      while (!s.closed && Date.now() < deadline) {
        const r = await s.cmd(`AUTH PLAIN ${plain('target@example.test', `guess-${w}-${k++}`)}`);
        if (!r || r.startsWith('421')) break; // the error limit ended the session
        guesses++;
        if (r.startsWith('235')) successes++;
        else assert.match(r, /^535 5\.7\.8 /);
      }
      s.close();
    }
  };
  await Promise.all(Array.from({ length: 40 }, (_, w) => worker(w)));
  // Every answered guess is logged as auth_failed; wait until the log has caught up.
  await waitFor('the log lines of every guess', () => gw.logs.filter((l) => l.event === 'auth_failed').length >= guesses);
  const failed = gw.logs.filter((l) => l.event === 'auth_failed').length;
  const blockedAttempts = gw.logs.filter((l) => l.event === 'auth_blocked').length;
  const evaluated = failed - blockedAttempts;
  process.stdout.write(`# brute force: ${guesses} guesses answered in ${seconds} s over 40 connections; ${evaluated} passwords evaluated ` +
    `(${Math.round((evaluated / seconds) * 60)} per minute), ${blockedAttempts} refused unchecked while blocked\n`);
  assert.equal(successes, 0);
  assert.ok(guesses >= 200, `the attack ran (${guesses} guesses)`);
  assert.ok(evaluated <= 30 + 40, `only a handful of guesses were evaluated before the block (${evaluated})`);
  assert.ok(blockedAttempts > guesses / 2, 'most guesses were refused without checking the password');
  const blocks = gw.logs.filter((l) => l.event === 'auth_block');
  assert.ok(blocks.some((l) => l.scope === 'pair' && l.ip === attacker && l.user === 'target@example.test'), 'the pair block is logged');
  assert.ok(blocks.some((l) => l.scope === 'ip' && l.ip === attacker), 'the IP block is logged');

  // The real user, from its own address, is not locked out.
  const user = await session(gw.ports.submissions, '127.0.0.2');
  await user.cmd('EHLO laptop.example.test');
  assert.match(await user.cmd(`AUTH PLAIN ${plain('target@example.test', 'Real-secret-pw-31337')}`), /^235 2\.7\.0 /);
  user.close();
  // Even the right password from the attacker's address is refused while it is blocked.
  const again = await session(gw.ports.submissions, attacker);
  await again.cmd('EHLO attacker.example.net');
  assert.match(await again.cmd(`AUTH PLAIN ${plain('target@example.test', 'Real-secret-pw-31337')}`), /^535 5\.7\.8 /);
  again.close();

  // The CLI shows the block and lifts it.
  const status = await gw.cliOk(['auth', 'status', attacker]);
  assert.match(status.stdout, /BLOCKED until\s+ip\s+127\.0\.0\.1/);
  await gw.cliOk(['auth', 'unblock', attacker]);
  assert.match((await gw.cliOk(['auth', 'status', attacker])).stdout, /nothing recorded|known network/);
  const after = await session(gw.ports.submissions, attacker);
  await after.cmd('EHLO attacker.example.net');
  assert.match(await after.cmd(`AUTH PLAIN ${plain('target@example.test', 'Real-secret-pw-31337')}`), /^235 /);
  after.close();
});

test('unknown users and wrong passwords get the same reply in the same time', { timeout: 120_000 }, async (t) => {
  const gw = await startGateway({
    users: { 'known@example.test': 'Quiet-lantern-pw-2718' },
    config: {
      auth: { brute_force: { pair_limit: 1000, ip_limit: 100_000, net_limit: 1_000_000, base_delay: '0ms', max_delay: '0ms' } },
      smtp: { max_errors: 1000 }, tarpit: { errors: 0 },
    },
  });
  t.after(() => gw.cleanup());
  const s = await session(gw.ports.submissions, '127.0.0.3');
  await s.cmd('EHLO timing.example.net');
  const measure = async (user: string) => {
    const t0 = process.hrtime.bigint();
    const r = await s.cmd(`AUTH PLAIN ${plain(user, 'wrong-password-123')}`);
    return { r, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
  };
  const known: number[] = [];
  const unknown: number[] = [];
  for (let i = 0; i < 15; i++) {
    const a = await measure('known@example.test');
    const b = await measure(`nobody${i}@example.test`);
    assert.equal(a.r.replace(/\s+$/, ''), b.r.replace(/\s+$/, ''), 'identical replies');
    known.push(a.ms);
    unknown.push(b.ms);
  }
  s.close();
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const mk = median(known);
  const mu = median(unknown);
  process.stdout.write(`# timing: median wrong password ${mk.toFixed(1)} ms, unknown user ${mu.toFixed(1)} ms\n`);
  assert.ok(Math.abs(mk - mu) / Math.max(mk, mu) < 0.35, `medians within noise (${mk.toFixed(1)} vs ${mu.toFixed(1)} ms)`);
});

test('malformed AUTH exchanges get the right 5xx and count against the source; spraying raises an alert', { timeout: 60_000 }, async (t) => {
  const gw = await startGateway({
    users: { 'ops@example.test': 'Copper-Meadow-pw-808' },
    config: { auth: { brute_force: { base_delay: '5ms', max_delay: '20ms', ip_limit: 1000, pair_limit: 1000 } }, smtp: { max_errors: 1000 } },
  });
  t.after(() => gw.cleanup());
  const s = await session(gw.ports.submissions, '127.0.0.4');
  await s.cmd('EHLO odd.example.net');
  assert.match(await s.cmd('AUTH PLAIN !!!not-base64'), /^501 5\.5\.2 /);
  assert.match(await s.cmd('AUTH CRAM-MD5'), /^504 5\.5\.4 /);
  assert.match(await s.cmd('AUTH PLAIN'), /^334 /);
  assert.match(await s.cmd('*'), /^501 5\.7\.0 /);
  assert.match(await s.cmd(`AUTH PLAIN ${Buffer.from('other@example.test\0ops@example.test\0Copper-Meadow-pw-808').toString('base64')}`), /^535 5\.7\.8 /);
  assert.match(await s.cmd(`AUTH PLAIN ${'QUFB'.repeat(1500)}`), /^500 5\.5\.2 /);
  assert.match(await s.cmd(`AUTH PLAIN ${plain('ops@example.test', 'Copper-Meadow-pw-808')}`), /^235 /);
  assert.match(await s.cmd(`AUTH PLAIN ${plain('ops@example.test', 'Copper-Meadow-pw-808')}`), /^503 5\.5\.1 /);
  s.close();
  const status = (await gw.cliOk(['auth', 'status', '127.0.0.4'])).stdout;
  assert.match(status, /failures\s+ip\s+127\.0\.0\.4\s+[2-9]/, status);

  const sprayer = await session(gw.ports.submissions, '127.0.0.5');
  await sprayer.cmd('EHLO spray.example.net');
  for (let i = 0; i < 10; i++) assert.match(await sprayer.cmd(`AUTH PLAIN ${plain(`user${i}@example.test`, 'Summer2026!')}`), /^535 /);
  sprayer.close();
  // Log lines reach the test through the child's stdout a moment after the replies.
  const alert = await waitFor('a spraying alert in the log', () => gw.logs.find((l) => l.event === 'auth_spraying'));
  assert.equal(alert.kind, 'accounts_from_ip');
  assert.equal(alert.ip, '127.0.0.5');
});
