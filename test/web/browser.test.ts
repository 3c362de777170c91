// The console in a real browser: Debian's Chromium driven by puppeteer-core (no browser
// download). Pages are rendered and checked for their content; every dialog, console error
// (a CSP violation shows up as one), page error and request to anywhere but the console fails
// the test. Screenshots go to a temporary directory, or to $CONSOLE_SCREENSHOTS (the docs'
// pictures: `CONSOLE_SCREENSHOTS=docs/img node --test dist/test/web/browser.test.js`).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'puppeteer-core';
import { USERS, userMap } from '../helpers/fixtures.js';
import type { Gateway } from '../helpers/gateway.js';
import { sharedDir } from '../helpers/paths.js';
import { ADMIN, startConsoleGateway } from './console-client.js';
import { launchChromium, login, sendOverMx, watchedPage } from './browser-helpers.js';

const shotDir = process.env.CONSOLE_SCREENSHOTS ? path.resolve(process.env.CONSOLE_SCREENSHOTS) : fs.mkdtempSync(path.join(os.tmpdir(), 'console-shots-'));
fs.mkdirSync(shotDir, { recursive: true });

const HOSTILE_MID = `x"><script>alert('mid')</script><img src=x onerror=alert('img')>@evil.example`;

describe('the console in Chromium', { timeout: 240_000 }, () => {
  let gw: Gateway;
  let origin: string;
  let browser: Browser;
  before(async () => {
    let port: number;
    ({ gw, consolePort: port } = await startConsoleGateway({ users: userMap('alice', 'bob') }));
    origin = `https://127.0.0.1:${port}`;
    browser = await launchChromium();
    // Traffic for the dashboard and the trace: a plain message, Crispin's MIME torture test, and a hostile Message-ID.
    await sendOverMx(gw, USERS.bob.address, `From: <sender@example.net>\r\nTo: <${USERS.bob.address}>\r\nSubject: hello\r\nMessage-ID: <plain.1@example.net>\r\n\r\nHello\r\n`);
    await sendOverMx(gw, USERS.bob.address, fs.readFileSync(path.join(sharedDir, 'conformance/mime/crispin-torture-test.eml')));
    await sendOverMx(gw, USERS.alice.address, `From: <sender@example.net>\r\nTo: <${USERS.alice.address}>\r\nSubject: <script>alert('subject')</script>\r\nMessage-ID: <${HOSTILE_MID}>\r\n\r\n<script>alert('body')</script>\r\n`);
  });
  after(async () => {
    await browser?.close();
    await gw?.cleanup();
  });

  it('the administrator logs in and sees the dashboard with its charts', async () => {
    const w = await watchedPage(browser, origin);
    await login(w, origin, ADMIN.address, ADMIN.password);
    assert.equal(new URL(w.page.url()).pathname, '/admin');
    assert.equal(await w.page.$eval('h1', (e) => e.textContent), 'Dashboard');
    const messages = await w.page.$$eval('.card', (cards) => cards.map((c) => c.textContent ?? ''));
    assert.ok(messages.some((t) => /^\s*3\s*messages, last 24 h/.test(t)), messages.join(' | '));
    assert.equal(await w.page.$$eval('#hourly svg rect', (r) => r.length) > 0, true, 'the hourly chart has bars');
    assert.ok((await w.page.$$eval('#symbols svg text', (t) => t.map((x) => x.textContent))).length > 0);
    // The stylesheet applied (no inline style is allowed, so this proves /static/console.css loaded).
    assert.equal(await w.page.$eval('header', (h) => getComputedStyle(h).backgroundColor), 'rgb(29, 36, 48)');
    await w.page.screenshot({ path: path.join(shotDir, 'console-dashboard.png') });
    assert.deepEqual(w.problems, []);
    await w.page.browserContext().close();
  });

  it('the message trace shows a hostile Message-ID as text and runs nothing', async () => {
    const w = await watchedPage(browser, origin);
    await login(w, origin, ADMIN.address, ADMIN.password);
    await w.page.goto(`${origin}/admin/trace?q=${encodeURIComponent(USERS.alice.address)}`);
    const links = await w.page.$$eval('table.trace a', (a) => a.map((x) => (x as HTMLAnchorElement).href));
    assert.equal(links.length, 1, `one message to alice: ${await w.page.content()}`);
    await w.page.goto(links[0]!);
    const cells = await w.page.$$eval('table.fields td', (t) => t.map((x) => x.textContent));
    assert.ok(cells.includes(HOSTILE_MID), `the Message-ID is shown verbatim: ${cells.join(' | ')}`);
    assert.equal(await w.page.$$eval('script', (s) => s.length), 0);
    assert.equal(await w.page.$$eval('main img', (s) => s.length), 0);
    assert.ok((await w.page.$$eval('table.symbols td', (t) => t.length)) > 0, 'the symbols are listed');
    await w.page.screenshot({ path: path.join(shotDir, 'console-trace.png'), fullPage: true });
    // Crispin's torture test is found by its Message-ID.
    await w.page.goto(`${origin}/admin/trace?q=${encodeURIComponent('<CMM.0.88.687168092.mrc@akbar.cac.washington.edu>')}`);
    assert.equal((await w.page.$$eval('table.trace tbody tr', (r) => r.length)), 1);
    assert.deepEqual(w.problems, []);
    await w.page.browserContext().close();
  });

  it('a user changes spam settings in the form and sees them saved; the administrator pages are closed to them', async () => {
    const w = await watchedPage(browser, origin);
    await login(w, origin, USERS.bob.address, USERS.bob.password);
    assert.equal(new URL(w.page.url()).pathname, '/settings');
    assert.equal(await w.page.$eval('input[name=spam_filter]', (e) => (e as HTMLInputElement).checked), true);
    await w.page.type('input[name=junk]', '7');
    await w.page.type('textarea[name=block]', 'pushy.example');
    await Promise.all([w.page.waitForNavigation(), w.page.click('main button[type=submit]')]);
    assert.match(await w.page.$eval('.notice', (e) => e.textContent ?? ''), /Saved/);
    assert.equal(await w.page.$eval('input[name=junk]', (e) => (e as HTMLInputElement).value), '7');
    assert.equal(await w.page.$eval('textarea[name=block]', (e) => (e as HTMLTextAreaElement).value), 'pushy.example');
    await w.page.screenshot({ path: path.join(shotDir, 'console-settings.png') });
    assert.match((await gw.cliOk(['user', 'show', USERS.bob.address])).stdout, /junk 7\b[\s\S]*block pushy\.example/);
    const r = await w.page.goto(`${origin}/admin`);
    assert.equal(r?.status(), 403);
    // The password page with its strength meter.
    await w.page.goto(`${origin}/password`);
    await w.page.type('input[name=current]', USERS.bob.password);
    await w.page.type('input[name=password]', 'sunshine1');
    await w.page.type('input[name=again]', 'sunshine1');
    await Promise.all([w.page.waitForNavigation(), w.page.click('main button[type=submit]')]);
    assert.match(await w.page.$eval('.notice.error', (e) => e.textContent ?? ''), /password/);
    assert.match(await w.page.$eval('.strength', (e) => e.textContent ?? ''), /^[0-2] of 4/);
    await w.page.screenshot({ path: path.join(shotDir, 'console-password.png') });
    // The 403 of /admin and the 400 of the refused password are expected (Chromium logs every 4xx document).
    assert.deepEqual(w.problems.filter((p) => !/status of 40[03]/.test(p)), []);
    await w.page.browserContext().close();
  });
});
