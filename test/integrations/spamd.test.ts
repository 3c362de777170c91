// `kind: spamd` through Debian's spamc (docs/integrations.md): GTUBE is spam (spamc -c prints
// score/threshold and exits 1), ham exits 0, -R shows our symbols, PROCESS returns the message
// with our X-Spam-* fields, -z compresses, -L teaches Bayes (its token count grows), a user who
// opted out gets ham with -u; then what spamc never sends, by raw socket: wrong lengths, bad
// header lines, bodies above the size limit, silence, a client that vanishes, a network
// outside `allow` — each answered as spamd answers it, and the listener still serves after.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { USERS, userMap } from '../helpers/fixtures.js';
import { smtpListeners, startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { freePorts, waitFor } from '../helpers/wait.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { missingClient, rawDialogue, run, show } from './run.js';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const SENDER = 'news@sender.example';
/** smtp.max_message_size in this gateway: small, so "too large" is cheap to send. */
const MAX_SIZE = 64 * 1024;

function gtube(): string {
  return makeMessage({ from: SENDER, to: USERS.alice.address, subject: `Test ${marker()}`, body: `This is the GTUBE:\r\n${GTUBE}\r\n` });
}
function ham(): string {
  return makeMessage({ from: SENDER, to: USERS.alice.address, subject: `Minutes ${marker()}`, body: 'Hello Alice,\r\nthe minutes of Tuesday are below. See you next week.\r\n' });
}
/** A message as a file on disk holds it: LF line ends. */
const lf = (s: string) => s.replace(/\r\n/g, '\n');

describe('spamd listener with Debian spamc', { timeout: 240_000, skip: missingClient('spamc', 'spamc') }, () => {
  let gw: Gateway;
  let dns: DnsServer;
  let spamd: number;
  let noTell: number;
  let closed: number;
  let metricsPort: number;
  const spamc = (args: string[], input: string | Buffer, port = spamd) => run('spamc', ['-d', '127.0.0.1', '-p', String(port), ...args], input);

  before(async () => {
    dns = await startDnsServer({});
    [spamd, noTell, closed, metricsPort] = await freePorts(4);
    gw = await startGateway({
      users: userMap('alice', 'bob'),
      config: ({ ports }) => ({
        dns: { servers: [dns.server] },
        smtp: { max_message_size: MAX_SIZE },
        bayes: { min_learned: 1 },
        metrics: { enabled: true, address: '127.0.0.1', port: metricsPort },
        listeners: [
          ...smtpListeners(ports),
          { name: 'spamd', kind: 'spamd', port: spamd, allow_tell: true, timeout: '2s' },
          { name: 'spamd-notell', kind: 'spamd', port: noTell },
          // Nobody on loopback may use this one.
          { name: 'spamd-closed', kind: 'spamd', port: closed, allow: ['192.0.2.0/24'] },
        ],
      }),
    });
  });
  after(async () => {
    await gw?.cleanup();
    await dns?.close();
  });

  it('spamc -c: GTUBE prints score/threshold and exits 1; ham exits 0', async () => {
    const spam = await spamc(['-c'], lf(gtube()));
    assert.equal(spam.code, 1, show(spam));
    assert.match(spam.stdout.trim(), /^\d{4,}\.\d\/5\.0$/, show(spam));
    const clean = await spamc(['-c'], lf(ham()));
    assert.equal(clean.code, 0, show(clean));
    const [score, threshold] = clean.stdout.trim().split('/').map(Number);
    assert.ok(score! < threshold! && threshold === 5, show(clean));
  });

  it('requests are counted in portcullis_scan_requests_total by listener, kind and outcome', async () => {
    await spamc(['-c'], lf(gtube()));
    await spamc(['-L', 'ham'], lf(ham()));
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const count = (re: string) => Number(new RegExp(`^portcullis_scan_requests_total\\{${re}\\} ([0-9]+)$`, 'm').exec(text)?.[1] ?? 0);
    assert.ok(count('listener="spamd",kind="scan",outcome="reject"') >= 1, text.split('\n').filter((l) => l.includes('scan_requests')).join('\n'));
    assert.ok(count('listener="spamd",kind="learn",outcome="[a-z]+"') >= 1, text.split('\n').filter((l) => l.includes('scan_requests')).join('\n'));
  });

  it('spamc -R shows our symbols with scores; -y lists them', async () => {
    const r = await spamc(['-R'], gtube());
    assert.match(r.stdout, /^\d+\.\d\/5\.0\n/, show(r));
    assert.match(r.stdout, /Content analysis details: +\(\d+\.\d points, 5\.0 required\)/, show(r));
    assert.match(r.stdout, /^ *\d+\.\d GTUBE +GTUBE test string/m, show(r));
    const y = await spamc(['-y'], gtube());
    assert.ok(y.stdout.trim().split(',').includes('GTUBE'), show(y));
  });

  it('spamc (PROCESS) returns the message with our verdict fields, body and line ends intact', async () => {
    const original = lf(gtube());
    const r0 = await spamc([], original);
    assert.equal(r0.code, 0, show(r0)); // without -c/-E spamc exits 0 and prints the message
    assert.match(r0.stdout, /^X-Spam-Status: Yes, score=\d+ required=5\n\ttests=.*GTUBE=/m, show(r0));
    assert.match(r0.stdout, /^X-Spam-Flag: YES$/m);
    assert.ok(r0.stdout.endsWith(original.slice(original.indexOf('\n\n') + 2)), 'the body comes back as sent');
    assert.ok(!r0.stdout.includes('\r'), 'LF in, LF out');
    const crlf = gtube();
    const rc = await spamc([], crlf);
    assert.ok(rc.stdout.endsWith(crlf.slice(crlf.indexOf('\r\n\r\n') + 4)), 'CRLF in: the body comes back as sent');
    assert.match(rc.stdout, /^X-Spam-Flag: YES\r\n/m, 'CRLF in, CRLF out');
    // A forged verdict field in the input is replaced, not kept beside ours.
    const forged = lf(ham()).replace('Subject:', 'X-Spam-Flag: YES\nX-Spam-Status: Yes, score=99\nSubject:');
    const r = await spamc([], forged);
    assert.doesNotMatch(r.stdout, /X-Spam-Flag|score=99/, show(r));
    assert.match(r.stdout, /^X-Spam-Status: No, /m);
    // HEADERS: the header section only.
    const h = await spamc(['--headers'], original);
    assert.match(h.stdout, /^X-Spam-Flag: YES$/m, show(h));
  });

  it('spamc -L spam / ham / forget teach Bayes through TELL; the token count grows', async () => {
    const db = new Database(path.join(gw.dataDir, 'bayes.sqlite'), { readonly: true, fileMustExist: true });
    try {
      const counts = () => db.prepare('SELECT (SELECT count(*) FROM tokens) AS tokens, spam, ham FROM totals WHERE id = 1').get() as { tokens: number; spam: number; ham: number };
      const before = counts();
      const msg = lf(makeMessage({ from: SENDER, to: USERS.alice.address, subject: 'Cheap watches', body: 'Buy replica watches zorgblatt quintessa today, limited offer!\n' }));
      const learned = await spamc(['-L', 'spam'], msg);
      assert.equal(learned.code, 0, show(learned));
      assert.match(learned.stdout, /Message successfully un\/learned/, show(learned));
      const mid = counts();
      assert.equal(mid.spam, before.spam + 1);
      assert.ok(mid.tokens > before.tokens, `tokens ${before.tokens} → ${mid.tokens}`);
      const again = await spamc(['-L', 'spam'], msg);
      assert.match(again.stdout, /Message was already un\/learned/, show(again));
      await spamc(['-L', 'ham'], lf(ham()));
      assert.equal(counts().ham, before.ham + 1);
      const forgot = await spamc(['-L', 'forget'], msg);
      assert.match(forgot.stdout, /Message successfully un\/learned/, show(forgot));
      assert.equal(counts().spam, before.spam);
    } finally {
      db.close();
    }
    // TELL on a listener without allow_tell: spamd's "not enabled" answer.
    const refused = await rawDialogue(noTell, ['TELL SPAMC/1.5\r\nMessage-class: spam\r\nSet: local\r\nContent-length: 5\r\n\r\nhello']);
    assert.match(refused.text, /^SPAMD\/1\.0 69 Service Unavailable: TELL commands are not enabled/, refused.text);
  });

  it('a user who opted out gets ham through spamc -u; a user with a lower threshold gets spam sooner', async () => {
    await gw.cliOk(['user', 'set', USERS.bob.address, 'spam-filter=off']);
    const bob = await spamc(['-c', '-u', 'bob'], lf(gtube()));
    assert.equal(bob.code, 0, show(bob));
    const alice = await spamc(['-c', '-u', 'alice'], lf(gtube()));
    assert.equal(alice.code, 1, show(alice));
    // The threshold spamc prints is the user's own tag threshold.
    await gw.cliOk(['user', 'set', USERS.alice.address, 'tag=-50']);
    const low = await spamc(['-c', '-u', USERS.alice.address], lf(ham()));
    assert.equal(low.code, 1, show(low));
    assert.match(low.stdout.trim(), /\/-50\.0$/, show(low));
    await gw.cliOk(['user', 'set', USERS.alice.address, 'tag=default']);
  });

  it('PING answers PONG (1.5 with its empty header section); Compress: zlib is inflated', async () => {
    const r = await rawDialogue(spamd, ['PING SPAMC/1.5\r\n\r\n']);
    assert.equal(r.text, 'SPAMD/1.5 0 PONG\r\n');
    // Debian's spamc is built without zlib (spamc -z: "not built with zlib support"): the
    // compressed request is sent as libspamc with zlib sends it.
    const packed = zlib.deflateSync(Buffer.from(gtube()));
    const z = await rawDialogue(spamd, [`SYMBOLS SPAMC/1.5\r\nCompress: zlib\r\nContent-length: ${packed.length}\r\n\r\n`, packed]);
    assert.match(z.text, /^SPAMD\/1\.1 0 EX_OK\r\nContent-length: \d+\r\nSpam: True ; \d+\.\d \/ 5\.0\r\n\r\n.*GTUBE/, z.text);
  });

  it('bad input gets spamd\'s error lines: wrong length, bad header lines, unknown method, zlib garbage', async () => {
    const short = await rawDialogue(spamd, ['CHECK SPAMC/1.5\r\nContent-length: 500\r\n\r\n', 'only a few bytes\r\n']);
    assert.match(short.text, /^SPAMD\/1\.0 76 Bad header line: \(Content-Length mismatch: Expected 500 bytes, got 18 bytes\)\r\n$/, short.text);
    assert.ok(short.closed);
    const noColon = await rawDialogue(spamd, ['CHECK SPAMC/1.5\r\nthis is no header\r\n\r\n']);
    assert.match(noColon.text, /^SPAMD\/1\.0 76 Bad header line: \(header not in 'Name: value' format\)/, noColon.text);
    const nonNumeric = await rawDialogue(spamd, ['CHECK SPAMC/1.5\r\nContent-length: 12abc\r\n\r\n']);
    assert.match(nonNumeric.text, /^SPAMD\/1\.0 76 Bad header line: \(Content-Length contains non-numeric bytes\)/);
    const method = await rawDialogue(spamd, ['FROBNICATE SPAMC/1.5\r\n\r\n']);
    assert.match(method.text, /^SPAMD\/1\.0 76 Bad header line: FROBNICATE SPAMC\/1\.5/);
    const notSpamc = await rawDialogue(spamd, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n']);
    assert.match(notSpamc.text, /^SPAMD\/1\.0 76 Bad header line: GET \/ HTTP\/1\.1/);
    const eof = await rawDialogue(spamd, ['CHECK SPAMC/1.5\r\nUser: alice\r\n']);
    assert.match(eof.text, /^SPAMD\/1\.0 76 Bad header line: \(EOF during headers\)/);
    const compress = await rawDialogue(spamd, ['CHECK SPAMC/1.5\r\nCompress: lz4\r\n\r\n']);
    assert.match(compress.text, /^SPAMD\/1\.0 76 Bad header line: \(compression type not supported: lz4\)/);
    const garbage = await rawDialogue(spamd, ['CHECK SPAMC/1.5\r\nCompress: zlib\r\nContent-length: 10\r\n\r\n0123456789']);
    assert.match(garbage.text, /^SPAMD\/1\.0 69 Service Unavailable: zlib: /, garbage.text);
    const many = await rawDialogue(spamd, [`CHECK SPAMC/1.5\r\n${'X-Filler: x\r\n'.repeat(300)}\r\n`]);
    assert.match(many.text, /^SPAMD\/1\.0 76 Bad header line: \(too many headers\)/);
    const longLine = await rawDialogue(spamd, [`CHECK SPAMC/1.5\r\nUser: ${'a'.repeat(20_000)}\r\n\r\n`]);
    assert.match(longLine.text, /^SPAMD\/1\.0 76 Bad header line: \(line too long\)/);
  });

  it('bodies above smtp.max_message_size are refused before they are read, or as soon as they pass it', async () => {
    const declared = await rawDialogue(spamd, [`CHECK SPAMC/1.5\r\nContent-length: ${MAX_SIZE + 1}\r\n\r\n`], { halfClose: false });
    assert.match(declared.text, new RegExp(`^SPAMD/1\\.0 76 Bad header line: \\(Content-length ${MAX_SIZE + 1} is above the message size limit ${MAX_SIZE}\\)`), declared.text);
    // No Content-length: read until the client's end, but never past the limit.
    const big = Buffer.alloc(4 * MAX_SIZE, 'spam spam spam\r\n');
    const streamed = await rawDialogue(spamd, ['CHECK SPAMC/1.5\r\n\r\n', big], { halfClose: false });
    assert.match(streamed.text, /^SPAMD\/1\.0 76 Bad header line: \(message above the size limit/, streamed.text);
    // A zlib bomb: small on the wire, far above the limit once inflated.
    const bomb = zlib.deflateSync(Buffer.alloc(50 * MAX_SIZE, 'a'));
    const inflated = await rawDialogue(spamd, [`CHECK SPAMC/1.5\r\nCompress: zlib\r\nContent-length: ${bomb.length}\r\n\r\n`, bomb]);
    assert.match(inflated.text, /^SPAMD\/1\.0 69 Service Unavailable: zlib: /, inflated.text);
  });

  it('a silent client gets the timeout answer; one that vanishes mid-body costs nothing; outside `allow` nobody is answered', async () => {
    const silent = await rawDialogue(spamd, ['CHECK SPAMC/1.5\r\n'], { halfClose: false, waitMs: 8000 });
    assert.match(silent.text, /^SPAMD\/1\.0 79 Timeout: \(2 second/, silent.text);
    assert.ok(silent.closed && silent.ms < 6000, `closed after ${silent.ms} ms`);
    // Trickling one header line a second does not stretch the deadline.
    const slow = await rawDialogue(spamd, ['CHECK SPAMC/1.5\r\n', ...Array.from({ length: 6 }, () => 'X-Slow: 1\r\n')], { halfClose: false, gapMs: 900, waitMs: 8000 });
    assert.match(slow.text, /^SPAMD\/1\.0 79 Timeout: /, slow.text);
    for (let i = 0; i < 20; i++) {
      await rawDialogue(spamd, ['CHECK SPAMC/1.5\r\nContent-length: 60000\r\n\r\n', 'Subject: gone\r\n\r\npartial'], { halfClose: false, waitMs: 50 });
    }
    const ping = await rawDialogue(spamd, ['PING SPAMC/1.5\r\n\r\n']);
    assert.equal(ping.text, 'SPAMD/1.5 0 PONG\r\n', 'the listener serves after vanished clients');
    const refused = await rawDialogue(closed, ['PING SPAMC/1.5\r\n\r\n']);
    assert.equal(refused.text, '');
    assert.ok(refused.closed);
    await waitFor('the refusal in the log', () => gw.logs.some((l) => l.event === 'spamd_refused'));
    assert.ok(gw.running, 'the gateway is still up');
  });
});

describe('the virus scanner down: spamd EX_TEMPFAIL, rspamd soft reject', { timeout: 120_000, skip: missingClient('spamc', 'spamc') }, () => {
  let gw: Gateway;
  let dns: DnsServer;
  let spamd: number;
  let http: number;

  before(async () => {
    dns = await startDnsServer({});
    [spamd, http] = await freePorts(2);
    gw = await startGateway({
      config: ({ ports, tmpDir }) => ({
        dns: { servers: [dns.server] },
        // A clamd socket nobody listens on: AV_UNAVAILABLE, a tempfail by default.
        antivirus: { enabled: true, clamd: path.join(tmpDir, 'no-clamd.sock'), timeout: '2s' },
        listeners: [
          ...smtpListeners(ports),
          { name: 'spamd', kind: 'spamd', port: spamd },
          { name: 'rspamd', kind: 'scan-http', port: http },
        ],
      }),
    });
  });
  after(async () => {
    await gw?.cleanup();
    await dns?.close();
  });

  it('is no verdict: spamd answers 75, /checkv2 "soft reject" with the reason; header names in any case', async () => {
    const msg = ham();
    const r = await rawDialogue(spamd, [`CHECK SPAMC/1.5\r\nContent-Length: ${Buffer.byteLength(msg)}\r\n\r\n`, msg]);
    assert.match(r.text, /^SPAMD\/1\.0 75 Temporary failure: .*virus scanner unavailable/, r.text);
    const res = await fetch(`http://127.0.0.1:${http}/checkv2`, { method: 'POST', body: msg });
    const j = await res.json() as { action: string; symbols: Record<string, unknown>; messages: { smtp_message?: string } };
    assert.equal(j.action, 'soft reject', JSON.stringify(j));
    assert.ok(j.symbols.AV_UNAVAILABLE, JSON.stringify(j));
    assert.match(j.messages.smtp_message ?? '', /^451 4\.7\.1 .*virus scanner unavailable/);
  });
});
