// The delivery-side signer: who is signed, streamed content (a message spilled to disk, read in
// small chunks), a damaged key (sent unsigned, logged), and when forwarded mail is sealed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DkimKeyStore, txtValue } from './keys.js';
import { OutboundSigner } from './outbound.js';
import { sealDecision, ourAuthResults } from './arc-seal.js';
import { dkimSigningConfigSchema } from './config.js';
import type { Content } from '../types.js';
import type { QueuedMessage } from '../../queue/queue.js';
import { NetworkSet } from '../../net/cidr.js';

const PY = `
import sys, json, dkim
data = json.load(sys.stdin)
def dns(name, timeout=5):
    return data['records'].get(name.decode().rstrip('.'), '').encode() or None
print('pass' if dkim.verify(data['msg'].encode('latin1'), dnsfunc=dns) else 'fail')
`;

const RAW = Buffer.from('Received: from app (unknown [10.0.0.5])\r\n\tby mx.example.org (Portcullis) with ESMTP id X\r\n' +
  'From: "Shop" <shop@example.org>\r\nTo: customer@remote.test\r\nSubject: order\r\nDate: Mon, 7 Dec 2026 09:00:00 +0000\r\n\r\n' +
  `${'Your order has shipped.\r\n'.repeat(4000)}`);

function streamed(raw: Buffer): Content {
  // 1000-byte chunks: the header block ends inside a later chunk, as with a spill file.
  return { size: raw.length, stream: () => Readable.from((function* () { for (let i = 0; i < raw.length; i += 1000) yield raw.subarray(i, i + 1000); })()) };
}

async function collect(c: Content): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of c.stream()) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

function logger() {
  const lines: Array<Record<string, unknown>> = [];
  const at = (level: string) => (o: Record<string, unknown>) => lines.push({ level, ...o });
  return { lines, log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } as never };
}

function msg(over: Partial<QueuedMessage>): QueuedMessage {
  return { id: 'Q1', arrived: 0, sender: 'shop@example.org', recipients: [], meta: {}, size: 0, authenticated: false, location: {} as never, attempts: 0, nextAttempt: 0, active: true, ...over } as QueuedMessage;
}

function signer(dataDir: string, lg = logger()) {
  const trusted = new NetworkSet(['10.0.0.0/8']);
  return new OutboundSigner({
    store: new DkimKeyStore(dataDir), config: dkimSigningConfigSchema.parse({}), trusted: (ip) => trusted.has(ip), logger: lg.log,
    hostname: 'mx.example.org', sealDomains: ['mx.example.org', 'example.org'],
  });
}

test('streamed content from an authenticated sender, a trusted client or the gateway itself is signed (python3-dkim verifies); anyone else is not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dkim-out-'));
  const key = new DkimKeyStore(dir).create('example.org', 's1', 'rsa');
  const s = signer(dir);
  for (const m of [msg({ authenticated: true }), msg({ meta: { client: '::ffff:10.1.2.3' } }), msg({ meta: { origin: 'tls-rpt' } })]) {
    const out = await s.sign(m, streamed(RAW));
    assert.ok(out, 'signed');
    const bytes = await collect(out);
    assert.equal(out.size, bytes.length);
    assert.ok(bytes.subarray(bytes.length - RAW.length).equals(RAW), 'the message follows the signature unchanged');
    const verdict = execFileSync('/usr/bin/python3', ['-c', PY], { input: JSON.stringify({ msg: bytes.toString('latin1'), records: { 's1._domainkey.example.org': txtValue(key) } }) }).toString().trim();
    assert.equal(verdict, 'pass');
  }
  assert.equal(await s.sign(msg({ meta: { client: '192.0.2.9' } }), streamed(RAW)), undefined);
  const foreign = Buffer.from(RAW.toString('latin1').replace('shop@example.org', 'shop@elsewhere.test'), 'latin1');
  assert.equal(await s.sign(msg({ authenticated: true }), streamed(foreign)), undefined);
  const traversal = Buffer.from(RAW.toString('latin1').replace('shop@example.org', 'shop@../../dkim/example.org'), 'latin1');
  assert.equal(await s.sign(msg({ authenticated: true }), streamed(traversal)), undefined, 'a From domain that is no domain name reads no key');
  // A subdomain's mail is signed with the parent's key (relaxed DMARC alignment).
  const sub = Buffer.from(RAW.toString('latin1').replace('shop@example.org', 'shop@mail.example.org'), 'latin1');
  const subOut = await s.sign(msg({ authenticated: true }), streamed(sub));
  assert.match((await collect(subOut!)).toString('latin1'), /d=example\.org;/);
});

test('a damaged key file: the message goes unsigned and the log says why', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dkim-out-'));
  new DkimKeyStore(dir).create('example.org', 's1', 'rsa');
  writeFileSync(join(dir, 'dkim/example.org/s1.key'), '-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n');
  const lg = logger();
  assert.equal(await signer(dir, lg).sign(msg({ authenticated: true }), streamed(RAW)), undefined);
  assert.ok(lg.lines.some((l) => l.event === 'dkim_sign_failed' && l.level === 'error'), JSON.stringify(lg.lines));
});

test('forwarded mail is sealed only after our verification: our Authentication-Results, arc=none|pass; not on arc=fail or without ours', async () => {
  const head = (ar: string) => Buffer.from(`${ar}From: a@b.test\r\nSubject: s\r\n\r\nbody\r\n`);
  const ours = 'Authentication-Results: mx.example.org;\r\n\tspf=pass smtp.mailfrom=b.test;\r\n\tdkim=none;\r\n\tarc=none\r\n';
  assert.equal(ourAuthResults(head(ours), 'MX.example.org'), 'mx.example.org; spf=pass smtp.mailfrom=b.test; dkim=none; arc=none');
  assert.deepEqual(sealDecision(head(ours), 'mx.example.org'), { seal: true, cv: 'none', authResults: 'mx.example.org; spf=pass smtp.mailfrom=b.test; dkim=none; arc=none' });
  assert.equal((sealDecision(head(ours.replace('arc=none', 'arc=pass (i=1)')), 'mx.example.org') as { cv: string }).cv, 'pass');
  assert.match((sealDecision(head(ours.replace('arc=none', 'arc=fail (i=1 bad seal)')), 'mx.example.org') as { reason: string }).reason, /arc=fail/);
  assert.match((sealDecision(head('Authentication-Results: mx.other.test; arc=none\r\n'), 'mx.example.org') as { reason: string }).reason, /not verified here/);
  assert.match((sealDecision(head(ours.replace(';\r\n\tarc=none', '')), 'mx.example.org') as { reason: string }).reason, /no arc= result of ours/);
  // Through the signer: a forwarded destination with an RSA key of the host's domain gets an ARC set; no key, nothing.
  const dir = mkdtempSync(join(tmpdir(), 'dkim-out-'));
  const forwarded = msg({ meta: { client: '192.0.2.9' }, recipients: [{ address: 'x@remote.test', destination: { kind: 'relay', domain: 'remote.test', forwarded: true }, status: 'pending', attempts: 0 }] });
  const raw = head(ours);
  assert.equal(await signer(dir).sign(forwarded, streamed(raw)), undefined);
  new DkimKeyStore(dir).create('example.org', 'arc1', 'rsa');
  const sealed = (await collect((await signer(dir).sign(forwarded, streamed(raw)))!)).toString('latin1');
  assert.match(sealed, /^ARC-Seal: i=1; a=rsa-sha256; .*cv=none/m);
  assert.match(sealed, /^ARC-Authentication-Results: i=1; mx\.example\.org; spf=pass/m);
  const relayOnly = msg({ meta: { client: '192.0.2.9' }, recipients: [{ address: 'x@relay.test', destination: { kind: 'relay', domain: 'relay.test' }, status: 'pending', attempts: 0 }] });
  assert.equal(await signer(dir).sign(relayOnly, streamed(raw)), undefined, 'mail to a relay domain is not forwarding: no seal');
});
