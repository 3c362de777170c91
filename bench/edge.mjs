#!/usr/bin/env node
// Edge-defence benchmark (issue "edge defences"): prints one JSON object.
//  1. Connect-time check latency: time from TCP connect to the 220 banner, p50/p99, for
//     (a) no DNS checks, (b) two DNS lists (the real rbldnsd) + rDNS (PTR + forward, a dns2
//     server) with an empty cache — every client a new source address, (c) the same clients
//     again (answers cached).
//  2. 10,000 tarpitted connections held at once: gateway RSS before/after, event-loop delay
//     (prom-client's monitorEventLoopDelay p50/p99 from /metrics), sessions open.
//
//   node bench/edge.mjs [--cli dist/src/cli/main.js] [--clients 300] [--tarpitted 10000]
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, sleep, startProcess, stopProcess, waitPort } from './procs.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const { values: opt } = parseArgs({
  options: {
    cli: { type: 'string', default: process.env.BENCH_CLI || path.join(root, 'dist/src/cli/main.js') },
    clients: { type: 'string', default: process.env.BENCH_EDGE_CLIENTS || '300' },
    tarpitted: { type: 'string', default: process.env.BENCH_TARPITTED || '10000' },
  },
});
const cli = path.resolve(opt.cli);
const dist = path.resolve(path.dirname(cli), '../..');
const { startDnsServer } = await import(pathToFileURL(path.join(dist, 'test/helpers/dns-server.js')).href);
const { startRbldnsd } = await import(pathToFileURL(path.join(dist, 'test/helpers/rbldnsd.js')).href);
const log = (m) => process.stderr.write(`[edge] ${m}\n`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-edge-bench-'));

/** Source addresses 127.1.0.1 … : a different client each time, so nothing is cached. */
const source = (k, b = 1) => `127.${b}.${Math.floor(k / 250)}.${(k % 250) + 1}`;

async function gateway(name, extra) {
  const dir = path.join(work, name);
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  const port = await freePort();
  const metricsPort = await freePort();
  const config = path.join(dir, 'portcullis.yaml');
  fs.writeFileSync(config, [
    'hostname: bench.portcullis.test',
    `data_dir: ${JSON.stringify(path.join(dir, 'data'))}`,
    'domains: [bench.test]',
    `listeners: [ { name: mx, kind: mx, address: 127.0.0.1, port: ${port} } ]`,
    'tls: { self_signed: true }',
    `metrics: { enabled: true, address: 127.0.0.1, port: ${metricsPort} }`,
    'log: { level: warn }',
    'shutdown_grace: 2s',
    'greeting: { delay: 0s }',
    ...extra,
    '',
  ].join('\n'));
  const proc = startProcess(process.execPath, [cli, 'serve', '--config', config], { log: path.join(dir, 'gateway.log'), cwd: dir });
  await waitPort(port, { proc });
  return { port, metricsPort, proc, dir };
}

function banner(port, localAddress) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d) => {
      buf += d;
      if (!buf.includes('\n')) return;
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      s.end('QUIT\r\n');
      s.destroy();
      if (!buf.startsWith('220')) reject(new Error(`no banner: ${buf.trim()}`));
      else resolve(ms);
    });
    s.on('error', reject);
  });
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const round = (n, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

async function latency(port, n, block) {
  const xs = [];
  for (let k = 0; k < n; k++) xs.push(await banner(port, source(k, block)));
  return { p50_ms: round(pct(xs, 50)), p99_ms: round(pct(xs, 99)), n };
}

/** One scrape (prom-client resets the event-loop histogram at each scrape: read it all at once). */
async function scrape(port) {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

function pick(text, name) {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

function rssMb(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return round(Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024, 1);
}

const result = { clients: Number(opt.clients) };
let rbl;
let dns;
try {
  // ---- 1. connect-time check latency ----
  const n = Number(opt.clients);
  rbl = await startRbldnsd({ bl: ':127.0.0.2:listed\n127.0.0.2\n10.0.0.0/8\n', wl: ':127.0.10.1:\n192.0.2.0/24\n' },
    ['bl.test:ip4set:bl', 'wl.test:ip4set:wl'], '2.0.0.127.bl.test');
  const zone = {};
  for (let k = 0; k < n; k++) {
    const ip = source(k, 2);
    const name = `host-${k}.clients.test`;
    zone[`${ip.split('.').reverse().join('.')}.in-addr.arpa`] = [{ type: 'PTR', data: name }];
    zone[name] = [{ type: 'A', data: ip }];
  }
  dns = await startDnsServer(zone, { ttl: 3600 });
  const none = await gateway('no-dns-checks', ['dns: { servers: ["127.0.0.1:1"] }', 'rdns: { enabled: false }', 'limits: { connections_per_ip: 0, connections_per_net: 0 }']);
  result.connect_no_checks = await latency(none.port, n, 1);
  await stopProcess(none.proc);
  const checked = await gateway('dns-checks', [
    `dns: { servers: ["${rbl.server}", "${dns.server}"] }`,
    'dnsbl: { lists: [ { zone: bl.test, weight: 2 }, { zone: wl.test, weight: -2 } ] }',
    'limits: { connections_per_ip: 0, connections_per_net: 0 }',
  ]);
  result.connect_dns_uncached = await latency(checked.port, n, 2);
  result.connect_dns_cached = await latency(checked.port, n, 2);
  await stopProcess(checked.proc);
  log(`connect latency: ${JSON.stringify([result.connect_no_checks, result.connect_dns_uncached, result.connect_dns_cached])}`);

  // ---- 2. 10,000 tarpitted connections ----
  const want = Number(opt.tarpitted);
  const tarpit = await gateway('tarpit', [
    'dns: { servers: ["127.0.0.1:1"] }', 'rdns: { enabled: false }',
    // Every client is tarpitted: its score (0) reaches tarpit.score 0; the banner waits 10 minutes.
    'tarpit: { score: 0, delay: 10m }',
    'smtp: { max_connections: 20000 }',
    'limits: { connections_per_ip: 0, connections_per_net: 0 }',
  ]);
  await sleep(500);
  const rssBefore = rssMb(tarpit.proc.pid);
  const sockets = [];
  let early = 0;
  const open = async () => pick(await scrape(tarpit.metricsPort), 'portcullis_smtp_sessions');
  // In batches, each accepted before the next: a burst beyond the listen backlog would leave
  // clients that believe they are connected (SYN cookies) while the server never saw them.
  for (let k = 0; k < want; k++) {
    const s = net.connect({ port: tarpit.port, host: '127.0.0.1', localAddress: source(k, 3) });
    s.on('data', () => early++);
    s.on('error', () => undefined);
    sockets.push(s);
    if (k % 250 === 249) {
      const until = Date.now() + 10_000;
      while ((await open()) < k + 1 && Date.now() < until) await sleep(50);
    }
  }
  const deadline = Date.now() + 60_000;
  while ((await open()) < want && Date.now() < deadline) await sleep(250);
  await sleep(3000); // let the event-loop histogram see the loop with everything held
  const text = await scrape(tarpit.metricsPort);
  result.tarpit = {
    connections: want,
    sessions_open: pick(text, 'portcullis_smtp_sessions'),
    replies_before_delay: early,
    rss_before_mb: rssBefore,
    rss_held_mb: rssMb(tarpit.proc.pid),
    event_loop_delay_p50_ms: round(pick(text, 'portcullis_nodejs_eventloop_lag_p50_seconds') * 1000),
    event_loop_delay_p99_ms: round(pick(text, 'portcullis_nodejs_eventloop_lag_p99_seconds') * 1000),
    event_loop_delay_max_ms: round(pick(text, 'portcullis_nodejs_eventloop_lag_max_seconds') * 1000),
  };
  result.tarpit.kb_per_connection = round(((result.tarpit.rss_held_mb - rssBefore) * 1024) / want, 1);
  for (const s of sockets) s.destroy();
  await stopProcess(tarpit.proc);
  log(`tarpit: ${JSON.stringify(result.tarpit)}`);
} finally {
  await dns?.close();
  await rbl?.stop();
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
