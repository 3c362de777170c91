#!/usr/bin/env node
// IMAP load: N sessions over implicit TLS, logged in, INBOX selected, in IDLE, plus M clients
// running UID FETCH (BODY.PEEK[] FLAGS) of random messages in a loop for S seconds. The server
// runs in a child process (this script with --server) so its RSS and CPU are measured apart
// from the clients. Writes .bench/results/components/imap.json and prints a markdown table.
//
//   node bench/imap-load.mjs [--idle 500] [--fetchers 50] [--seconds 20] [--messages 200]
//
// Needs a build (npm run build). Loopback only; every loop is bounded in count and time.
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const USER = 'bench@example.org';
const PASSWORD = 'Quartz-Meadow-Lantern-42';

const { values: opt } = parseArgs({
  options: {
    idle: { type: 'string', default: '500' },
    fetchers: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '20' },
    messages: { type: 'string', default: '200' },
    server: { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(root, '.bench/results/components/imap.json') },
  },
});


// --- the server (child process) -------------------------------------------------------------------

async function serve() {
  const dist = (p) => path.join(root, 'dist', 'src', p);
  const { AccountStore, accountsFile, mailboxPath } = await import(dist('auth/accounts.js'));
  const { BruteForce } = await import(dist('auth/brute-force.js'));
  const { SqliteStore } = await import(dist('store/sqlite-store.js'));
  const { TlsManager } = await import(dist('tls/certificates.js'));
  const { MaildirDelivery } = await import(dist('delivery/maildir.js'));
  const { imapConfigSchema, startImap } = await import(dist('mailbox/imap/index.js'));
  const { silentLogger } = await import(dist('log.js'));
  const { Readable } = await import('node:stream');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-imap-bench-'));
  const logger = silentLogger();
  // Fast scrypt for the bench user: 550 logins would otherwise measure scrypt, not IMAP.
  const accounts = AccountStore.open(accountsFile(dir), { hashParams: { ln: 10, r: 8, p: 1, saltBytes: 16, keyBytes: 32 } });
  await accounts.addUser(USER, PASSWORD);
  const store = SqliteStore.open(path.join(dir, 'state.db'));
  const bruteForce = new BruteForce(store, {
    window: 3_600_000, block_time: 900_000, pair_limit: 1000, ip_limit: 100_000, net_limit: 100_000,
    base_delay: 0, max_delay: 0, spray_accounts: 10, spray_sources: 10, known_network_ttl: 86_400_000,
  });
  const tlsManager = await TlsManager.create({
    tls: { certificates: [], min_version: 'TLSv1.2', self_signed: true,
      ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384' },
    hostname: 'imap.bench.test', dataDir: dir, logger,
  });
  const maildir = new MaildirDelivery({ fsync: false, hostname: 'imap.bench.test' });
  const mbox = mailboxPath(dir, USER);
  const n = Number(opt.messages);
  for (let i = 0; i < n; i++) {
    const body = `Line ${i} of the bench message, long enough to look like mail.\r\n`.repeat(60);
    const raw = Buffer.from(`From: sender${i}@example.net\r\nTo: ${USER}\r\nSubject: bench ${i}\r\nDate: ${new Date().toUTCString()}\r\n` +
      `Message-ID: <bench${i}@example.net>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`);
    await maildir.deliver(mbox, 'INBOX', { size: raw.length, buffers: [raw], stream: () => Readable.from([raw]) });
  }
  const config = imapConfigSchema.parse({
    listeners: [{ name: 'imaps', address: '127.0.0.1', port: 0, tls: 'implicit' }],
    max_connections_per_user: 10_000, max_connections_per_ip: 10_000, max_connections: 20_000,
  });
  const server = await startImap({ config, dataDir: dir, accounts, bruteForce, tls: tlsManager, logger, maxMessageSize: 25 * 1024 * 1024 });
  const usage = () => ({ rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed, cpu: process.cpuUsage() });
  // Never outlive the driver.
  process.on('disconnect', () => process.exit(0));
  process.on('message', async (m) => {
    if (m === 'usage') process.send({ kind: 'usage', ...usage() });
    if (m === 'stop') {
      await server.close();
      store.close();
      accounts.close();
      fs.rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    }
  });
  global.gc?.();
  process.send({ kind: 'ready', port: server.addresses[0].port, messageSize: fs.statSync(path.join(mbox, 'new', fs.readdirSync(path.join(mbox, 'new'))[0])).size, ...usage() });
}

// --- the clients ---------------------------------------------------------------------------------

class Client {
  constructor(sock) {
    this.sock = sock;
    this.buf = '';
    this.waiter = undefined;
    this.n = 0;
    sock.setEncoding('latin1');
    sock.on('data', (d) => {
      this.buf += d;
      this.waiter?.();
    });
    sock.on('error', () => {});
  }

  static connect(port) {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, async () => {
        const c = new Client(s);
        await c.until(/\r\n/);
        c.buf = '';
        resolve(c);
      });
      s.once('error', reject);
    });
  }

  until(re, timeoutMs = 30_000) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timeout waiting for ${re}: ${this.buf.slice(-200)}`)), timeoutMs);
      const check = () => {
        if (re.test(this.buf)) {
          clearTimeout(t);
          this.waiter = undefined;
          resolve(this.buf);
        }
      };
      this.waiter = check;
      check();
    });
  }

  async cmd(text) {
    const tag = `b${++this.n}`;
    this.buf = '';
    this.sock.write(`${tag} ${text}\r\n`);
    const out = await this.until(new RegExp(`(^|\\r\\n)${tag} (OK|NO|BAD)[^\\r\\n]*\\r\\n`));
    if (!new RegExp(`${tag} OK`).test(out)) throw new Error(`${text}: ${out.slice(-300)}`);
    return out;
  }
}

async function drive() {
  const idleN = Number(opt.idle);
  const fetchN = Number(opt.fetchers);
  const seconds = Math.min(Number(opt.seconds), 300);
  const child = fork(fileURLToPath(import.meta.url), ['--server', '--messages', opt.messages], { execArgv: ['--expose-gc'], stdio: 'inherit' });
  let stopping = false;
  child.on('exit', (code) => {
    if (!stopping) {
      console.error(`the IMAP server process ended early (exit ${code})`);
      process.exit(1);
    }
  });
  const next = (kind) => new Promise((resolve) => {
    const on = (m) => {
      if (m.kind === kind) {
        child.off('message', on);
        resolve(m);
      }
    };
    child.on('message', on);
  });
  const usage = async () => {
    child.send('usage');
    return next('usage');
  };
  const ready = await next('ready');
  const port = ready.port;
  const base = ready;
  console.error(`server ready on ${port}; opening ${idleN} idle sessions`);

  const idlers = [];
  const t0 = Date.now();
  for (let i = 0; i < idleN; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, idleN - i) }, async () => {
      const c = await Client.connect(port);
      await c.cmd(`LOGIN ${USER} ${PASSWORD}`);
      await c.cmd('SELECT INBOX');
      c.buf = '';
      c.sock.write('i IDLE\r\n');
      await c.until(/\+ idling/);
      idlers.push(c);
    }));
  }
  const setupMs = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 1000));
  const idleUsage = await usage();
  console.error(`${idlers.length} sessions idle after ${setupMs} ms; running ${fetchN} fetchers for ${seconds} s`);

  const fetchers = [];
  for (let i = 0; i < fetchN; i++) {
    const c = await Client.connect(port);
    await c.cmd(`LOGIN ${USER} ${PASSWORD}`);
    await c.cmd('SELECT INBOX');
    fetchers.push(c);
  }
  const messages = Number(opt.messages);
  const latencies = [];
  let errors = 0;
  const cpuStart = await usage();
  const wallStart = process.hrtime.bigint();
  const deadline = Date.now() + seconds * 1000;
  await Promise.all(fetchers.map(async (c) => {
    while (Date.now() < deadline) {
      const seq = 1 + Math.floor(Math.random() * messages);
      const s = process.hrtime.bigint();
      try {
        await c.cmd(`FETCH ${seq} (BODY.PEEK[] FLAGS)`);
        latencies.push(Number(process.hrtime.bigint() - s) / 1e6);
      } catch {
        errors++;
      }
    }
  }));
  const wallMs = Number(process.hrtime.bigint() - wallStart) / 1e6;
  const cpuEnd = await usage();
  const cpuUser = (cpuEnd.cpu.user - cpuStart.cpu.user) / 1e6;
  const cpuSystem = (cpuEnd.cpu.system - cpuStart.cpu.system) / 1e6;
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : 0;
  for (const c of [...idlers, ...fetchers]) c.sock.destroy();
  stopping = true;
  child.send('stop');
  await new Promise((r) => child.once('exit', r));

  const mb = (b) => Math.round((b / 1024 / 1024) * 10) / 10;
  const result = {
    component: 'imap',
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    tls: 'implicit',
    idle_sessions: idlers.length,
    fetch_clients: fetchN,
    duration_s: Math.round(wallMs / 100) / 10,
    mailbox_messages: messages,
    message_bytes: ready.messageSize,
    setup_ms: setupMs,
    memory: {
      rss_base_mb: mb(base.rss),
      rss_idle_mb: mb(idleUsage.rss),
      per_session_kb: Math.round((idleUsage.rss - base.rss) / 1024 / Math.max(1, idlers.length)),
      heap_idle_mb: mb(idleUsage.heap),
      rss_end_mb: mb(cpuEnd.rss),
    },
    fetch: {
      count: latencies.length,
      errors,
      per_s: Math.round(latencies.length / (wallMs / 1000)),
      p50_ms: Math.round(pct(0.5) * 100) / 100,
      p99_ms: Math.round(pct(0.99) * 100) / 100,
      max_ms: Math.round((latencies.at(-1) ?? 0) * 100) / 100,
    },
    cpu: {
      server_user_s: Math.round(cpuUser * 100) / 100,
      server_system_s: Math.round(cpuSystem * 100) / 100,
      server_pct_of_one_core: Math.round(((cpuUser + cpuSystem) / (wallMs / 1000)) * 1000) / 10,
    },
  };
  fs.mkdirSync(path.dirname(opt.out), { recursive: true });
  fs.writeFileSync(opt.out, JSON.stringify(result, null, 2) + '\n');
  const rows = [
    ['idle sessions (TLS, logged in, IDLE)', result.idle_sessions],
    ['fetching clients', `${fetchN} × ${result.duration_s} s`],
    ['server RSS before / with idle sessions', `${result.memory.rss_base_mb} MiB / ${result.memory.rss_idle_mb} MiB`],
    ['memory per idle session', `${result.memory.per_session_kb} KiB`],
    ['FETCH BODY.PEEK[] (message ' + result.message_bytes + ' B)', `${result.fetch.per_s}/s, p50 ${result.fetch.p50_ms} ms, p99 ${result.fetch.p99_ms} ms`],
    ['server CPU while fetching', `${result.cpu.server_pct_of_one_core}% of one core`],
    ['errors', result.fetch.errors],
  ];
  console.log('| IMAP load | result |\n|---|---|');
  for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
}

// Last: the class above must be initialised before drive() uses it.
if (opt.server) await serve();
else await drive();
