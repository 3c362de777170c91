// The quarantine pages of the console, with mail held by the running gateway (GTUBE in the
// quarantine band): hostile subjects, file names and bodies (ours and the conformance MIME
// torture tests) shown as text in Chromium with nothing run or loaded; the HTML part only in a
// sandboxed frame under `default-src 'none'`; a user sees and releases only their own (another's
// id is a 404); the administrator releases, deletes and learns; digest links confirm on GET, act
// on POST, and are refused when reused or altered.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'puppeteer-core';
import { USERS, userMap } from '../helpers/fixtures.js';
import type { Gateway } from '../helpers/gateway.js';
import { sharedDir } from '../helpers/paths.js';
import { waitFor } from '../helpers/wait.js';
import { GTUBE_STRING } from '../../src/checks/gtube/gtube.js';
import { createLinks } from '../../src/quarantine/links.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { ADMIN, ConsoleClient, startConsoleGateway } from './console-client.js';
import { launchChromium, login, sendOverMx, watchedPage } from './browser-helpers.js';

const shotDir = process.env.CONSOLE_SCREENSHOTS ? path.resolve(process.env.CONSOLE_SCREENSHOTS) : fs.mkdtempSync(path.join(os.tmpdir(), 'console-shots-'));
const HOSTILE_SUBJECT = `<script>alert('subject')</script><img src=x onerror=alert(1)> Invoice`;
const HOSTILE_FILE = `<img src=x onerror=alert('file')>'.txt`;

function hostileMessage(to: string): string {
  return [
    'From: <sender@example.net>', `To: <${to}>`, `Subject: ${HOSTILE_SUBJECT}`, 'Message-ID: <hostile.1@example.net>', 'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"', '',
    '--b1', 'Content-Type: multipart/alternative; boundary="b2"', '',
    '--b2', 'Content-Type: text/plain; charset=utf-8', '', `Plain part </pre><script>alert('text')</script> ${GTUBE_STRING}`, '',
    '--b2', 'Content-Type: text/html; charset=utf-8', '',
    `<html><body><p>HTML part</p><script>alert('html')</script><img src="https://127.0.0.2:9/remote.png"><iframe src="https://127.0.0.2:9/frame"></iframe><a href="javascript:alert(4)">x</a></body></html>`, '',
    '--b2--', '',
    '--b1', `Content-Type: text/plain; name="${HOSTILE_FILE}"`, `Content-Disposition: attachment; filename="${HOSTILE_FILE}"`, '', 'attached', '',
    '--b1--', '',
  ].join('\r\n');
}

describe('console: the quarantine pages', { timeout: 300_000 }, () => {
  let gw: Gateway;
  let port: number;
  let origin: string;
  let browser: Browser;
  const ids: Record<string, string> = {};
  before(async () => {
    ({ gw, consolePort: port } = await startConsoleGateway({
      users: userMap('alice', 'bob'),
      // GTUBE weighs 1 here and asks for the quarantine band (as test/quarantine/gateway.test.ts).
      config: { policy: { symbols: { GTUBE: 1 }, actions: { GTUBE: 'quarantine' } } },
    }));
    origin = `https://127.0.0.1:${port}`;
    await sendOverMx(gw, USERS.bob.address, hostileMessage(USERS.bob.address));
    // The conformance MIME torture tests, each forwarded as a message/rfc822 part beside GTUBE so that it is held.
    for (const f of [path.join(sharedDir, 'conformance/mime/crispin-torture-test.eml'), path.join(sharedDir, 'conformance/mime/postal-mime/mimetorture.eml')]) {
      const raw = fs.readFileSync(f, 'latin1').replace(/\r?\n/g, '\r\n');
      const wrapped = [`From: <sender@example.net>`, `To: <${USERS.bob.address}>`, `Subject: torture ${path.basename(f)}`, 'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="wrap-1"', '', '--wrap-1', 'Content-Type: text/plain', '', GTUBE_STRING, '',
        '--wrap-1', 'Content-Type: message/rfc822', '', raw, '--wrap-1--', ''].join('\r\n');
      await sendOverMx(gw, USERS.bob.address, Buffer.from(wrapped, 'latin1'));
    }
    await sendOverMx(gw, USERS.alice.address, `From: <sender@example.net>\r\nTo: <${USERS.alice.address}>\r\nSubject: alice private\r\n\r\n${GTUBE_STRING}\r\n`);
    let last = '';
    const list = await waitFor('four held messages', async () => {
      const r = await gw.cli(['quarantine', 'list', '--json']);
      last = `${r.stdout}${r.stderr}\n${gw.logs.filter((l) => l.event === 'message').map((l) => JSON.stringify(l)).join('\n')}`;
      const items = (JSON.parse(r.stdout) as { items: { id: string; subject: string; recipients: { address: string }[] }[] }).items;
      return items.length >= 4 ? items : undefined;
    }, { timeoutMs: 20_000, details: () => last });
    for (const i of list) {
      if (i.subject.includes('Invoice')) ids.hostile = i.id;
      if (i.subject === 'alice private') ids.alice = i.id;
    }
    assert.ok(ids.hostile && ids.alice, JSON.stringify(list));
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await gw?.cleanup();
  });

  it('the administrator lists and searches the quarantine', async () => {
    const c = new ConsoleClient(port);
    await c.login(ADMIN.address, ADMIN.password);
    const all = await c.get('/admin/quarantine');
    assert.equal(all.status, 200);
    assert.equal((all.body.match(/<tr><td>/g) ?? []).length, 4, all.body);
    // The running totals (Quarantine.totals), the same four.
    assert.match(all.body, /<p class="muted">4 message\(s\) kept, \d+ KiB\.<\/p>/);
    assert.doesNotMatch(all.body, /<script>alert|<img src=x/);
    assert.match(all.body, /&lt;script&gt;alert\(&#39;subject&#39;\)&lt;\/script&gt;/);
    const found = await c.get('/admin/quarantine?q=private');
    assert.equal((found.body.match(/<tr><td>/g) ?? []).length, 1);
    assert.match(found.body, /alice private/);
  });

  it('hostile subject, file name and body render as text in Chromium: no script, no dialog, no remote request; HTML only in a sandboxed frame', async () => {
    const w = await watchedPage(browser, origin);
    await login(w, origin, ADMIN.address, ADMIN.password);
    const res = await w.page.goto(`${origin}/admin/quarantine/${ids.hostile}`);
    assert.equal(res?.status(), 200);
    await new Promise((r) => setTimeout(r, 500)); // the frame loads
    assert.equal(await w.page.$eval('h1', (e) => e.textContent), HOSTILE_SUBJECT);
    assert.ok((await w.page.$$eval('ul.attachments li', (l) => l.map((x) => x.textContent ?? ''))).some((t) => t.startsWith(HOSTILE_FILE)));
    assert.match(await w.page.$eval('pre.body', (e) => e.textContent ?? ''), /<\/pre><script>alert\('text'\)<\/script>/);
    assert.equal(await w.page.$$eval('script', (s) => s.length), 0);
    assert.equal(await w.page.$$eval('main img', (s) => s.length), 0);
    const frame = await w.page.$eval('iframe.body', (f) => ({ sandbox: f.getAttribute('sandbox'), src: f.getAttribute('src') }));
    assert.equal(frame.sandbox, '');
    assert.equal(frame.src, `/admin/quarantine/${ids.hostile}/html`);
    await w.page.screenshot({ path: path.join(shotDir, 'console-quarantine.png'), fullPage: true });
    // CSP violations inside the frame are console errors too: the blocked remote loads. Nothing else.
    const unexpected = w.problems.filter((p) => !/Content Security Policy|Blocked script execution|sandboxed/i.test(p));
    assert.deepEqual(unexpected, []);
    // And they were blocked for the right reasons: the remote image by the frame's CSP, the script by the sandbox.
    assert.ok(w.problems.some((p) => /remote\.png' violates the following Content Security Policy directive: "default-src 'none'"/.test(p)), w.problems.join('\n'));
    assert.ok(w.problems.some((p) => /Blocked script execution .* sandboxed/.test(p)), w.problems.join('\n'));
    // The frame's own document: the strictest policy.
    const c = new ConsoleClient(port);
    await c.login(ADMIN.address, ADMIN.password);
    const part = await c.get(`/admin/quarantine/${ids.hostile}/html`);
    assert.equal(part.status, 200);
    assert.equal(part.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'self'; sandbox");
    await w.page.browserContext().close();
  });

  it('the conformance torture messages open without a fault and run nothing', async () => {
    const w = await watchedPage(browser, origin);
    await login(w, origin, ADMIN.address, ADMIN.password);
    await w.page.goto(`${origin}/admin/quarantine?q=${encodeURIComponent('sender@example.net')}`);
    const links = await w.page.$$eval('table.quarantine a', (a) => a.map((x) => (x as HTMLAnchorElement).href));
    assert.ok(links.length >= 3);
    for (const l of links) {
      const r = await w.page.goto(l);
      assert.equal(r?.status(), 200, l);
      assert.equal(await w.page.$$eval('script', (s) => s.length), 0);
    }
    assert.ok(!w.problems.some((p) => p.startsWith('loaded from') || p.startsWith('dialog') || p.startsWith('page error')), w.problems.join('\n'));
    await w.page.browserContext().close();
  });

  it("a user sees only their own: another user's id is a 404, like an unknown one; releasing their own delivers it", async () => {
    const bob = new ConsoleClient(port);
    await bob.login(USERS.bob.address, USERS.bob.password);
    const mine = await bob.get('/quarantine');
    assert.equal((mine.body.match(/<tr><td>/g) ?? []).length, 3);
    assert.doesNotMatch(mine.body, /alice private/);
    for (const p of [`/quarantine/${ids.alice}`, `/quarantine/${ids.alice}/html`, '/quarantine/AAAAAAAAAAAAAAAA', `/admin/quarantine/${ids.alice}`]) {
      const r = await bob.get(p);
      assert.ok(r.status === 404 || r.status === 403, `${p}: ${r.status}`);
      assert.doesNotMatch(r.body, /alice private/);
    }
    await bob.get('/quarantine');
    const steal = await bob.post(`/quarantine/${ids.alice}/release`, {});
    assert.equal(steal.status, 404);
    assert.equal(gw.readMailbox(USERS.bob.address).length, 0);
    await bob.get(`/quarantine/${ids.hostile}`);
    const rel = await bob.post(`/quarantine/${ids.hostile}/release`, {});
    assert.equal(rel.status, 200, rel.body);
    assert.match(rel.body, /Released: bob@example\.test: delivered/);
    assert.ok(gw.readMailbox(USERS.bob.address).some((m) => m.content.includes('hostile.1@example.net')));
    const allow = await bob.post(`/quarantine/${ids.hostile}/allow`, {});
    assert.match(allow.body, /is now on your allow list/);
    assert.match((await gw.cliOk(['user', 'show', USERS.bob.address])).stdout, /allow sender@example\.net/);
  });

  it('the administrator deletes a message (CSRF-protected)', async () => {
    const c = new ConsoleClient(port);
    await c.login(ADMIN.address, ADMIN.password);
    await c.get(`/admin/quarantine/${ids.alice}`);
    assert.equal((await c.request('POST', `/admin/quarantine/${ids.alice}/delete`, {})).status, 403);
    const del = await c.post(`/admin/quarantine/${ids.alice}/delete`, {});
    assert.match(del.body, /Deleted for alice@example\.test/);
    const alice = new ConsoleClient(port);
    await alice.login(USERS.alice.address, USERS.alice.password);
    assert.match((await alice.get('/quarantine')).body, /deleted|Nothing held/);
  });

  it('digest links: GET confirms without acting, POST releases that message to that user once; reused and altered links are refused', async () => {
    const list = (JSON.parse((await gw.cliOk(['quarantine', 'list', '--json'])).stdout) as { items: { id: string; state: string; subject: string }[] }).items;
    const held = list.find((i) => i.state === 'held' && i.id !== ids.hostile)!;
    assert.ok(held, JSON.stringify(list));
    const store = SqliteStore.open(path.join(gw.dataDir, 'state.db'), { purgeIntervalMs: 0 });
    let token: string;
    try {
      token = createLinks({ dataDir: gw.dataDir, store }).signLink({ id: held.id, recipient: USERS.bob.address, action: 'release', expiresAt: Date.now() + 3_600_000 });
    } finally {
      store.close();
    }
    const anon = new ConsoleClient(port);
    const confirm = await anon.get(`/q/link?token=${encodeURIComponent(token)}`);
    assert.equal(confirm.status, 200, confirm.body);
    assert.match(confirm.body, /Release the message/);
    const before = gw.readMailbox(USERS.bob.address).length;
    assert.equal(gw.readMailbox(USERS.bob.address).length, before, 'GET does nothing');
    assert.equal((await anon.request('POST', '/q/link', { token })).status, 403, 'POST needs the CSRF token of the confirmation page');
    await anon.get(`/q/link?token=${encodeURIComponent(token)}`);
    const done = await anon.post('/q/link', { token });
    assert.equal(done.status, 200, done.body);
    assert.match(done.body, /Released: bob@example\.test: delivered/);
    assert.equal(gw.readMailbox(USERS.bob.address).length, before + 1);
    const again = await anon.get(`/q/link?token=${encodeURIComponent(token)}`);
    assert.equal(again.status, 410);
    assert.match(again.body, /already used/);
    await anon.get('/login');
    const reusedPost = await anon.post('/q/link', { token });
    assert.equal(reusedPost.status, 410);
    const altered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
    const bad = await anon.get(`/q/link?token=${encodeURIComponent(altered)}`);
    assert.equal(bad.status, 400);
    assert.match(bad.body, /not valid/);
    assert.equal(gw.readMailbox(USERS.bob.address).length, before + 1);
  });
});
