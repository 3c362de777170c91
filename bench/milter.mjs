#!/usr/bin/env node
// Postfix alone against Postfix with Portcullis as its milter, in the same run: one private
// Postfix instance (test/audit/daemons.ts startPostfix, from dist/) with two smtpd services on
// loopback — one without milters, one with `smtpd_milters = inet:127.0.0.1:PORT` to a Portcullis
// `kind: milter` listener — relaying to Postfix's smtp-sink. Fed by Postfix's smtp-source
// (the same sessions, messages and size for both).
//
//   node bench/milter.mjs [--cli dist/src/cli/main.js] [--messages 1000] [--sessions 10] [--warmup 100] [--size 5000]
//
// msg/s is end to end: from the first connection until smtp-sink has them all. CPU per message
// is Postfix's (the master process and all its daemons, from /proc) and the gateway's, over the
// measured messages. Prints one JSON object (the last line of stdout); run.sh stores it as
// .bench/results/components/milter.json and report.mjs renders it. Needs root (Postfix's
// master) and the postfix package; loopback only; ≈1–2 minutes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, killAll, now, runTimed, sleep, startProcess, startSmtpSink, stopProcess, tail, ticksToMs, treeTicks, waitPort } from './procs.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const { values: opt } = parseArgs({
  options: {
    cli: { type: 'string', default: path.join(root, 'dist/src/cli/main.js') },
    messages: { type: 'string', default: '1000' },
    sessions: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '100' },
    size: { type: 'string', default: '5000' },
  },
});
const MESSAGES = Number(opt.messages);
const SESSIONS = Number(opt.sessions);
const WARMUP = Number(opt.warmup);
const SIZE = Number(opt.size);
const STALL_MS = 30_000;
const POSTFIX = '127.0.0.41';
const cli = path.resolve(opt.cli);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-milter-bench-'));
fs.chmodSync(dir, 0o755);
const log = (name) => path.join(dir, name);
const round = (x, d = 1) => (x === null || x === undefined ? x : Math.round(x * 10 ** d) / 10 ** d);

async function until(count, target) {
  let last = count();
  let lastChange = Date.now();
  for (;;) {
    const n = count();
    if (n >= target) return now();
    if (n !== last) { last = n; lastChange = Date.now(); }
    if (Date.now() - lastChange > STALL_MS) return null;
    await sleep(5);
  }
}

/** Postfix's master pid (its pid file in the queue directory). */
function masterPid(pfDir) {
  return Number(fs.readFileSync(path.join(pfDir, 'queue', 'pid', 'master.pid'), 'utf8').trim());
}

const source = (port, n) => `/usr/sbin/smtp-source -s ${SESSIONS} -m ${n} -l ${SIZE} -f bench@client.test -t rcpt@sink.test -M client.test ${POSTFIX}:${port}`;

async function measure(name, { port, sink, pfPid, gwPid }) {
  if (WARMUP > 0) {
    const base = sink.count();
    const w = await runTimed(source(port, WARMUP), { log: log('smtp-source.log') });
    if (w.code !== 0) throw new Error(`${name}: warm-up smtp-source failed: ${w.stderr.trim().slice(0, 200)}`);
    if ((await until(sink.count, base + WARMUP)) === null) throw new Error(`${name}: warm-up messages not all delivered (${sink.count() - base} of ${WARMUP})`);
  }
  const base = sink.count();
  const pf0 = treeTicks(pfPid);
  const gw0 = gwPid ? treeTicks(gwPid) : 0;
  const t0 = now();
  const r = await runTimed(source(port, MESSAGES), { log: log('smtp-source.log') });
  const reached = r.code === 0 ? await until(sink.count, base + MESSAGES) : null;
  const pf1 = treeTicks(pfPid);
  const gw1 = gwPid ? treeTicks(gwPid) : 0;
  const delivered = sink.count() - base;
  return {
    target: name,
    delivered,
    complete: reached !== null,
    msgs_per_sec: reached ? round(MESSAGES / ((reached - t0) / 1000)) : null,
    postfix_cpu_ms_per_msg: round(ticksToMs(pf1 - pf0) / Math.max(1, delivered), 3),
    gateway_cpu_ms_per_msg: gwPid ? round(ticksToMs(gw1 - gw0) / Math.max(1, delivered), 3) : null,
    smtp_source_exit: r.code,
  };
}

function gatewayConfig({ dataDir, mxPort, milterPort }) {
  return [
    '# Written by bench/milter.mjs.',
    'hostname: mx.bench.test',
    `data_dir: ${JSON.stringify(dataDir)}`,
    'domains: [bench.test]',
    'listeners:',
    `  - { name: mx, kind: mx, address: 127.0.0.1, port: ${mxPort} }`,
    `  - { name: milter, kind: milter, address: 127.0.0.1, port: ${milterPort} }`,
    'tls: { self_signed: true }',
    // No DNS on loopback: every lookup fails at once (the DNS checks' cost is not what is measured here).
    'dns: { servers: ["127.0.0.1:1"] }', 'greeting: { delay: 0s }', 'metrics: { enabled: false }', 'console: { enabled: false }',
    'log: { level: warn }', 'shutdown_grace: 5s', '',
  ].join('\n');
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('needs root (Postfix\'s master)');
  for (const f of ['/usr/sbin/smtp-source', '/usr/sbin/smtp-sink', '/usr/lib/postfix/sbin/master']) if (!fs.existsSync(f)) throw new Error(`${f} is missing (Debian package postfix)`);
  if (!fs.existsSync(cli)) throw new Error(`${cli} not found (build first)`);
  const daemons = path.join(root, 'dist/test/audit/daemons.js');
  if (!fs.existsSync(daemons)) throw new Error(`${daemons} not found (build first)`);
  const { startPostfix } = await import(pathToFileURL(daemons).href);
  const started = Date.now();
  const [sinkPort, plainPort, milterSmtpPort, mxPort, milterPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const sink = await startSmtpSink(sinkPort, { log: log('sink.log') });
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir);
  const config = path.join(dir, 'portcullis.yaml');
  fs.writeFileSync(config, gatewayConfig({ dataDir, mxPort, milterPort }));
  const gateway = startProcess(process.execPath, [cli, 'serve', '--config', config], { log: log('gateway.log'), cwd: dir });
  let postfix;
  const results = [];
  try {
    await waitPort(milterPort, { proc: gateway, timeoutMs: 60_000 });
    const pfDir = path.join(dir, 'postfix');
    postfix = await startPostfix(pfDir, {
      address: POSTFIX, hostname: 'mx.postfix.bench', ports: [plainPort, milterSmtpPort],
      main: [
        'mydestination =', 'relay_domains = sink.test', `transport_maps = inline:{ sink.test=smtp:[127.0.0.1]:${sinkPort} }`,
        'smtp_dns_support_level = disabled', 'mynetworks = 192.0.2.0/24', 'smtpd_relay_restrictions = reject_unauth_destination',
        'milter_protocol = 6', 'milter_default_action = tempfail', 'default_process_limit = 200',
      ],
      services: [
        `{address}:${plainPort} inet n - n - - smtpd -o smtpd_milters=`,
        `{address}:${milterSmtpPort} inet n - n - - smtpd -o smtpd_milters=inet:127.0.0.1:${milterPort}`,
        'smtp unix - - n - - smtp',
      ],
    });
    const pfPid = masterPid(pfDir);
    results.push(await measure('Postfix alone', { port: plainPort, sink, pfPid }));
    results.push(await measure('Postfix + Portcullis milter', { port: milterSmtpPort, sink, pfPid, gwPid: gateway.pid }));
  } finally {
    await postfix?.stop();
    await stopProcess(gateway, 8000);
    await stopProcess(sink);
  }
  const errors = tail(log('gateway.log'), 500).split('\n').filter((l) => /"level":\s*"?(error|fatal|50|60)/.test(l));
  const [alone, withMilter] = results;
  const result = {
    messages: MESSAGES, sessions: SESSIONS, warmup: WARMUP, message_bytes: SIZE,
    targets: results,
    milter_share: alone?.msgs_per_sec && withMilter?.msgs_per_sec ? round(withMilter.msgs_per_sec / alone.msgs_per_sec, 2) : null,
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
  process.stderr.write(`milter bench failed: ${err.message} (logs in ${dir})\n`);
  process.exit(1);
});
