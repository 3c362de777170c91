// Signatures checked by an independent verifier: Debian's python3-dkim (dkim.verify), fed the
// TXT value that `dkim keygen` prints through its dnsfunc hook.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DkimKeyStore, dnsRecord, txtValue, type DkimKey } from './keys.js';
import { signMessage, fromDomain } from './sign.js';
import { dkimSigningConfigSchema } from './config.js';

const PY = `
import sys, json, dkim
data = json.load(sys.stdin)
records = data['records']
def dns(name, timeout=5):
    return records.get(name.decode().rstrip('.'), '').encode() or None
msg = data['msg'].encode('latin1')
ok = dkim.verify(msg, dnsfunc=dns) if data['index'] == 0 else dkim.DKIM(msg).verify(idx=data['index'], dnsfunc=dns)
print('pass' if ok else 'fail')
`;

function pyVerify(msg: Buffer, keys: DkimKey[], index = 0): string {
  const records = Object.fromEntries(keys.map((k) => [`${k.selector}._domainkey.${k.domain}`, txtValue(k)]));
  return execFileSync('/usr/bin/python3', ['-c', PY], { input: JSON.stringify({ msg: msg.toString('latin1'), records, index }) }).toString().trim();
}

const MSG = Buffer.from('From: Alice <alice@example.org>\r\nTo: bob@remote.test\r\nSubject: hello\r\nDate: Mon, 7 Dec 2026 09:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nHi Bob,\r\nthis is signed.\r\n');
const config = dkimSigningConfigSchema.parse({});

test('keygen stores the key 0600 in a 0700 directory and prints a zone-file TXT record in 255-octet strings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dkim-'));
  const key = new DkimKeyStore(dir).create('example.org', 's1', 'rsa');
  assert.equal(statSync(join(dir, 'dkim/example.org/s1.key')).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'dkim/example.org')).mode & 0o777, 0o700);
  const rec = dnsRecord(key);
  assert.match(rec, /^s1\._domainkey\.example\.org\. IN TXT \( "v=DKIM1; k=rsa; " "p=[A-Za-z0-9+/=]+" "[A-Za-z0-9+/=]+" \)$/);
  for (const s of rec.match(/"[^"]*"/g)!) assert.ok(s.length - 2 <= 255);
  assert.throws(() => new DkimKeyStore(dir).create('example.org', 's1', 'rsa'), /exists already/);
  assert.throws(() => new DkimKeyStore(dir).create('not a domain', 's1', 'rsa'), /not a domain name/);
});

test('an RSA signature verifies with python3-dkim; a changed body fails', async () => {
  const key = new DkimKeyStore(mkdtempSync(join(tmpdir(), 'dkim-'))).create('example.org', 'rsa1', 'rsa');
  const signed = await signMessage(MSG, [key], config);
  const sig = signed.toString('latin1').split('\r\n\r\n')[0]!.replace(/\r\n\s+/g, ' ');
  assert.match(sig, /DKIM-Signature: .*c=relaxed\/relaxed/);
  // Field names are case-insensitive; the oversigned list is written in lower case.
  assert.match(sig, /h=[^;]*\bfrom\b/i);
  assert.match(sig, /h=[^;]*\bsubject\b/i);
  assert.doesNotMatch(sig, /; l=|; x=/);
  assert.equal(pyVerify(signed, [key]), 'pass');
  assert.equal(pyVerify(Buffer.from(signed.toString('latin1').replace('this is signed', 'this is forged'), 'latin1'), [key]), 'fail');
});

test('Ed25519 (RFC 8463) signs beside RSA and verifies with python3-dkim', async () => {
  const store = new DkimKeyStore(mkdtempSync(join(tmpdir(), 'dkim-')));
  const keys = [store.create('example.org', 'rsa1', 'rsa'), store.create('example.org', 'ed1', 'ed25519')];
  const signed = await signMessage(MSG, keys, config);
  const text = signed.toString('latin1');
  assert.equal(text.match(/^DKIM-Signature:/gim)?.length, 2);
  assert.match(text, /a=ed25519-sha256/);
  assert.equal(pyVerify(signed, keys, 0), 'pass');
  assert.equal(pyVerify(signed, keys, 1), 'pass');
});

test('x= only when expire is set; mail of other domains or with signing off stays unsigned', async () => {
  const key = new DkimKeyStore(mkdtempSync(join(tmpdir(), 'dkim-'))).create('example.org', 's', 'rsa');
  const expiring = await signMessage(MSG, [key], dkimSigningConfigSchema.parse({ expire: 3600 }));
  assert.match(expiring.toString('latin1'), /x=\d+/);
  const other = Buffer.from(MSG.toString('latin1').replace('alice@example.org', 'alice@elsewhere.test'), 'latin1');
  assert.equal(await signMessage(other, [key], config), other);
  assert.equal(await signMessage(MSG, [key], dkimSigningConfigSchema.parse({ sign: false })), MSG);
  assert.equal(fromDomain(MSG), 'example.org');
});

test('config faults name the key', () => {
  const r = dkimSigningConfigSchema.safeParse({ expire: -1 });
  assert.ok(!r.success && r.error.issues[0]!.path.join('.') === 'expire');
});

test('From is oversigned (h= names it once more than present): python3-dkim verifies, and a From added in transit breaks the signature', async () => {
  const store = new DkimKeyStore(mkdtempSync(join(tmpdir(), 'dkim-')));
  const keys = [store.create('example.org', 'rsa1', 'rsa'), store.create('example.org', 'ed1', 'ed25519')];
  const signed = await signMessage(MSG, keys, config);
  const head = signed.toString('latin1').split('\r\n\r\n')[0]!.replace(/\r\n\s+/g, '');
  for (const m of head.matchAll(/\bh=([^;]*)/g)) {
    assert.deepEqual(m[1]!.toLowerCase().split(':').map((s) => s.trim()).filter((f) => f === 'from'), ['from', 'from']);
  }
  assert.equal(pyVerify(signed, keys, 0), 'pass');
  assert.equal(pyVerify(signed, keys, 1), 'pass');
  // A second From put on top (where a forwarder adds fields): the signature no longer holds.
  const extra = Buffer.concat([Buffer.from('From: Mallory <ceo@example.org>\r\n'), signed]);
  assert.equal(pyVerify(extra, keys, 0), 'fail');
  assert.equal(pyVerify(extra, keys, 1), 'fail');
  // Listing from twice in the configuration still oversigns once more than present.
  const twice = await signMessage(MSG, [keys[0]!], dkimSigningConfigSchema.parse({ headers: ['from', 'from', 'subject'] }));
  assert.equal(pyVerify(twice, [keys[0]!]), 'pass');
});
