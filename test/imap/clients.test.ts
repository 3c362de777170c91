// Real clients against the IMAP server: imapflow (npm), Python's imaplib, curl (imap:// with
// and without --ssl-reqd, imaps://). Clear-text logins must fail everywhere; TLS logins work.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ImapFlow } from 'imapflow';
import { PASSWORD, USER, message, startHarness, type Harness } from './harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const script = path.resolve(here, '..', '..', '..', 'test', 'imap', 'imaplib_client.py');
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 10 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

function flow(h: Harness, opts: { implicit?: boolean; starttls?: boolean } = {}): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1',
    port: opts.implicit ? h.tlsPort : h.plainPort,
    secure: !!opts.implicit,
    doSTARTTLS: opts.implicit ? undefined : opts.starttls ?? true,
    tls: { rejectUnauthorized: false },
    auth: { user: USER, pass: PASSWORD },
    logger: false,
  });
}

describe('IMAP with real clients', { timeout: 180_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h?.close();
  });

  it('imapflow without STARTTLS cannot log in', async () => {
    const c = flow(h, { starttls: false });
    c.on('error', () => {});
    await assert.rejects(c.connect());
    c.close();
  });

  it('imapflow (STARTTLS): list, append, fetch byte-identical, search, flags, copy, move, delete', async () => {
    const c = flow(h);
    c.on('error', () => {});
    await c.connect();
    try {
      const boxes = await c.list();
      const junk = boxes.find((b) => b.path === 'Junk');
      assert.equal(junk?.specialUse, '\\Junk');
      assert.equal(boxes.find((b) => b.path === 'Sent')?.specialUse, '\\Sent');
      const raw = Buffer.from(message('imapflow-append', 'Body line\r\n'));
      const appended = await c.append('INBOX', raw, ['\\Seen']);
      assert.ok(appended && appended.uid, 'APPENDUID');
      const lock = await c.getMailboxLock('INBOX');
      try {
        const msg = await c.fetchOne(String(appended.uid), { source: true, envelope: true, bodyStructure: true, flags: true, size: true }, { uid: true });
        assert.ok(msg);
        assert.ok(msg.source!.equals(raw), 'fetched back byte-identical');
        assert.equal(msg.size, raw.length);
        assert.equal(msg.envelope!.subject, 'imapflow-append');
        assert.equal(msg.envelope!.from![0]!.address, 'sender@example.net');
        assert.equal(msg.bodyStructure!.type, 'text/plain');
        assert.ok(msg.flags!.has('\\Seen'));
        const found = await c.search({ subject: 'imapflow-append' }, { uid: true });
        assert.deepEqual(found, [appended.uid]);
        await c.messageFlagsAdd(String(appended.uid), ['\\Flagged'], { uid: true });
        const flagged = await c.search({ flagged: true }, { uid: true });
        assert.ok((flagged || []).includes(appended.uid));
        const copied = await c.messageCopy(String(appended.uid), 'Trash', { uid: true });
        assert.ok(copied && copied.uidMap && copied.uidMap.size === 1, 'COPYUID');
        const moved = await c.messageMove(String(appended.uid), 'Junk', { uid: true });
        assert.ok(moved && moved.uidMap && moved.uidMap.size === 1, 'MOVE with COPYUID');
        assert.deepEqual(await c.search({ subject: 'imapflow-append' }, { uid: true }), []);
      } finally {
        lock.release();
      }
      const st = await c.status('Junk', { messages: true, uidNext: true });
      assert.ok(st && (st.messages ?? 0) >= 1);
      assert.ok(h.junk.some((e) => e.cls === 'spam' && e.message.equals(raw)), 'junk training saw the message');
    } finally {
      await c.logout();
    }
  });

  it('imapflow (implicit TLS) IDLE sees a message delivered by the Maildir delivery', async () => {
    const c = flow(h, { implicit: true });
    c.on('error', () => {});
    await c.connect();
    try {
      await c.mailboxOpen('INBOX');
      const before = c.mailbox && typeof c.mailbox === 'object' ? c.mailbox.exists : 0;
      const seen = new Promise<number>((resolve) => c.on('exists', (d: { count: number }) => resolve(d.count)));
      const idle = c.idle();
      await new Promise((r) => setTimeout(r, 200));
      await h.deliver(message('delivered-during-idle'));
      const count = await Promise.race([seen, new Promise<number>((_, rej) => setTimeout(() => rej(new Error('no EXISTS within 8 s')), 8000))]);
      assert.equal(count, before + 1);
      const msg = await c.fetchOne('*', { envelope: true });
      assert.ok(msg);
      assert.equal(msg.envelope!.subject, 'delivered-during-idle');
      void idle;
    } finally {
      await c.logout();
    }
  });

  it('Python imaplib: LOGIN refused before STARTTLS, then the whole round works', async (t) => {
    if (!has('python3')) return t.skip('python3 not installed');
    const r = await run('python3', [script, String(h.plainPort), String(h.tlsPort), USER, PASSWORD]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.ok((out.caps_before_tls as string[]).includes('LOGINDISABLED'));
    assert.ok((out.caps_before_tls as string[]).includes('STARTTLS'));
    assert.match(out.cleartext_login as string, /^refused: .*(PRIVACYREQUIRED|TLS)/);
    assert.ok((out.caps_after_tls as string[]).includes('AUTH=PLAIN'));
    assert.equal(out.starttls_login, 'OK');
    assert.match((out.append as string[])[1]!, /APPENDUID \d+ \d+/);
    assert.equal(out.identical, true);
    assert.match(out.store as string, /FLAGS \(.*\\Seen/);
    assert.equal(out.copy, 'OK');
    assert.ok((out.expunge as string[]).length >= 1);
    assert.match(out.status_trash as string, /MESSAGES [1-9]/);
    assert.ok((out.list as string[]).some((l) => l.includes('\\Junk') && l.endsWith('"Junk"')));
  });

  it('curl: imap:// without TLS cannot log in; --ssl-reqd (STARTTLS) and imaps:// read mail', async (t) => {
    if (!has('curl')) return t.skip('curl not installed');
    await h.deliver(message('curl-mail', 'Read by curl.\r\n'));
    const userpass = `${USER}:${PASSWORD}`;
    const clear = await run('curl', ['-s', '-S', '--max-time', '10', '-u', userpass, `imap://127.0.0.1:${h.plainPort}/INBOX`]);
    assert.notEqual(clear.code, 0, `clear-text login must fail: ${clear.stdout}`);
    const list = await run('curl', ['-s', '-S', '--max-time', '10', '--ssl-reqd', '-k', '-u', userpass, `imap://127.0.0.1:${h.plainPort}/`]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /\* LIST .* "INBOX"/);
    const search = await run('curl', ['-s', '-S', '--max-time', '10', '-k', '-u', userpass, '-X', 'SEARCH SUBJECT curl-mail', `imaps://127.0.0.1:${h.tlsPort}/INBOX`]);
    assert.equal(search.code, 0, search.stderr);
    const uid = /\* SEARCH (\d+)/.exec(search.stdout)?.[1];
    assert.ok(uid, search.stdout);
    const fetched = await run('curl', ['-s', '-S', '--max-time', '10', '-k', '-u', userpass, `imaps://127.0.0.1:${h.tlsPort}/INBOX;MAILINDEX=${uid}`]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.equal(fetched.stdout, message('curl-mail', 'Read by curl.\r\n'));
  });
});
