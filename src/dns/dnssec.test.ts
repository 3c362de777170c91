// TLSA answers and the AD bit through the real client against the loopback DNS server (dns2, an
// independent implementation): `secure` is set only when the answer had AD *and* the resolver is
// declared validating; the query asks for it (AD in the header, DO in EDNS0, RFC 6840 s5.7).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import packet from 'dns-packet';
import { createResolver } from './resolver.js';
import { query, parseServer } from './client.js';
import { startDnsServer } from '../../test/helpers/dns-server.js';

const digest = Buffer.from('a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90', 'hex');
const dns = await startDnsServer({
  '_25._tcp.mx.secure.test': [
    { type: 'TLSA', data: { usage: 3, selector: 1, matchingType: 1, data: digest } },
    { type: 'TLSA', data: { usage: 2, selector: 0, matchingType: 0, data: Buffer.from('not really a cert') } },
  ],
  'secure.test': [{ type: 'MX', data: { priority: 10, exchange: 'mx.secure.test' } }],
  'plain.test': [{ type: 'MX', data: { priority: 10, exchange: 'mx.plain.test' } }],
  '_25._tcp.mx.broken.test': [{ type: 'SERVFAIL' }],
}, { adFor: (name) => name.endsWith('secure.test') });
after(() => dns.close());

const base = { servers: [dns.server], timeoutMs: 1000, attempts: 1, maxInflight: 10, cacheEntries: 100, maxTtlMs: 3_600_000, negativeTtlMs: 60_000 };

test('TLSA records are decoded (usage, selector, matching type, data) and marked secure from a validating resolver', async () => {
  const r = createResolver({ ...base, dnssecValidating: true });
  const l = await r.lookup('_25._tcp.mx.secure.test', 'TLSA');
  assert.equal(l.status, 'ok');
  if (l.status !== 'ok') return;
  assert.equal(l.secure, true);
  const byUsage = [...l.records].sort((a, b) => a.usage - b.usage);
  assert.deepEqual(byUsage.map((t) => [t.usage, t.selector, t.matchingType]), [[2, 0, 0], [3, 1, 1]]);
  assert.deepEqual(byUsage[1]!.data, digest);
  assert.equal(byUsage[0]!.data.toString(), 'not really a cert');
  // The cache keeps the status.
  const again = await r.lookup('_25._tcp.mx.secure.test', 'TLSA');
  assert.equal(again.source, 'cache');
  assert.equal(again.status === 'ok' && again.secure, true);
});

test('an answer without AD is not secure; AD is ignored unless the resolver is declared validating', async () => {
  const validating = createResolver({ ...base, dnssecValidating: true });
  const plain = await validating.lookup('plain.test', 'MX');
  assert.equal(plain.status, 'ok');
  assert.equal(plain.status === 'ok' && plain.secure, undefined);
  const trusting = createResolver(base);
  const mx = await trusting.lookup('secure.test', 'MX');
  assert.equal(mx.status, 'ok');
  assert.equal(mx.status === 'ok' && mx.secure, undefined);
});

test('a SERVFAIL for TLSA is an error', async () => {
  const r = createResolver({ ...base, dnssecValidating: true });
  const l = await r.lookup('_25._tcp.mx.broken.test', 'TLSA');
  assert.equal(l.status, 'error');
});

test('a DNSSEC query sets AD in the header and DO in EDNS0; a plain one sets neither', async () => {
  const seen: packet.Packet[] = [];
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    const req = packet.decode(msg);
    seen.push(req);
    sock.send(packet.encode({ type: 'response', id: req.id, flags: packet.AUTHENTIC_DATA, questions: req.questions, answers: [] }), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const server = parseServer(`127.0.0.1:${sock.address().port}`);
  try {
    await query('x.test', 'TLSA', { servers: [server], timeoutMs: 1000, attempts: 1, dnssec: true });
    await query('x.test', 'TLSA', { servers: [server], timeoutMs: 1000, attempts: 1 });
  } finally {
    sock.close();
  }
  assert.equal(seen.length, 2);
  const opt = (p: packet.Packet) => p.additionals?.find((a) => a.type === 'OPT') as { flag_do?: boolean } | undefined;
  assert.equal(((seen[0]!.flags ?? 0) & packet.AUTHENTIC_DATA) !== 0, true);
  assert.equal(opt(seen[0]!)?.flag_do, true);
  assert.equal(((seen[1]!.flags ?? 0) & packet.AUTHENTIC_DATA) !== 0, false);
  assert.equal(opt(seen[1]!)?.flag_do, false);
});
