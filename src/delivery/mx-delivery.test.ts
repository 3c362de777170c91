// MX delivery against smtp-server receivers on loopback addresses: connection reuse, the
// per-domain connection cap, the down-host cache, the source address, and TLS under the
// policy contract (opportunistic fallback in clear, every attempt recorded).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Readable } from 'node:stream';
import { SMTPServer } from 'smtp-server';
import { MxDelivery, ownAddresses } from './mx-delivery.js';
import { mxDeliveryConfigSchema } from './mx-config.js';
import type { Lookup, RRType, Resolver } from '../dns/types.js';
import type { OutboundTlsPolicy, TlsAttempt } from './outbound-tls.js';
import { silentLogger } from '../log.js';

const content = (text: string) => ({ size: Buffer.byteLength(text), stream: () => Readable.from([Buffer.from(text)]) });

function zone(records: Record<string, Partial<Record<RRType, unknown[]>>>): Resolver {
  return {
    async lookup<T extends RRType>(name: string, type: T): Promise<Lookup<T>> {
      const n = records[name.toLowerCase()];
      if (!n) return { status: 'nxdomain', source: 'dns' };
      const rr = n[type];
      return rr?.length ? { status: 'ok', records: rr as never, ttl: 60, source: 'dns' } : { status: 'nodata', source: 'dns' };
    },
  };
}

interface Receiver { port: number; connections: number; maxOpen: number; remotes: string[]; received: string[]; close: () => Promise<void> }

async function receiver(address: string, port: number, opts: Record<string, unknown> = {}): Promise<Receiver> {
  const r: Receiver = { port, connections: 0, maxOpen: 0, remotes: [], received: [], close: async () => {} };
  let open = 0;
  const server = new SMTPServer({
    logger: false, authOptional: true, disableReverseLookup: true, disabledCommands: ['AUTH', 'STARTTLS'], closeTimeout: 200,
    onConnect(session, cb) {
      r.connections++;
      open++;
      r.maxOpen = Math.max(r.maxOpen, open);
      r.remotes.push(session.remoteAddress);
      cb();
    },
    onClose() { open--; },
    onData(stream, session, cb) {
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => parts.push(c));
      // a slow receiver, so that messages sent together overlap
      stream.on('end', () => setTimeout(() => { r.received.push(`${session.envelope.rcptTo.map((x) => x.address).join(',')} ${Buffer.concat(parts).toString().trim()}`); cb(null, 'ok'); }, 150));
    },
    ...opts,
  } as ConstructorParameters<typeof SMTPServer>[0]);
  server.on('error', () => {});
  await new Promise<void>((res, rej) => { server.server.once('error', rej); server.listen(port, address, () => res()); });
  r.close = () => new Promise<void>((res) => server.close(() => res()));
  return r;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const stops: (() => Promise<void>)[] = [];
after(async () => { for (const s of stops.reverse()) await s(); });

function delivery(port: number, resolver: Resolver, extra: Record<string, unknown> = {}, tls?: OutboundTlsPolicy): MxDelivery {
  const config = mxDeliveryConfigSchema.parse({ port, allow_loopback_mx: true, connect_timeout: '1s', greeting_timeout: '1s', command_timeout: '1s', ...extra });
  const mx = new MxDelivery({ hostname: 'gw.ours.test', config, resolver, ownAddresses: ['127.0.0.1'], logger: silentLogger(), tls });
  stops.push(() => mx.close());
  return mx;
}

test('connections are reused for the next message, and capped per domain', async () => {
  const port = await freePort();
  const rx = await receiver('127.0.0.21', port);
  stops.push(rx.close);
  const mx = delivery(port, zone({ 'cap.test': { MX: [{ priority: 10, exchange: 'mx.cap.test' }] }, 'mx.cap.test': { A: ['127.0.0.21'] } }), { max_connections_per_domain: 2 });
  // one after the other: one connection
  for (let i = 0; i < 3; i++) {
    const [o] = await mx.deliver('cap.test', { from: 'a@ours.test', to: [`r${i}@cap.test`] }, content(`Subject: seq ${i}\r\n\r\nx\r\n`));
    assert.equal(o?.status, 'delivered', o?.reply);
  }
  assert.equal(rx.connections, 1);
  // six at once: never more than two connections open
  const all = await Promise.all(Array.from({ length: 6 }, (_, i) => mx.deliver('cap.test', { from: 'a@ours.test', to: [`p${i}@cap.test`] }, content(`Subject: par ${i}\r\n\r\nx\r\n`))));
  assert.deepEqual(all.map((o) => o[0]!.status), new Array(6).fill('delivered'));
  assert.equal(rx.maxOpen, 2);
  assert.equal(rx.received.length, 9);
});

test('an address that refused is marked down: the next message defers at once without connecting', async () => {
  const port = await freePort();
  const mx = delivery(port, zone({ 'down.test': { MX: [{ priority: 10, exchange: 'mx.down.test' }] }, 'mx.down.test': { A: ['127.0.0.22'] } }), { host_down_delay: '1m' });
  const [first] = await mx.deliver('down.test', { from: 'a@ours.test', to: ['x@down.test'] }, content('x\r\n'));
  assert.equal(first?.status, 'deferred');
  assert.match(first!.reply, /^4\.4\.1 .*mx\.down\.test\[127\.0\.0\.22\]:\d+: connect ECONNREFUSED/);
  const rx = await receiver('127.0.0.22', port); // the host comes back, but is not asked yet
  stops.push(rx.close);
  const [second] = await mx.deliver('down.test', { from: 'a@ours.test', to: ['x@down.test'] }, content('x\r\n'));
  assert.equal(second?.status, 'deferred');
  assert.match(second!.reply, /not tried again yet/);
  assert.equal(rx.connections, 0);
  mx.forgetDownHosts(); // `queue flush`
  const [third] = await mx.deliver('down.test', { from: 'a@ours.test', to: ['x@down.test'] }, content('x\r\n'));
  assert.equal(third?.status, 'delivered', third?.reply);
});

test('the configured source address is used', async () => {
  const port = await freePort();
  const rx = await receiver('127.0.0.23', port);
  stops.push(rx.close);
  const mx = delivery(port, zone({ 'src.test': { A: ['127.0.0.23'] } }), { source_ipv4: '127.0.0.77' });
  const [o] = await mx.deliver('src.test', { from: 'a@ours.test', to: ['x@src.test'] }, content('x\r\n'));
  assert.equal(o?.status, 'delivered', o?.reply);
  assert.deepEqual(rx.remotes, ['127.0.0.77']);
});

test('IPv6: an MX with AAAA and A is reached over IPv6 first', async (t) => {
  const port = await freePort();
  let rx6: Receiver;
  try {
    rx6 = await receiver('::1', port);
  } catch {
    t.skip('no IPv6 loopback on this machine');
    return;
  }
  stops.push(rx6.close);
  const rx4 = await receiver('127.0.0.24', port);
  stops.push(rx4.close);
  const mx = delivery(port, zone({ 'v6.test': { MX: [{ priority: 1, exchange: 'mx.v6.test' }] }, 'mx.v6.test': { A: ['127.0.0.24'], AAAA: ['::1'] } }));
  const [o] = await mx.deliver('v6.test', { from: 'a@ours.test', to: ['x@v6.test'] }, content('x\r\n'));
  assert.equal(o?.status, 'delivered', o?.reply);
  assert.equal(rx6.received.length, 1);
  assert.equal(rx4.received.length, 0);
  const never = delivery(port, zone({ 'v6.test': { MX: [{ priority: 1, exchange: 'mx.v6.test' }] }, 'mx.v6.test': { A: ['127.0.0.24'], AAAA: ['::1'] } }), { ipv6: 'never' });
  const [o4] = await never.deliver('v6.test', { from: 'a@ours.test', to: ['y@v6.test'] }, content('x\r\n'));
  assert.equal(o4?.status, 'delivered', o4?.reply);
  assert.equal(rx4.received.length, 1);
});

test('TLS: a failed opportunistic handshake is retried in clear; required TLS moves on; every attempt recorded', async () => {
  const port = await freePort();
  // offers STARTTLS, then answers the handshake with garbage; in clear it takes the message
  const sockets = new Set<net.Socket>();
  let delivered = 0;
  const broken = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.write('220 broken-tls ESMTP\r\n');
    let tlsStarted = false;
    let inData = false;
    s.on('data', (d) => {
      if (tlsStarted) return void s.end('this is not a TLS record\r\n');
      for (const line of d.toString().split('\r\n').filter(Boolean)) {
        if (inData) {
          if (line === '.') { inData = false; delivered++; s.write('250 2.0.0 taken in clear\r\n'); }
          continue;
        }
        if (/^EHLO/.test(line)) s.write('250-broken-tls\r\n250-STARTTLS\r\n250 PIPELINING\r\n');
        else if (line === 'STARTTLS') { tlsStarted = true; s.write('220 go ahead\r\n'); }
        else if (/^(MAIL|RCPT)/.test(line)) s.write('250 ok\r\n');
        else if (line === 'DATA') { inData = true; s.write('354 go\r\n'); }
        else if (line === 'QUIT') s.end('221 bye\r\n');
      }
    });
  });
  await new Promise<void>((r) => broken.listen(port, '127.0.0.25', () => r()));
  stops.push(() => { for (const s of sockets) s.destroy(); return new Promise<void>((r) => broken.close(() => r())); });
  const attempts: TlsAttempt[] = [];
  const policy = (mode: 'opportunistic' | 'required'): OutboundTlsPolicy => ({
    async forHost(_d, mxHost) { return { mode, servername: mxHost, testing: false, policyType: mode === 'required' ? 'config' : 'no-policy-found', check: () => ({ ok: true }) }; },
    record(a) { attempts.push(a); },
  });
  const resolver = zone({ 'tls.test': { MX: [{ priority: 10, exchange: 'mx.tls.test' }] }, 'mx.tls.test': { A: ['127.0.0.25'] } });
  const opp = delivery(port, resolver, {}, policy('opportunistic'));
  const [o] = await opp.deliver('tls.test', { from: 'a@ours.test', to: ['x@tls.test'] }, content('x\r\n'));
  assert.equal(o?.status, 'delivered', o?.reply);
  assert.equal(delivered, 1);
  // the handshake failure is recorded; the retry in clear is no TLS attempt of its own
  assert.deepEqual(attempts.map((a) => [a.mxHost, a.result]), [['mx.tls.test', 'validation-failure']]);
  assert.equal(attempts[0]!.receivingIp, '127.0.0.25');
  attempts.length = 0;
  const req = delivery(port, resolver, {}, policy('required'));
  const [r] = await req.deliver('tls.test', { from: 'a@ours.test', to: ['x@tls.test'] }, content('x\r\n'));
  assert.equal(r?.status, 'deferred');
  assert.match(r!.reply, /TLS handshake failed/);
  assert.equal(delivered, 1);
  assert.deepEqual(attempts.map((a) => a.result), ['validation-failure']);
  // a policy that says skip: the host is never connected to
  const before = sockets.size;
  const skip = delivery(port, resolver, {}, {
    async forHost(_d, mxHost) { return { mode: 'required', servername: mxHost, testing: false, policyType: 'sts', skip: { reason: 'MX not in the MTA-STS policy', result: 'validation-failure' }, check: () => ({ ok: true }) }; },
    record() {},
  });
  const [k] = await skip.deliver('tls.test', { from: 'a@ours.test', to: ['x@tls.test'] }, content('x\r\n'));
  assert.equal(k?.status, 'deferred');
  assert.match(k!.reply, /mx\.tls\.test: MX not in the MTA-STS policy/);
  assert.equal(sockets.size, before);
});

test('own addresses: a wildcard listener stands for every interface address', () => {
  assert.deepEqual(ownAddresses(['192.0.2.25']), ['192.0.2.25']);
  const all = ownAddresses(['0.0.0.0']);
  assert.ok(all.includes('127.0.0.1'), all.join(' '));
});
