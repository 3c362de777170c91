#!/usr/bin/env node
// The throughput benchmark: Portcullis (Maildir and relay, TLS off and on, fsync on) against
// Postfix's smtp-sink (the upper bound) and Haraka (npm, one process, forwarding to smtp-sink),
// all in one run, on loopback, with the same load generator (bench/loadgen.mjs).
// Writes docs/benchmarks.md and .bench/results/latest.json. Normally started by bench/run.sh.
//
//   node bench/bench.mjs [--messages 2000] [--sessions 10] [--reps 5] [--warmup 200]
//                        [--targets sink-source,sink,haraka,...] [--budget 540] [--out docs/benchmarks.md]
//   node bench/bench.mjs --render-only     # re-render docs/benchmarks.md from .bench/results/latest.json
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  freePort, now, runLoadgen, runTimed, sleep, startProcess, startSmtpSink, stopProcess, tail,
  ticksToMs, treeTicks, waitPort,
} from './procs.mjs';
import { renderReport } from './report.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

const { values: opt } = parseArgs({
  options: {
    messages: { type: 'string', default: process.env.BENCH_MESSAGES || '2000' },
    sessions: { type: 'string', default: process.env.BENCH_SESSIONS || '10' },
    reps: { type: 'string', default: process.env.BENCH_REPS || '5' },
    warmup: { type: 'string', default: process.env.BENCH_WARMUP || '200' },
    targets: { type: 'string', default: process.env.BENCH_TARGETS || '' },
    budget: { type: 'string', default: process.env.BENCH_BUDGET || '540' },
    'delivery-timeout': { type: 'string', default: '120' },
    corpus: { type: 'string', default: path.join(root, '.bench/corpus') },
    haraka: { type: 'string', default: path.join(root, '.bench/haraka/node_modules/Haraka') },
    out: { type: 'string', default: path.join(root, 'docs/benchmarks.md') },
    cli: { type: 'string', default: process.env.BENCH_CLI || path.join(root, 'dist/src/cli/main.js') },
    'render-only': { type: 'boolean', default: false },
    'build-status': { type: 'string', default: process.env.BENCH_BUILD_STATUS || '' },
  },
});

const MESSAGES = Number(opt.messages);
const SESSIONS = Number(opt.sessions);
const REPS = Number(opt.reps);
const WARMUP = Number(opt.warmup);
const BUDGET_S = Number(opt.budget);
const DELIVERY_TIMEOUT_MS = Number(opt['delivery-timeout']) * 1000;
const setDir = path.join(opt.corpus, 'set');
const runDir = path.join(root, '.bench/run');
const logDir = path.join(runDir, 'logs');
const cli = path.resolve(opt.cli);
const benchStart = Date.now();

if (opt['render-only']) {
  // Re-render the report from the last run's raw results (after a change to report.mjs).
  const result = JSON.parse(fs.readFileSync(path.join(root, '.bench/results/latest.json'), 'utf8'));
  fs.writeFileSync(opt.out, renderReport(result));
  process.exit(0);
}

fs.rmSync(runDir, { recursive: true, force: true });
fs.mkdirSync(logDir, { recursive: true });

const log = (msg) => process.stderr.write(`[bench ${((Date.now() - benchStart) / 1000).toFixed(0).padStart(3)}s] ${msg}\n`);

// ---------- targets ----------

/** Every configuration measured; `id`s can be picked with --targets. */
const TARGETS = [
  { id: 'sink-source', group: 'smtp-sink', label: 'smtp-source → smtp-sink (protocol ceiling)', kind: 'smtp-source', tls: 'none' },
  { id: 'sink', group: 'smtp-sink', label: 'loadgen → smtp-sink', kind: 'sink', tls: 'none' },
  { id: 'haraka', group: 'Haraka', label: 'Haraka → smtp-sink, as shipped', kind: 'haraka', tls: 'none', nodelay: false },
  { id: 'haraka-tls', group: 'Haraka', label: 'Haraka → smtp-sink, as shipped', kind: 'haraka', tls: 'starttls', nodelay: false },
  { id: 'haraka-nodelay', group: 'Haraka', label: 'Haraka → smtp-sink, TCP_NODELAY added', kind: 'haraka', tls: 'none', nodelay: true },
  { id: 'haraka-nodelay-tls', group: 'Haraka', label: 'Haraka → smtp-sink, TCP_NODELAY added', kind: 'haraka', tls: 'starttls', nodelay: true },
  { id: 'portcullis-maildir', group: 'Portcullis', label: 'Portcullis → Maildir', kind: 'portcullis', delivery: 'maildir', tls: 'none' },
  { id: 'portcullis-maildir-tls', group: 'Portcullis', label: 'Portcullis → Maildir', kind: 'portcullis', delivery: 'maildir', tls: 'starttls' },
  { id: 'portcullis-relay', group: 'Portcullis', label: 'Portcullis → smtp-sink (relay)', kind: 'portcullis', delivery: 'relay', tls: 'none' },
  { id: 'portcullis-relay-tls', group: 'Portcullis', label: 'Portcullis → smtp-sink (relay)', kind: 'portcullis', delivery: 'relay', tls: 'starttls' },
  // The same relay path with the state store in Redis (store.backend: redis; a local redis-server,
  // no persistence), to compare with the embedded store in the same run: Redis commands per
  // message are counted from INFO commandstats before and after.
  { id: 'portcullis-relay-redis', group: 'Portcullis', label: 'Portcullis → smtp-sink (relay), Redis store', kind: 'portcullis', delivery: 'relay', tls: 'none', store: 'redis' },
  // Local delivery with the accounts in Redis too (the recipient is looked up in each node's
  // in-memory copy of them: no round trip per RCPT).
  { id: 'portcullis-maildir-redis', group: 'Portcullis', label: 'Portcullis → Maildir, Redis store (accounts in Redis)', kind: 'portcullis', delivery: 'maildir', tls: 'none', store: 'redis' },
];
const wanted = opt.targets ? new Set(opt.targets.split(',').map((s) => s.trim())) : null;
const targets = TARGETS.filter((t) => !wanted || wanted.has(t.id));

// ---------- shared helpers ----------

function loadgenArgs(port, count, tlsMode, rcpt) {
  return ['--port', String(port), '--sessions', String(SESSIONS), '--messages', String(count),
    '--messages-dir', setDir, '--rcpt', rcpt, '--tls', tlsMode, '--timeout', '30'];
}

/**
 * Follows a delivery counter (`{ value(), peek(), subscribe(fn) }`) and remembers when it changed,
 * so that "when did it reach N" can be asked after the load generator has finished.
 */
function trackCount(counter) {
  const base = counter.value();
  const history = [{ t: now(), n: 0 }];
  const record = () => {
    const n = counter.peek() - base;
    if (n !== history[history.length - 1].n) history.push({ t: now(), n });
  };
  const unsubscribe = counter.subscribe(record);
  const poll = setInterval(() => { counter.value(); record(); }, 250); // safety net for missed events
  return {
    stop: () => { clearInterval(poll); unsubscribe(); },
    current: () => history[history.length - 1].n,
    /** The time the count first reached n; gives up after timeoutMs, or stallMs without progress. */
    async reach(n, timeoutMs, stallMs) {
      const since = now();
      const deadline = since + timeoutMs;
      for (;;) {
        const hit = history.find((h) => h.n >= n);
        if (hit) return hit.t;
        const last = Math.max(since, history[history.length - 1].t);
        if (now() > deadline || now() - last > stallMs) return null;
        await sleep(10);
      }
    },
  };
}

/** A counter over smtp-sink's running "mesg=" counter (updated as its output arrives). */
function sinkCounter(sink) {
  return { value: () => sink.count(), peek: () => sink.count(), subscribe: (fn) => sink.subscribe(fn) };
}

/**
 * A counter of the files in every new/ folder of a Maildir (the inbox and its subfolders, e.g.
 * Junk): inotify (fs.watch) sees each file renamed into new/ as it happens; value() rescans.
 */
function maildirCounter(dir) {
  const seen = new Set();
  const watchers = new Map();
  const listeners = new Set();
  const newDirs = () => {
    let subs = [];
    try { subs = fs.readdirSync(dir).filter((s) => s.startsWith('.')); } catch { /* not there yet */ }
    return [path.join(dir, 'new'), ...subs.map((s) => path.join(dir, s, 'new'))];
  };
  const scan = () => {
    for (const d of newDirs()) {
      let names;
      try { names = fs.readdirSync(d); } catch { continue; }
      for (const n of names) seen.add(`${d}/${n}`);
      if (listeners.size && !watchers.has(d)) {
        watchers.set(d, fs.watch(d, (_ev, name) => {
          if (!name) return;
          const before = seen.size;
          seen.add(`${d}/${name}`);
          if (seen.size !== before) for (const fn of listeners) fn();
        }));
      }
    }
    return seen.size;
  };
  return {
    value: scan,
    peek: () => seen.size,
    subscribe(fn) {
      listeners.add(fn);
      scan();
      return () => {
        listeners.delete(fn);
        if (!listeners.size) { for (const w of watchers.values()) w.close(); watchers.clear(); }
      };
    },
  };
}

const STALL_MS = 30000;

/** Wait until delivered() >= target; gives up after STALL_MS without progress, or when the server exits. */
async function waitDelivered(delivered, target, server) {
  let last = delivered();
  let lastChange = Date.now();
  const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
  for (;;) {
    const n = delivered();
    if (n >= target) return true;
    if (n !== last) { last = n; lastChange = Date.now(); }
    if (Date.now() - lastChange > STALL_MS || Date.now() > deadline) return false;
    if (server.exitCode !== null || server.signal) throw new Error(`the server exited (code ${server.exitCode}, signal ${server.signal})` + (server.log ? `; last log lines: ${tail(server.log, 5)}` : ''));
    await sleep(20);
  }
}

/**
 * The common measurement: warm up, then run the load generator against `port` and wait until
 * `delivered()` has grown by the number of accepted messages.
 */
async function measure({ t, port, server, sink, counter, rcpt }) {
  const delivered = () => counter.value();
  const lg = path.join(logDir, `${t.id}-loadgen.log`);
  if (WARMUP > 0) {
    const before = delivered();
    const w = await runLoadgen(loadgenArgs(port, WARMUP, t.tls, rcpt), { log: lg });
    if (w.accepted === 0) {
      throw new Error(`warm-up: no message accepted (${JSON.stringify(w.replies)}; ${w.error_samples.join(' | ')})`);
    }
    const done = await waitDelivered(delivered, before + w.accepted, server);
    if (!done) {
      throw new Error(`warm-up: ${delivered() - before} of ${w.accepted} accepted messages delivered, then no progress for ${STALL_MS / 1000}s`);
    }
  }
  const serverT0 = treeTicks(server.pid);
  const sinkT0 = sink ? treeTicks(sink.pid) : null;
  const tracker = trackCount(counter);
  const r = await runLoadgen(loadgenArgs(port, MESSAGES, t.tls, rcpt), { log: lg });
  const reachedAt = r.accepted > 0 ? await tracker.reach(r.accepted, DELIVERY_TIMEOUT_MS, STALL_MS) : null;
  const deliveredCount = tracker.current();
  tracker.stop();
  const serverT1 = treeTicks(server.pid);
  const sinkT1 = sink ? treeTicks(sink.pid) : null;
  const e2eSeconds = reachedAt ? Math.max(r.seconds, (reachedAt - r.started_at) / 1000) : null;
  const per = (t0, t1) => (t0 !== null && t1 !== null && r.accepted > 0 ? ticksToMs(t1 - t0) / r.accepted : null);
  return {
    accept: {
      msgs_per_sec: r.msgs_per_sec, seconds: r.seconds, accepted: r.accepted, failed: r.failed,
      errors: r.errors, replies: r.replies, stage_replies: r.stage_replies, error_samples: r.error_samples,
      latency_ms: r.latency_ms, pipelined: r.pipelined_sessions > 0, tls_sessions: r.tls_sessions,
    },
    e2e: {
      complete: reachedAt !== null,
      seconds: e2eSeconds,
      msgs_per_sec: e2eSeconds ? r.accepted / e2eSeconds : null,
      delivered: deliveredCount,
    },
    cpu: {
      server_ms_per_msg: per(serverT0, serverT1),
      sink_ms_per_msg: sink ? per(sinkT0, sinkT1) : null,
      client_ms_per_msg: r.accepted ? r.cpu_ms / r.accepted : null,
    },
  };
}

// ---------- the targets ----------

async function runSinkSource(t) {
  const port = await freePort();
  const sink = await startSmtpSink(port, { log: path.join(logDir, `${t.id}-sink.log`) });
  try {
    const t0 = treeTicks(sink.pid);
    const cmd = `/usr/sbin/smtp-source -d -s ${SESSIONS} -m ${MESSAGES} -l 5120 -f loadgen@loadgen.test -t bench@sink.test 127.0.0.1:${port}`;
    const r = await runTimed(cmd, { log: path.join(logDir, `${t.id}-source.log`) });
    await sleep(50);
    const t1 = treeTicks(sink.pid);
    if (r.code !== 0) throw new Error(`smtp-source exited ${r.code}: ${r.stderr.slice(-300)}`);
    const got = sink.count();
    return {
      accept: { msgs_per_sec: got / r.seconds, seconds: r.seconds, accepted: got, failed: MESSAGES - got, errors: 0, replies: { 250: got }, latency_ms: null, pipelined: false },
      e2e: { complete: got >= MESSAGES, seconds: r.seconds, msgs_per_sec: got / r.seconds, delivered: got },
      cpu: { server_ms_per_msg: ticksToMs(t1 - t0) / got, sink_ms_per_msg: null, client_ms_per_msg: (r.cpuSeconds * 1000) / got },
      note: 'smtp-source: 5,120-byte generated body, no PIPELINING (smtp-source has none), -d (many messages per session)',
    };
  } finally {
    await stopProcess(sink);
  }
}

async function runSink(t) {
  const port = await freePort();
  const sink = await startSmtpSink(port, { log: path.join(logDir, `${t.id}-sink.log`) });
  try {
    return await measure({ t, port, server: sink, sink: null, counter: sinkCounter(sink), rcpt: 'bench@sink.test' });
  } finally {
    await stopProcess(sink);
  }
}

let tlsPair = null;
function tlsKeyPair() {
  if (tlsPair) return tlsPair;
  const dir = path.join(runDir, 'tls');
  fs.mkdirSync(dir, { recursive: true });
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '30', '-subj', '/CN=bench.haraka.test'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  // Haraka generates 2048-bit DH parameters with openssl at start-up when it finds none, which
  // takes seconds of CPU while the run is measured: make them once here (DSA-style, fast).
  const dhparam = path.join(dir, 'dhparams.pem');
  const d = spawnSync('openssl', ['dhparam', '-dsaparam', '-out', dhparam, '2048'], { encoding: 'utf8' });
  if (d.status !== 0) throw new Error(`openssl dhparam failed: ${d.stderr}`);
  tlsPair = { key, cert, dhparam };
  return tlsPair;
}

async function runHaraka(t, rep) {
  const bin = path.join(opt.haraka, 'bin/haraka');
  if (!fs.existsSync(bin)) throw new Error(`Haraka is not installed (${path.relative(root, bin)} missing)`);
  const dir = path.join(runDir, `haraka-${t.id}-${rep}`);
  const install = spawnSync(process.execPath, [bin, '-i', dir], { encoding: 'utf8' });
  if (install.status !== 0) throw new Error(`haraka -i failed: ${install.stderr}`);
  const port = await freePort();
  const sinkPort = await freePort();
  const cfgDir = path.join(dir, 'config');
  for (const f of fs.readdirSync(path.join(here, 'haraka/config'))) {
    const text = fs.readFileSync(path.join(here, 'haraka/config', f), 'utf8')
      .replaceAll('{{LISTEN}}', `127.0.0.1:${port}`).replaceAll('{{SINK_PORT}}', String(sinkPort));
    fs.writeFileSync(path.join(cfgDir, f), text);
  }
  const { key, cert, dhparam } = tlsKeyPair();
  fs.copyFileSync(dhparam, path.join(cfgDir, 'dhparams.pem'));
  fs.copyFileSync(key, path.join(cfgDir, 'tls_key.pem'));
  fs.copyFileSync(cert, path.join(cfgDir, 'tls_cert.pem'));
  if (t.tls !== 'none') {
    const p = path.join(cfgDir, 'plugins');
    fs.writeFileSync(p, 'tls\n' + fs.readFileSync(p, 'utf8'));
  }
  const sink = await startSmtpSink(sinkPort, { log: path.join(logDir, `${t.id}-sink.log`) });
  const args = t.nodelay ? ['-r', path.join(here, 'haraka/nodelay.cjs'), bin, '-c', dir] : [bin, '-c', dir];
  const server = startProcess(process.execPath, args, { log: path.join(logDir, `${t.id}-${rep}-haraka.log`), cwd: dir });
  try {
    await waitPort(port, { proc: server, timeoutMs: 30000 });
    return await measure({ t, port, server, sink, counter: sinkCounter(sink), rcpt: 'bench@sink.test' });
  } finally {
    await stopProcess(server);
    await stopProcess(sink);
  }
}

function portcullisConfig({ dataDir, port, sinkPort, delivery, redisUrl }) {
  const lines = [
    '# Written by bench/bench.mjs for one benchmark run.',
    'hostname: bench.portcullis.test',
    `data_dir: ${JSON.stringify(dataDir)}`,
    'domains: [bench.test]',
    'listeners:',
    `  - { name: mx, kind: mx, address: 127.0.0.1, port: ${port} }`,
    'tls:',
    '  self_signed: true',
  ];
  if (delivery === 'relay') {
    lines.push('relay:', '  domains: [ { domain: sink.test } ]',
      `  routes: [ { domain: sink.test, host: 127.0.0.1, port: ${sinkPort}, protocol: smtp, tls: none } ]`);
  }
  // DNS points at a closed loopback port: every lookup fails at once (the connect-time DNS
  // checks are measured apart, in bench/edge.mjs, against real DNS servers on loopback).
  // BENCH_PORTCULLIS_EXTRA: more configuration lines, to measure what one defence costs.
  if (process.env.BENCH_PORTCULLIS_EXTRA) lines.push(...process.env.BENCH_PORTCULLIS_EXTRA.split('\n'));
  if (redisUrl) lines.push(`store: { backend: redis, url: ${JSON.stringify(redisUrl)}, prefix: "bench:" }`);
  lines.push('dns: { servers: ["127.0.0.1:1"] }', 'greeting: { delay: 0s }', 'queue: { fsync: true }', 'metrics: { enabled: false }', 'log: { level: warn }', 'shutdown_grace: 5s', '');
  return lines.join('\n');
}

async function runPortcullis(t, rep) {
  if (/failed/.test(opt['build-status'])) throw new Error(`not run: ${opt['build-status']}`);
  if (!fs.existsSync(cli)) throw new Error(`not run: ${path.relative(root, cli)} not found (gateway not built yet)`);
  const dir = path.join(runDir, `portcullis-${t.id}-${rep}`);
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const sinkPort = await freePort();
  const config = path.join(dir, 'portcullis.yaml');
  let redis = null;
  if (t.store === 'redis') redis = await startRedis(dir, t, rep);
  fs.writeFileSync(config, portcullisConfig({ dataDir, port, sinkPort, delivery: t.delivery, redisUrl: redis?.url }));
  const serverLog = path.join(logDir, `${t.id}-${rep}-portcullis.log`);
  let rcpt = 'bench@sink.test';
  let sink = null;
  let counter;
  if (t.delivery === 'maildir') {
    rcpt = 'bench@bench.test';
    const add = spawnSync(process.execPath, [cli, 'user', 'add', rcpt, '--password-stdin', '--config', config],
      { input: 'Throughput-Pass-9731\n', encoding: 'utf8', cwd: dir, timeout: 60000 });
    fs.appendFileSync(serverLog, `$ portcullis user add ${rcpt}\n${add.stdout}${add.stderr}\n`);
    if (add.status !== 0) {
      throw new Error(`portcullis user add failed (exit ${add.status}${add.error ? `, ${add.error.message}` : ''}): ${(add.stderr || add.stdout).trim().split('\n').slice(-5).join(' / ')}`);
    }
    counter = maildirCounter(path.join(dataDir, 'mail/bench.test/bench'));
  } else {
    sink = await startSmtpSink(sinkPort, { log: path.join(logDir, `${t.id}-sink.log`) });
    counter = sinkCounter(sink);
  }
  const server = startProcess(process.execPath, [...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []), cli, 'serve', '--config', config], { log: serverLog, cwd: dir });
  try {
    await waitPort(port, { proc: server, timeoutMs: 60000 });
    const before = redis ? redisCalls(redis.port) : 0;
    redisCalls.first = redisCalls.last;
    const r = await measure({ t, port, server, sink, counter, rcpt });
    if (redis) {
      // Commands, not round trips: calls made together share one write (auto-pipelining), so
      // round trips per message are at most this. Warm-up messages are counted too.
      const calls = redisCalls(redis.port) - before;
      const msgs = r.e2e?.delivered || r.accept?.accepted || MESSAGES;
      const before_by = redisCalls.first ?? {};
      r.redis = { commands: calls, commands_per_msg: calls / (msgs + WARMUP),
        by: Object.fromEntries(Object.entries(redisCalls.last).map(([k, v]) => [k, v - (before_by[k] ?? 0)]).filter(([, v]) => v > 0)) };
      r.note = [r.note, `Redis: ${calls} commands for ${msgs + WARMUP} messages (warm-up included) = ${(calls / (msgs + WARMUP)).toFixed(2)} per message (since start: ${JSON.stringify(redisCalls.last)})`].filter(Boolean).join('; ');
    }
    const errs = tail(serverLog, 200).split('\n').filter((l) => /"level":\s*(50|60)|"level":"(error|fatal)"/.test(l));
    if (errs.length) r.note = [r.note, `${errs.length} error lines in the gateway log, e.g. ${errs[0].slice(0, 200)}`].filter(Boolean).join('; ');
    return r;
  } finally {
    await stopProcess(server, 8000);
    if (sink) await stopProcess(sink);
    if (redis) await stopProcess(redis.proc);
  }
}

/** A redis-server for one run, on a free loopback port in the run's directory, without persistence. */
async function startRedis(dir, t, rep) {
  const bin = '/usr/bin/redis-server';
  if (!fs.existsSync(bin)) throw new Error('redis-server is not installed (apt-get install redis-server)');
  const port = await freePort();
  const rdir = path.join(dir, 'redis');
  fs.mkdirSync(rdir, { recursive: true });
  const proc = startProcess(bin, ['--port', String(port), '--bind', '127.0.0.1', '--dir', rdir, '--save', '', '--appendonly', 'no'],
    { log: path.join(logDir, `${t.id}-${rep}-redis.log`), cwd: rdir });
  await waitPort(port, { proc, timeoutMs: 10000 });
  return { port, proc, url: `redis://127.0.0.1:${port}/0` };
}

/** Commands the server has run so far (INFO commandstats), less the INFO calls themselves. */
function redisCalls(port) {
  const r = spawnSync('redis-cli', ['-p', String(port), 'INFO', 'commandstats'], { encoding: 'utf8' });
  if (r.status !== 0) return NaN;
  let n = 0;
  const by = {};
  for (const m of r.stdout.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) if (m[1] !== 'info') { n += Number(m[2]); by[m[1]] = Number(m[2]); }
  redisCalls.last = by;
  return n;
}

const RUNNERS = { 'smtp-source': runSinkSource, sink: runSink, haraka: runHaraka, portcullis: runPortcullis };

// ---------- component benchmarks (written by run.sh before this script) ----------

function readComponents() {
  const dir = path.join(root, '.bench/results/components');
  const out = {};
  if (!fs.existsSync(dir)) return out;
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    try {
      out[f.replace(/\.json$/, '')] = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    } catch (err) {
      out[f.replace(/\.json$/, '')] = { error: `unreadable result: ${err.message}` };
    }
  }
  return out;
}

// ---------- machine ----------

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const mem = /MemTotal:\s+(\d+)/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  let harakaVersion = '';
  try { harakaVersion = JSON.parse(fs.readFileSync(path.join(opt.haraka, 'package.json'), 'utf8')).version; } catch { /* not installed */ }
  const fsType = sh('df', ['--output=fstype', runDir]).split('\n').pop();
  return {
    date: new Date().toISOString(),
    nproc: sh('nproc', []) || String(os.cpus().length),
    cpu: (/model name\s*:\s*(.*)/.exec(cpuinfo) || [])[1] || os.cpus()[0]?.model || 'unknown',
    memory_gib: mem ? +(Number(mem[1]) / 1024 / 1024).toFixed(1) : null,
    kernel: os.release(),
    node: process.version,
    openssl: process.versions.openssl,
    disk_fs: fsType || 'unknown',
    loadavg_start: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    postfix: sh('dpkg-query', ['-W', '-f=${Version}', 'postfix']),
    haraka: harakaVersion,
    commit: sh('git', ['-C', root, 'rev-parse', '--short', 'HEAD']),
    portcullis_cli: path.relative(root, cli),
  };
}

// ---------- main ----------

const mach = machine();
let corpus = { source: 'missing', count: 0, mean_bytes: 0, note: 'message set not prepared (run bench/corpus.mjs)' };
try { corpus = JSON.parse(fs.readFileSync(path.join(opt.corpus, 'set.json'), 'utf8')); } catch { /* reported below */ }
log(`${targets.length} targets × ${REPS} reps, ${MESSAGES} messages, ${SESSIONS} sessions, warm-up ${WARMUP}; message set: ${corpus.count} (${corpus.source})`);

const runs = [];
for (let rep = 1; rep <= REPS; rep++) {
  for (const t of targets) {
    const elapsed = (Date.now() - benchStart) / 1000;
    if (elapsed > BUDGET_S) {
      runs.push({ id: t.id, rep, ok: false, skipped: true, error: `skipped: time budget of ${BUDGET_S}s spent` });
      continue;
    }
    // A target that failed on the first rep for a reason that will not change is not retried.
    const first = runs.find((r) => r.id === t.id && r.rep === 1);
    if (first && !first.ok && /^not run:|not installed/.test(first.error)) {
      runs.push({ id: t.id, rep, ok: false, skipped: true, error: first.error });
      continue;
    }
    const t0 = Date.now();
    try {
      const r = await RUNNERS[t.kind](t, rep);
      runs.push({ id: t.id, rep, ok: true, ...r });
      log(`${t.id} #${rep}: ${r.accept.msgs_per_sec.toFixed(0)} msg/s accepted` +
        (r.e2e.msgs_per_sec ? `, ${r.e2e.msgs_per_sec.toFixed(0)} end-to-end` : ', end-to-end incomplete') +
        `, server ${r.cpu.server_ms_per_msg?.toFixed(2)} ms CPU/msg (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
    } catch (err) {
      runs.push({ id: t.id, rep, ok: false, error: String(err && err.message ? err.message : err) });
      log(`${t.id} #${rep}: FAILED: ${String(err && err.message ? err.message : err).split('\n')[0]}`);
    }
  }
}
mach.loadavg_end = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
mach.wall_seconds = Math.round((Date.now() - benchStart) / 1000);

const settings = { messages: MESSAGES, sessions: SESSIONS, reps: REPS, warmup: WARMUP, build_status: opt['build-status'] || 'unknown' };
const result = { machine: mach, settings, corpus, targets, runs, components: readComponents() };
fs.mkdirSync(path.join(root, '.bench/results'), { recursive: true });
fs.writeFileSync(path.join(root, '.bench/results/latest.json'), JSON.stringify(result, null, 2) + '\n');
fs.writeFileSync(opt.out, renderReport(result));
log(`wrote ${path.relative(root, opt.out)} and .bench/results/latest.json (${mach.wall_seconds}s)`);
