// `kind: scan-http` through rspamc from Debian's rspamd package (docs/integrations.md): GTUBE
// gets action reject with our GTUBE symbol, ham no action; the JSON answer carries score,
// required score, symbols and the milter headers; a user who opted out (Deliver-To) gets no
// action; learn_spam works with the listener's password and is refused without it or with a
// wrong one; /ping answers pong; a network outside `allow` gets 403, a body above the size
// limit 413.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { USERS, userMap } from '../helpers/fixtures.js';
import { smtpListeners, startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { freePorts, waitFor } from '../helpers/wait.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { missingClient, run, show } from './run.js';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const SENDER = 'news@sender.example';
const PASSWORD = 'learn-secret-7f3a';
const MAX_SIZE = 64 * 1024;

const gtube = () => makeMessage({ from: SENDER, to: USERS.alice.address, subject: `Test ${marker()}`, body: `This is the GTUBE:\r\n${GTUBE}\r\n` });
const ham = () => makeMessage({ from: SENDER, to: USERS.alice.address, subject: `Minutes ${marker()}`, body: 'Hello Alice,\r\nthe minutes of Tuesday are below. See you next week.\r\n' });

describe('scan-http listener with rspamc', { timeout: 180_000, skip: missingClient('rspamc', 'rspamd') }, () => {
  let gw: Gateway;
  let dns: DnsServer;
  let http: number;
  let closed: number;
  let tmp: string;
  const url = (p: string, port = http) => `http://127.0.0.1:${port}${p}`;
  /** rspamc reads the message from a file (stdin works too, but a file is what operators pass). */
  const file = (name: string, content: string) => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, content);
    return f;
  };
  const rspamc = (args: string[]) => run('rspamc', ['-h', `127.0.0.1:${http}`, '-t', '20', ...args]);

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scan-http-'));
    dns = await startDnsServer({});
    [http, closed] = await freePorts(2);
    gw = await startGateway({
      users: userMap('alice', 'bob'),
      config: ({ ports }) => ({
        dns: { servers: [dns.server] },
        smtp: { max_message_size: MAX_SIZE },
        bayes: { min_learned: 1 },
        listeners: [
          ...smtpListeners(ports),
          { name: 'rspamd', kind: 'scan-http', port: http, password: PASSWORD },
          { name: 'rspamd-closed', kind: 'scan-http', port: closed, allow: ['192.0.2.0/24'] },
        ],
      }),
    });
  });
  after(async () => {
    await gw?.cleanup();
    await dns?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('rspamc on GTUBE: action reject with our GTUBE symbol; on ham: no action', async () => {
    const r = await rspamc([file('gtube.eml', gtube())]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^Action: reject$/m, show(r));
    assert.match(r.stdout, /^Spam: true$/m, show(r));
    assert.match(r.stdout, /^Score: \d{4,}(\.\d+)? \/ 15(\.0+)?$/m, show(r));
    assert.match(r.stdout, /^Symbol: GTUBE \(\d+(\.\d+)?\)/m, show(r));
    const h = await rspamc([file('ham.eml', ham())]);
    assert.match(h.stdout, /^Action: no action$/m, show(h));
    assert.match(h.stdout, /^Spam: false$/m, show(h));
  });

  it('/checkv2 answers the JSON rspamd clients read: score, required_score, symbols with options, milter headers', async () => {
    const res = await fetch(url('/checkv2'), {
      method: 'POST', body: gtube(),
      headers: { From: `<${SENDER}>`, Rcpt: `<${USERS.alice.address}>`, IP: '192.0.2.7', Helo: 'client.example', 'Queue-Id': 'ABC123' },
    });
    assert.equal(res.status, 200);
    const j = await res.json() as {
      action: string; score: number; required_score: number; symbols: Record<string, { name: string; score: number; description: string; options: string[] }>;
      milter: { add_headers: Record<string, { value: string }>; remove_headers: Record<string, number> };
    };
    assert.equal(j.action, 'reject');
    assert.ok(j.score >= 1000, JSON.stringify(j));
    assert.equal(j.required_score, 15);
    assert.equal(j.symbols.GTUBE?.name, 'GTUBE');
    assert.ok(j.symbols.GTUBE!.score >= 1000);
    assert.match(j.symbols.GTUBE!.options.join(' '), /GTUBE test string/);
    assert.match(j.milter.add_headers['X-Spam-Status']!.value, /^Yes, score=\d+ required=5 tests=.*GTUBE=/);
    assert.equal(j.milter.add_headers['X-Spam-Flag']?.value, 'YES');
    assert.equal(j.milter.remove_headers['X-Spam-Flag'], 0);
    const hamRes = await (await fetch(url('/checkv2'), { method: 'POST', body: ham() })).json() as { action: string; milter: { add_headers: Record<string, unknown> } };
    assert.equal(hamRes.action, 'no action');
    assert.equal(hamRes.milter.add_headers['X-Spam-Flag'], undefined);
  });

  it('Deliver-To (rspamc -d) applies that user\'s settings: opted out, GTUBE is no action', async () => {
    await gw.cliOk(['user', 'set', USERS.bob.address, 'spam-filter=off']);
    const r = await rspamc(['-d', USERS.bob.address, file('gtube-bob.eml', gtube())]);
    assert.match(r.stdout, /^Action: no action$/m, show(r));
    const a = await rspamc(['-d', USERS.alice.address, file('gtube-alice.eml', gtube())]);
    assert.match(a.stdout, /^Action: reject$/m, show(a));
    // A user's own tag threshold below the ham's score: "add header" for that user only.
    await gw.cliOk(['user', 'set', USERS.alice.address, 'tag=-50']);
    try {
      const tagged = await rspamc(['-d', USERS.alice.address, file('ham-alice.eml', ham())]);
      assert.match(tagged.stdout, /^Action: add header$/m, show(tagged));
      const site = await rspamc([file('ham-site.eml', ham())]);
      assert.match(site.stdout, /^Action: no action$/m, show(site));
    } finally {
      await gw.cliOk(['user', 'set', USERS.alice.address, 'tag=default']);
    }
  });

  it('rspamc learn_spam needs the password: refused without it or with a wrong one, learned with it', async () => {
    const msg = file('learn.eml', makeMessage({ from: SENDER, to: USERS.alice.address, subject: 'Cheap watches', body: 'Buy replica watches zorgblatt quintessa today!\r\n' }));
    const db = new Database(path.join(gw.dataDir, 'bayes.sqlite'), { readonly: true, fileMustExist: true });
    try {
      const spam = () => (db.prepare('SELECT spam FROM totals WHERE id = 1').get() as { spam: number }).spam;
      const before = spam();
      const without = await rspamc(['learn_spam', msg]);
      assert.doesNotMatch(without.stdout, /success = true/, show(without));
      assert.match(`${without.stdout}${without.stderr}`, /Unauthorized|403/, show(without));
      const wrong = await rspamc(['-P', 'not-the-password', 'learn_spam', msg]);
      assert.match(`${wrong.stdout}${wrong.stderr}`, /Unauthorized|403/, show(wrong));
      assert.equal(spam(), before, 'nothing learned without the password');
      const ok = await rspamc(['-P', PASSWORD, 'learn_spam', msg]);
      assert.match(ok.stdout, /success = true/, show(ok));
      assert.equal(spam(), before + 1);
      const hamOk = await rspamc(['-P', PASSWORD, 'learn_ham', file('learn-ham.eml', ham())]);
      assert.match(hamOk.stdout, /success = true/, show(hamOk));
    } finally {
      db.close();
    }
  });

  it('/ping answers pong; outside `allow` is 403; a body above the size limit is 413; zstd is refused by name', async () => {
    const ping = await fetch(url('/ping'));
    assert.equal(ping.status, 200);
    assert.equal((await ping.text()).trim(), 'pong');
    const refused = await fetch(url('/checkv2', closed), { method: 'POST', body: gtube() });
    assert.equal(refused.status, 403);
    const big = await fetch(url('/checkv2'), { method: 'POST', body: Buffer.alloc(MAX_SIZE + 1000, 'x') });
    assert.equal(big.status, 413);
    const zstd = await fetch(url('/checkv2'), { method: 'POST', body: 'x', headers: { Compression: 'zstd' } });
    assert.equal(zstd.status, 415);
    assert.match(((await zstd.json()) as { error: string }).error, /zstd is not supported/);
    const empty = await fetch(url('/checkv2'), { method: 'POST' });
    assert.equal(empty.status, 400);
    assert.ok(gw.running);
  });
});

describe('scan listeners in observe mode (policy.observe)', { timeout: 120_000, skip: missingClient('rspamc', 'rspamd') || missingClient('spamc', 'spamc') }, () => {
  let gw: Gateway;
  let dns: DnsServer;
  let http: number;
  let spamd: number;

  before(async () => {
    dns = await startDnsServer({});
    [http, spamd] = await freePorts(2);
    gw = await startGateway({
      config: ({ ports }) => ({
        dns: { servers: [dns.server] },
        policy: { observe: true },
        listeners: [
          ...smtpListeners(ports),
          { name: 'rspamd', kind: 'scan-http', port: http },
          { name: 'spamd', kind: 'spamd', port: spamd },
        ],
      }),
    });
  });
  after(async () => {
    await gw?.cleanup();
    await dns?.close();
  });

  it('a refusal is answered as the tag it becomes over SMTP, and logged as "would reject"', async () => {
    const tmpFile = path.join(gw.tmpDir, 'gtube.eml');
    fs.writeFileSync(tmpFile, gtube());
    const r = await run('rspamc', ['-h', `127.0.0.1:${http}`, tmpFile]);
    assert.match(r.stdout, /^Action: add header$/m, show(r));
    assert.match(r.stdout, /^Symbol: GTUBE /m, show(r));
    const c = await run('spamc', ['-d', '127.0.0.1', '-p', String(spamd), '-c'], gtube());
    assert.equal(c.code, 1, `still spam for spamc: ${show(c)}`);
    await waitFor('the observe log lines', () => gw.logs.filter((l) => l.observe === 'would reject' && (l.event === 'scan_http_check' || l.event === 'spamd_scan')).length >= 2);
  });
});
