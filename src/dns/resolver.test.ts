// The resolver against a scripted DNS server on loopback (UDP and TCP), for the failure modes a
// real server rarely shows on demand: truncation, wrong ids, garbage, silence, SERVFAIL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import packet from 'dns-packet';
import { createResolver, systemServers } from './resolver.js';
import { parseServer } from './client.js';
import type { ZoneAnswerer } from './types.js';

// dns-packet encodes the RCODE only from the low bits of `flags`.
const RCODE = { SERVFAIL: 2, NXDOMAIN: 3 };

type Behaviour = (q: packet.Question, req: packet.Packet) => packet.Packet | Buffer | 'silent';

let udp: dgram.Socket;
let tcp: net.Server;
let port = 0;
let udpQueries = 0;
let tcpQueries = 0;
const behaviours = new Map<string, Behaviour>();

const reply = (req: packet.Packet, extra: Partial<packet.Packet>): packet.Packet => ({
  type: 'response', id: req.id, flags: packet.RECURSION_AVAILABLE, questions: req.questions, answers: [], ...extra,
});

function respond(req: packet.Packet): packet.Packet | Buffer | 'silent' {
  const q = req.questions![0]!;
  const b = behaviours.get(q.name.toLowerCase());
  if (b) return b(q, req);
  return reply(req, { flags: RCODE.NXDOMAIN });
}

before(async () => {
  tcp = net.createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      tcpQueries++;
      const req = packet.decode(buf.subarray(2));
      const out = respond(req);
      if (out === 'silent') return;
      const enc = Buffer.isBuffer(out) ? out : packet.encode({ ...out, flags: (out.flags ?? 0) & ~packet.TRUNCATED_RESPONSE });
      const len = Buffer.alloc(2);
      len.writeUInt16BE(enc.length);
      s.end(Buffer.concat([len, enc]));
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  port = (tcp.address() as net.AddressInfo).port;
  udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    udpQueries++;
    const req = packet.decode(msg);
    const out = respond(req);
    if (out === 'silent') return;
    udp.send(Buffer.isBuffer(out) ? out : packet.encode(out), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => udp.bind(port, '127.0.0.1', r));
});

after(() => {
  udp.close();
  tcp.close();
});

const resolver = (over: Partial<Parameters<typeof createResolver>[0]> = {}) => createResolver({
  servers: [`127.0.0.1:${port}`], timeoutMs: 300, attempts: 1, maxInflight: 100, cacheEntries: 1000,
  maxTtlMs: 86_400_000, negativeTtlMs: 300_000, ...over,
});

test('answers A, TXT (chunks kept), MX and PTR with the smallest TTL', async () => {
  behaviours.set('multi.test', (q, req) => {
    const answers: packet.Answer[] = {
      A: [{ type: 'A', name: q.name, ttl: 300, data: '192.0.2.1' }, { type: 'A', name: q.name, ttl: 60, data: '192.0.2.2' }],
      TXT: [{ type: 'TXT', name: q.name, ttl: 120, data: ['v=spf1 ', 'a -all'] }],
      MX: [{ type: 'MX', name: q.name, ttl: 120, data: { preference: 10, exchange: 'mx.multi.test' } }],
    }[q.type as string] as packet.Answer[] ?? [];
    return reply(req, { answers });
  });
  const r = resolver();
  const a = await r.lookup('Multi.Test.', 'A');
  assert.deepEqual(a, { status: 'ok', records: ['192.0.2.1', '192.0.2.2'], ttl: 60, source: 'dns' });
  const txt = await r.lookup('multi.test', 'TXT');
  assert.equal(txt.status, 'ok');
  assert.deepEqual(txt.status === 'ok' && txt.records, [['v=spf1 ', 'a -all']]);
  const mx = await r.lookup('multi.test', 'MX');
  assert.deepEqual(mx.status === 'ok' && mx.records, [{ exchange: 'mx.multi.test', priority: 10 }]);
  const ptr = await r.lookup('multi.test', 'PTR');
  assert.equal(ptr.status, 'nodata');
});

test('caches answers for their TTL and negative answers for the SOA minimum', async () => {
  let clock = 1_000_000;
  let served = 0;
  behaviours.set('cached.test', (q, req) => {
    served++;
    return reply(req, { answers: [{ type: 'A', name: q.name, ttl: 30, data: '192.0.2.9' }] });
  });
  behaviours.set('gone.test', (q, req) => {
    served++;
    return reply(req, {
      flags: RCODE.NXDOMAIN,
      authorities: [{ type: 'SOA', name: 'test', ttl: 3600, data: { mname: 'ns.test', rname: 'h.test', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 10 } }],
    } as Partial<packet.Packet>);
  });
  const r = resolver({ now: () => clock });
  assert.equal((await r.lookup('cached.test', 'A')).source, 'dns');
  const again = await r.lookup('cached.test', 'A');
  assert.equal(again.source, 'cache');
  assert.equal(again.status === 'ok' && again.ttl, 30);
  clock += 31_000;
  assert.equal((await r.lookup('cached.test', 'A')).source, 'dns');
  assert.equal(served, 2);
  assert.equal((await r.lookup('gone.test', 'A')).status, 'nxdomain');
  clock += 9_000;
  assert.equal((await r.lookup('gone.test', 'A')).source, 'cache');
  clock += 2_000;
  assert.equal((await r.lookup('gone.test', 'A')).source, 'dns', 'the negative answer expired after the SOA minimum (10 s)');
  assert.equal(served, 4);
});

test('the cache is bounded and evicts the least recently used entry', async () => {
  behaviours.set('lru1.test', (q, req) => reply(req, { answers: [{ type: 'A', name: q.name, ttl: 300, data: '192.0.2.1' }] }));
  behaviours.set('lru2.test', (q, req) => reply(req, { answers: [{ type: 'A', name: q.name, ttl: 300, data: '192.0.2.2' }] }));
  behaviours.set('lru3.test', (q, req) => reply(req, { answers: [{ type: 'A', name: q.name, ttl: 300, data: '192.0.2.3' }] }));
  const r = resolver({ cacheEntries: 2 });
  await r.lookup('lru1.test', 'A');
  await r.lookup('lru2.test', 'A');
  await r.lookup('lru1.test', 'A'); // lru2 is now the least recently used
  await r.lookup('lru3.test', 'A');
  assert.equal(r.stats().cached, 2);
  assert.equal((await r.lookup('lru1.test', 'A')).source, 'cache');
  assert.equal((await r.lookup('lru2.test', 'A')).source, 'dns');
});

test('a truncated UDP answer is asked again over TCP', async () => {
  const big = Array.from({ length: 40 }, (_, i) => ({ type: 'TXT' as const, name: 'big.test', ttl: 60, data: `record-${i}-${'x'.repeat(100)}` }));
  behaviours.set('big.test', (q, req) => reply(req, { flags: packet.TRUNCATED_RESPONSE, answers: big }));
  const before = tcpQueries;
  const r = resolver();
  const txt = await r.lookup('big.test', 'TXT');
  assert.equal(txt.status, 'ok');
  assert.equal(txt.status === 'ok' && txt.records.length, 40);
  assert.equal(tcpQueries, before + 1);
});

test('silence, SERVFAIL, a wrong question and garbage end in an error, never a hang or a throw', async () => {
  behaviours.set('silent.test', () => 'silent');
  behaviours.set('fail.test', (_q, req) => reply(req, { flags: RCODE.SERVFAIL }));
  behaviours.set('wrong.test', (_q, req) => reply({ ...req, questions: [{ type: 'A', name: 'other.test' }] }, {}));
  behaviours.set('garbage.test', (_q, req) => {
    const b = Buffer.alloc(40, 0xff);
    b.writeUInt16BE(req.id!, 0);
    return b;
  });
  const r = resolver({ attempts: 2 });
  const started = Date.now();
  for (const name of ['silent.test', 'fail.test', 'wrong.test', 'garbage.test']) {
    const l = await r.lookup(name, 'A');
    assert.equal(l.status, 'error', name);
  }
  const s = await r.lookup('silent.test', 'A');
  assert.match(s.status === 'error' ? s.reason : '', /timed out after 300 ms/);
  assert.ok(Date.now() - started < 5_000);
  assert.equal(r.stats().cached, 0, 'errors are not cached without errorTtlMs');
});

test('each failure carries its kind as a code: timeout, servfail, refused, malformed, overload, invalid', async () => {
  behaviours.set('silent2.test', () => 'silent');
  behaviours.set('fail2.test', (_q, req) => reply(req, { flags: RCODE.SERVFAIL }));
  behaviours.set('refused.test', (_q, req) => reply(req, { flags: 5 }));
  behaviours.set('wrong2.test', (_q, req) => reply({ ...req, questions: [{ type: 'A', name: 'other.test' }] }, {}));
  const r = resolver();
  const code = async (name: string) => {
    const l = await r.lookup(name, 'A');
    return l.status === 'error' ? l.code : l.status;
  };
  assert.equal(await code('silent2.test'), 'timeout');
  assert.equal(await code('fail2.test'), 'servfail');
  assert.equal(await code('refused.test'), 'refused');
  assert.equal(await code('wrong2.test'), 'malformed');
  assert.equal(await code('bad..name'), 'invalid');
});

test('a record whose RDLENGTH runs past the end of the packet is malformed, not a shorter record', async () => {
  // A TXT answer encoded whole, then cut inside its data with the RDLENGTH left as it was.
  behaviours.set('cut.test', (q, req) => {
    const whole = packet.encode(reply(req, { answers: [{ type: 'TXT', name: q.name, ttl: 60, data: 'v=spf1 ip4:192.0.2.0/24 -all' }] }));
    return whole.subarray(0, whole.length - 10);
  });
  behaviours.set('whole.test', (q, req) => reply(req, { answers: [{ type: 'TXT', name: q.name, ttl: 60, data: 'v=spf1 -all' }] }));
  const r = resolver();
  const cut = await r.lookup('cut.test', 'TXT');
  assert.equal(cut.status, 'error', JSON.stringify(cut));
  assert.equal(cut.status === 'error' && cut.code, 'malformed');
  assert.equal((await r.lookup('whole.test', 'TXT')).status, 'ok');
});

test('with errorTtlMs, a failed question is remembered that long and then asked again', async () => {
  let clock = 5_000_000;
  let served = 0;
  behaviours.set('flaky.test', (_q, req) => {
    served++;
    return reply(req, { flags: RCODE.SERVFAIL });
  });
  const r = resolver({ errorTtlMs: 5000, now: () => clock });
  assert.equal((await r.lookup('flaky.test', 'A')).status, 'error');
  const again = await r.lookup('flaky.test', 'A');
  assert.equal(again.status, 'error');
  assert.equal(again.source, 'cache');
  clock += 5001;
  assert.equal((await r.lookup('flaky.test', 'A')).source, 'dns');
  assert.equal(served, 2);
});

test('the next server is asked when the first does not answer', async () => {
  behaviours.set('second.test', (q, req) => reply(req, { answers: [{ type: 'A', name: q.name, ttl: 60, data: '192.0.2.77' }] }));
  // 127.0.0.1:9 discards (nobody listens there; ICMP refusal or silence): either way, move on.
  const r = resolver({ servers: ['127.0.0.1:9', `127.0.0.1:${port}`] });
  const a = await r.lookup('second.test', 'A');
  assert.deepEqual(a.status === 'ok' && a.records, ['192.0.2.77']);
});

test('identical questions in flight share one query; the in-flight bound refuses the excess at once', async () => {
  let served = 0;
  behaviours.set('slow.test', (q, req) => {
    served++;
    return 'silent';
  });
  const r = resolver({ maxInflight: 2, timeoutMs: 200 });
  const same = await Promise.all([r.lookup('slow.test', 'A'), r.lookup('slow.test', 'A'), r.lookup('slow.test', 'A')]);
  assert.ok(same.every((l) => l.status === 'error'));
  assert.equal(served, 1);
  const many = await Promise.all(['a', 'b', 'c', 'd'].map((l) => r.lookup(`${l}.slow.test`, 'A')));
  const refused = many.filter((l) => l.status === 'error' && /in flight/.test(l.reason));
  assert.equal(refused.length, 2);
  assert.ok(r.stats().overloaded >= 2);
});

test('invalid names are refused without a query', async () => {
  const r = resolver();
  const before = udpQueries;
  assert.equal((await r.lookup(`${'a'.repeat(64)}.test`, 'A')).status, 'error');
  assert.equal((await r.lookup('a..test', 'A')).status, 'error');
  assert.equal((await r.lookup('x'.repeat(300), 'TXT')).status, 'error');
  assert.equal(udpQueries, before);
});

test('local zone mirrors answer before the cache and the network', async () => {
  const zone: ZoneAnswerer = {
    answer: (name, type) => (name.endsWith('.mirror.test')
      ? (type === 'A' ? { status: 'ok', records: ['127.0.0.2'], ttl: 60, source: 'zone' } : { status: 'nxdomain', source: 'zone' })
      : undefined),
  };
  const r = resolver({ zones: [zone] });
  const before = udpQueries;
  assert.deepEqual(await r.lookup('2.0.0.127.mirror.test', 'A'), { status: 'ok', records: ['127.0.0.2'], ttl: 60, source: 'zone' });
  assert.equal((await r.lookup('2.0.0.127.mirror.test', 'TXT')).status, 'nxdomain');
  assert.equal(udpQueries, before);
  assert.equal(r.stats().zoneAnswers, 2);
});

test('server specs and resolv.conf', () => {
  assert.deepEqual(parseServer('127.0.0.1'), { host: '127.0.0.1', port: 53 });
  assert.deepEqual(parseServer('127.0.0.1:5353'), { host: '127.0.0.1', port: 5353 });
  assert.deepEqual(parseServer('[::1]:54'), { host: '::1', port: 54 });
  assert.deepEqual(parseServer('::1'), { host: '::1', port: 53 });
  assert.throws(() => parseServer('dns.example:53'), /not an IP address/);
  assert.deepEqual(systemServers('/nonexistent/resolv.conf'), ['127.0.0.1']);
});
