#!/usr/bin/env node
// What each check costs per message: every check the gateway builds with its default
// configuration (bench's relay configuration: DNS at a loopback server that answers NXDOMAIN),
// run stage by stage over the dev message set, ONE CHECK AT A TIME, so that the CPU time of the
// whole process (process.cpuUsage: every thread, the rule workers included) between its start
// and its end is that check's alone. The shared message parse (the spam checks' ParsedMessage)
// is its own row, paid before the checks that use it. Prints one JSON line (bench/run.sh stores
// it as .bench/results/components/checks.json; bench/report.mjs renders the table).
//
//   node bench/check-costs.mjs [--cli dist/src/cli/main.js] [--messages-dir .bench/corpus/set]
//                              [--reps 2] [--warmup 50] [--bayes-trained DIR] [--only rules,bayes]
//                              [--out FILE]
//
// --bayes-trained DIR: train Bayes first on DIR/spam and DIR/ham (portcullis train), so the
// Bayes row measures a classifier that judges (untrained, it only reads its totals).
//
// The gateway runs checks of one level concurrently and the rule matching overlaps other work on
// the second core; this table adds nothing up in parallel: it is the CPU each check spends, the
// sum is the CPU per message of the checks, not the wall time of a message.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Readable } from 'node:stream';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    cli: { type: 'string', default: path.join(root, 'dist/src/cli/main.js') },
    'messages-dir': { type: 'string', default: path.join(root, '.bench/corpus/set') },
    reps: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '50' },
    'bayes-trained': { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string' },
  },
});
const distDir = path.resolve(opt.cli, '../../..');
const imp = (rel) => import(pathToFileURL(path.join(distDir, rel)).href);
const started = Date.now();

const files = fs.readdirSync(opt['messages-dir']).filter((n) => n.endsWith('.eml')).sort().map((n) => path.join(opt['messages-dir'], n));
if (!files.length) throw new Error(`${opt['messages-dir']}: no *.eml (node bench/corpus.mjs makes them)`);
const crlf = (b) => {
  const s = b.toString('latin1');
  return Buffer.from(s.includes('\r\n') ? s : s.replace(/\n/g, '\r\n'), 'latin1');
};
const messages = files.map((f) => crlf(fs.readFileSync(f)));

// The DNS server runs in a child process, so that its CPU is not counted as the checks'.
const dns = await new Promise((resolve, reject) => {
  const child = spawn(process.execPath, ['--input-type=module', '-e',
    `import { startNxDns } from ${JSON.stringify(pathToFileURL(path.join(root, 'bench/spam-peers.mjs')).href)};
     const d = await startNxDns(); console.log(d.port); process.stdin.resume(); process.stdin.on('end', () => process.exit(0));`], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.once('error', reject);
  child.stdout.once('data', (b) => resolve({ port: Number(String(b).trim()), close: async () => { child.stdin.end(); child.kill(); } }));
});
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-check-costs-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
const cfgFile = path.join(work, 'portcullis.yaml');
fs.writeFileSync(cfgFile, [
  'hostname: bench.portcullis.test', `data_dir: ${JSON.stringify(path.join(work, 'data'))}`, 'domains: [bench.test]',
  'relay:', '  domains: [ { domain: sink.test } ]', '  routes: [ { domain: sink.test, host: 127.0.0.1, port: 25, protocol: smtp, tls: none } ]',
  `dns: { servers: ["127.0.0.1:${dns.port}"] }`, 'metrics: { enabled: false }', 'log: { level: warn }', '',
].join('\n'));

if (opt['bayes-trained']) {
  const d = opt['bayes-trained'];
  const r = spawnSync(process.execPath, [opt.cli, 'train', '--spam', path.join(d, 'spam'), '--ham', path.join(d, 'ham'), '--config', cfgFile], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`portcullis train failed: ${(r.stderr || r.stdout).slice(-300)}`);
}

const { loadConfig } = await imp('src/config/load.js');
const { builtinChecks, dnsBudgetMs, messageModelOptions } = await imp('src/gateway/checks.js');
const { createSpamEngine } = await imp('src/checks/spam-engine.js');
const { createResolver, resolverOptions } = await imp('src/dns/resolver.js');
const { parseHeaderBlock } = await imp('src/protocol/headers.js');
const { silentLogger } = await imp('src/log.js');
// The one message model (src/mime/model.ts), built per message as the SMTP data stage builds it.
// An older build (before the model) has a parse memoised per message object instead.
let messageModel;
let parsedMessage;
try {
  ({ messageModel } = await imp('src/mime/model.js'));
} catch {
  ({ parsedMessage } = await imp('src/spam/message.js').catch(() => ({})));
}

const cfg = loadConfig(cfgFile);
const resolver = createResolver(resolverOptions(cfg.dns));
const logger = silentLogger();
const spam = createSpamEngine(cfg, { resolver, logger, dnsTimeoutMs: dnsBudgetMs(cfg, 1) });
const modelOptions = messageModelOptions?.(cfg);
const checks = builtinChecks({ config: cfg, owns: () => false, resolver, ownAddresses: ['127.0.0.1'], logger, spamChecks: spam.checks });
const STAGES = ['connect', 'helo', 'mail', 'rcpt', 'data'];
const only = opt.only ? new Set(opt.only.split(',')) : undefined;
const ordered = STAGES.flatMap((s) => checks.filter((c) => c.stage === s && (!only || only.has(c.name))));

const rows = new Map();
const row = (name, stage) => {
  let r = rows.get(name);
  if (!r) rows.set(name, (r = { check: name, stage, cpu_us: [], wall_us: [], hits: 0, failures: 0 }));
  return r;
};
const cpuNow = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

async function timed(r, fn) {
  const c0 = cpuNow();
  const t0 = performance.now();
  let out;
  try {
    out = await fn();
  } catch {
    r.failures++;
  }
  r.wall_us.push((performance.now() - t0) * 1000);
  r.cpu_us.push(cpuNow() - c0);
  return out;
}

const senderOf = (headers) => {
  const from = headers.find((h) => h.name.toLowerCase() === 'from')?.value ?? '';
  return /[\w.+-]+@[\w.-]+\.\w+/.exec(from)?.[0] ?? '';
};

async function one(raw, i, record) {
  const end = raw.indexOf('\r\n\r\n');
  const headers = parseHeaderBlock(raw.subarray(0, end >= 0 ? end + 4 : raw.length));
  const sender = senderOf(headers);
  // Loopback-range client addresses, a different one per message: DNS lists, rDNS and SPF ask
  // about it and get NXDOMAIN from the loopback server.
  const conn = {
    sessionId: `b${i}`, listener: 'mx', listenerKind: 'mx', remoteAddress: `127.1.${(i >> 8) & 255}.${i & 255}`, remotePort: 40000,
    localAddress: '127.0.0.1', localPort: 25, trustedNetwork: false, esmtp: true, helo: `host${i}.example.org`,
  };
  const stream = () => Readable.from([raw]);
  const message = messageModel
    ? { ...messageModel({ size: raw.length, stream }, modelOptions), headers, bareNewlines: 0 }
    : { size: raw.length, headers, bareNewlines: 0, stream };
  const parse = messageModel ? () => message.content() : parsedMessage ? () => parsedMessage(message) : undefined;
  const input = {
    connect: { conn }, helo: { conn }, mail: { conn, sender }, rcpt: { conn, sender, recipient: 'bench@sink.test' },
    data: { conn, envelope: { sender, recipients: ['bench@sink.test'] }, message },
  };
  const sink = { hits: 0 };
  const r0 = record ? row('message parse (shared by rules, Bayes, URIs)', 'data') : sink;
  if (parse) {
    if (record) await timed(r0, parse);
    else await parse();
  }
  for (const c of ordered) {
    const r = record ? row(c.name, c.stage) : { cpu_us: [], wall_us: [], hits: 0, failures: 0 };
    const res = await timed(r, () => c.run(input[c.stage]));
    if (res?.symbols?.length) r.hits++;
  }
}

for (let i = 0; i < Math.min(Number(opt.warmup), messages.length); i++) await one(messages[i], i, false);
const REPS = Math.max(1, Number(opt.reps));
for (let rep = 0; rep < REPS; rep++) for (let i = 0; i < messages.length; i++) await one(messages[i], i, true);
await spam.close();
await dns.close();

const mean = (a) => a.reduce((x, y) => x + y, 0) / (a.length || 1);
const pct = (a, q) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : 0;
};
const out = [...rows.values()].map((r) => ({
  check: r.check, stage: r.stage,
  cpu_us_per_msg: Math.round(mean(r.cpu_us)), wall_us_p50: Math.round(pct(r.wall_us, 0.5)), wall_us_p99: Math.round(pct(r.wall_us, 0.99)),
  messages_with_symbols: Math.round(r.hits / REPS), failures: r.failures,
}));
const result = {
  bench: 'checks', messages: messages.length, reps: REPS, set: path.relative(root, opt['messages-dir']) || opt['messages-dir'],
  bayes: opt['bayes-trained'] ? `trained on ${opt['bayes-trained']}` : 'untrained (a fresh, empty database)',
  rows: out, total_cpu_us_per_msg: out.reduce((n, r) => n + r.cpu_us_per_msg, 0),
  cpus: os.cpus().length, loadavg: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '), node: process.version,
  wall_seconds: Math.round((Date.now() - started) / 1000),
};
const line = JSON.stringify(result);
if (opt.out) fs.writeFileSync(opt.out, line + '\n');
console.log(line);
process.exit(0);
