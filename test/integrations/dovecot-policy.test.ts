// `kind: dovecot-policy` behind a real Dovecot (docs/integrations.md): a private Dovecot with
// auth_policy_server_url (and the api header) pointing at our listener. Passwords guessed over
// IMAP on Dovecot block the same (IP, account) pair on our own SMTP AUTH (the submission
// listener, over STARTTLS) while another address still logs in; the tarpit delays Dovecot's
// answers; a blocked pair is refused by Dovecot itself, even with the right password. Then the
// HTTP side by hand: the api header, the command, the body.
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertReply, plainToken, USERS, userMap } from '../helpers/fixtures.js';
import { smtpListeners, startGateway, type Gateway } from '../helpers/gateway.js';
import { SmtpClient } from '../helpers/smtp-client.js';
import { freePorts, waitFor } from '../helpers/wait.js';
import { makeCerts, missingTools, portsOn, removeDir, startDovecot, strict, tempDir, type Daemon } from '../audit/daemons.js';

const DOVECOT = '127.0.0.30';
const GUESSER = '127.0.0.7';
const OWNER = '127.0.0.8';
const KEY = 's3cret-policy-key';
const missing = missingTools('dovecot', 'openssl');
const alice = USERS.alice;

/** One IMAP LOGIN from `from`: the tagged answer and how long it took. */
function imapLogin(port: number, from: string, user: string, pass: string): Promise<{ line: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: DOVECOT, port, localAddress: from });
    let buf = '';
    let t0 = 0;
    let sent = false;
    const timer = setTimeout(() => (s.destroy(), reject(new Error(`no LOGIN answer from dovecot: ${buf}`))), 30_000);
    s.on('data', (d) => {
      buf += d.toString('latin1');
      if (!sent && /^\* OK/m.test(buf)) {
        sent = true;
        t0 = Date.now();
        s.write(`a1 LOGIN "${user}" "${pass}"\r\n`);
      }
      const m = /^a1 .*$/m.exec(buf);
      if (m) {
        clearTimeout(timer);
        s.end('a2 LOGOUT\r\n');
        resolve({ line: m[0].trim(), ms: Date.now() - t0 });
      }
    });
    s.on('error', (err) => (clearTimeout(timer), reject(err)));
  });
}

async function smtpAuth(gw: Gateway, from: string, user: string, pass: string): Promise<string> {
  const c = await SmtpClient.connect(gw.ports.submission, { localAddress: from });
  try {
    await c.ehlo('client.test');
    assertReply(await c.startTls(), 220, undefined, c.describe());
    await c.ehlo('client.test');
    const r = await c.cmd(`AUTH PLAIN ${plainToken(user, pass)}`, 30_000);
    return r.raw;
  } finally {
    await c.quit().catch(() => undefined);
  }
}

describe('Dovecot auth policy against the dovecot-policy listener', { timeout: 240_000, skip: !strict && missing ? missing : false }, () => {
  let tmp: string;
  let gw: Gateway;
  let dovecot: Daemon;
  let policyPort: number;
  let metricsPort: number;
  let imap: number;
  const url = () => `http://127.0.0.1:${policyPort}/`;
  const failedReports = () => gw.logs.filter((l) => l.event === 'dovecot_login_failed').length;

  before(async () => {
    if (missing) throw new Error(`required tool missing: ${missing}`);
    tmp = await tempDir('portcullis-policy-dv-');
    [policyPort, metricsPort] = await freePorts(2);
    gw = await startGateway({
      users: userMap('alice'),
      config: ({ ports }) => ({
        auth: { brute_force: { pair_limit: 3, base_delay: '100ms' } },
        metrics: { enabled: true, address: '127.0.0.1', port: metricsPort },
        listeners: [...smtpListeners(ports), { name: 'dovecot', kind: 'dovecot-policy', port: policyPort, api_header: `X-Portcullis-Key: ${KEY}` }],
      }),
    });
    const certs = makeCerts(path.join(tmp, 'certs'));
    const [a, b, c, d] = await portsOn(DOVECOT, 4);
    imap = a!;
    dovecot = await startDovecot(path.join(tmp, 'dovecot'), {
      address: DOVECOT, ports: { imap: a!, imaps: b!, pop3: c!, pop3s: d! }, cert: certs.issue('imap', ['imap.dovecot.test']),
      passwd: [`${alice.address}:{PLAIN}${alice.password}::::::`],
      settings: [
        'disable_plaintext_auth = no',
        'auth_verbose = yes',
        `auth_policy_server_url = ${url()}`,
        'auth_policy_hash_nonce = a-test-nonce',
        `auth_policy_server_api_header = X-Portcullis-Key: ${KEY}`,
      ],
    });
  });
  after(async () => {
    await dovecot?.stop();
    await gw?.cleanup();
    if (tmp) await removeDir(tmp);
  });

  it('the owner logs in on Dovecot: the policy answered, the login reported', async () => {
    const ok = await imapLogin(imap, OWNER, alice.address, alice.password);
    assert.match(ok.line, /^a1 OK/, `${ok.line}\n${dovecot.output().slice(-2000)}`);
    await waitFor('the success report', () => gw.logs.some((l) => l.event === 'dovecot_login' && l.remote === OWNER), { timeoutMs: 10_000, details: () => gw.tail() });
  });

  it('guesses on Dovecot are tarpitted and block the pair on our SMTP AUTH; another address still logs in', async () => {
    const times: number[] = [];
    for (let i = 1; i <= 3; i++) {
      const r = await imapLogin(imap, GUESSER, alice.address, `wrong-guess-${i}`);
      assert.match(r.line, /^a1 NO/, r.line);
      times.push(r.ms);
      await waitFor(`the report of guess ${i}`, () => failedReports() >= i, { timeoutMs: 10_000, details: () => `${gw.tail()}\n${dovecot.output().slice(-2000)}` });
    }
    // After the first failure the tarpit is 100 ms, rounded up to Dovecot's whole second.
    assert.ok(times[1]! >= 900 && times[2]! >= 900, `tarpit delays: ${times.join(', ')} ms`);
    assert.match(gw.output, /"event":"auth_block"[^\n]*"scope":"pair"[^\n]*"ip":"127\.0\.0\.7"/);
    const blocked = await smtpAuth(gw, GUESSER, alice.address, alice.password);
    assert.match(blocked, /^535 5\.7\.8/, blocked);
    const owner = await smtpAuth(gw, OWNER, alice.address, alice.password);
    assert.match(owner, /^235 /, owner);
  });

  it('a blocked pair is refused by Dovecot itself, even with the right password', async () => {
    const r = await imapLogin(imap, GUESSER, alice.address, alice.password);
    assert.match(r.line, /^a1 NO/, r.line);
    await waitFor('dovecot to log the policy refusal', () => /policy server refusal/i.test(dovecot.output()), { timeoutMs: 10_000, details: () => dovecot.output().slice(-3000) });
    const other = await imapLogin(imap, OWNER, alice.address, alice.password);
    assert.match(other.line, /^a1 OK/, other.line);
  });

  it('HTTP by hand: the api header is required, the command and body are checked, the answers are Dovecot\'s JSON', async () => {
    const post = (q: string, body: unknown, headers: Record<string, string> = { 'x-portcullis-key': KEY }) =>
      fetch(`${url()}${q}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const pair = { login: alice.address, remote: GUESSER, protocol: 'imap' };
    assert.equal((await post('?command=allow', pair, {})).status, 401);
    assert.equal((await post('?command=allow', pair, { 'x-portcullis-key': 'wrong-key-here' })).status, 401);
    assert.equal((await post('?command=nothing', pair)).status, 400);
    assert.equal((await post('?command=allow', ['not', 'an', 'object'])).status, 400);
    assert.deepEqual(await (await post('?command=allow', pair)).json(), { status: -1 });
    assert.deepEqual(await (await post('?command=allow', { ...pair, remote: '192.0.2.44' })).json(), { status: 0 });
    assert.deepEqual(await (await post('?command=allow', { login: alice.address })).json(), { status: 0 }, 'no remote: nothing to judge');
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const count = (labels: string) => Number(new RegExp(`^portcullis_policy_requests_total\\{${labels}\\} ([0-9]+)$`, 'm').exec(text)?.[1] ?? 0);
    const lines = text.split('\n').filter((l) => l.includes('policy_requests')).join('\n');
    assert.ok(count('listener="dovecot",kind="allow",outcome="reject"') >= 2, lines);
    assert.ok(count('listener="dovecot",kind="report",outcome="failure"') >= 3, lines);
    assert.ok(count('listener="dovecot",kind="allow",outcome="delay"') >= 2, lines);
    assert.ok(count('listener="dovecot",kind="request",outcome="unauthorized"') >= 2, lines);
  });
});
