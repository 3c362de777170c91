// Hostile MIME: the third-party torture and malformed messages in ../shared/conformance/mime
// (read only) and messages generated here (deep nesting, megabyte headers, truncated base64,
// broken boundaries, NUL and path names, part floods, giant lines, nested attached messages,
// random bytes) go through walk + policy + rewrite. Each must end with a verdict, within a time
// bound, without an exception; the peak RSS of the process is reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { analyseAttachments } from '../../src/checks/attachments/analyse.js';
import { defaultAttachmentsConfig } from '../../src/checks/attachments/config.js';
import { rewriteToBuffer } from '../../src/mime/rewrite.js';
import { walkMessage } from '../../src/mime/walk.js';
import { sharedDir } from '../helpers/paths.js';
import { refusal } from '../../src/checks/test-support.js';
import { b64part, chunked, compose, fakePe, multipart } from './fixtures.js';

const corpusDir = path.join(sharedDir, 'conformance', 'mime');
const config = defaultAttachmentsConfig();
const PER_MESSAGE_MS = 20_000;

let peakRss = process.memoryUsage().rss;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 25);
sampler.unref();
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

type Verdict = 'accept' | 'rewrite' | 'reject' | 'tempfail';

/** Walk + policy (+ rewrite when planned) of one message, timed; returns the verdict and its symbols. */
async function judge(source: () => Readable): Promise<{ verdict: Verdict; symbols: string[]; ms: number; out?: Buffer }> {
  const t0 = performance.now();
  const a = await analyseAttachments(source(), config);
  let out: Buffer | undefined;
  if (a.plan) out = await rewriteToBuffer(source(), a.plan);
  const ms = performance.now() - t0;
  const d = refusal({ symbols: a.symbols });
  const verdict: Verdict = d ? d.kind : a.plan ? 'rewrite' : 'accept';
  assert.ok(ms < PER_MESSAGE_MS, `took ${ms} ms`);
  return { verdict, symbols: a.symbols.map((s) => s.name), ms, out };
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

test('every file of the shared MIME corpus gets a verdict, and the parts map exactly onto its bytes', async (t) => {
  assert.ok(fs.existsSync(corpusDir), `missing ${corpusDir} (shared/ must sit beside the repository)`);
  const files = filesUnder(corpusDir);
  assert.ok(files.length > 400, `only ${files.length} files in ${corpusDir}`);
  const counts: Record<string, number> = {};
  let slowest = { file: '', ms: 0 };
  for (const file of files) {
    const bytes = fs.readFileSync(file);
    const r = await judge(() => chunked(bytes, 4096));
    counts[r.verdict] = (counts[r.verdict] ?? 0) + 1;
    if (r.ms > slowest.ms) slowest = { file: path.relative(corpusDir, file), ms: r.ms };
    // The byte ranges the rewriter relies on: each part header is where the walk says.
    const walked = await walkMessage(chunked(bytes, 1000), {
      onPart: (p) => {
        if (p.range) assert.deepEqual(bytes.subarray(p.range.start, p.range.bodyStart), p.rawHeader, `${file} part ${p.path}`);
      },
    });
    assert.equal(walked.mapped, true, `${file}: ${JSON.stringify(walked.issues)}`);
    if (r.out) assert.ok(r.out.length > 0);
  }
  // The messages (not the expected-output files beside them) that are refused: each for ambiguous
  // boundaries, a parser differential an attacker could use.
  const msgs = files.filter((f) => /\.(msg|eml)$/.test(f));
  const refused: string[] = [];
  for (const f of msgs) {
    const r = await judge(() => fs.createReadStream(f));
    if (r.verdict === 'reject') {
      refused.push(path.basename(f));
      assert.deepEqual(r.symbols.filter((s) => s === 'MIME_BAD_BOUNDARY'), ['MIME_BAD_BOUNDARY'], f);
    }
  }
  t.diagnostic(`corpus: ${files.length} files (${msgs.length} messages): ${JSON.stringify(counts)}; refused messages: ${refused.join(', ')}; slowest ${slowest.file} ${slowest.ms.toFixed(0)} ms; peak RSS ${mb(peakRss)}`);
  assert.ok(refused.includes('multi-weirdspace.msg'), 'blanks after a boundary are a known differential');
  assert.ok(!refused.includes('crispin-torture-test.eml'), 'the Crispin torture test is valid MIME');
});

test('generated hostile messages: each ends with the expected verdict, in bounded time and memory', async (t) => {
  const pe = fakePe();
  const cases: { name: string; message: () => Buffer | Readable; verdict: Verdict | Verdict[]; symbol?: string }[] = [
    {
      name: '1,000-deep multipart nesting',
      message: () => {
        let body = 'Content-Type: application/octet-stream; name="deep.exe"\r\n\r\nMZ';
        for (let i = 0; i < 1000; i++) body = `Content-Type: multipart/mixed; boundary="n${i}"\r\n\r\n--n${i}\r\n${body}\r\n--n${i}--`;
        return Buffer.from(`From: a@example.org\r\n${body}\r\n`);
      },
      verdict: 'reject', symbol: 'MIME_TOO_DEEP',
    },
    {
      name: '5 MB header section (folded lines)',
      message: () => multipart([`Content-Type: text/plain\r\nX-Junk: ${'j'.repeat(70)}${'\r\n '.concat('k'.repeat(70)).repeat(70_000)}\r\n\r\nbody`]),
      verdict: 'reject', symbol: 'MIME_HEADER_TOO_BIG',
    },
    {
      name: '5 MB header field on one line',
      message: () => Buffer.from(`From: a@example.org\r\nX-Junk: ${'h'.repeat(5 * 1024 * 1024)}\r\nContent-Type: text/plain\r\n\r\nbody\r\n`),
      verdict: 'reject', symbol: 'MIME_LONG_LINE',
    },
    {
      name: 'truncated base64 executable, message cut off',
      message: () => {
        const b64 = fakePe(20_000).toString('base64').slice(0, 10_002).replace(/.{76}/g, '$&\r\n');
        return Buffer.from('Content-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: application/octet-stream; name="cut.exe"\r\n' +
          `Content-Transfer-Encoding: base64\r\n\r\n${b64}`);
      },
      verdict: 'rewrite', symbol: 'MIME_BAD_BASE64',
    },
    {
      name: 'multipart without a boundary parameter',
      message: () => Buffer.from('Content-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: application/x-msdownload; name=a.exe\r\n\r\nMZ\r\n--x--\r\n'),
      verdict: 'accept', symbol: 'MIME_NO_BOUNDARY',
    },
    {
      name: 'boundary never used',
      message: () => Buffer.from('Content-Type: multipart/mixed; boundary=nothere\r\n\r\n--other\r\nContent-Type: text/plain\r\n\r\nx\r\n--other--\r\n'),
      verdict: 'accept', symbol: 'MIME_NO_BOUNDARY',
    },
    {
      name: 'boundary with transport padding (a parser differential)',
      message: () => Buffer.from('Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\t \r\nContent-Type: application/octet-stream; name=x.scr\r\n\r\nMZ\r\n--q--\r\n'),
      verdict: 'reject', symbol: 'MIME_BAD_BOUNDARY',
    },
    {
      name: 'a 20,000-character boundary around a .scr',
      message: () => multipart(['Content-Type: text/plain\r\n\r\nx', b64part(['Content-Type: application/octet-stream; name="s.scr"'], pe)], 'b'.repeat(20_000)),
      verdict: 'rewrite', symbol: 'ATTACH_EXE_STRIPPED',
    },
    {
      name: 'names with NUL, path separators and control characters',
      message: () => multipart([
        b64part(['Content-Type: application/octet-stream; name="evil.exe\0.pdf"'], pe),
        b64part(['Content-Type: application/octet-stream', 'Content-Disposition: attachment; filename="../../../../etc/cron.d/x"'], Buffer.from('* * * * * root sh')),
        b64part(['Content-Type: application/octet-stream; name="C:\\Windows\\System32\\evil.scr"'], pe),
        b64part(['Content-Type: application/octet-stream; name="\x01\x07bell\x1b[31m.txt"'], Buffer.from('x')),
      ]),
      verdict: 'rewrite', symbol: 'ATTACH_BAD_NAME',
    },
    {
      name: '10,000 parts',
      message: () => multipart(Array.from({ length: 10_000 }, (_, i) => `Content-Type: text/plain\r\n\r\n${i}`)),
      verdict: 'reject', symbol: 'MIME_TOO_MANY_PARTS',
    },
    {
      name: 'a 16 MB line in a body',
      message: () => multipart([`Content-Type: application/octet-stream; name=x.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n${crypto.randomBytes(12 * 1024 * 1024).toString('base64')}`]),
      verdict: 'reject', symbol: 'MIME_LONG_LINE',
    },
    {
      name: '300,000 empty lines',
      message: () => multipart([`Content-Type: text/plain\r\n\r\n${'\r\n'.repeat(300_000)}`]),
      verdict: 'accept',
    },
    {
      name: '120 attached messages inside each other, marked attachment',
      message: () => {
        let m = 'Content-Type: application/octet-stream; name="core.exe"\r\n\r\nMZ\r\n';
        for (let i = 0; i < 120; i++) m = `Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n${m}`;
        return Buffer.from(`From: a@example.org\r\n${m}`);
      },
      verdict: 'reject', symbol: 'MIME_TOO_DEEP',
    },
    {
      name: 'an attached message in base64 holding a .scr',
      message: () => multipart([b64part(['Content-Type: message/rfc822'], Buffer.from(`Content-Type: application/octet-stream; name="x.scr"\r\nContent-Transfer-Encoding: base64\r\n\r\n${pe.toString('base64')}\r\n`))]),
      verdict: 'rewrite', symbol: 'ATTACH_EXE_STRIPPED',
    },
    {
      name: 'a name of 10,000 encoded-words',
      message: () => multipart([`Content-Type: application/octet-stream; name="${'=?utf-8?B?YQ==?= '.repeat(10_000)}x.exe"\r\n\r\nMZ`]),
      verdict: 'rewrite', symbol: 'ATTACH_EXE_DEFANGED',
    },
    {
      name: 'a script name padded past 1,000 characters',
      message: () => multipart([`Content-Type: text/plain; name="${'a'.repeat(5000)}.vbs"\r\n\r\nMsgBox 1`]),
      verdict: 'rewrite', symbol: 'ATTACH_EXE_DEFANGED',
    },
    {
      name: 'a corrupted ZIP named like a document',
      message: () => multipart([b64part(['Content-Type: application/zip; name="invoice.zip"'], Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), crypto.randomBytes(5000)]))]),
      verdict: 'accept',
    },
    {
      name: '4 MB of random bytes',
      message: () => crypto.randomBytes(4 * 1024 * 1024),
      verdict: ['accept', 'reject'],
    },
    {
      name: 'header section that never ends',
      message: () => Buffer.from(`From: a@example.org\r\nContent-Type: application/octet-stream; name=x.exe\r\nX: ${'y'.repeat(100)}`),
      verdict: 'rewrite',
    },
    {
      name: 'an empty message',
      message: () => Buffer.alloc(0),
      verdict: 'accept',
    },
  ];
  const base = process.memoryUsage().rss;
  for (const c of cases) {
    const built = c.message();
    const source = () => (Buffer.isBuffer(built) ? chunked(built, 65536) : built);
    const r = await judge(source);
    const want = Array.isArray(c.verdict) ? c.verdict : [c.verdict];
    assert.ok(want.includes(r.verdict), `${c.name}: ${r.verdict} (${r.symbols.join(', ')})`);
    if (c.symbol) assert.ok(r.symbols.includes(c.symbol), `${c.name}: ${r.symbols.join(', ')}`);
    t.diagnostic(`${c.name}: ${r.verdict} [${r.symbols.join(', ')}] ${r.ms.toFixed(0)} ms, RSS ${mb(process.memoryUsage().rss)}`);
  }
  // A renamed executable: whatever the chunking, the same verdict.
  const renamed = await compose([{ filename: 'holiday.jpg', content: pe, contentType: 'image/jpeg' }]);
  for (const size of [1, 3, 77, 4096]) {
    const r = await judge(() => chunked(renamed, size));
    assert.equal(r.verdict, 'rewrite');
    assert.ok(r.symbols.includes('ATTACH_EXEC_MAGIC'));
  }
  t.diagnostic(`generated: ${cases.length} cases; RSS at start ${mb(base)}, peak RSS ${mb(peakRss)}`);
});
