// The console's queue and reports pages through the running gateway (docs/console.md): a user's
// mail waits in the queue (the remote end defers it) and the administrator holds and releases it
// with the same effect `portcullis queue hold|release` has; the outbound limits lock the user and
// the administrator unlocks them; complaints (ARF over port 25, with hostile headers) and a DMARC
// aggregate report show in the reports pages, escaped, for administrators only. One check in
// Chromium that hostile report content is text, and the docs' screenshots of both pages.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { USERS, userMap } from '../helpers/fixtures.js';
import type { Gateway } from '../helpers/gateway.js';
import { Sink } from '../helpers/sink.js';
import { mailer, sendRaw } from '../helpers/clients.js';
import { waitFor } from '../helpers/wait.js';
import { arfReport, dmarcMail, dmarcXml } from '../helpers/report-fixtures.js';
import { ADMIN, ConsoleClient, startConsoleGateway } from './console-client.js';
import { launchChromium, login, watchedPage } from './browser-helpers.js';

const shotDir = process.env.CONSOLE_SCREENSHOTS ? path.resolve(process.env.CONSOLE_SCREENSHOTS) : fs.mkdtempSync(path.join(os.tmpdir(), 'console-shots-'));
fs.mkdirSync(shotDir, { recursive: true });

const HOSTILE_SUBJECT = `<script>alert('subject')</script><img src=x onerror=alert('img')>`;
const HOSTILE_FROM = `"<b onmouseover=alert(1)>Evil</b>" <evil@spam.example>`;

interface Held { id: string; state?: string; held?: { reason: string } }

describe('console: queue hold/release, locks, complaints and reports', { timeout: 240_000 }, () => {
  let gw: Gateway;
  let sink: Sink;
  let port: number;
  let admin: ConsoleClient;

  before(async () => {
    sink = await Sink.start();
    ({ gw, consolePort: port } = await startConsoleGateway({
      users: userMap('alice', 'bob'),
      config: {
        relay: { routes: [{ domain: '*', host: '127.0.0.1', port: sink.port, protocol: 'smtp', tls: 'none' }] },
        queue: { retry_initial: '5m', retry_max: '10m' },
        outbound: { limits: { user: { recipients_per_hour: 3 } } },
        reports: { addresses: [] },
      },
    }));
    admin = new ConsoleClient(port);
    assert.equal((await admin.login(ADMIN.address, ADMIN.password)).status, 303);
  });
  after(async () => {
    await gw?.cleanup();
    await sink?.close();
  });

  const submit = async (user: { address: string; password: string }, to: string[], subject: string, messageId?: string) => {
    const t = mailer({ port: gw.ports.submission, requireTLS: true, auth: { user: user.address, pass: user.password } });
    try {
      return await t.sendMail({ from: user.address, to, subject, text: `${subject}\n`, ...(messageId ? { messageId } : {}) });
    } finally {
      t.close();
    }
  };
  const cliQueue = async () => JSON.parse((await gw.cliOk(['queue', 'list', '--json'])).stdout) as Held[];

  it('hold and release a queued message from the queue page: the queue (as `queue list` sees it) follows; no CSRF token, no change', async () => {
    sink.reject.set('slow@far.test', 450);
    await submit(USERS.alice, ['slow@far.test'], 'waiting in the queue');
    const [m] = await waitFor('the deferred message in the queue', async () => {
      const q = (await cliQueue()).filter((x) => x.state === 'deferred');
      return q.length ? q : undefined;
    }, { timeoutMs: 20_000, intervalMs: 200 });
    const id = m!.id;
    const page = await admin.get('/admin/queue');
    assert.equal(page.status, 200);
    assert.match(page.body, new RegExp(`<td>${id}</td>\\s*<td>deferred`));
    assert.match(page.body, new RegExp(`action="/admin/queue/hold"[^>]*>.{0,200}value="${id}"`, 's'));

    // Without the session's token: refused, and the message is not held.
    const forged = await admin.request('POST', '/admin/queue/hold', { id, _csrf: 'not-the-token' });
    assert.equal(forged.status, 403);
    assert.equal((await cliQueue()).find((x) => x.id === id)?.state, 'deferred');

    const held = await admin.post('/admin/queue/hold', { id });
    assert.equal(held.status, 200, held.body);
    assert.match(held.body, new RegExp(`Held ${id}`));
    const after = (await cliQueue()).find((x) => x.id === id)!;
    assert.equal(after.state, 'held');
    assert.equal(after.held?.reason, 'held by the administrator');
    assert.match(held.body, /action="\/admin\/queue\/release"/);

    const again = await admin.post('/admin/queue/hold', { id });
    assert.match(again.body, /was held already/);
    const unknown = await admin.post('/admin/queue/hold', { id: 'NOSUCHID1' });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body, /no message NOSUCHID1 in the queue/);

    const released = await admin.post('/admin/queue/release', { id });
    assert.match(released.body, new RegExp(`Released ${id}`));
    assert.notEqual((await cliQueue()).find((x) => x.id === id)?.state, 'held');
    assert.equal((await admin.post('/admin/queue/delete', { id })).status, 200);
    assert.equal((await cliQueue()).find((x) => x.id === id), undefined);
  });

  it('a sender locked by the outbound limits is listed with Unlock; unlocking is what `user unlock` does', async () => {
    // 4 recipients in the hour, over the limit of 3: accepted, held, and alice is locked.
    await submit(USERS.alice, ['a1@far.test', 'a2@far.test', 'a3@far.test', 'a4@far.test'], 'too many');
    await waitFor('the lock of alice', async () => {
      const l = JSON.parse((await gw.cliOk(['user', 'locks', '--json'])).stdout) as unknown[];
      return l.length ? l : undefined;
    }, { timeoutMs: 10_000, intervalMs: 200 });
    const page = await admin.get('/admin/queue');
    assert.match(page.body, /<table class="queue" id="locks">/);
    assert.match(page.body, new RegExp(`<td>user:${USERS.alice.address.replace('.', '\\.')}</td>`));
    assert.match(page.body, /held<br>/, 'the tripping message is shown as held with its reason');
    const done = await admin.post('/admin/queue/unlock', { subject: USERS.alice.address });
    assert.equal(done.status, 200, done.body);
    assert.match(done.body, /unlocked: new submissions are accepted again/);
    assert.deepEqual(JSON.parse((await gw.cliOk(['user', 'locks', '--json'])).stdout), []);
    assert.match(done.body, /No sender is locked\./);
    const bad = await admin.post('/admin/queue/unlock', { subject: 'not an address' });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /neither a user address nor an IP address/);
  });

  it('complaints and a DMARC report show in the reports pages with their details, escaped; users get 403', async () => {
    // bob sends to the provider; the provider's ARF complaint comes back with hostile headers in the original.
    await submit(USERS.bob, ['carl@isp.example'], 'An offer', '<offer-console-1@example.test>');
    const delivered = await sink.waitFor('offer-console-1@example.test');
    const original = delivered.raw.toString('latin1')
      .replace(/^Subject: .*$/m, `Subject: ${HOSTILE_SUBJECT}`).replace(/^From: .*$/m, `From: ${HOSTILE_FROM}`);
    const arf = arfReport({ from: 'fbl@isp.example', to: 'abuse@example.test', original, mailFrom: USERS.bob.address, rcptTo: 'carl@isp.example', sourceIp: '127.0.0.1' });
    assert.deepEqual(await sendRaw(gw.ports.mx, { from: 'fbl-bounces@isp.example', to: ['abuse@example.test'] }, arf), { ok: true });
    const xml = dmarcXml({ domain: 'example.test', reportId: 'console-dmarc-1', rows: [
      { ip: '192.0.2.25', count: 7, dkim: 'pass', spf: 'pass', headerFrom: 'example.test' },
      { ip: '203.0.113.50', count: 3, disposition: 'reject', dkim: 'fail', spf: 'fail', headerFrom: 'example.test' },
    ] });
    assert.deepEqual(await sendRaw(gw.ports.mx, { from: 'noreply-dmarc@acme.example', to: ['postmaster@example.test'] },
      await dmarcMail({ from: 'noreply-dmarc@acme.example', to: 'postmaster@example.test', xml, encoding: 'zip', domain: 'example.test', reportId: 'console-dmarc-1' })), { ok: true });

    const list = await waitFor('the complaint and the report on /admin/reports', async () => {
      const p = await admin.get('/admin/reports');
      return /id="complaints"/.test(p.body) && /id="reports"/.test(p.body) ? p : undefined;
    }, { timeoutMs: 20_000, intervalMs: 300 });
    assert.match(list.body, /<a href="\/admin\/reports">Reports<\/a>/, 'the navigation links the page');
    assert.match(list.body, new RegExp(`>${USERS.bob.address.replace('.', '\\.')}</a> <span class="muted">\\(by queue-id\\)`));
    assert.match(list.body, /&lt;offer-console-1@example\.test&gt;/);
    assert.ok(list.body.includes('&lt;script&gt;alert(&#39;subject&#39;)&lt;/script&gt;'), 'the hostile subject is escaped in the list');
    assert.doesNotMatch(list.body, /<script|<img/);
    assert.match(list.body, /<td>dmarc<\/td>\s*<td>acme\.example/);

    // Filters: by user (complaints only), by kind.
    const byUser = await admin.get(`/admin/reports?user=${encodeURIComponent(USERS.alice.address)}`);
    assert.match(byUser.body, /No complaints match/);
    assert.doesNotMatch(byUser.body, /id="reports"/);
    const onlyDmarc = await admin.get('/admin/reports?show=dmarc');
    assert.doesNotMatch(onlyDmarc.body, /id="complaints"/);
    assert.match(onlyDmarc.body, /<td>dmarc<\/td>/);
    const onlyTls = await admin.get('/admin/reports?show=tlsrpt&days=7');
    assert.match(onlyTls.body, /No reports match/);

    // The DMARC report's rows per source IP.
    const reportId = /href="\/admin\/reports\/(\d+)"/.exec(onlyDmarc.body)![1]!;
    const detail = await admin.get(`/admin/reports/${reportId}`);
    assert.equal(detail.status, 200);
    assert.match(detail.body, /DMARC report from acme\.example/);
    assert.match(detail.body, /10 messages, 3 not passing DMARC/);
    assert.match(detail.body, />203\.0\.113\.50<\/a><\/td><td>3<\/td><td>reject<\/td><td>fail<\/td><td>fail<\/td>/);
    assert.match(detail.body, />192\.0\.2\.25<\/a><\/td><td>7<\/td><td>none<\/td><td>pass<\/td>/);

    // The complaint's page with the original's headers, escaped.
    const cid = /href="\/admin\/complaints\/(\d+)"/.exec(list.body)![1]!;
    const c = await admin.get(`/admin/complaints/${cid}`);
    assert.equal(c.status, 200);
    assert.match(c.body, /<th>Original-Mail-From<\/th><td>bob@example\.test<\/td>/);
    assert.match(c.body, /<th>Original-Rcpt-To<\/th><td>carl@isp\.example<\/td>/);
    assert.ok(c.body.includes('&quot;&lt;b onmouseover=alert(1)&gt;Evil&lt;/b&gt;&quot; &lt;evil@spam.example&gt;'), c.body);
    assert.doesNotMatch(c.body, /<script|<img|<b /);

    for (const bad of ['/admin/reports/999999', '/admin/reports/x', '/admin/complaints/999999', '/admin/complaints/1%27']) {
      assert.equal((await admin.get(bad)).status, 404, bad);
    }
    const user = new ConsoleClient(port);
    await user.login(USERS.alice.address, USERS.alice.password);
    for (const p of ['/admin/reports', `/admin/reports/${reportId}`, `/admin/complaints/${cid}`]) assert.equal((await user.get(p)).status, 403, p);
    assert.doesNotMatch((await user.get('/settings')).body, /href="\/admin\/reports"/);
    for (const p of ['/admin/queue/hold', '/admin/queue/release', '/admin/queue/unlock']) {
      assert.equal((await user.post(p, { id: 'X', subject: USERS.bob.address })).status, 403, p);
    }
  });

  it('in Chromium, hostile report content is text and nothing runs; screenshots of the reports and queue pages', async () => {
    const browser = await launchChromium();
    try {
      const origin = `https://127.0.0.1:${port}`;
      const w = await watchedPage(browser, origin);
      await login(w, origin, ADMIN.address, ADMIN.password);
      await w.page.goto(`${origin}/admin/reports`);
      const subjects = await w.page.$$eval('#complaints tbody tr td:last-child', (t) => t.map((x) => x.textContent));
      assert.ok(subjects.includes(HOSTILE_SUBJECT), `the subject is shown verbatim: ${subjects.join(' | ')}`);
      assert.equal(await w.page.$$eval('script', (s) => s.length), 0);
      assert.equal(await w.page.$$eval('main img', (s) => s.length), 0);
      await w.page.screenshot({ path: path.join(shotDir, 'console-reports.png'), fullPage: true });
      await Promise.all([w.page.waitForNavigation(), w.page.click('#complaints tbody a[href^="/admin/complaints/"]')]);
      const from = await w.page.$$eval('#original tr', (rows) => rows.map((r) => [r.querySelector('th')?.textContent, r.querySelector('td')?.textContent]));
      assert.ok(from.some(([k, v]) => k === 'From' && v === HOSTILE_FROM), JSON.stringify(from));
      assert.equal(await w.page.$$eval('main b', (s) => s.length), 0);
      // The queue page with a held message in it.
      await submit(USERS.bob, ['slow@far.test'], 'for the picture');
      const [m] = await waitFor('a deferred message', async () => {
        const q = (await cliQueue()).filter((x) => x.state === 'deferred');
        return q.length ? q : undefined;
      }, { timeoutMs: 20_000, intervalMs: 200 });
      await gw.cliOk(['queue', 'hold', m!.id]);
      await w.page.goto(`${origin}/admin/queue`);
      assert.ok((await w.page.$$eval('#queue tbody tr', (r) => r.map((x) => x.textContent ?? ''))).some((t) => t.includes(m!.id) && t.includes('held')));
      await w.page.screenshot({ path: path.join(shotDir, 'console-queue.png'), fullPage: true });
      assert.deepEqual(w.problems, []);
    } finally {
      await browser.close();
    }
  });
});
