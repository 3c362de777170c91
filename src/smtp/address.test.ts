import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePathArgument, parseMailboxPath, AddressError, formatAddress } from './address.js';

const fault = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof AddressError) return err.fault;
    throw err;
  }
  return 'ok';
};

test('plain paths and parameters', () => {
  const p = parsePathArgument('FROM:<Alice@Example.ORG> SIZE=1000 BODY=8BITMIME', 'FROM');
  assert.equal(p.address!.local, 'Alice');
  assert.equal(p.address!.domain, 'example.org');
  assert.equal(p.params.get('SIZE'), '1000');
  assert.equal(p.params.get('BODY'), '8BITMIME');
  assert.equal(parsePathArgument('FROM:<>', 'FROM').address, undefined);
  assert.equal(parsePathArgument('from: <a@b.example>', 'FROM').address!.domain, 'b.example');
  assert.equal(parsePathArgument('TO:a@b.example', 'TO').address!.local, 'a');
});

test('RCPT TO:<postmaster> without a domain is allowed (RFC 5321 4.5.1)', () => {
  assert.equal(parsePathArgument('TO:<Postmaster>', 'TO').postmasterOnly, true);
});

test('source routes are parsed and dropped; the final mailbox decides', () => {
  const a = parseMailboxPath('@gw.example,@[192.0.2.1]:user@ext.example');
  assert.equal(a.domain, 'ext.example');
  assert.deepEqual(a.sourceRoute, ['gw.example', '[192.0.2.1]']);
});

test('routing characters stay in the local part; the domain alone decides', () => {
  assert.deepEqual([parseMailboxPath('user%ext.example@local.test').local, parseMailboxPath('user%ext.example@local.test').domain], ['user%ext.example', 'local.test']);
  assert.equal(parseMailboxPath('ext.example!user@local.test').domain, 'local.test');
  const q = parseMailboxPath('"user@ext.example"@local.test');
  assert.equal(q.quoted, true);
  assert.equal(q.local, 'user@ext.example');
  assert.equal(q.domain, 'local.test');
});

test('addresses without a domain, double @ and garbage are refused', () => {
  assert.equal(fault(() => parseMailboxPath('"user@ext.example"')), 'needs-domain');
  assert.equal(fault(() => parseMailboxPath('ext.example!user')), 'needs-domain');
  assert.equal(fault(() => parseMailboxPath('user@ext.example@local.test')), 'syntax');
  assert.equal(fault(() => parseMailboxPath('user@ex%61mple.com')), 'syntax');
  assert.equal(fault(() => parseMailboxPath('user@exa mple.com')), 'syntax');
  assert.equal(fault(() => parseMailboxPath('user@-bad.example')), 'syntax');
  assert.equal(fault(() => parseMailboxPath('user@[999.1.1.1]')), 'syntax');
  assert.equal(fault(() => parseMailboxPath('user@1.2.3.4')), 'syntax');
  assert.equal(parsePathArgument('TO:<a@b.example> junk', 'TO').params.get('JUNK'), true, 'a stray word is an (unknown) parameter, refused later with 555');
  assert.equal(fault(() => parsePathArgument('TO:<a@b.example> =x', 'TO')), 'syntax');
  assert.equal(fault(() => parsePathArgument('TO:<a@b.example', 'TO')), 'syntax');
  assert.equal(fault(() => parsePathArgument('TO:<a@b.example>x', 'TO')), 'syntax');
  assert.equal(fault(() => parsePathArgument('TO:<>', 'TO')), 'syntax');
  assert.equal(fault(() => parseMailboxPath(`${'a'.repeat(65)}@b.example`)), 'too-long');
});

test('trailing dot, case and IDN domains are normalised', () => {
  const a = parseMailboxPath('u@Ext.Example.');
  assert.equal(a.domain, 'ext.example');
  assert.equal(a.trailingDot, true);
  const idn = parseMailboxPath('u@bücher.example');
  assert.equal(idn.domain, 'xn--bcher-kva.example');
  assert.equal(idn.utf8, true);
  assert.equal(parseMailboxPath('u@[IPv6:2001:DB8::1]').domain, '[IPv6:2001:db8::1]');
  assert.equal(parseMailboxPath('u@[192.0.2.1]').literal, true);
});

test('formatAddress quotes what needs quoting', () => {
  assert.equal(formatAddress(parseMailboxPath('"a b"@x.example')), '"a b"@x.example');
  assert.equal(formatAddress(parseMailboxPath('a.b@x.example')), 'a.b@x.example');
});
