#!/usr/bin/env node
// Outbound delivery with DKIM signing: bench/loadgen.mjs submits to the gateway (submission port,
// STARTTLS, AUTH PLAIN as a user of bench.test), which relays every message to Postfix's
// smtp-sink on loopback and signs it on the way. One gateway process runs three phases, keys
// added between them with `portcullis dkim keygen` (the gateway picks them up without a restart):
// unsigned (no key yet), RSA 2048, RSA + Ed25519. The reference is smtp-sink's own rate, fed by
// the same load generator with the same message, measured in the same run.
//
//   node bench/outbound.mjs [--cli dist/src/cli/main.js] [--messages 1000] [--sessions 10] [--warmup 100]
//
// Prints one JSON object (the last line of stdout); run.sh stores it as
// .bench/results/components/outbound.json and report.mjs renders it. CPU is the gateway
// process's (utime + stime from /proc, its threads and children included) over the measured
// messages. A run takes well under 2 minutes. Loopback only.
//
// Routing: a relay route (`relay.routes: [{ domain: "*" … }]`) to the sink. Once direct MX
// delivery exists, a variant that delivers by MX would point the sink's domain at 127.0.0.1 in
// a loopback DNS server and drop the route (see "ROUTE" below).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, killAll, now, runLoadgen, sleep, startProcess, stopProcess, tail, ticksToMs, treeTicks, waitPort } from './procs.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const { values: opt } = parseArgs({
  options: {
    cli: { type: 'string', default: path.join(root, 'dist/src/cli/main.js') },
    messages: { type: 'string', default: '1000' },
    sessions: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '100' },
  },
});
const MESSAGES = Number(opt.messages);
const SESSIONS = Number(opt.sessions);
const WARMUP = Number(opt.warmup);
const STALL_MS = 20_000;
const cli = path.resolve(opt.cli);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-outbound-bench-'));
fs.chmodSync(dir, 0o711); // smtp-sink runs as nobody and writes its dumps below
const log = (name) => path.join(dir, name);

/** A ~5 KB message from our domain to an outside one. */
function messageFile() {
  const file = path.join(dir, 'message.eml');
  const body = 'A line of an outgoing message, long enough to look like a real letter to a customer.\r\n'.repeat(58);
  fs.writeFileSync(file, [
    'From: Sales <sales@bench.test>', 'To: <customer@sink.test>', 'Subject: Your order has shipped',
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`, 'Message-ID: <outbound-bench@bench.test>',
    'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', body,
  ].join('\r\n'));
  return file;
}

/** smtp-sink on 127.0.0.1:port with its running counter (-c); `dump` keeps each message (-d) so a phase can be checked. */
async function startSink(port, { dump } = {}) {
  let received = 0;
  let buf = '';
  const args = ['-c', '-m', '1000'];
  if (process.getuid?.() === 0) args.push('-u', 'nobody');
  if (dump) {
    fs.mkdirSync(dump, { recursive: true, mode: 0o777 });
    fs.chmodSync(dump, 0o777); // smtp-sink writes as nobody
    args.push('-d', `${dump}/%H%M%S.`);
  }
  args.push(`127.0.0.1:${port}`, '1024');
  const proc = startProcess('/usr/sbin/smtp-sink', args, {
    log: log(`sink-${port}.log`),
    onStdout: (c) => {
      const s = buf + c.toString('latin1');
      const all = [...s.matchAll(/mesg=(\d+)/g)];
      if (all.length) received = Number(all[all.length - 1][1]);
      buf = s.slice(-64);
    },
  });
  await waitPort(port, { proc, timeoutMs: 10_000 });
  proc.count = () => received;
  return proc;
}

async function until(count, target, server) {
  let last = count();
  let lastChange = Date.now();
  for (;;) {
    const n = count();
    if (n >= target) return now();
    if (n !== last) { last = n; lastChange = Date.now(); }
    if (Date.now() - lastChange > STALL_MS) return null;
    if (server && (server.exitCode !== null || server.signal)) throw new Error(`the gateway exited: ${tail(server.log, 5)}`);
    await sleep(5);
  }
}

const USER = 'sales@bench.test';
const PASSWORD = 'Quartz-Harbor-Signal-7319';
const loadgenArgs = (port, n, file, auth) => ['--port', String(port), '--sessions', String(SESSIONS), '--messages', String(n),
  '--message-file', file, '--from', USER, '--rcpt', 'customer@sink.test', '--helo', 'app.bench.test',
  ...(auth ? ['--tls', 'starttls', '--auth', `${USER}:${PASSWORD}`] : [])];

/** The reference: loadgen straight into smtp-sink. */
async function reference(file) {
  const port = await freePort();
  const sink = await startSink(port);
  try {
    const t0 = treeTicks(sink.pid);
    const r = await runLoadgen(loadgenArgs(port, MESSAGES, file), { log: log('loadgen-sink.log') });
    const t1 = treeTicks(sink.pid);
    return { msgs_per_sec: round(r.msgs_per_sec), accepted: r.accepted, sink_cpu_ms_per_msg: round(ticksToMs(t1 - t0) / Math.max(1, r.accepted), 3) };
  } finally {
    await stopProcess(sink);
  }
}

function gatewayConfig({ dataDir, port, sinkPort }) {
  return [
    '# Written by bench/outbound.mjs.',
    'hostname: mx.bench.test',
    `data_dir: ${JSON.stringify(dataDir)}`,
    'domains: [bench.test]',
    'listeners:',
    `  - { name: submission, kind: submission, address: 127.0.0.1, port: ${port} }`,
    'tls: { self_signed: true }',
    'relay:',
    // ROUTE: a relay route to the sink; direct MX delivery would replace it (see the top).
    `  routes: [ { domain: "*", host: 127.0.0.1, port: ${sinkPort}, protocol: smtp, tls: none } ]`,
    'dns: { servers: ["127.0.0.1:1"] }', 'greeting: { delay: 0s }', 'queue: { fsync: true }', 'metrics: { enabled: false }',
    'log: { level: warn }', 'shutdown_grace: 5s',
    // One bench user sends thousands of messages an hour: the compromised-account limits would
    // (rightly) lock it after 100. They are measured by the SMTP path's own figures, not here.
    'outbound: { limits: { enabled: false } }', '',
  ].join('\n');
}

function cliRun(args, config, input) {
  const r = spawnSync(process.execPath, [cli, ...args, '--config', config], { encoding: 'utf8', timeout: 60_000, input });
  fs.appendFileSync(log('cli.log'), `$ portcullis ${args.join(' ')}\n${r.stdout}${r.stderr}\n`);
  if (r.status !== 0) throw new Error(`portcullis ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
}

/** The a= tags of the DKIM-Signature fields in the newest dumped message of `dumpDir`. */
function signedWith(dumpDir) {
  const files = fs.readdirSync(dumpDir).map((f) => path.join(dumpDir, f));
  if (!files.length) return 'no message dumped';
  const text = fs.readFileSync(files[files.length - 1], 'latin1').replace(/\r?\n[ \t]+/g, ' ');
  const algos = [...text.matchAll(/^DKIM-Signature:.*?\ba=([a-z0-9-]+)/gim)].map((m) => m[1]);
  return algos.length ? algos.join(' + ') : 'unsigned';
}

async function phase(name, { port, server, sink, file, dumpDir }) {
  for (const f of fs.readdirSync(dumpDir)) fs.rmSync(path.join(dumpDir, f), { force: true });
  if (WARMUP > 0) {
    const base = sink.count();
    const w = await runLoadgen(loadgenArgs(port, WARMUP, file, true), { log: log('loadgen-gateway.log') });
    if (w.accepted === 0) throw new Error(`${name}: warm-up: nothing accepted (${JSON.stringify(w.replies)})`);
    if ((await until(sink.count, base + w.accepted, server)) === null) throw new Error(`${name}: warm-up messages not all delivered`);
  }
  const base = sink.count();
  const t0 = treeTicks(server.pid);
  const r = await runLoadgen(loadgenArgs(port, MESSAGES, file, true), { log: log('loadgen-gateway.log') });
  const reached = r.accepted > 0 ? await until(sink.count, base + r.accepted, server) : null;
  const t1 = treeTicks(server.pid);
  const seconds = reached ? Math.max(r.seconds, (reached - r.started_at) / 1000) : null;
  return {
    phase: name,
    signatures: signedWith(dumpDir),
    accepted: r.accepted,
    delivered: sink.count() - base,
    complete: reached !== null,
    accept_msgs_per_sec: round(r.msgs_per_sec),
    e2e_msgs_per_sec: seconds ? round(r.accepted / seconds) : null,
    gateway_cpu_ms_per_msg: r.accepted ? round(ticksToMs(t1 - t0) / r.accepted, 3) : null,
  };
}

const round = (x, d = 1) => (x === null || x === undefined ? x : Math.round(x * 10 ** d) / 10 ** d);

async function main() {
  if (!fs.existsSync('/usr/sbin/smtp-sink')) throw new Error('smtp-sink is missing (Debian package postfix)');
  if (!fs.existsSync(cli)) throw new Error(`${cli} not found (build first)`);
  const started = Date.now();
  const file = messageFile();
  const ref = await reference(file);
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir);
  const port = await freePort();
  const sinkPort = await freePort();
  const config = path.join(dir, 'portcullis.yaml');
  fs.writeFileSync(config, gatewayConfig({ dataDir, port, sinkPort }));
  const dumpDir = path.join(dir, 'dump');
  cliRun(['user', 'add', USER, '--password-stdin'], config, `${PASSWORD}\n`);
  const sink = await startSink(sinkPort, { dump: dumpDir });
  const server = startProcess(process.execPath, [cli, 'serve', '--config', config], { log: log('gateway.log'), cwd: dir });
  const phases = [];
  try {
    await waitPort(port, { proc: server, timeoutMs: 60_000 });
    const ctx = { port, server, sink, file, dumpDir };
    phases.push(await phase('unsigned (no key)', ctx));
    cliRun(['dkim', 'keygen', 'bench.test'], config);
    phases.push(await phase('RSA 2048', ctx));
    cliRun(['dkim', 'keygen', 'bench.test', '--type', 'ed25519'], config);
    phases.push(await phase('RSA 2048 + Ed25519', ctx));
  } finally {
    await stopProcess(server, 8000);
    await stopProcess(sink);
  }
  const errors = tail(log('gateway.log'), 500).split('\n').filter((l) => /"level":\s*(50|60)/.test(l));
  const base = phases[0]?.gateway_cpu_ms_per_msg;
  const result = {
    messages: MESSAGES, sessions: SESSIONS, warmup: WARMUP, message_bytes: fs.statSync(file).size,
    reference: { label: 'loadgen → smtp-sink', ...ref },
    phases: phases.map((p) => ({ ...p, signing_cpu_ms_per_msg: base != null && p.gateway_cpu_ms_per_msg != null ? round(p.gateway_cpu_ms_per_msg - base, 3) : null })),
    gateway_error_lines: errors.length,
    error_sample: errors[0]?.slice(0, 200),
    cores: os.cpus().length,
    loadavg: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    seconds: Math.round((Date.now() - started) / 1000),
  };
  fs.rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err) => {
  killAll();
  process.stderr.write(`outbound bench failed: ${err.message} (logs in ${dir})\n`);
  process.exit(1);
});
