// The AV check against the real clamd (test/helpers/clamd.ts: Debian's clamd on a unix socket,
// our own EICAR and hash signatures). Failure cases use a missing socket and a fake clamd that
// never answers. Without clamd these tests are skipped, unless CI=true or PORTCULLIS_TEST_STRICT=1.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { avCheck, avChecks, clamdFor, type AvCallbacks } from './av-check.js';
import { archiveInspector } from '../archives/archive-inspector.js';
import { attachments } from '../attachments/attachments.js';
import { attachmentsConfigSchema } from '../attachments/config.js';
import { archiveConfigSchema, avConfigSchema, type ArchiveConfig, type AvConfig } from './config.js';
import { ClamdClient } from './clamd.js';
import type { CheckResult, ConnectionFacts, EnvelopeFacts, MessageFacts } from '../types.js';
import { CheckRunner } from '../../pipeline/runner.js';
import { refusal, testPolicy } from '../test-support.js';
import { parseHeaderBlock } from '../../protocol/headers.js';
import { formatReply } from '../../protocol/reply.js';
import { createLogger, silentLogger } from '../../log.js';
import { CLAMD, EICAR, EICAR_SIGNATURE, HASH_PAYLOAD, HASH_SIGNATURE, needClamd, needTool, startClamd, type Clamd } from '../../../test/helpers/clamd.js';
import { encryptedZip, infoZip, zipOf, FAKE_EXE } from '../../../test/helpers/archive-fixtures.js';
import { messageModel } from '../../mime/model.js';

const available = fs.existsSync(CLAMD);
let clamd: Clamd | undefined;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-avtest-'));

before(async () => {
  // One daemon for the whole file; its StreamMaxLength (1 MiB) is below our max_stream in one test.
  if (available) clamd = await startClamd({ streamMaxLength: '1M' });
});
after(async () => {
  await clamd?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const conn: ConnectionFacts = {
  sessionId: 'sess-av-1', listener: 'mx', listenerKind: 'mx', remoteAddress: '192.0.2.7', remotePort: 40000,
  localAddress: '198.51.100.1', localPort: 25, trustedNetwork: false, esmtp: true, helo: 'mail.example.org',
};
const envelope: EnvelopeFacts = { sender: 'sender@example.org', recipients: ['victim@example.net'] };

/**
 * The message's model as the gateway builds it (messageModelOptions): the one MIME walk with the
 * archive inspector, which scans decrypted entries with the AV check's clamd client.
 */
function facts(raw: Buffer, walk: { archives?: ArchiveConfig; clamd?: ClamdClient } = {}): MessageFacts {
  const end = raw.indexOf('\r\n\r\n');
  const inspectors = [archiveInspector({ config: walk.archives ?? archives(), clamd: walk.clamd })];
  return {
    ...messageModel({ size: raw.length, stream: () => Readable.from([raw.subarray(0, 1000), raw.subarray(1000)].filter((b) => b.length)) }, { maxScanBytes: 1 << 20, walk: { inspectors } }),
    headers: parseHeaderBlock(raw.subarray(0, end < 0 ? raw.length : end + 2)),
    bareNewlines: 0,
  };
}

const b64 = (b: Buffer) => b.toString('base64').replace(/.{76}/g, '$&\r\n');

/** A message with a text part (and optionally an HTML part) and attachments. */
function mail(opts: { text?: string; html?: string; attachments?: { name: string; type?: string; data: Buffer }[]; subject?: string }): Buffer {
  const parts: string[] = [];
  if (opts.text !== undefined) parts.push(`Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${opts.text}\r\n`);
  if (opts.html !== undefined) parts.push(`Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(Buffer.from(opts.html))}\r\n`);
  for (const a of opts.attachments ?? []) {
    parts.push(`Content-Type: ${a.type ?? 'application/octet-stream'}; name="${a.name}"\r\nContent-Disposition: attachment; filename="${a.name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(a.data)}\r\n`);
  }
  const body = parts.map((p) => `--b0undary\r\n${p}`).join('') + '--b0undary--\r\n';
  return Buffer.from(
    `From: <sender@example.org>\r\nTo: <victim@example.net>\r\nSubject: ${opts.subject ?? 'Invoice'}\r\nDate: Thu, 28 Nov 2024 10:00:00 +0000\r\n` +
    `Message-ID: <1@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b0undary"\r\n\r\n${body}`, 'utf8');
}

function config(over: Partial<AvConfig> = {}): AvConfig {
  return { ...avConfigSchema.parse({ enabled: true, clamd: clamd?.socket ?? '/nonexistent/clamd.sock', timeout: '10s' }), ...over };
}
const archives = (over: Record<string, unknown> = {}): ArchiveConfig => archiveConfigSchema.parse(over);

interface Counted {
  viruses: string[];
  unavailable: string[];
  scans: string[];
}
function counting(): { cb: AvCallbacks; counts: Counted } {
  const counts: Counted = { viruses: [], unavailable: [], scans: [] };
  return {
    counts,
    cb: { onVirus: (s) => void counts.viruses.push(s), onUnavailable: (r) => void counts.unavailable.push(r), onScan: (k) => void counts.scans.push(k) },
  };
}

async function run(raw: Buffer, cfg: AvConfig = config(), arch: ArchiveConfig = archives(), extra: Partial<Parameters<typeof avCheck>[0]> = {}): Promise<CheckResult> {
  const client = extra.clamd ?? clamdFor(cfg);
  const check = avCheck({ config: cfg, archives: arch, logger: silentLogger(), clamd: client, ...extra });
  return check.run({ conn, envelope, message: facts(raw, { archives: arch, clamd: client }) });
}

const names = (r: CheckResult) => (r.symbols ?? []).map((s) => s.name).sort();

function assertVirus(r: CheckResult, signature: string) {
  assert.equal(refusal(r)?.kind, 'reject', JSON.stringify(r));
  assert.equal(formatReply(refusal(r)!.reply), `554 5.7.1 Error: message contains a virus: ${signature}\r\n`);
  const sym = r.symbols?.find((s) => s.name === 'AV_VIRUS');
  assert.ok(sym, 'AV_VIRUS emitted');
  assert.match(sym.reason, new RegExp(signature.replace(/\./g, '\\.')));
}

const skip = (t: TestContext) => !needClamd(t);

test('EICAR attached as a file: rejected at end of DATA with 554 5.7.1 naming the signature', async (t) => {
  if (skip(t)) return;
  const { cb, counts } = counting();
  const r = await run(mail({ text: 'see attachment', attachments: [{ name: 'eicar.com', data: EICAR }] }), config(), archives(), { callbacks: cb });
  assertVirus(r, EICAR_SIGNATURE);
  assert.deepEqual(counts.viruses, [EICAR_SIGNATURE]);
  assert.deepEqual(counts.scans, ['virus']);
});

test('EICAR zipped and double-zipped: clamd opens the zips itself', async (t) => {
  if (skip(t)) return;
  const once = zipOf([{ name: 'eicar.com', data: EICAR }]);
  assertVirus(await run(mail({ text: 'zip', attachments: [{ name: 'eicar.zip', data: once }] })), EICAR_SIGNATURE);
  const twice = zipOf([{ name: 'inner.zip', data: once }]);
  assertVirus(await run(mail({ text: 'zip in zip', attachments: [{ name: 'outer.zip', data: twice }] })), EICAR_SIGNATURE);
});

test('a hash signature (a known sample by MD5) inside a zip', async (t) => {
  if (skip(t)) return;
  assertVirus(await run(mail({ text: 'report', attachments: [{ name: 'report.zip', data: zipOf([{ name: 'report.doc', data: HASH_PAYLOAD }]) }] })), HASH_SIGNATURE);
});

test('a clean message: no symbol, no demand', async (t) => {
  if (skip(t)) return;
  const r = await run(mail({ text: 'Hello, the minutes are attached.', attachments: [{ name: 'minutes.zip', data: zipOf([{ name: 'minutes.txt', data: Buffer.from('nothing to see') }]) }] }));
  assert.deepEqual(r, { symbols: [] });
});

test('EICAR in an encrypted zip with the password in the body: decrypted, scanned, rejected', async (t) => {
  if (skip(t)) return;
  const aes = await encryptedZip([{ name: 'invoice.pdf', data: EICAR }], 'Inv-8841');
  const raw = mail({ text: 'Dear customer,\r\nyour invoice is attached.\r\nPassword: Inv-8841\r\n', attachments: [{ name: 'invoice.zip', data: aes }] });
  // clamd alone cannot see it: the raw message scans clean.
  assert.deepEqual(await clamd!.client().scanBuffer(raw), { kind: 'clean' });
  const { cb, counts } = counting();
  const r = await run(raw, config(), archives(), { callbacks: cb });
  assertVirus(r, EICAR_SIGNATURE);
  assert.match(r.symbols!.find((s) => s.name === 'AV_VIRUS')!.reason, /invoice\.zip\/invoice\.pdf \(decrypted\)/);
  assert.deepEqual(counts.scans, ['clean', 'virus']);
});

test('…the same with ZipCrypto from Info-ZIP and the password only in the HTML part', async (t) => {
  if (skip(t) || !needTool(t, '/usr/bin/zip', 'zip')) return;
  const zc = infoZip({ 'scan.doc': EICAR }, 'pw-77');
  const raw = mail({ html: '<p>Hello</p><p>To open the scan use the password <b>pw-77</b>.</p>', attachments: [{ name: 'scan.zip', type: 'application/zip', data: zc }] });
  assertVirus(await run(raw), EICAR_SIGNATURE);
});

test('…and a password-protected zip inside a zip, the password in the subject', async (t) => {
  if (skip(t)) return;
  const inner = await encryptedZip([{ name: 'doc.exe', data: EICAR }], 'S3cret', { zipCrypto: true });
  const raw = mail({ subject: 'Documents (password: S3cret)', text: 'see attached', attachments: [{ name: 'docs.zip', data: zipOf([{ name: 'locked.zip', data: inner, method: 'store' }]) }] });
  assertVirus(await run(raw), EICAR_SIGNATURE);
});

test('an encrypted zip without its password: not a virus, flagged ARCHIVE_ENCRYPTED (and ARCHIVE_EXE by name)', async (t) => {
  if (skip(t)) return;
  const enc = await encryptedZip([{ name: 'payload.exe', data: EICAR }], 'unknowable-9');
  const r = await run(mail({ text: 'Password: wrong-one', attachments: [{ name: 'x.zip', data: enc }] }));
  assert.equal(refusal(r), undefined);
  assert.deepEqual(names(r), ['ARCHIVE_ENCRYPTED', 'ARCHIVE_EXE']);
  assert.match(r.symbols!.find((s) => s.name === 'ARCHIVE_ENCRYPTED')!.reason, /part: score/);
  // ARCHIVE_ENCRYPTED: reject (was archives.encrypted: reject) → refused, without the word "virus".
  const rej = await run(mail({ text: 'hi', attachments: [{ name: 'x.zip', data: enc }] }), config(), archives());
  assert.equal(refusal(rej, { actions: { ARCHIVE_ENCRYPTED: 'reject' } })?.kind, 'reject');
  assert.equal(formatReply(refusal(rej, { actions: { ARCHIVE_ENCRYPTED: 'reject' } })!.reply), '554 5.7.1 Error: encrypted archive cannot be scanned: x.zip\r\n');
});

test('an executable in an archive: symbol with the part action; ARCHIVE_EXE: reject refuses', async (t) => {
  if (skip(t)) return;
  const raw = mail({ text: 'tool attached', attachments: [{ name: 'tool.zip', data: zipOf([{ name: 'setup.exe', data: FAKE_EXE }]) }] });
  const scored = await run(raw);
  assert.equal(refusal(scored), undefined);
  assert.deepEqual(names(scored), ['ARCHIVE_EXE']);
  assert.match(scored.symbols![0]!.reason, /tool\.zip\/setup\.exe: Windows executable \(MZ\) inside an archive \(part: strip\)/);
  assert.equal(formatReply(refusal(scored, { actions: { ARCHIVE_EXE: 'reject' } })!.reply), '554 5.7.1 Error: archive contains an executable: tool.zip/setup.exe\r\n');
  // With the attachment check reading the same walk, ARCHIVE_EXE counts once, worded as the
  // attachment check words it (the runner keeps one hit per symbol and stage).
  const runner = new CheckRunner([attachments(attachmentsConfigSchema.parse({})), avCheck({ config: config(), archives: archives() })], testPolicy(), silentLogger());
  const both = await runner.run('data', { conn, envelope, message: facts(raw) });
  assert.deepEqual(both.symbols.filter((s) => s.name === 'ARCHIVE_EXE').map((s) => s.reply?.text), ['Error: message refused: archive holds an executable: tool.zip/setup.exe']);
});

test('clamd down (socket missing): AV_UNAVAILABLE, tempfail by default → 451 4.7.1, loud log, callback', async () => {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  const { cb, counts } = counting();
  const cfg = config({ clamd: path.join(tmp, 'no-such.sock') });
  const check = avCheck({ config: cfg, archives: archives(), logger: createLogger('info', sink), callbacks: cb });
  const t0 = Date.now();
  const r = await check.run({ conn, envelope, message: facts(mail({ text: 'hello' })) });
  assert.ok(Date.now() - t0 < 2000);
  assert.equal(refusal(r)?.kind, 'tempfail');
  assert.equal(formatReply(refusal(r)!.reply), '451 4.7.1 Error: virus scanner unavailable, try again later\r\n');
  assert.equal(counts.unavailable.length, 1);
  assert.match(counts.unavailable[0]!, /ENOENT/);
  await new Promise((res) => setImmediate(res));
  const logged = lines.map((l) => JSON.parse(l) as { level: string; event: string; msg: string }).find((l) => l.event === 'av_unavailable');
  assert.equal(logged?.level, 'error');
  assert.match(logged!.msg, /VIRUS SCANNER UNAVAILABLE/);
});

test('clamd down: AV_UNAVAILABLE: tag (was on_failure: tag) → accepted with AV_UNAVAILABLE', async () => {
  const r = await run(mail({ text: 'hello' }), config({ clamd: path.join(tmp, 'no-such.sock') }));
  assert.equal(refusal(r, { actions: { AV_UNAVAILABLE: 'tag' } }), undefined);
  assert.deepEqual(names(r), ['AV_UNAVAILABLE']);
  assert.match(r.symbols![0]!.reason, /ENOENT/);
});

test('clamd that accepts and never answers: the timeout gives the configured failure, in bounded time', async () => {
  const sock = path.join(tmp, 'silent.sock');
  const held: net.Socket[] = [];
  const server = net.createServer((s) => void held.push(s.on('error', () => undefined)));
  await new Promise<void>((res) => server.listen(sock, res));
  try {
    const t0 = Date.now();
    const r = await run(mail({ text: 'hello' }), config({ clamd: sock, timeout: 400 }));
    const ms = Date.now() - t0;
    assert.equal(refusal(r)?.kind, 'tempfail');
    assert.ok(ms >= 350 && ms < 3000, `${ms} ms`);
    const tagged = await run(mail({ text: 'hello' }), config({ clamd: sock, timeout: 300 }));
    assert.deepEqual(names(tagged), ['AV_UNAVAILABLE']);
    assert.equal(refusal(tagged, { actions: { AV_UNAVAILABLE: 'tag' } }), undefined);
    assert.match(tagged.symbols![0]!.reason, /timed out/);
    // The runner's own budget is larger than the check's deadlines, and its failure mode is the same.
    const check = avCheck({ config: config({ clamd: sock, timeout: 400 }), archives: archives() });
    assert.ok(check.timeoutMs! > 400 + 10_000);
    // A check that throws is AV_UNAVAILABLE too, so its action (tempfail by default) applies.
    assert.equal(typeof check.onFailure, 'function');
    assert.equal((check.onFailure as (e: string) => { name: string })('boom').name, 'AV_UNAVAILABLE');
  } finally {
    for (const s of held) s.destroy();
    await new Promise<void>((res) => server.close(() => res()));
  }
});

test('too large to scan: over max_stream (not sent), or over clamd StreamMaxLength (1M here): AV_SKIPPED', async (t) => {
  if (skip(t)) return;
  const big = mail({ text: 'big', attachments: [{ name: 'eicar.com', data: EICAR }, { name: 'data.bin', data: Buffer.alloc(1_500_000, 0x41) }] });
  const ours = await run(big, config({ max_stream: 1_000_000 }));
  assert.equal(refusal(ours), undefined);
  assert.deepEqual(names(ours), ['AV_SKIPPED']);
  assert.match(ours.symbols![0]!.reason, /antivirus\.max_stream/);
  const theirs = await run(big, config({ max_stream: 25 * 1024 * 1024 }));
  assert.deepEqual(names(theirs), ['AV_SKIPPED']);
  assert.match(theirs.symbols![0]!.reason, /StreamMaxLength/);
});

test('through the runner: the reject demand and its reply reach the session', async (t) => {
  if (skip(t)) return;
  const runner = new CheckRunner(avChecks({ config: config(), archives: archives() }), testPolicy({ symbols: { AV_VIRUS: 100 } }), silentLogger());
  const out = await runner.run('data', { conn, envelope, message: facts(mail({ text: 'x', attachments: [{ name: 'e.com', data: EICAR }] })) });
  assert.equal(out.demand?.kind, 'reject');
  assert.match(out.demand!.reply.text, /^Error: message contains a virus: /);
  assert.equal(out.symbols[0]!.score, 100);
  assert.deepEqual(avChecks({ config: config({ enabled: false }) }), []);
});

test('a shared client: scans from several messages at once stay within max_concurrency', async (t) => {
  if (skip(t)) return;
  const client = new ClamdClient({ address: { kind: 'unix', path: clamd!.socket }, maxConcurrency: 2 });
  const check = avCheck({ config: config(), archives: archives(), clamd: client });
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, client.inFlight)), 1);
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) =>
    check.run({ conn, envelope, message: facts(mail({ text: `m${i}`, attachments: i % 2 ? [{ name: 'e.com', data: EICAR }] : [] }), { clamd: client }) })));
  clearInterval(timer);
  assert.deepEqual(results.map((r) => refusal(r)?.kind ?? 'none'), ['none', 'reject', 'none', 'reject', 'none', 'reject', 'none', 'reject']);
  assert.ok(peak <= 2, `peak ${peak}`);
});
