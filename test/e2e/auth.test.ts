// SMTP AUTH: never over plaintext, works over TLS with accounts made by the CLI, wrong
// passwords refused, submission requires AUTH, senders must belong to the user.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mailer, needTool, pyProbe, swaks } from '../helpers/clients.js';
import { assertReply, EXT_SENDER, plainToken, USERS, userMap } from '../helpers/fixtures.js';
import { showCli, startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { Sink } from '../helpers/sink.js';
import { SmtpClient } from '../helpers/smtp-client.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('SMTP AUTH', { timeout: 180_000 }, () => {
  let gw: Gateway;
  let sink: Sink;
  before(async () => {
    sink = await Sink.start();
    gw = await startGateway({
      users: userMap('alice', 'bob'),
      config: { relay: { routes: [{ domain: '*', host: '127.0.0.1', port: sink.port, protocol: 'smtp', tls: 'none' }] } },
    });
  });
  after(async () => {
    await gw?.cleanup();
    await sink?.close();
  });

  async function tlsSubmission(): Promise<SmtpClient> {
    const c = await SmtpClient.connect(gw.ports.submission);
    await c.ehlo();
    assertReply(await c.startTls(), 220, undefined, c.describe());
    await c.ehlo();
    return c;
  }

  for (const listener of ['submission', 'mx'] as const) {
    it(`AUTH PLAIN on a plaintext ${listener} connection is refused (538 5.7.11, or 530/503 5.x) and does not log in`, async () => {
      const c = await SmtpClient.connect(gw.ports[listener]);
      try {
        await c.ehlo();
        const r = await c.cmd(`AUTH PLAIN ${plainToken(USERS.alice.address, USERS.alice.password)}`);
        assertReply(r, [538, 530, 503], /^5\./, c.describe());
        const mail = await c.cmd(`MAIL FROM:<${USERS.alice.address}>`);
        const rcpt = mail.code === 250 ? await c.cmd('RCPT TO:<friend@elsewhere.example>') : mail;
        assert.ok(rcpt.code >= 500, `the refused AUTH must not allow relaying: ${rcpt.raw}\n${c.describe()}`);
      } finally {
        await c.quit();
      }
    });
  }

  it('AUTH LOGIN on a plaintext submission connection is refused with 5xx before any credential is asked for', async () => {
    const c = await SmtpClient.connect(gw.ports.submission);
    try {
      await c.ehlo();
      const r = await c.cmd('AUTH LOGIN');
      assert.notEqual(r.code, 334, `the server must not ask for a username in plaintext\n${c.describe()}`);
      assertReply(r, [538, 530, 503], /^5\./, c.describe());
    } finally {
      await c.quit();
    }
  });

  it('AUTH on MX even after STARTTLS is refused with 5xx (auth.on_mx is false) and does not log in', async () => {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      await c.ehlo();
      assertReply(await c.startTls(), 220, undefined, c.describe());
      await c.ehlo();
      const r = await c.cmd(`AUTH PLAIN ${plainToken(USERS.alice.address, USERS.alice.password)}`);
      assert.ok(r.code >= 500 && r.code < 600, `AUTH on MX: ${r.raw}\n${c.describe()}`);
      const mail = await c.cmd(`MAIL FROM:<${USERS.alice.address}>`);
      const rcpt = mail.code === 250 ? await c.cmd('RCPT TO:<friend@elsewhere.example>') : mail;
      assert.ok(rcpt.code >= 500, `no relaying from MX after a refused AUTH: ${rcpt.raw}\n${c.describe()}`);
    } finally {
      await c.quit();
    }
  });

  it('swaks without --tls: AUTH on plaintext submission fails (exit 28, AUTH not offered or refused)', async (t) => {
    if (!needTool(t, 'swaks')) return;
    const r = await swaks(gw.ports.submission, ['--auth', 'PLAIN', '--auth-user', USERS.alice.address, '--auth-password', USERS.alice.password,
      '--from', USERS.alice.address, '--to', 'friend@elsewhere.example', '--quit-after', 'AUTH']);
    assert.notEqual(r.code, 0, r.transcript);
    assert.ok(!r.serverLines.some((l) => /^235/.test(l)), r.transcript);
  });

  it('swaks --tls --auth PLAIN with a user created by `user add` → 235 2.7.0', async (t) => {
    if (!needTool(t, 'swaks')) return;
    const r = await swaks(gw.ports.submission, ['--tls', '--auth', 'PLAIN', '--auth-user', USERS.alice.address, '--auth-password', USERS.alice.password, '--quit-after', 'AUTH']);
    assert.equal(r.code, 0, r.transcript);
    assert.ok(r.serverLines.some((l) => /^235 2\.7\.0/.test(l)), r.transcript);
  });

  it('swaks --tls --auth LOGIN → 235 2.7.0, then relays to the "*" route', async (t) => {
    if (!needTool(t, 'swaks')) return;
    const m = marker('swaks-login');
    const r = await swaks(gw.ports.submission, ['--tls', '--auth', 'LOGIN', '--auth-user', USERS.bob.address, '--auth-password', USERS.bob.password,
      '--from', USERS.bob.address, '--to', 'friend@elsewhere.example', '--header', `Subject: ${m}`]);
    assert.equal(r.code, 0, r.transcript);
    assert.ok(r.serverLines.some((l) => /^235 2\.7\.0/.test(l)), r.transcript);
    const got = await sink.waitFor(m);
    assert.deepEqual(got.rcptTo, ['friend@elsewhere.example']);
    assert.equal(got.mailFrom, USERS.bob.address);
  });

  it('swaks --tlsc --auth PLAIN on submissions (implicit TLS) → 235 2.7.0', async (t) => {
    if (!needTool(t, 'swaks')) return;
    const r = await swaks(gw.ports.submissions, ['--tlsc', '--auth', 'PLAIN', '--auth-user', USERS.alice.address, '--auth-password', USERS.alice.password, '--quit-after', 'AUTH']);
    assert.equal(r.code, 0, r.transcript);
    assert.ok(r.serverLines.some((l) => /^235 2\.7\.0/.test(l)), r.transcript);
  });

  it('smtplib SMTP_SSL login() on submissions → 235, and a message is relayed', async (t) => {
    if (!needTool(t, 'python3')) return;
    const m = marker('py-auth');
    const r = await pyProbe({
      port: gw.ports.submissions, mode: 'ssl', login: [USERS.alice.address, USERS.alice.password],
      mail_from: USERS.alice.address, rcpt_to: ['friend@elsewhere.example'],
      message: makeMessage({ from: USERS.alice.address, to: 'friend@elsewhere.example', subject: m }),
    });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.auth_reply?.[0], 235, JSON.stringify(r));
    assert.equal(r.data_reply?.[0], 250, JSON.stringify(r));
    await sink.waitFor(m);
  });

  it('smtplib starttls() + AUTH LOGIN on submission → 235', async (t) => {
    if (!needTool(t, 'python3')) return;
    const r = await pyProbe({ port: gw.ports.submission, mode: 'starttls', login: [USERS.bob.address, USERS.bob.password], auth_mechanism: 'LOGIN' });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.auth_reply?.[0], 235, JSON.stringify(r));
  });

  it('nodemailer with requireTLS and auth on submission sends → 250 queued, relayed to the "*" route', async () => {
    const m = marker('nm-auth');
    const info = await mailer({ port: gw.ports.submission, requireTLS: true, auth: { user: USERS.alice.address, pass: USERS.alice.password } })
      .sendMail({ from: USERS.alice.address, to: 'pal@elsewhere.example', subject: m, text: `hello ${m}` });
    assert.match(info.response, /^250 2\.0\.0 Ok: queued as \S+/);
    const got = await sink.waitFor(m);
    assert.deepEqual(got.rcptTo, ['pal@elsewhere.example']);
  });

  it('AUTH PLAIN over TLS, two-step (empty initial response, 334, credentials) → 235 2.7.0', async () => {
    const c = await tlsSubmission();
    try {
      const r1 = await c.cmd('AUTH PLAIN');
      assertReply(r1, 334, undefined, c.describe());
      const r2 = await c.cmd(plainToken(USERS.alice.address, USERS.alice.password));
      assertReply(r2, 235, '2.7.0', c.describe());
      const again = await c.cmd(`AUTH PLAIN ${plainToken(USERS.alice.address, USERS.alice.password)}`);
      assertReply(again, 503, '5.5.1', c.describe());
    } finally {
      await c.quit();
    }
  });

  it('AUTH LOGIN over TLS, step by step → 235 2.7.0', async () => {
    const c = await tlsSubmission();
    try {
      assertReply(await c.cmd('AUTH LOGIN'), 334, undefined, c.describe());
      assertReply(await c.cmd(b64(USERS.bob.address)), 334, undefined, c.describe());
      assertReply(await c.cmd(b64(USERS.bob.password)), 235, '2.7.0', c.describe());
    } finally {
      await c.quit();
    }
  });

  it('submission without AUTH (after STARTTLS): MAIL/RCPT → 530 5.7.0 Authentication required', async () => {
    const c = await tlsSubmission();
    try {
      const mail = await c.cmd(`MAIL FROM:<${USERS.alice.address}>`);
      const r = mail.code === 250 ? await c.cmd('RCPT TO:<friend@elsewhere.example>') : mail;
      assertReply(r, 530, '5.7.0', c.describe());
      if (mail.code === 250) {
        // Not even local delivery without AUTH on the submission port.
        const local = await c.cmd(`RCPT TO:<${USERS.bob.address}>`);
        assertReply(local, 530, '5.7.0', c.describe());
      }
    } finally {
      await c.quit();
    }
  });

  it('submission without AUTH and without TLS: MAIL/RCPT → 530 5.7.0', async () => {
    const c = await SmtpClient.connect(gw.ports.submission);
    try {
      await c.ehlo();
      const mail = await c.cmd(`MAIL FROM:<${USERS.alice.address}>`);
      const r = mail.code === 250 ? await c.cmd(`RCPT TO:<${USERS.bob.address}>`) : mail;
      assertReply(r, 530, '5.7.0', c.describe());
    } finally {
      await c.quit();
    }
  });

  it('nodemailer without auth on submission is refused with 530', async () => {
    await assert.rejects(
      mailer({ port: gw.ports.submission }).sendMail({ from: USERS.alice.address, to: 'pal@elsewhere.example', subject: 'x', text: 'x' }),
      (err: Error & { responseCode?: number }) => {
        assert.equal(err.responseCode, 530, String(err));
        return true;
      },
    );
  });

  it('an authenticated user cannot send as an address they do not own → 553 5.7.1 (at MAIL or RCPT)', async () => {
    const c = await tlsSubmission();
    try {
      assertReply(await c.cmd(`AUTH PLAIN ${plainToken(USERS.alice.address, USERS.alice.password)}`), 235, '2.7.0', c.describe());
      const mail = await c.cmd(`MAIL FROM:<${USERS.bob.address}>`);
      const r = mail.code === 250 ? await c.cmd('RCPT TO:<friend@elsewhere.example>') : mail;
      assertReply(r, 553, '5.7.1', c.describe());
    } finally {
      await c.quit();
    }
  });

  it('a user added with `user add` while the gateway runs can authenticate at once', async () => {
    const addr = 'dave@example.test';
    const pass = 'Kc8@pL4x-Wr6tNb2';
    const add = await gw.cli(['user', 'add', addr, '--password-stdin'], { stdin: `${pass}\n` });
    assert.equal(add.code, 0, showCli(['user', 'add', addr], add));
    const c = await tlsSubmission();
    try {
      assertReply(await c.cmd(`AUTH PLAIN ${plainToken(addr, pass)}`), 235, '2.7.0', c.describe());
    } finally {
      await c.quit();
    }
    const list = await gw.cli(['user', 'list']);
    assert.equal(list.code, 0, showCli(['user', 'list'], list));
    assert.match(list.stdout, /dave@example\.test/);
  });

  it('`user add` refuses a password shorter than 10 characters (non-zero exit, no account)', async () => {
    const r = await gw.cli(['user', 'add', 'eve@example.test', '--password-stdin'], { stdin: 'short1\n' });
    assert.notEqual(r.code, 0, showCli(['user', 'add', 'eve@example.test'], r));
    const list = await gw.cliOk(['user', 'list']);
    assert.doesNotMatch(list.stdout, /eve@example\.test/);
  });

  it('`user passwd` changes the password: the new one works, the old one gets 535 5.7.8', async () => {
    const addr = 'frank@example.test';
    const oldPass = 'Jd3!sV9q-Oh5mXa7';
    const newPass = 'Ey6%uG2k-Ti8bLw3';
    await gw.addUser(addr, oldPass);
    const r = await gw.cli(['user', 'passwd', addr, '--password-stdin'], { stdin: `${newPass}\n` });
    assert.equal(r.code, 0, showCli(['user', 'passwd', addr], r));
    const c = await tlsSubmission();
    try {
      assertReply(await c.cmd(`AUTH PLAIN ${plainToken(addr, oldPass)}`), 535, '5.7.8', c.describe());
      assertReply(await c.cmd(`AUTH PLAIN ${plainToken(addr, newPass)}`), 235, '2.7.0', c.describe());
    } finally {
      await c.quit();
    }
  });

  it('`user del` removes the account: AUTH fails with 535 and RCPT to it on MX gets 550 5.1.1', async () => {
    const addr = 'gina@example.test';
    const pass = 'Rw2^nC7f-Pz4qHs9';
    await gw.addUser(addr, pass);
    const del = await gw.cli(['user', 'del', addr]);
    assert.equal(del.code, 0, showCli(['user', 'del', addr], del));
    const c = await tlsSubmission();
    try {
      assertReply(await c.cmd(`AUTH PLAIN ${plainToken(addr, pass)}`), 535, '5.7.8', c.describe());
    } finally {
      await c.quit();
    }
    const mx = await SmtpClient.connect(gw.ports.mx);
    try {
      await mx.ehlo();
      assertReply(await mx.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250, undefined, mx.describe());
      assertReply(await mx.cmd(`RCPT TO:<${addr}>`), 550, '5.1.1', mx.describe());
    } finally {
      await mx.quit();
    }
  });

  it('AUTH PLAIN with a wrong password over TLS → 535 5.7.8, and the session is not authenticated', async () => {
    const c = await tlsSubmission();
    try {
      const r = await c.cmd(`AUTH PLAIN ${plainToken(USERS.alice.address, 'not-the-password')}`);
      assertReply(r, 535, '5.7.8', c.describe());
      const mail = await c.cmd(`MAIL FROM:<${USERS.alice.address}>`);
      const rcpt = mail.code === 250 ? await c.cmd('RCPT TO:<friend@elsewhere.example>') : mail;
      assertReply(rcpt, 530, '5.7.0', c.describe());
    } finally {
      await c.quit();
    }
  });

  it('swaks --tls with a wrong password → 535 5.7.8 (swaks exit 28)', async (t) => {
    if (!needTool(t, 'swaks')) return;
    const r = await swaks(gw.ports.submission, ['--tls', '--auth', 'LOGIN', '--auth-user', USERS.bob.address, '--auth-password', 'wrong-password-x', '--quit-after', 'AUTH']);
    assert.equal(r.code, 28, r.transcript);
    assert.ok(r.serverLines.some((l) => /^535 5\.7\.8/.test(l)), r.transcript);
  });
});
