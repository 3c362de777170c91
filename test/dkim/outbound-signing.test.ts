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

const PYTHON = '/usr/bin/python3';
const VERIFY = `
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
msg = req['msg'].encode('latin1')
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

/**
 * python3-dkim's verdict on each DKIM-Signature of `raw`, in header order. Run asynchronously:
 * the DNS server it asks lives in this process and must keep answering meanwhile.
 */
function verify(raw: Buffer, dns: DnsServer): Promise<boolean[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-c', VERIFY], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`python3-dkim verifier failed (exit ${code}): ${err}`));
      else resolve(JSON.parse(out) as boolean[]);
    });
    child.stdin.end(JSON.stringify({ port: dns.port, msg: raw.toString('latin1') }));
  });
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
      config: {
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
});
