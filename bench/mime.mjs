#!/usr/bin/env node
// MIME walk benchmark: a generated message of BENCH_MIME_MB (default 100) megabytes — a text
// part, several large base64 attachments (a PDF, a ZIP, a JPEG) and a small .exe and .scr — is
// streamed (never held in memory) through the attachment analysis (walk + policy), then through
// the rewriter (defang the .exe, strip the .scr) into a temporary file. Prints one JSON line:
// throughput of each pass and the growth of the process's RSS over its baseline.
//
// Runs the compiled code: `npx tsc -p . && node bench/mime.mjs`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// --cli PATH/dist/src/cli/main.js (as bench/run.sh passes it): measure that build's code.
const cliArg = process.argv.indexOf('--cli');
const distDir = cliArg >= 0 ? path.resolve(process.argv[cliArg + 1], '../../..') : path.join(root, 'dist');
const dist = (p) => path.join(distDir, 'src', p);
// The attachment policy lives with its check since the message-model issue; the walk and the
// rewriter stay in src/mime.
const { analyseAttachments } = await import(dist('checks/attachments/analyse.js'));
const { defaultAttachmentsConfig } = await import(dist('checks/attachments/config.js'));
const { writeRewritten } = await import(dist('mime/rewrite.js'));

const totalMb = Number(process.env.BENCH_MIME_MB ?? 100);
const target = totalMb * 1e6;
const boundary = '----=_Part_bench_0001';

/** Base64 lines of one block of `raw` (57 bytes per 76-character line). */
function encodeBlock(raw) {
  return Buffer.from(raw.toString('base64').replace(/.{76}/g, '$&\r\n').replace(/\r\n$/, '') + '\r\n');
}

// Deterministic filler (a cheap xorshift), so both passes see the same bytes.
function filler(size, seed) {
  const b = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

const BLOCK = 57 * 1024; // raw bytes per encoded block (a multiple of 57 and of 3)
const heads = {
  pdf: Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1'),
  zip: Buffer.from('PK\x03\x04\x14\x00\x00\x00\x08\x00', 'latin1'),
  jpeg: Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46]),
};
const pe = Buffer.alloc(BLOCK, 0x90);
pe.write('MZ', 0, 'latin1');
pe.writeUInt32LE(0x80, 0x3c);
pe.write('PE\0\0', 0x80, 'latin1');

function firstBlock(kind) {
  const b = filler(BLOCK, kind.length * 7919);
  heads[kind].copy(b, 0);
  return encodeBlock(b);
}
const body = encodeBlock(filler(BLOCK, 12345));

const header = (type, name) => Buffer.from(
  `--${boundary}\r\nContent-Type: ${type}; name="${name}"\r\nContent-Transfer-Encoding: base64\r\n` +
  `Content-Disposition: attachment; filename="${name}"\r\n\r\n`);

/** The message, generated chunk by chunk: large attachments share the space, small ones are one block. */
function* message() {
  yield Buffer.from(`From: Bench <bench@example.org>\r\nTo: sink@example.net\r\nSubject: ${totalMb} MB of attachments\r\n` +
    `Date: Sat, 28 Nov 2026 20:00:00 +0000\r\nMessage-ID: <bench@example.org>\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n` +
    'Here are the files.\r\n');
  yield header('application/octet-stream', 'setup.exe');
  yield encodeBlock(pe);
  yield header('application/octet-stream', 'saver.scr');
  yield encodeBlock(pe);
  const big = [['application/pdf', 'report.pdf', 'pdf'], ['application/zip', 'data.zip', 'zip'], ['image/jpeg', 'scan.jpg', 'jpeg']];
  const share = target / big.length;
  for (const [type, name, kind] of big) {
    yield header(type, name);
    let size = 0;
    const first = firstBlock(kind);
    yield first;
    size += first.length;
    while (size < share) {
      yield body;
      size += body.length;
    }
  }
  yield Buffer.from(`--${boundary}--\r\n`);
}

let size = 0;
for (const c of message()) size += c.length;

let peak = 0;
const sample = () => { peak = Math.max(peak, process.memoryUsage().rss); };
// Baseline: modules loaded, one small warm-up run done.
await analyseAttachments(Readable.from([Buffer.from('Subject: warm-up\r\n\r\nhi\r\n')]), defaultAttachmentsConfig());
global.gc?.();
const base = process.memoryUsage().rss;
peak = base;
const timer = setInterval(sample, 10);

const config = defaultAttachmentsConfig();
let t0 = performance.now();
const a = await analyseAttachments(Readable.from(message()), config, { sourceSize: size });
const walkMs = performance.now() - t0;
sample();

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-bench-mime-'));
let rewriteMs = 0;
let outSize = 0;
try {
  if (a.plan) {
    t0 = performance.now();
    const r = await writeRewritten(Readable.from(message()), a.plan, path.join(dir, 'out.eml'), { fsync: false });
    rewriteMs = performance.now() - t0;
    outSize = r.size;
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
sample();
clearInterval(timer);

const mbps = (ms) => (ms ? Number((size / 1e6 / (ms / 1000)).toFixed(1)) : null);
console.log(JSON.stringify({
  bench: 'mime',
  message_mb: Number((size / 1e6).toFixed(1)),
  parts: a.parts.length,
  verdict: a.demand ? a.demand.kind : a.plan ? 'rewrite' : 'accept',
  changes: a.plan ? a.plan.changes.map((c) => `${c.action} ${c.name}`) : [],
  walk_ms: Math.round(walkMs),
  walk_mb_s: mbps(walkMs),
  rewrite_ms: Math.round(rewriteMs),
  rewrite_mb_s: mbps(rewriteMs),
  output_mb: Number((outSize / 1e6).toFixed(1)),
  rss_base_mb: Number((base / 1e6).toFixed(1)),
  rss_peak_mb: Number((peak / 1e6).toFixed(1)),
  rss_growth_mb: Number(((peak - base) / 1e6).toFixed(1)),
  node: process.version,
  cpus: os.cpus().length,
}));
