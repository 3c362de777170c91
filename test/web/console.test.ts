// The web console over the wire (docs/console.md): HTTPS only, the security headers and cookie
// attributes, login and session fixation, CSRF, roles, the user settings and password pages,
// the administrator's pages fed by real SMTP traffic, and the brute-force defence shared with
// SMTP AUTH. Browser rendering is in browser.test.ts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { assertReply, plainToken, USERS, userMap } from '../helpers/fixtures.js';
import type { Gateway } from '../helpers/gateway.js';
import { SmtpClient, transaction } from '../helpers/smtp-client.js';
import { ADMIN, ConsoleClient, startConsoleGateway } from './console-client.js';

const run = promisify(execFile);

describe('web console', { timeout: 240_000 }, () => {
  let gw: Gateway;
  let port: number;
  before(async () => {
    ({ gw, consolePort: port } = await startConsoleGateway({
      users: userMap('alice', 'bob', 'carol'),
      config: { auth: { brute_force: { pair_limit: 3, ip_limit: 1000, net_limit: 1000, base_delay: '10ms', max_delay: '40ms' } } },
    }));
  });
  after(async () => {
    await gw?.cleanup();
  });

  it('plain HTTP on the console port never gets the console (curl and a raw socket)', async () => {
    const curl = await run('curl', ['-sS', '-o', '-', '-w', '\n%{http_code}', '--max-time', '5', `http://127.0.0.1:${port}/login`]).then(
      (r) => ({ ok: true, out: r.stdout }), (e: { stdout?: string; stderr?: string; code?: number }) => ({ ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }));
    assert.doesNotMatch(curl.out, /Portcullis|<form|_csrf/, `plain HTTP got console content: ${curl.out}`);
    assert.ok(!curl.ok || /\n(000|400)$/.test(curl.out), `curl over plain HTTP: ${curl.out}`);
    const raw = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
      let got = '';
      s.setEncoding('latin1').on('data', (d: string) => (got += d)).on('close', () => resolve(got)).on('error', () => resolve(got));
      s.setTimeout(5000, () => reject(new Error(`the server kept a plain-HTTP socket open; got ${JSON.stringify(got)}`)));
    });
    assert.doesNotMatch(raw, /^HTTP\/1\.[01] [23]\d\d/, `plain HTTP answered: ${raw.slice(0, 200)}`);
    assert.doesNotMatch(raw, /Portcullis|_csrf/);
  });

  it('every response carries CSP, HSTS, nosniff and no-referrer; the session cookie is __Host-, Secure, HttpOnly, SameSite=Strict', async () => {
    const c = new ConsoleClient(port);
    for (const p of [await c.get('/login'), await c.get('/no/such/page'), await c.get('/static/console.css')]) {
      const csp = String(p.headers['content-security-policy']);
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.match(String(p.headers['strict-transport-security']), /max-age=\d{7,}/);
      assert.equal(p.headers['x-content-type-options'], 'nosniff');
      assert.equal(p.headers['referrer-policy'], 'no-referrer');
    }
    const fresh = new ConsoleClient(port);
    const p = await fresh.get('/login');
    const cookie = [p.headers['set-cookie'] ?? []].flat().find((x) => x.startsWith('__Host-portcullis='));
    assert.ok(cookie, `no session cookie: ${JSON.stringify(p.headers['set-cookie'])}`);
    assert.match(cookie, /;\s*Secure/i);
    assert.match(cookie, /;\s*HttpOnly/i);
    assert.match(cookie, /;\s*SameSite=Strict/i);
    assert.match(cookie, /;\s*Path=\//i);
    assert.doesNotMatch(cookie, /Domain=/i);
    // No inline script or style on the page itself.
    assert.doesNotMatch(p.body, /<script|style=|<style/i);
  });

  it('login: a wrong password is refused; the right one gives a NEW session id (a planted id stays anonymous)', async () => {
    const c = new ConsoleClient(port);
    await c.get('/login');
    const planted = c.cookies.get('__Host-portcullis')!;
    const bad = await c.post('/login', { user: USERS.alice.address, password: 'wrong password here' });
    assert.equal(bad.status, 401);
    assert.match(bad.body, /wrong/);
    const ok = await c.post('/login', { user: USERS.alice.address, password: USERS.alice.password });
    assert.equal(ok.status, 303, ok.body);
    assert.equal(ok.headers.location, '/settings');
    const after = c.cookies.get('__Host-portcullis')!;
    assert.notEqual(after, planted, 'the session id must change at login');
    const settings = await c.get('/settings');
    assert.equal(settings.status, 200);
    assert.match(settings.body, /Filtering for alice@example\.test/);
    // Whoever planted the old id (session fixation) is not logged in with it.
    const attacker = new ConsoleClient(port);
    attacker.cookies.set('__Host-portcullis', planted);
    const r = await attacker.get('/settings');
    assert.equal(r.status, 303);
    assert.equal(r.headers.location, '/login');
    // Logging in again while logged in (another account, same browser) replaces the session again.
    const again = await c.login(USERS.bob.address, USERS.bob.password);
    assert.equal(again.status, 303, again.body);
    assert.notEqual(c.cookies.get('__Host-portcullis'), after);
    assert.match((await c.get('/settings')).body, /Filtering for bob@example\.test/);
  });

  it('CSRF: a state-changing POST without the token or with a wrong one is refused and changes nothing', async () => {
    const c = new ConsoleClient(port);
    await c.login(USERS.bob.address, USERS.bob.password);
    await c.get('/settings');
    const form = { spam_filter: 'on', tag: '2', junk: '4', reject: '', allow: '', block: 'csrf-attacker.example' };
    const none = await c.request('POST', '/settings', form);
    assert.equal(none.status, 403);
    const wrong = await c.request('POST', '/settings', { ...form, _csrf: 'x'.repeat(43) });
    assert.equal(wrong.status, 403);
    // A token from another session does not work either.
    const other = new ConsoleClient(port);
    await other.get('/login');
    const foreign = await c.request('POST', '/settings', { ...form, _csrf: other.csrf() });
    assert.equal(foreign.status, 403);
    const show = await gw.cliOk(['user', 'show', USERS.bob.address]);
    assert.doesNotMatch(show.stdout, /csrf-attacker/, show.stdout);
    // The login form is protected too.
    const login = await new ConsoleClient(port).request('POST', '/login', { user: USERS.bob.address, password: USERS.bob.password });
    assert.equal(login.status, 403);
  });

  it('a user saves spam settings through the same validation as `user set`; bad input is named', async () => {
    const c = new ConsoleClient(port);
    await c.login(USERS.bob.address, USERS.bob.password);
    await c.get('/settings');
    const saved = await c.post('/settings', { tag: '3', junk: '6', reject: 'never', allow: 'friend@example.org\n@partner.example', block: 'spammy.example' });
    assert.equal(saved.status, 200, saved.body);
    assert.match(saved.body, /Saved/);
    const show = await gw.cliOk(['user', 'show', USERS.bob.address]);
    assert.match(show.stdout, /spam-filter off/);
    assert.match(show.stdout, /tag 3\b/);
    assert.match(show.stdout, /junk 6\b/);
    assert.match(show.stdout, /reject never/);
    assert.match(show.stdout, /allow friend@example\.org, @partner\.example/);
    assert.match(show.stdout, /block spammy\.example/);
    const bad = await c.post('/settings', { spam_filter: 'on', tag: '9', junk: '4', reject: '', allow: '', block: '' });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /tag \(9\) must not be above junk \(4\)/);
    const bad2 = await c.post('/settings', { spam_filter: 'on', tag: '', junk: '', reject: '', allow: 'not an address!', block: '' });
    assert.equal(bad2.status, 400);
    assert.match(bad2.body, /allow: .*must be an address/);
  });

  it('password change: the policy refuses a weak one with its reason and a strength meter; a strong one works at the next login', async () => {
    const c = new ConsoleClient(port);
    await c.login(USERS.alice.address, USERS.alice.password);
    await c.get('/password');
    const weak = await c.post('/password', { current: USERS.alice.password, password: 'password123', again: 'password123' });
    assert.equal(weak.status, 400);
    assert.match(weak.body, /common/);
    assert.match(weak.body, /class="strength">[01] of 4/);
    const wrongCurrent = await c.post('/password', { current: 'not it at all', password: 'x', again: 'x' });
    assert.match(wrongCurrent.body, /current password is wrong/);
    const next = 'Glacier-Violin-Mosaic-77';
    const ok = await c.post('/password', { current: USERS.alice.password, password: next, again: next });
    assert.equal(ok.status, 200, ok.body);
    assert.match(ok.body, /was changed/);
    assert.match(ok.body, /class="strength">4 of 4/);
    const again = new ConsoleClient(port);
    assert.equal((await again.login(USERS.alice.address, next)).status, 303);
    // Back, so other tests keep the fixture password.
    await c.get('/password');
    assert.equal((await c.post('/password', { current: next, password: USERS.alice.password, again: USERS.alice.password })).status, 200);
  });

  it('a user cannot reach the administrator pages or a trace entry by its id (403)', async () => {
    const c = new ConsoleClient(port);
    await c.login(USERS.bob.address, USERS.bob.password);
    for (const p of ['/admin', '/admin/trace', '/admin/trace/1', '/admin/queue', '/admin/users']) {
      const r = await c.get(p);
      assert.equal(r.status, 403, `${p}: ${r.status}`);
      assert.doesNotMatch(r.body, /Queue id|Reset the password/);
    }
    await c.get('/settings');
    const r = await c.post('/admin/users/delete', { address: USERS.alice.address });
    assert.equal(r.status, 403);
    assert.ok((await gw.cliOk(['user', 'list'])).stdout.includes(USERS.alice.address));
    // Not logged in at all: sent to the login page.
    const anon = await new ConsoleClient(port).get('/admin/trace/1');
    assert.equal(anon.status, 303);
  });

  it('the trace shows a message received over SMTP with its symbols; hostile addresses and Message-ID are escaped', async () => {
    const mid = `"><script>alert(1)</script><img src=x onerror=alert(2)>@evil.example`;
    const c0 = await SmtpClient.connect(gw.ports.mx);
    await c0.ehlo('client.example.net');
    const sent = await transaction(c0, 'sender@example.net', [USERS.bob.address],
      `From: <sender@example.net>\r\nTo: <${USERS.bob.address}>\r\nSubject: <b>hi</b>\r\nMessage-ID: <${mid}>\r\n\r\nHello\r\n`);
    await c0.quit();
    assertReply(sent.final!, 250);
    const c = new ConsoleClient(port);
    await c.login(ADMIN.address, ADMIN.password);
    const bySender = await c.get('/admin/trace?q=sender%40example.net');
    assert.equal(bySender.status, 200);
    const id = /href="\/admin\/trace\/(\d+)"/.exec(bySender.body)?.[1];
    assert.ok(id, bySender.body);
    const byMid = await c.get(`/admin/trace?q=${encodeURIComponent(`<${mid}>`)}`);
    assert.match(byMid.body, new RegExp(`href="/admin/trace/${id}"`));
    const byRcpt = await c.get(`/admin/trace?q=${encodeURIComponent(USERS.bob.address)}`);
    assert.match(byRcpt.body, new RegExp(`href="/admin/trace/${id}"`));
    const detail = await c.get(`/admin/trace/${id}`);
    assert.equal(detail.status, 200);
    assert.doesNotMatch(detail.body, /<script>alert|<img src=x/);
    assert.match(detail.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.match(detail.body, /<h2>Symbols<\/h2>/);
    // The dashboard counts it.
    const dash = await c.get('/admin');
    assert.equal(dash.status, 200);
    assert.match(dash.body, /<svg[^>]*aria-label="Messages per hour by action/);
    assert.match(dash.body, /<div class="value">[1-9]\d*<\/div><div class="label">messages, last 24 h/);
  });

  it('the administrator adds and deletes users and aliases, resets a password, and lists and flushes the queue', async () => {
    const c = new ConsoleClient(port);
    await c.login(ADMIN.address, ADMIN.password);
    await c.get('/admin/users');
    const weak = await c.post('/admin/users/add', { address: 'dave@example.test', password: 'dave12345' });
    assert.equal(weak.status, 400);
    const added = await c.post('/admin/users/add', { address: 'dave@example.test', password: 'Orbit-Lantern-Quill-58' });
    assert.match(added.body, /Added dave@example\.test/);
    const alias = await c.post('/admin/aliases/add', { address: 'team@example.test', targets: 'dave@example.test, bob@example.test' });
    assert.match(alias.body, /<td>team@example\.test<\/td><td>dave@example\.test, bob@example\.test<\/td>/);
    const reset = await c.post('/admin/users/password', { address: 'dave@example.test', password: 'Harbor-Cactus-Zephyr-31' });
    assert.match(reset.body, /New password set/);
    assert.equal((await new ConsoleClient(port).login('dave@example.test', 'Harbor-Cactus-Zephyr-31')).status, 303);
    await c.post('/admin/aliases/delete', { address: 'team@example.test' });
    const del = await c.post('/admin/users/delete', { address: 'dave@example.test' });
    assert.match(del.body, /Deleted dave@example\.test/);
    assert.doesNotMatch((await gw.cliOk(['user', 'list'])).stdout, /dave@/);
    const q = await c.get('/admin/queue');
    assert.match(q.body, /message\(s\) in the queue/);
    const flushed = await c.post('/admin/queue/flush', {});
    assert.match(flushed.body, /scheduled for delivery now/);
  });

  it('brute force: failed console logins count for SMTP AUTH too (one throttle for every protocol)', async () => {
    const c = new ConsoleClient(port);
    await c.get('/login');
    for (let i = 0; i < 3; i++) {
      const r = await c.post('/login', { user: USERS.carol.address, password: `wrong-${i}` });
      assert.equal(r.status, 401);
    }
    // The (IP, account) pair is now blocked: the right password is refused on the console…
    const blocked = await c.post('/login', { user: USERS.carol.address, password: USERS.carol.password });
    assert.equal(blocked.status, 401);
    // …and in SMTP AUTH from the same address, which shares the block.
    const s = await SmtpClient.connect(gw.ports.submission);
    try {
      await s.ehlo();
      assertReply(await s.startTls(), 220);
      await s.ehlo();
      const r = await s.cmd(`AUTH PLAIN ${plainToken(USERS.carol.address, USERS.carol.password)}`);
      assertReply(r, 535, undefined, s.describe());
    } finally {
      await s.quit();
    }
    assert.ok(gw.logs.some((l) => l.event === 'auth_block' && l.user === USERS.carol.address), 'the block is logged by the shared defence');
  });
});
