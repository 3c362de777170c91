// The clamd client against a fake clamd (failure injection: timeouts, early replies, errors,
// concurrency). The real daemon is exercised in av-check.test.ts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ClamdClient, ClamdError, parseClamdAddress, parseScanReply, type ClamdAddress } from './clamd.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-fakeclamd-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;

type Behaviour = (req: { command: string; data: Buffer; terminated: boolean }, socket: net.Socket) => void;

interface Fake {
  address: ClamdAddress;
  /** INSTREAM payloads received, reassembled; `terminated` when the zero chunk came. */
  requests: { command: string; data: Buffer; terminated: boolean; chunkSizes: number[] }[];
  close(): Promise<void>;
}

/**
 * A fake clamd. `onRequest` runs when a command is complete (INSTREAM: after the zero chunk);
 * `onChunk` may answer early (returns true when it did).
 */
async function fakeClamd(opts: { tcp?: boolean; onRequest?: Behaviour; onChunk?: (received: number, socket: net.Socket) => boolean } = {}): Promise<Fake> {
  const requests: Fake['requests'] = [];
  const fake = { requests } as Fake;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let req: Fake['requests'][number] | undefined;
    let answered = false;
    socket.on('data', (d: Buffer) => {
      if (answered) return;
      buf = Buffer.concat([buf, d]);
      if (!req) {
        const nul = buf.indexOf(0);
        if (nul < 0) return;
        req = { command: buf.subarray(0, nul).toString(), data: Buffer.alloc(0), terminated: false, chunkSizes: [] };
        requests.push(req);
        buf = buf.subarray(nul + 1);
        if (req.command !== 'zINSTREAM') {
          answered = true;
          (opts.onRequest ?? defaultAnswer)(req, socket);
          return;
        }
      }
      while (buf.length >= 4) {
        const len = buf.readUInt32BE(0);
        if (len === 0) {
          req.terminated = true;
          answered = true;
          (opts.onRequest ?? defaultAnswer)(req, socket);
          return;
        }
        if (buf.length < 4 + len) return;
        req.chunkSizes.push(len);
        req.data = Buffer.concat([req.data, buf.subarray(4, 4 + len)]);
        buf = buf.subarray(4 + len);
        if (opts.onChunk?.(req.data.length, socket)) {
          answered = true;
          return;
        }
      }
    });
  });
  if (opts.tcp) {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    fake.address = { kind: 'tcp', host: '127.0.0.1', port: (server.address() as net.AddressInfo).port };
  } else {
    const p = path.join(tmp, `fake-${n++}.sock`);
    await new Promise<void>((r) => server.listen(p, r));
    fake.address = { kind: 'unix', path: p };
  }
  fake.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return fake;
}

const defaultAnswer: Behaviour = (req, socket) => {
  if (req.command === 'zPING') socket.end('PONG\0');
  else if (req.command === 'zVERSION') socket.end('ClamAV 1.4.6/27000/Thu Nov 28 09:00:00 2024\0');
  else socket.end(req.data.includes('VIRUS') ? 'stream: Fake.Virus FOUND\0' : 'stream: OK\0');
};

test('clamd addresses: socket paths and host:port', () => {
  assert.deepEqual(parseClamdAddress('/run/clamav/clamd.ctl'), { kind: 'unix', path: '/run/clamav/clamd.ctl' });
  assert.deepEqual(parseClamdAddress('unix:/tmp/c.sock'), { kind: 'unix', path: '/tmp/c.sock' });
  assert.deepEqual(parseClamdAddress('127.0.0.1:3310'), { kind: 'tcp', host: '127.0.0.1', port: 3310 });
  assert.deepEqual(parseClamdAddress('tcp://clamav.internal:3310'), { kind: 'tcp', host: 'clamav.internal', port: 3310 });
  assert.deepEqual(parseClamdAddress('[::1]:3310'), { kind: 'tcp', host: '::1', port: 3310 });
  for (const bad of ['clamd', '127.0.0.1', 'host:0', 'host:70000', '']) assert.throws(() => parseClamdAddress(bad), /not a clamd address/, bad);
});

test('clamd replies: OK, FOUND, size limit, ERROR, garbage', () => {
  assert.deepEqual(parseScanReply('stream: OK'), { kind: 'clean' });
  assert.deepEqual(parseScanReply('stream: Win.Test.EICAR_HDB-1 FOUND\0'), { kind: 'virus', signature: 'Win.Test.EICAR_HDB-1' });
  assert.deepEqual(parseScanReply('1: stream: Eicar-Signature FOUND'), { kind: 'virus', signature: 'Eicar-Signature' });
  assert.deepEqual(parseScanReply('INSTREAM size limit exceeded. ERROR'), { kind: 'too-large', limit: 'clamd', bytes: 0 });
  assert.deepEqual(parseScanReply("Can't allocate memory ERROR"), { kind: 'error', reason: "Can't allocate memory" });
  assert.equal(parseScanReply('HELLO').kind, 'error');
});

test('INSTREAM framing: 4-byte big-endian lengths, chunks of at most chunkSize, a zero chunk at the end', async () => {
  const fake = await fakeClamd();
  try {
    const client = new ClamdClient({ address: fake.address, chunkSize: 4096 });
    const data = Buffer.alloc(10_000 + 7);
    for (let i = 0; i < data.length; i++) data[i] = i % 251;
    assert.deepEqual(await client.scanBuffer(data), { kind: 'clean' });
    const req = fake.requests[0]!;
    assert.equal(req.command, 'zINSTREAM');
    assert.ok(req.terminated, 'zero-length chunk sent');
    assert.deepEqual(req.chunkSizes, [4096, 4096, 1815]);
    assert.ok(req.data.equals(data), 'clamd received exactly the bytes');
    // A stream of several pieces, strings included.
    const found = await client.scanStream((async function* () {
      yield Buffer.from('abc');
      yield 'VIRUS';
    })());
    assert.deepEqual(found, { kind: 'virus', signature: 'Fake.Virus' });
  } finally {
    await fake.close();
  }
});

test('PING and VERSION; failures throw ClamdError', async () => {
  const fake = await fakeClamd({ tcp: true });
  try {
    const client = new ClamdClient({ address: fake.address });
    await client.ping();
    assert.match(await client.version(), /^ClamAV 1\.4\.6/);
  } finally {
    await fake.close();
  }
  const gone = new ClamdClient({ address: { kind: 'unix', path: path.join(tmp, 'missing.sock') }, timeoutMs: 1000 });
  await assert.rejects(gone.ping(), ClamdError);
});

test('clamd missing (no socket): unavailable at once, never thrown', async () => {
  const client = new ClamdClient({ address: { kind: 'unix', path: path.join(tmp, 'nothing-here.sock') }, timeoutMs: 5000 });
  const t0 = Date.now();
  const r = await client.scanBuffer(Buffer.from('x'));
  assert.equal(r.kind, 'unavailable');
  assert.match((r as { reason: string }).reason, /ENOENT/);
  assert.ok(Date.now() - t0 < 1000);
});

test('clamd that accepts and never answers: unavailable after the deadline', async () => {
  const fake = await fakeClamd({ onRequest: () => undefined });
  try {
    const client = new ClamdClient({ address: fake.address, timeoutMs: 300 });
    const t0 = Date.now();
    const r = await client.scanBuffer(Buffer.from('hello'));
    const ms = Date.now() - t0;
    assert.equal(r.kind, 'unavailable');
    assert.match((r as { reason: string }).reason, /timed out/);
    assert.ok(ms >= 280 && ms < 2000, `took ${ms} ms`);
  } finally {
    await fake.close();
  }
});

test('clamd that stops reading mid-stream: the deadline still holds', async () => {
  const fake = await fakeClamd({ onChunk: (_n, socket) => (socket.pause(), true) });
  try {
    const client = new ClamdClient({ address: fake.address, timeoutMs: 400 });
    const t0 = Date.now();
    const r = await client.scanBuffer(Buffer.alloc(8 * 1024 * 1024));
    assert.equal(r.kind, 'unavailable');
    assert.ok(Date.now() - t0 < 3000);
  } finally {
    await fake.close();
  }
});

test('our maximum: a longer stream is not sent beyond max_stream', async () => {
  const fake = await fakeClamd();
  try {
    const client = new ClamdClient({ address: fake.address, maxStreamBytes: 100_000, chunkSize: 16 * 1024 });
    const r = await client.scanBuffer(Buffer.alloc(250_000));
    assert.equal(r.kind, 'too-large');
    assert.equal((r as { limit: string }).limit, 'client');
    await new Promise((res) => setTimeout(res, 50));
    const got = fake.requests[0]?.data.length ?? 0;
    assert.ok(got <= 100_000, `clamd received ${got} bytes`);
    // Exactly at the limit is fine.
    assert.deepEqual(await client.scanBuffer(Buffer.alloc(100_000)), { kind: 'clean' });
  } finally {
    await fake.close();
  }
});

test("clamd's StreamMaxLength: the early 'size limit exceeded' reply is a distinct result", async () => {
  const fake = await fakeClamd({
    onChunk: (received, socket) => {
      if (received <= 50_000) return false;
      socket.end('INSTREAM size limit exceeded. ERROR\0');
      return true;
    },
  });
  try {
    const client = new ClamdClient({ address: fake.address, chunkSize: 8192 });
    const r = await client.scanBuffer(Buffer.alloc(2_000_000));
    assert.equal(r.kind, 'too-large');
    assert.equal((r as { limit: string }).limit, 'clamd');
    assert.ok((fake.requests[0]?.data.length ?? 0) < 2_000_000, 'stopped sending');
  } finally {
    await fake.close();
  }
});

test('clamd ERROR replies are errors, not viruses and not clean', async () => {
  const fake = await fakeClamd({ onRequest: (_req, socket) => socket.end("Can't allocate memory ERROR\0") });
  try {
    const r = await new ClamdClient({ address: fake.address }).scanBuffer(Buffer.from('x'));
    assert.deepEqual(r, { kind: 'error', reason: "Can't allocate memory" });
  } finally {
    await fake.close();
  }
});

test('connection closed without an answer: unavailable', async () => {
  const fake = await fakeClamd({ onRequest: (_req, socket) => socket.destroy() });
  try {
    const r = await new ClamdClient({ address: fake.address }).scanBuffer(Buffer.from('x'));
    assert.equal(r.kind, 'unavailable');
  } finally {
    await fake.close();
  }
});

test('bounded concurrency: at most maxConcurrency scans at clamd, waiters give up at their deadline', async () => {
  const held: net.Socket[] = [];
  const fake = await fakeClamd({ onRequest: (_req, socket) => held.push(socket) });
  try {
    const client = new ClamdClient({ address: fake.address, maxConcurrency: 2, timeoutMs: 2000 });
    const scans = Array.from({ length: 5 }, () => client.scanBuffer(Buffer.from('data')));
    // Answer the held ones as they come, one by one.
    let maxPending = 0;
    const answering = (async () => {
      let answered = 0;
      while (answered < 5) {
        // Requests clamd has and has not answered yet: never more than the limit.
        maxPending = Math.max(maxPending, fake.requests.length - answered, client.inFlight);
        const s = held.shift();
        if (s) {
          await new Promise((r) => setTimeout(r, 20));
          s.end('stream: OK\0');
          answered++;
        } else {
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    })();
    const results = await Promise.all(scans);
    await answering;
    assert.deepEqual(results.map((r) => r.kind), ['clean', 'clean', 'clean', 'clean', 'clean']);
    assert.equal(maxPending, 2);
    assert.equal(client.inFlight, 0);

    // Both slots held and never answered: a third scan gives up at its deadline.
    const stuck = new ClamdClient({ address: fake.address, maxConcurrency: 1, timeoutMs: 200 });
    const [a, b] = await Promise.all([stuck.scanBuffer(Buffer.from('1')), stuck.scanBuffer(Buffer.from('2'))]);
    assert.equal(a.kind, 'unavailable');
    assert.equal(b.kind, 'unavailable');
    assert.match((b as { reason: string }).reason, /no free clamd slot|timed out/);
  } finally {
    await fake.close();
  }
});
