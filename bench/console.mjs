#!/usr/bin/env node
// Console page server time with many rows (issue 16: target p99 < 200 ms at 100,000 rows).
// Starts the console alone (src/web/server.ts, HTTPS, self-signed) over a trace store — and a
// quarantine, when this build has one — filled with BENCH_CONSOLE_ROWS rows (100,000), logs in
// as an administrator and times each page over keep-alive HTTPS: the trace (recent, by address,
// by queue id, one entry), the dashboard, and the quarantine list, search and one entry.
// Prints one JSON object (bench/run.sh's component convention).
//
//   node bench/console.mjs [--cli dist/src/cli/main.js] [--rows 100000] [--requests 200]
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const cli = path.resolve(arg('cli', 'dist/src/cli/main.js'));
const src = path.resolve(path.dirname(cli), '..');
const ROWS = Number(arg('rows', process.env.BENCH_CONSOLE_ROWS ?? 100_000));
const REQUESTS = Number(arg('requests', 200));
const mod = (p) => import(pathToFileURL(path.join(src, p)).href);

const [{ TraceStore }, { startConsole }, { AccountStore }, { SqliteStore }, { BruteForce }, { createMetrics }, { TlsManager }, { silentLogger }, { configSchema }] = await Promise.all([
  mod('trace/trace-store.js'), mod('web/server.js'), mod('auth/accounts.js'), mod('store/sqlite-store.js'), mod('auth/brute-force.js'),
  mod('metrics.js'), mod('tls/certificates.js'), mod('log.js'), mod('config/schema.js'),
]);
const quarantineModule = fs.existsSync(path.join(src, 'quarantine/quarantine.js')) ? await mod('quarantine/quarantine.js') : undefined;

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
for (let i = 0; i < ROWS; i++) {
  trace.enqueue({
    queueId: `Q${i.toString(36).toUpperCase().padStart(8, '0')}`, messageId: `${i}.${crypto.randomBytes(4).toString('hex')}@sender${i % 997}.example`,
    sender: `news@sender${i % 997}.example`, recipients: [pick(users, i * 7)], action: pick(ACTIONS, i), reply: '250 2.0.0',
    score: (i % 150) / 10, size: 2000 + (i % 5000), client: `192.0.2.${i % 250}`,
    symbols: [pick(SYMBOLS, i), pick(SYMBOLS, i * 3 + 1)].map((name) => ({ name, score: 1, reason: `why ${name}` })), time: Math.floor(start + i * step),
  }, (err) => { throw err; });
}
trace.flush();
const traceFillMs = Date.now() - t0;
let quarantine;
let quarantineFillMs;
if (quarantineModule) {
  const t1 = Date.now();
  quarantine = quarantineModule.Quarantine.open({ dataDir: dir, config: { max_age: 30 * 86_400_000, max_size: 100 * 2 ** 30, max_messages: 10 * ROWS }, logger, fsync: false, expireIntervalMs: 0 });
  const body = (i) => Buffer.from(`From: <news@sender${i % 997}.example>\r\nSubject: offer number ${i} for you\r\nMessage-ID: <q${i}@sender.example>\r\n\r\nhello ${i}\r\n`);
  for (let i = 0; i < ROWS; i++) {
    await quarantine.add({ reason: 'policy', sender: `news@sender${i % 997}.example`, recipients: [{ address: pick(users, i * 7) }], time: Math.floor(start + i * step), score: 9, symbols: [] }, body(i));
  }
  quarantineFillMs = Date.now() - t1;
}

const web = await startConsole({
  config: config.console, thresholds: config.policy.thresholds, tls, accounts, bruteForce, trace, logger, metrics: createMetrics(),
  queue: { list: () => [], flush: () => 0, delete: async () => 'unknown' }, ...(quarantine ? { quarantine } : {}),
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

async function time(name, pathFor) {
  const ms = [];
  for (let i = 0; i < REQUESTS + 10; i++) {
    const p = pathFor(i);
    const t = process.hrtime.bigint();
    const r = await request('GET', p);
    const d = Number(process.hrtime.bigint() - t) / 1e6;
    if (r.status !== 200) throw new Error(`${p}: ${r.status}`);
    if (i >= 10) ms.push(d); // warm-up excluded
  }
  ms.sort((a, b) => a - b);
  const q = (f) => Math.round(ms[Math.min(ms.length - 1, Math.floor(f * ms.length))] * 100) / 100;
  return { page: name, p50_ms: q(0.5), p99_ms: q(0.99), max_ms: Math.round(ms[ms.length - 1] * 100) / 100 };
}

const pages = [
  await time('trace: recent 200', () => '/admin/trace'),
  await time('trace: by address', (i) => `/admin/trace?q=${encodeURIComponent(pick(users, i * 13))}`),
  await time('trace: by queue id', (i) => `/admin/trace?q=Q${(i * 499).toString(36).toUpperCase().padStart(8, '0')}`),
  await time('trace: one entry', (i) => `/admin/trace/${1 + ((i * 7919) % ROWS)}`),
  await time('dashboard (24 h)', () => '/admin'),
];
if (quarantine) {
  pages.push(await time('quarantine: list', () => '/admin/quarantine'));
  pages.push(await time('quarantine: search', (i) => `/admin/quarantine?q=${encodeURIComponent(`sender${(i * 31) % 997}`)}`));
}
await web.close();
agent.destroy();
trace.close();
quarantine?.close?.();
accounts.close();
store.close();
fs.rmSync(dir, { recursive: true, force: true });
const worst = Math.max(...pages.map((p) => p.p99_ms));
console.log(JSON.stringify({
  rows: ROWS, requests_per_page: REQUESTS, trace_fill_ms: traceFillMs, ...(quarantineFillMs !== undefined ? { quarantine_fill_ms: quarantineFillMs } : {}),
  pages, worst_p99_ms: worst, target_p99_ms: 200, ok: worst < 200,
}));
