#!/usr/bin/env node
// Console page server time with many rows (issue 16: target p99 < 200 ms with 100,000
// quarantined messages). Starts the console alone (src/web/server.ts, HTTPS, self-signed) over a
// trace store of BENCH_CONSOLE_ROWS messages (100,000) and a quarantine of as many entries
// (the index filled as bench/quarantine.mjs does, plus BENCH_CONSOLE_VIEWABLE entries stored
// whole through Quarantine.add, so that the message view has originals to render), logs in as
// an administrator and times each page over keep-alive HTTPS, p50 and p99: the quarantine list,
// search (rare word, common word, sender) and message view, the trace lookups (recent, by
// address, by queue id, by Message-ID, one entry) and the dashboard. Prints one JSON object
// (bench/run.sh's component convention).
//
//   node bench/console.mjs [--cli dist/src/cli/main.js] [--rows 100000] [--requests 200]
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { fillQuarantineIndex } from './quarantine.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const cli = path.resolve(arg('cli', 'dist/src/cli/main.js'));
const src = path.resolve(path.dirname(cli), '..');
const ROWS = Number(arg('rows', process.env.BENCH_CONSOLE_ROWS ?? 100_000));
const REQUESTS = Number(arg('requests', 200));
const VIEWABLE = Number(process.env.BENCH_CONSOLE_VIEWABLE ?? 200);
const mod = (p) => import(pathToFileURL(path.join(src, p)).href);

const [{ TraceStore }, { startConsole }, { AccountStore }, { SqliteStore }, { BruteForce }, { createMetrics }, { TlsManager }, { silentLogger }, { configSchema }] = await Promise.all([
  mod('trace/trace-store.js'), mod('web/server.js'), mod('auth/accounts.js'), mod('store/sqlite-store.js'), mod('auth/brute-force.js'),
  mod('metrics.js'), mod('tls/certificates.js'), mod('log.js'), mod('config/schema.js'),
]);
const [{ Quarantine }, { quarantineConfigSchema }, { createLinks }] = await Promise.all([mod('quarantine/quarantine.js'), mod('quarantine/config.js'), mod('quarantine/links.js')]);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'console-bench-'));
const logger = silentLogger();
const config = configSchema.parse({ data_dir: dir, hostname: 'bench.example.test', console: { port: 0, admins: ['admin@example.test'] } });
const accounts = AccountStore.open(path.join(dir, 'accounts.db'));
const PASSWORD = 'Bench-Lantern-Quill-58';
await accounts.addUser('admin@example.test', PASSWORD);
const store = SqliteStore.open(path.join(dir, 'state.db'));
const bruteForce = new BruteForce(store, config.auth.brute_force);
const tls = await TlsManager.create({ tls: config.tls, hostname: config.hostname, dataDir: dir, logger });
const trace = TraceStore.open(TraceStore.fileIn(dir));

// ---- fill ----
const t0 = Date.now();
const SYMBOLS = ['SPF_PASS', 'DKIM_VALID', 'DNSBL_ZEN', 'BAYES_99', 'HTML_ONLY', 'URIBL_BLACK', 'MISSING_DATE', 'RDNS_NONE'];
const ACTIONS = ['deliver', 'deliver', 'deliver', 'tag', 'junk', 'reject', 'quarantine'];
const start = Date.now() - 29 * 86_400_000;
const step = (Date.now() - start) / ROWS;
const users = Array.from({ length: 500 }, (_, i) => `user${i}@example.test`);
const pick = (a, i) => a[i % a.length];
const messageIds = [];
for (let i = 0; i < ROWS; i++) {
  const messageId = `${i}.${crypto.randomBytes(4).toString('hex')}@sender${i % 997}.example`;
  if (i % 1000 === 0) messageIds.push(messageId);
  trace.enqueue({
    queueId: `Q${i.toString(36).toUpperCase().padStart(8, '0')}`, messageId,
    sender: `news@sender${i % 997}.example`, recipients: [pick(users, i * 7)], action: pick(ACTIONS, i), reply: '250 2.0.0',
    score: (i % 150) / 10, size: 2000 + (i % 5000), client: `192.0.2.${i % 250}`,
    symbols: [pick(SYMBOLS, i), pick(SYMBOLS, i * 3 + 1)].map((name) => ({ name, score: 1, reason: `why ${name}` })), time: Math.floor(start + i * step),
  }, (err) => { throw err; });
}
trace.flush();
const traceFillMs = Date.now() - t0;
// The quarantine: ROWS index entries written directly (listing and search do not read originals),
// then VIEWABLE whole messages through Quarantine.add (the message view parses the original).
const t1 = Date.now();
const qOpen = () => Quarantine.open({ dataDir: dir, config: quarantineConfigSchema.parse({ max_messages: 10 * ROWS }), logger, fsync: false, expireIntervalMs: 0 });
qOpen().close();
fillQuarantineIndex(dir, ROWS - VIEWABLE);
const quarantine = qOpen();
const viewable = [];
for (let i = 0; i < VIEWABLE; i++) {
  const raw = Buffer.from(`From: "Offers ${i}" <news@sender${i % 997}.example>\r\nTo: <${pick(users, i)}>\r\nSubject: offer number ${i} =?UTF-8?B?w6Rw?=\r\n`
    + `Message-ID: <view${i}@sender.example>\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n`
    + `--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${'Hello, this is the text part of an offer. '.repeat(40)}\r\n`
    + `--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>${'Hello <b>there</b> <a href="https://track.example/x">click</a> <img src="https://track.example/p.gif"> '.repeat(40)}</p><script>alert(1)</script></body></html>\r\n--b--\r\n`);
  viewable.push(await quarantine.add({ reason: 'policy_band', sender: `news@sender${i % 997}.example`, recipients: [pick(users, i)], score: 9, symbols: [{ name: 'BAYES_99', score: 5, reason: 'bayes' }] }, raw));
}
const quarantineFillMs = Date.now() - t1;
const quarantineCount = quarantine.totals().count;

const web = await startConsole({
  config: config.console, thresholds: config.policy.thresholds, tls, accounts, bruteForce, trace, logger, metrics: createMetrics(),
  queue: { list: () => [], flush: () => 0, delete: async () => 'unknown', hold: async () => [], release: async () => [], locks: async () => [], unlock: async () => false },
  quarantine: { store: quarantine, links: createLinks({ dataDir: dir, store }) },
});
const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
let cookie = '';
const request = (method, p, form) => new Promise((resolve, reject) => {
  const body = form ? new URLSearchParams(form).toString() : undefined;
  const req = https.request({
    host: '127.0.0.1', port: web.address.port, method, path: p, agent,
    headers: { ...(cookie ? { cookie } : {}), ...(body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } : {}) },
  }, (res) => {
    let text = '';
    res.setEncoding('utf8').on('data', (d) => (text += d)).on('end', () => {
      for (const c of [res.headers['set-cookie'] ?? []].flat()) cookie = c.split(';')[0];
      resolve({ status: res.statusCode, body: text });
    });
  });
  req.on('error', reject);
  req.end(body);
});
const login = await request('GET', '/login');
const csrf = /name="_csrf" value="([^"]+)"/.exec(login.body)[1];
const done = await request('POST', '/login', { _csrf: csrf, user: 'admin@example.test', password: PASSWORD });
if (done.status !== 303) throw new Error(`login failed: ${done.status}`);

/** Times GET pathFor(i); `expect` (a RegExp) must match every page, so that a page that finds nothing is not timed as fast. */
async function time(name, pathFor, expect) {
  const ms = [];
  for (let i = 0; i < REQUESTS + 10; i++) {
    const p = pathFor(i);
    const t = process.hrtime.bigint();
    const r = await request('GET', p);
    const d = Number(process.hrtime.bigint() - t) / 1e6;
    if (r.status !== 200) throw new Error(`${p}: ${r.status}`);
    if (expect && !expect.test(r.body)) throw new Error(`${p}: the page lacks ${expect}: ${r.body.slice(0, 300)}`);
    if (i >= 10) ms.push(d); // warm-up excluded
  }
  ms.sort((a, b) => a - b);
  const q = (f) => Math.round(ms[Math.min(ms.length - 1, Math.floor(f * ms.length))] * 100) / 100;
  return { page: name, p50_ms: q(0.5), p99_ms: q(0.99), max_ms: Math.round(ms[ms.length - 1] * 100) / 100 };
}

const pages = [
  await time('quarantine: list (newest 100)', () => '/admin/quarantine', /offer number/),
  await time('quarantine: search, rare word', () => '/admin/quarantine?q=needle', /needle/),
  await time('quarantine: search, common word', () => '/admin/quarantine?q=invoice', /invoice/),
  await time('quarantine: search, sender', (i) => `/admin/quarantine?q=${encodeURIComponent(`sender${(i * 31) % 5000}@`)}`, /@example\.net/),
  await time('quarantine: message view', (i) => `/admin/quarantine/${encodeURIComponent(viewable[(i * 7) % viewable.length])}`, /text part of an offer/),
  await time('trace: recent 200', () => '/admin/trace'),
  await time('trace: by address', (i) => `/admin/trace?q=${encodeURIComponent(pick(users, i * 13))}`),
  await time('trace: by queue id', (i) => `/admin/trace?q=Q${((i * 499) % ROWS).toString(36).toUpperCase().padStart(8, '0')}`, /<tbody><tr>/),
  await time('trace: by Message-ID', (i) => `/admin/trace?q=${encodeURIComponent(`<${messageIds[(i * 389) % messageIds.length]}>`)}`, /<tbody><tr>/),
  await time('trace: one entry', (i) => `/admin/trace/${1 + ((i * 7919) % ROWS)}`),
  await time('dashboard (24 h)', () => '/admin'),
];
await web.close();
agent.destroy();
trace.close();
quarantine.close();
accounts.close();
store.close();
fs.rmSync(dir, { recursive: true, force: true });
const worst = Math.max(...pages.map((p) => p.p99_ms));
console.log(JSON.stringify({
  rows: ROWS, trace_rows: ROWS, quarantine_entries: quarantineCount, requests_per_page: REQUESTS, trace_fill_ms: traceFillMs, quarantine_fill_ms: quarantineFillMs,
  pages, worst_p99_ms: worst, target_p99_ms: 200, ok: worst < 200,
}));
