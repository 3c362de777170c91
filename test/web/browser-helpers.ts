// Chromium pages for the console tests: a fresh context per page, and every dialog, page error,
// console error and request leaving the console collected as a problem.
import assert from 'node:assert/strict';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { assertReply } from '../helpers/fixtures.js';
import type { Gateway } from '../helpers/gateway.js';
import { SmtpClient, transaction } from '../helpers/smtp-client.js';

/** Debian's Chromium, headless, trusting the test gateway's self-signed certificate. */
export function launchChromium(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: '/usr/bin/chromium', headless: true, acceptInsecureCerts: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
}

/** Sends a message to the gateway's MX port over SMTP and expects its 250. */
export async function sendOverMx(gw: Gateway, to: string, message: string | Buffer): Promise<void> {
  const c = await SmtpClient.connect(gw.ports.mx);
  try {
    await c.ehlo('client.example.net');
    const r = await transaction(c, 'sender@example.net', [to], message);
    assertReply(r.final!, 250);
  } finally {
    await c.quit();
  }
}

export interface Watched {
  readonly page: Page;
  readonly problems: string[];
}

/** A page in a fresh browser context (its own cookies) whose dialogs, errors and foreign requests are collected as problems. */
export async function watchedPage(browser: Browser, origin: string): Promise<Watched> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  const problems: string[] = [];
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('pageerror', (e) => problems.push(`page error: ${(e as Error).message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  // A load that completed from anywhere but the console (an attempt that CSP blocked fails, and shows as a console error).
  page.on('requestfinished', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith('data:') && u !== 'about:blank') problems.push(`loaded from ${u}`);
  });
  return { page, problems };
}

export async function login(w: Watched, origin: string, user: string, password: string): Promise<void> {
  await w.page.goto(`${origin}/login`);
  await w.page.type('input[name=user]', user);
  await w.page.type('input[name=password]', password);
  await Promise.all([w.page.waitForNavigation(), w.page.click('button[type=submit]')]);
  assert.notEqual(new URL(w.page.url()).pathname, '/login', `login as ${user} failed: ${await w.page.$eval('main', (m) => m.textContent)}`);
}

