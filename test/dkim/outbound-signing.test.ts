// DKIM signing of outgoing mail, end to end: keys made with `portcullis dkim keygen`, mail sent
// through the running gateway over SMTP (submission with AUTH, an MX client in
// relay.trusted_networks, an unauthenticated MX client), relayed to an smtp-server sink on
// loopback, and the signatures checked by an independent verifier — Debian's python3-dkim —
// which looks the key up in the TXT record `dkim keygen` printed, served by a DNS server on
// loopback (test/helpers/dns-server.ts).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, before, describe, it, type TestContext } from 'node:test';
import { assertReply, plainToken, USERS, userMap } from '../helpers/fixtures.js';
import { prepareGateway, type Gateway } from '../helpers/gateway.js';
import { startDnsServer, type DnsServer, type ZoneData } from '../helpers/dns-server.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { Sink } from '../helpers/sink.js';
import { SmtpClient, transaction } from '../helpers/smtp-client.js';
import { strict } from '../helpers/clients.js';
import { Resolver } from 'node:dns/promises';
import { authenticate } from 'mailauth';

const PYTHON = '/usr/bin/python3';
// Both verifiers read the TXT records from the test's DNS server (its port in the request).
const PY_PRELUDE = `
import sys, json, dkim, dns.resolver
req = json.load(sys.stdin)
res = dns.resolver.Resolver(configure=False)
res.nameservers = ['127.0.0.1']
res.port = req['port']
def dnsfunc(name, timeout=5):
    try:
        answer = res.resolve(name.decode().rstrip('.'), 'TXT', lifetime=timeout)
    except Exception:
        return None
    return b''.join(answer[0].strings)
`;

const VERIFY = `${PY_PRELUDE}msg = req['msg'].encode('latin1')
d = dkim.DKIM(msg)
count = sum(1 for line in msg.split(b'\\r\\n\\r\\n')[0].split(b'\\r\\n') if line.lower().startswith(b'dkim-signature:'))
def check(i):
    try:
        return bool(d.verify(idx=i, dnsfunc=dnsfunc))
    except dkim.ValidationError:
        return False
print(json.dumps([check(i) for i in range(count)]))
`;

function pythonDkimProblem(): string | undefined {
  const r = spawnSync(PYTHON, ['-c', 'import dkim, dns.resolver, nacl'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `python3-dkim, python3-dnspython and python3-nacl are needed (scripts/test.sh installs them): ${r.error?.message ?? r.stderr}`;
}

function needVerifier(t: TestContext): boolean {
  const problem = pythonDkimProblem();
  if (!problem) return true;
  if (strict) throw new Error(problem);
  t.skip(problem);
  return false;
}

const ARC_VERIFY = `${PY_PRELUDE}cv, results, reason = dkim.arc_verify(req['msg'].encode('latin1'), dnsfunc=dnsfunc)
print(json.dumps({'cv': cv.decode(), 'reason': reason, 'instances': [r.get('instance') for r in results]}))
`;

/** python3-dkim's ARC verdict (arc_verify): the chain validation and the instances it checked. */
function arcVerify(raw: Buffer, dns: DnsServer): Promise<{ cv: string; reason: string; instances: number[] }> {
  return runPython(ARC_VERIFY, JSON.stringify({ port: dns.port, msg: raw.toString('latin1') })).then((out) => JSON.parse(out) as { cv: string; reason: string; instances: number[] });
}

/** mailauth's own ARC verification of `raw`, its keys looked up on the loopback DNS server. */
async function mailauthArc(raw: Buffer, dns: DnsServer): Promise<{ result: string; i?: number }> {
  const resolver = new Resolver();
  resolver.setServers([dns.server]);
  const res = await authenticate(raw, {
    ip: '192.0.2.1', helo: 'test', sender: 'x@example.net', mta: 'verifier.test', disableBimi: true, disableDmarc: true,
    resolver: (name: string, type: string) => resolver.resolve(name, type as 'TXT'),
  } as never) as { arc: { status: { result: string }; i?: number } };
  return { result: res.arc.status.result, i: res.arc.i };
}

function runPython(code: string, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-c', code], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`python3 failed (exit ${code}): ${err}`))));
    child.stdin.end(input);
  });
}

/**
 * python3-dkim's verdict on each DKIM-Signature of `raw`, in header order. Run asynchronously:
 * the DNS server it asks lives in this process and must keep answering meanwhile.
 */
function verify(raw: Buffer, dns: DnsServer): Promise<boolean[]> {
  return runPython(VERIFY, JSON.stringify({ port: dns.port, msg: raw.toString('latin1') })).then((out) => JSON.parse(out) as boolean[]);
}

/** The DKIM-Signature fields of a message, unfolded, as tag → value maps. */
function signatures(raw: Buffer): Record<string, string>[] {
  const head = raw.toString('latin1').split('\r\n\r\n')[0]!.replace(/\r\n[ \t]+/g, ' ');
  return [...head.matchAll(/^DKIM-Signature:(.*)$/gim)].map((m) =>
    Object.fromEntries(m[1]!.split(';').map((t) => t.trim()).filter(Boolean).map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1).replace(/\s+/g, '')])));
}

/** The owner name and the joined strings of a zone-file TXT record as `dkim keygen` prints it. */
function parseRecord(line: string): { name: string; strings: string[] } {
  const m = /^(\S+)\.\s+IN\s+TXT\s+\(\s*((?:"[^"]*"\s*)+)\)$/.exec(line.trim());
  assert.ok(m, `not a zone-file TXT record: ${line}`);
  return { name: m[1]!, strings: [...m[2]!.matchAll(/"([^"]*)"/g)].map((s) => s[1]!) };
}

describe('outbound DKIM signing through the running gateway', { timeout: 180_000 }, () => {
  let gw: Gateway;
  let sink: Sink;
  let dns: DnsServer;
  const zone: Record<string, ZoneData[string]> = {};
  const selectors: Record<string, string> = {};

  async function keygen(args: string[]): Promise<string> {
    const r = await gw.cliOk(['dkim', ...args]);
    const lines = r.stdout.trim().split('\n');
    for (const line of lines) {
      const rec = parseRecord(line);
      zone[rec.name] = [{ type: 'TXT', data: rec.strings }];
    }
    dns.set(zone);
    return lines[lines.length - 1]!;
  }

  before(async () => {
    sink = await Sink.start();
    dns = await startDnsServer({});
    gw = await prepareGateway({
      users: userMap('alice', 'carol'),
      aliases: { 'fwd@example.test': ['friend@external.test'] },
      config: {
        // The gateway's own verification (of what it forwards) uses the same published keys.
        dns: { servers: [dns.server] },
        relay: {
          // 127.0.0.2 stands for an application server of ours that sends without logging in.
          trusted_networks: ['127.0.0.2/32'],
          domains: [{ domain: 'relay.test' }],
          routes: [{ domain: '*', host: '127.0.0.1', port: sink.port, tls: 'none' }],
        },
      },
    });
    const rsa = parseRecord(await keygen(['keygen', 'example.test']));
    const ed = parseRecord(await keygen(['keygen', 'example.test', '--type', 'ed25519', '--selector', 'ed1']));
    selectors.rsa = rsa.name.split('.')[0]!;
    selectors.ed = ed.name.split('.')[0]!;
    await gw.start();
  });
  after(async () => {
    await gw?.cleanup();
    await sink?.close();
    await dns?.close();
  });

  async function submit(user: { address: string; password: string }, from: string, to: string, subject: string): Promise<void> {
    const c = await SmtpClient.connect(gw.ports.submission);
    try {
      await c.ehlo();
      assertReply(await c.startTls(), 220, undefined, c.describe());
      await c.ehlo();
      assertReply(await c.cmd(`AUTH PLAIN ${plainToken(user.address, user.password)}`), 235, '2.7.0', c.describe());
      const res = await transaction(c, user.address, [to], makeMessage({ from, to, subject, extraHeaders: ['Reply-To: <list@example.test>'] }));
      assertReply(res.final!, 250, '2.0.0', c.describe());
    } finally {
      await c.quit();
    }
  }

  async function viaMx(localAddress: string, from: string, to: string, subject: string): Promise<void> {
    const c = await SmtpClient.connect(gw.ports.mx, { localAddress });
    try {
      await c.ehlo();
      const res = await transaction(c, from, [to], makeMessage({ from, to, subject }));
      assertReply(res.final!, 250, undefined, c.describe());
    } finally {
      await c.quit();
    }
  }

  it('keygen printed zone-file TXT records in strings of at most 255 octets, and keeps the key 0600', async () => {
    const rsa = zone[`${selectors.rsa}._domainkey.example.test`]![0] as { data: string[] };
    assert.ok(rsa.data.length >= 3 && rsa.data.every((s) => s.length <= 255), JSON.stringify(rsa.data));
    assert.match(rsa.data.join(''), /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+=*$/);
    const list = JSON.parse((await gw.cliOk(['dkim', 'list', '--json'])).stdout) as Array<{ domain: string; selector: string; type: string; active: boolean; record: string }>;
    assert.deepEqual(list.map((k) => [k.domain, k.type, k.active]).sort(), [['example.test', 'ed25519', true], ['example.test', 'rsa', true]]);
  });

  it('authenticated submission: RSA and Ed25519 signatures (relaxed/relaxed, From signed, no l=) that python3-dkim verifies against the published records', async (t) => {
    if (!needVerifier(t)) return;
    const m = marker('dkim-auth');
    await submit(USERS.alice, USERS.alice.address, 'friend@external.test', m);
    const got = await sink.waitFor(m);
    const sigs = signatures(got.raw);
    assert.deepEqual(sigs.map((s) => [s.d, s.s, s.a]).sort(), [['example.test', 'ed1', 'ed25519-sha256'], ['example.test', selectors.rsa!, 'rsa-sha256']].sort());
    for (const s of sigs) {
      assert.equal(s.c, 'relaxed/relaxed');
      assert.ok(!('l' in s) && !('x' in s), `no l= or x= tag: ${JSON.stringify(s)}`);
      const h = s.h!.toLowerCase().split(':');
      for (const f of ['from', 'to', 'subject', 'date', 'message-id', 'reply-to', 'mime-version', 'content-type']) assert.ok(h.includes(f), `h= lacks ${f}: ${s.h}`);
    }
    assert.deepEqual(await verify(got.raw, dns), [true, true]);
    // The independent verifier does fail what it should: a changed body breaks both signatures.
    const forged = Buffer.from(got.raw.toString('latin1').replace(`this is ${m}`, 'this is forged'), 'latin1');
    assert.deepEqual(await verify(forged, dns), [false, false]);
  });

  it('a relay.trusted_networks client (no login) gets its mail from our domain signed', async (t) => {
    if (!needVerifier(t)) return;
    const m = marker('dkim-trusted');
    await viaMx('127.0.0.2', 'app@example.test', 'someone@relay.test', m);
    const got = await sink.waitFor(m);
    assert.equal(signatures(got.raw).length, 2);
    assert.deepEqual(await verify(got.raw, dns), [true, true]);
  });

  it('unsigned: an unauthenticated client with our domain in From, and a logged-in user of a domain without a key', async () => {
    const spoof = marker('dkim-spoof');
    await viaMx('127.0.0.3', USERS.alice.address, 'victim@relay.test', spoof);
    const other = marker('dkim-nokey');
    await submit(USERS.carol, USERS.carol.address, 'friend@external.test', other);
    const [a, b] = await Promise.all([sink.waitFor(spoof), sink.waitFor(other)]);
    assert.equal(signatures(a.raw).length, 0, `unauthenticated mail was signed:\n${a.raw.toString('latin1').slice(0, 2000)}`);
    assert.equal(signatures(b.raw).length, 0, 'mail from second.test (no key) was signed');
  });

  it('rotate while running: the new selector signs the next message, the old one no longer does', async (t) => {
    if (!needVerifier(t)) return;
    const rotated = parseRecord(await keygen(['rotate', 'example.test', '--type', 'rsa']));
    const fresh = rotated.name.split('.')[0]!;
    assert.notEqual(fresh, selectors.rsa);
    const m = marker('dkim-rotated');
    await submit(USERS.alice, USERS.alice.address, 'friend@external.test', m);
    const got = await sink.waitFor(m);
    assert.deepEqual(signatures(got.raw).map((s) => s.s).sort(), ['ed1', fresh].sort());
    assert.deepEqual(await verify(got.raw, dns), [true, true]);
    const list = JSON.parse((await gw.cliOk(['dkim', 'list', 'example.test', '--json'])).stdout) as Array<{ selector: string; active: boolean }>;
    assert.equal(list.find((k) => k.selector === selectors.rsa)?.active, false);
    await gw.cliOk(['dkim', 'remove', 'example.test', selectors.rsa!]);
    const r = await gw.cli(['dkim', 'remove', 'example.test', selectors.rsa!]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no key with selector/);
  });

  async function fromOutside(raw: string | Buffer, to: string): Promise<void> {
    const c = await SmtpClient.connect(gw.ports.mx, { localAddress: '127.0.0.3' });
    try {
      await c.ehlo();
      const res = await transaction(c, 'someone@example.net', [to], raw);
      assertReply(res.final!, 250, undefined, c.describe());
    } finally {
      await c.quit();
    }
  }

  const arcSets = (raw: Buffer) => [...raw.toString('latin1').split('\r\n\r\n')[0]!.matchAll(/^ARC-Seal:.*?\bi=(\d+)/gim)].map((m) => Number(m[1]));

  it('forwarded mail (an alias to an outside address) is ARC-sealed after our verification: mailauth and python3-dkim verify the seal; nothing DKIM-signed', async (t) => {
    if (!needVerifier(t)) return;
    const m = marker('arc-fwd');
    await fromOutside(makeMessage({ from: 'someone@example.net', to: 'fwd@example.test', subject: m }), 'fwd@example.test');
    const got = await sink.waitFor(m);
    const text = got.raw.toString('latin1');
    assert.deepEqual(arcSets(got.raw), [1]);
    assert.match(text, /^ARC-Seal: i=1; .*cv=none/m);
    assert.match(text.replace(/\r\n[ \t]+/g, ' '), /^ARC-Authentication-Results: i=1; mx\.example\.test; .*arc=none/m, 'the AAR repeats our Authentication-Results');
    assert.match(text.replace(/\r\n[ \t]+/g, ' '), /^ARC-Seal: [^\r\n]*\bd=example\.test;[^\r\n]*\bs=/m);
    assert.equal(signatures(got.raw).length, 0, 'forwarded mail from outside is not DKIM-signed as ours');
    assert.deepEqual(await mailauthArc(got.raw, dns), { result: 'pass', i: 1 });
    const py = await arcVerify(got.raw, dns);
    assert.equal(py.cv, 'pass', py.reason);
    // Forwarded once more (a second alias hop through us): our verification passes the chain, the new seal says cv=pass.
    const m2 = `${m}-again`;
    await fromOutside(Buffer.from(text.replace(`Subject: ${m}`, `Subject: ${m2}`), 'latin1'), 'fwd@example.test');
    const again = await sink.waitFor(m2);
    // The subject was changed in transit, so the i=1 AMS no longer verifies: our check sees arc=fail and does not seal.
    assert.deepEqual(arcSets(again.raw), [1], 'a chain that failed our verification gets no seal of ours');
    assert.ok(gw.logs.some((l) => l.event === 'arc_not_sealed' && /arc=fail/.test(String(l.reason))), 'the log says why it was not sealed');
  });

  it('a chain that passes our verification is extended: i=2 with cv=pass, verified by mailauth and python3-dkim', async (t) => {
    if (!needVerifier(t)) return;
    const m = marker('arc-chain');
    await fromOutside(makeMessage({ from: 'someone@example.net', to: 'fwd@example.test', subject: m }), 'fwd@example.test');
    const first = await sink.waitFor(m);
    sink.messages.splice(sink.messages.indexOf(first), 1);
    // The same bytes come back to us (the outside address forwards to our alias again).
    await fromOutside(first.raw, 'fwd@example.test');
    const second = await sink.waitFor(m);
    assert.deepEqual(arcSets(second.raw), [2, 1]);
    assert.match(second.raw.toString('latin1'), /^ARC-Seal: i=2; .*cv=pass/m);
    assert.deepEqual(await mailauthArc(second.raw, dns), { result: 'pass', i: 2 });
    const py = await arcVerify(second.raw, dns);
    assert.equal(py.cv, 'pass', py.reason);
  });
});
