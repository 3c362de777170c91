// Scan throughput of the antivirus check with the real clamd (messages/s). Starts clamd as the
// tests do (test/helpers/clamd.ts: unix socket in a temporary folder, our small signature
// database), generates a message set (plain text mails, some with small attachments — zip,
// binary — and a few with EICAR, plain or zipped), runs the compiled AV check over them with a
// fixed number in flight, and prints one JSON line:
//   {messages_per_s, ms_p50, ms_p99, clamd_rss_mb, ...}
// Build first (npx tsc -p .). Not part of bench/run.sh.
//
//   node bench/clamd.mjs [--messages 300] [--inflight 8] [--warmup 20]
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// --cli PATH/dist/src/cli/main.js (as bench/run.sh passes it): measure that build's code.
const cliArg = process.argv.indexOf('--cli');
const distDir = cliArg >= 0 ? path.resolve(process.argv[cliArg + 1], '../../..') : path.join(root, 'dist');
const dist = (p) => path.join(distDir, p);
const { startClamd, EICAR } = await import(dist('test/helpers/clamd.js'));
const { zipOf } = await import(dist('test/helpers/archive-fixtures.js'));
const { avCheck } = await import(dist('src/checks/av/av-check.js'));
const { avConfigSchema, archiveConfigSchema } = await import(dist('src/checks/av/config.js'));
const { ClamdClient } = await import(dist('src/checks/av/clamd.js'));
const { parseHeaderBlock } = await import(dist('src/protocol/headers.js'));
const { messageModel } = await import(dist('src/mime/model.js'));
const { archiveInspector } = await import(dist('src/checks/archives/archive-inspector.js'));

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const N = arg('messages', 300);
const INFLIGHT = arg('inflight', 8);
const WARMUP = arg('warmup', 20);

// ---- the message set (deterministic)
let seed = 42;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const words = 'the invoice meeting report quarterly figures please find attached regards team project update schedule budget review'.split(' ');
const text = (n) => Array.from({ length: n }, () => words[Math.floor(rand() * words.length)]).join(' ').replace(/(.{1,72})( |$)/g, '$1\r\n');
const b64 = (b) => b.toString('base64').replace(/.{76}/g, '$&\r\n');
const binary = (n) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));

function message(i, kind) {
  const head = `From: <s${i}@example.org>\r\nTo: <r@example.net>\r\nSubject: message ${i}\r\nDate: Thu, 28 Nov 2024 10:00:00 +0000\r\nMessage-ID: <${i}@example.org>\r\nMIME-Version: 1.0\r\n`;
  if (kind === 'plain') return Buffer.from(`${head}Content-Type: text/plain; charset=utf-8\r\n\r\n${text(150 + Math.floor(rand() * 700))}`);
  let att;
  if (kind === 'zip') att = { name: 'report.zip', data: zipOf([{ name: 'report.txt', data: Buffer.from(text(2000)) }, { name: 'data.bin', data: binary(5000) }]) };
  else if (kind === 'binary') att = { name: 'scan.pdf', data: Buffer.concat([Buffer.from('%PDF-1.4\n'), binary(20_000 + Math.floor(rand() * 80_000))]) };
  else if (kind === 'eicar') att = { name: 'eicar.com', data: EICAR };
  else att = { name: 'eicar.zip', data: zipOf([{ name: 'eicar.com', data: EICAR }]) };
  return Buffer.from(`${head}Content-Type: multipart/mixed; boundary=bb\r\n\r\n--bb\r\nContent-Type: text/plain\r\n\r\n${text(120)}\r\n--bb\r\nContent-Type: application/octet-stream; name=${att.name}\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(att.data)}\r\n--bb--\r\n`);
}

const kinds = (i) => {
  const r = i % 20;
  if (r === 7) return 'eicar';
  if (r === 17) return 'eicar-zip';
  if (r % 5 === 1) return 'zip';
  if (r % 5 === 3) return 'binary';
  return 'plain';
};
const messages = Array.from({ length: N + WARMUP }, (_, i) => message(i, kinds(i)));

// The message model as the gateway builds it: one MIME walk, archives opened there (decrypted entries to clamd).
let modelOptions;
const facts = (raw) => {
  const end = raw.indexOf('\r\n\r\n');
  return { ...messageModel({ size: raw.length, stream: () => Readable.from([raw]) }, modelOptions), headers: parseHeaderBlock(raw.subarray(0, end + 2)), bareNewlines: 0 };
};
const conn = { sessionId: 'bench', listener: 'mx', listenerKind: 'mx', remoteAddress: '192.0.2.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 25, trustedNetwork: false, esmtp: true };
const envelope = { sender: 's@example.org', recipients: ['r@example.net'] };

function rssMb(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

const clamd = await startClamd();
try {
  const config = avConfigSchema.parse({ enabled: true, clamd: clamd.socket, max_concurrency: INFLIGHT });
  const client = new ClamdClient({ address: { kind: 'unix', path: clamd.socket }, maxConcurrency: INFLIGHT, timeoutMs: 30_000 });
  const archives = archiveConfigSchema.parse({});
  const check = avCheck({ config, archives, clamd: client });
  modelOptions = { maxScanBytes: 1 << 20, walk: { inspectors: [archiveInspector({ config: archives, clamd: client })] } };
  const run = async (list) => {
    const times = [];
    const outcome = { reject: 0, tempfail: 0, none: 0 };
    let next = 0;
    const worker = async () => {
      while (next < list.length) {
        const raw = list[next++];
        const t0 = performance.now();
        const r = await check.run({ conn, envelope, message: facts(raw) });
        times.push(performance.now() - t0);
        outcome[r.demand?.kind ?? 'none']++;
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: INFLIGHT }, worker));
    return { seconds: (performance.now() - t0) / 1000, times, outcome };
  };
  await run(messages.slice(0, WARMUP));
  const { seconds, times, outcome } = await run(messages.slice(WARMUP));
  times.sort((a, b) => a - b);
  const pct = (p) => Math.round(times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))] * 10) / 10;
  const bytes = messages.slice(WARMUP).reduce((s, m) => s + m.length, 0);
  console.log(JSON.stringify({
    messages_per_s: Math.round((N / seconds) * 10) / 10,
    ms_p50: pct(50),
    ms_p99: pct(99),
    clamd_rss_mb: rssMb(clamd.pid, 'VmRSS'),
    clamd_peak_rss_mb: rssMb(clamd.pid, 'VmHWM'),
    messages: N,
    inflight: INFLIGHT,
    mean_kb: Math.round(bytes / N / 102.4) / 10,
    rejected: outcome.reject,
    tempfailed: outcome.tempfail,
    accepted: outcome.none,
    clamd_version: await client.version().catch(() => null),
  }));
} finally {
  await clamd.stop();
}
