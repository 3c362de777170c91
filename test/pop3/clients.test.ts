// Real POP3 clients against the server: curl (pop3:// with --ssl-reqd, pop3s://, and pop3://
// without TLS, which must fail to log in), Python's poplib (stls(), POP3_SSL, a clear-text
// attempt) and openssl s_client (-starttls pop3 and implicit TLS). A missing tool skips its test
// on a developer machine and fails it in CI (helpers/clients.ts `strict`).
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { strict } from '../helpers/clients.js';
import { repoRoot } from '../helpers/paths.js';
import { PASSWORD, USER, crlf, startHarness, type Harness } from './harness.js';

const POPLIB = path.join(repoRoot, 'test', 'pop3', 'poplib_client.py');

function have(t: TestContext, tool: 'curl' | 'python3' | 'openssl'): boolean {
  const probe = tool === 'python3' ? ['-c', 'import poplib, ssl'] : ['--version'];
  const r = spawnSync(tool === 'openssl' ? 'openssl' : tool, tool === 'openssl' ? ['version'] : probe, { encoding: 'utf8' });
  if (!r.error && r.status === 0) return true;
  const why = `${tool} is not usable: ${r.error?.message ?? r.stderr}`;
  if (strict) throw new Error(`required tool missing: ${why}`);
  t.skip(why);
  return false;
}

interface Run { code: number | null; stdout: Buffer; stderr: string }

function run(cmd: string, args: string[], stdin = '', timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
    child.stdin.end(stdin);
  });
}

const creds = `${USER}:${PASSWORD}`;
const MESSAGE = Buffer.from('From: bob@example.net\r\nTo: alice@example.org\r\nSubject: for real clients\r\n\r\n.starts with a dot\r\n.\r\nbody line\r\n', 'latin1');

function inboxCount(h: Harness): number {
  return ['new', 'cur'].reduce((n, sub) => {
    const d = path.join(h.mailbox(), sub);
    return n + (fs.existsSync(d) ? fs.readdirSync(d).length : 0);
  }, 0);
}

describe('curl', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test('pop3:// with --ssl-reqd (STLS) retrieves a delivered message byte-identical', async (t) => {
    if (!have(t, 'curl')) return;
    const name = await h.deliver(MESSAGE);
    const r = await run('curl', ['-sS', '--ssl-reqd', '-k', '-u', creds, `pop3://127.0.0.1:${h.plainPort}/1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout, MESSAGE);
    const uidl = await run('curl', ['-sS', '--ssl-reqd', '-k', '-u', creds, `pop3://127.0.0.1:${h.plainPort}/`, '-X', 'UIDL']);
    assert.equal(uidl.stdout.toString(), `1 ${name}\r\n`);
  });

  test('pop3s:// lists, deletes (DELE + QUIT) and lists again', async (t) => {
    if (!have(t, 'curl')) return;
    await h.deliver('Subject: second\r\n\r\nsecond\r\n');
    const list = await run('curl', ['-sS', '-k', '-u', creds, `pop3s://127.0.0.1:${h.tlsPort}/`]);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout.toString(), `1 ${MESSAGE.length}\r\n2 27\r\n`);
    const dele = await run('curl', ['-sS', '-k', '-u', creds, `pop3s://127.0.0.1:${h.tlsPort}/1`, '-X', 'DELE', '-I']);
    assert.equal(dele.code, 0, dele.stderr);
    assert.equal(inboxCount(h), 1);
    const again = await run('curl', ['-sS', '-k', '--login-options', 'AUTH=PLAIN', '-u', creds, `pop3s://127.0.0.1:${h.tlsPort}/`]);
    assert.equal(again.stdout.toString(), '1 27\r\n');
  });

  test('pop3:// without TLS cannot log in, and no password reaches the account store', async (t) => {
    if (!have(t, 'curl')) return;
    const before = (await h.store.scan('bf:', 1000)).length;
    const r = await run('curl', ['-sS', '-u', creds, `pop3://127.0.0.1:${h.plainPort}/`]);
    assert.equal(r.code, 67, `curl exit code (67 = login denied): ${r.stderr}`);
    assert.equal(r.stdout.length, 0);
    // Even when forced to try USER/PASS in clear, curl meets the refusal.
    const forced = await run('curl', ['-sS', '-v', '--login-options', 'AUTH=+LOGIN', '-u', creds, `pop3://127.0.0.1:${h.plainPort}/`]);
    assert.notEqual(forced.code, 0);
    assert.equal((await h.store.scan('bf:', 1000)).length, before, 'no login was attempted');
  });
});

describe("Python's poplib", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  const poplib = async (args: Record<string, unknown>) => {
    const r = await run('python3', [POPLIB, JSON.stringify({ user: USER, password: PASSWORD, ...args })]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.toString()) as Record<string, unknown>;
  };

  test('stls(), user/pass_, stat, list, uidl, top, retr, dele, quit', async (t) => {
    if (!have(t, 'python3')) return;
    const name = await h.deliver(MESSAGE);
    const out = await poplib({ port: h.plainPort, mode: 'stls', dele: [1] });
    assert.equal(out.welcome, '+OK Portcullis ready.');
    assert.deepEqual(out.capa, ['AUTH-RESP-CODE', 'CAPA', 'PIPELINING', 'RESP-CODES', 'STLS', 'TOP', 'UIDL']);
    assert.deepEqual(out.capa_tls, ['AUTH-RESP-CODE', 'CAPA', 'PIPELINING', 'RESP-CODES', 'SASL', 'TOP', 'UIDL', 'USER']);
    assert.equal(out.pass, '+OK Logged in.');
    assert.deepEqual(out.stat, [1, MESSAGE.length]);
    assert.deepEqual(out.list, [`1 ${MESSAGE.length}`]);
    assert.deepEqual(out.uidl, [`1 ${name}`]);
    assert.equal(Buffer.from(out.top as string, 'base64').toString(), 'From: bob@example.net\r\nTo: alice@example.org\r\nSubject: for real clients\r\n');
    assert.equal(out.retr_resp, `+OK ${MESSAGE.length} octets`);
    assert.deepEqual(Buffer.from(out.retr as string, 'base64'), crlf(MESSAGE));
    assert.deepEqual(out.dele, ['+OK Marked to be deleted.']);
    assert.equal(out.quit, '+OK Logging out, messages deleted.');
    assert.equal(inboxCount(h), 0);
  });

  test('POP3_SSL on the implicit-TLS port', async (t) => {
    if (!have(t, 'python3')) return;
    await h.deliver(MESSAGE);
    const out = await poplib({ port: h.tlsPort, mode: 'ssl' });
    assert.ok((out.capa as string[]).includes('USER'));
    assert.deepEqual(out.stat, [1, MESSAGE.length]);
    assert.deepEqual(Buffer.from(out.retr as string, 'base64'), MESSAGE);
    assert.equal(out.quit, '+OK Logging out.');
    assert.equal(inboxCount(h), 1, 'nothing deleted without DELE');
  });

  test('a clear-text login is refused', async (t) => {
    if (!have(t, 'python3')) return;
    const out = await poplib({ port: h.plainPort, mode: 'plain' });
    assert.match(String(out.login_error), /-ERR \[AUTH\] Plaintext authentication disallowed on non-secure \(SSL\/TLS\) connections\./);
    assert.equal(out.pass, undefined);
  });
});

describe('openssl s_client', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    await h.deliver(MESSAGE);
  });
  after(() => h.close());

  for (const mode of ['-starttls pop3', 'implicit TLS'] as const) {
    test(`${mode}: login, STAT, RETR, QUIT`, async (t) => {
      if (!have(t, 'openssl')) return;
      const port = mode === 'implicit TLS' ? h.tlsPort : h.plainPort;
      const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-crlf', '-quiet', '-servername', 'pop.example.org'];
      if (mode !== 'implicit TLS') args.push('-starttls', 'pop3');
      const r = await run('openssl', args, `USER ${USER}\nPASS ${PASSWORD}\nSTAT\nRETR 1\nQUIT\n`);
      const text = r.stdout.toString('latin1');
      assert.match(text, /\+OK Logged in\.\r\n/, `${text}\n${r.stderr}`);
      assert.match(text, new RegExp(`\\+OK 1 ${MESSAGE.length}\\r\\n`));
      assert.ok(text.includes(`+OK ${MESSAGE.length} octets\r\n${MESSAGE.toString('latin1').replace(/^\./gm, '..')}.\r\n`), text);
      assert.match(text, /\+OK Logging out\.\r\n$/);
    });
  }
});
