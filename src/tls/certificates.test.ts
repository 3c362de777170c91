import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Writable } from 'node:stream';
import type { Config } from '../config/schema.js';
import { createLogger, silentLogger, type Logger } from '../log.js';
import { TlsConfigError, TlsManager } from './certificates.js';

const CIPHERS = 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:' +
  'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';
const DAY = 86_400_000;

function tlsConfig(certificates: { cert: string; key: string }[], extra: Partial<Config['tls']> = {}): Config['tls'] {
  return { certificates, min_version: 'TLSv1.2', ciphers: CIPHERS, self_signed: false, ...extra };
}

/** A pino logger whose JSON lines land in `lines`. */
function captureLogger(): { logger: Logger; lines: { level: string; msg: string; [k: string]: unknown }[] } {
  const lines: { level: string; msg: string }[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: createLogger('debug', stream), lines };
}

const tmpDirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-tls-'));
  tmpDirs.push(d);
  return d;
}
after(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A self-signed EC certificate made with the openssl CLI; returns the file paths. */
function makeCert(dir: string, file: string, opts: { cn: string; san?: string[]; days?: number }): { cert: string; key: string } {
  const cert = path.join(dir, `${file}.crt`);
  const key = path.join(dir, `${file}.key`);
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-sha256',
    '-keyout', key, '-out', cert, '-days', String(opts.days ?? 30), '-subj', `/CN=${opts.cn}`];
  if (opts.san) args.push('-addext', `subjectAltName=${opts.san.map((n) => `DNS:${n}`).join(',')}`);
  execFileSync('/usr/bin/openssl', args, { stdio: 'ignore' });
  return { cert, key };
}

function fingerprintOf(file: string): string {
  return new crypto.X509Certificate(fs.readFileSync(file)).fingerprint256;
}

interface Handshake {
  cn: string;
  fingerprint: string;
  protocol: string | null;
  cipher: string;
}

/** Connects, completes the handshake and reports what the server presented. */
function handshake(port: number, opts: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts }, () => {
      const peer = socket.getPeerCertificate();
      const result = { cn: String(peer.subject.CN), fingerprint: peer.fingerprint256, protocol: socket.getProtocol(), cipher: socket.getCipher().name };
      socket.destroy();
      resolve(result);
    });
    socket.on('error', reject);
  });
}

/** An echoing tls.Server with the manager's options; records server-side handshake errors. */
async function startServer(options: tls.TlsOptions): Promise<{ server: tls.Server; port: number; clientErrors: string[]; stop: () => Promise<void> }> {
  const clientErrors: string[] = [];
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer(options, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => clientErrors.push(err.code ?? err.message));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const stop = () => {
    for (const s of sockets) s.destroy();
    return close(server);
  };
  return { server, port: (server.address() as net.AddressInfo).port, clientErrors, stop };
}

/** A plain TCP server that wraps each socket as STARTTLS does: new TLSSocket per connection. */
async function startWrappingServer(manager: TlsManager): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((raw) => {
    const s = new tls.TLSSocket(raw, { isServer: true, ...manager.serverOptions() });
    s.on('error', () => undefined);
    s.on('secure', () => s.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as net.AddressInfo).port };
}

function close(server: net.Server): Promise<void> {
  return new Promise((r) => server.close(() => r()));
}

describe('TlsManager with configured certificates', () => {
  let dir: string;
  let certs: { cert: string; key: string }[];
  let manager: TlsManager;
  let srv: Awaited<ReturnType<typeof startServer>>;

  before(async () => {
    dir = tmpDir();
    certs = [
      makeCert(dir, 'a', { cn: 'a.test', san: ['a.test'] }), // first: the default
      makeCert(dir, 'b', { cn: 'b.test', san: ['b.test', '*.w.test'] }),
      makeCert(dir, 'c', { cn: 'C.Test' }), // no subjectAltName: the CN is its name
      makeCert(dir, 'd', { cn: 'z.w.test', san: ['z.w.test'] }), // exact name inside b's wildcard, listed after b
    ];
    manager = await TlsManager.create({ tls: tlsConfig(certs), hostname: 'mx.test', dataDir: dir, logger: silentLogger() });
    srv = await startServer(manager.serverOptions());
  });
  after(() => srv.stop());

  test('describe() lists the names of each certificate and its expiry', () => {
    assert.equal(manager.available, true);
    const d = manager.describe();
    assert.deepEqual(d.map((c) => c.names), [['a.test'], ['b.test', '*.w.test'], ['c.test'], ['z.w.test']]);
    assert.equal(d[0]!.notAfter, new Date(new crypto.X509Certificate(fs.readFileSync(certs[0]!.cert)).validTo).toISOString());
    assert.ok(d.every((c) => c.selfSigned)); // the openssl test certificates are self-signed
  });

  test('SNI picks the certificate by exact name, case-insensitively', async () => {
    assert.equal((await handshake(srv.port, { servername: 'b.test' })).cn, 'b.test');
    assert.equal((await handshake(srv.port, { servername: 'A.TEST' })).cn, 'a.test');
    assert.equal((await handshake(srv.port, { servername: 'c.test' })).cn, 'C.Test');
  });

  test('SNI falls back to a wildcard one label deep, and an exact name beats a wildcard', async () => {
    assert.equal((await handshake(srv.port, { servername: 'x.w.test' })).cn, 'b.test');
    assert.equal((await handshake(srv.port, { servername: 'z.w.test' })).cn, 'z.w.test');
    assert.equal((await handshake(srv.port, { servername: 'y.x.w.test' })).cn, 'a.test', 'wildcards cover one label only');
    assert.equal((await handshake(srv.port, { servername: 'w.test' })).cn, 'a.test', 'a wildcard does not cover its parent');
  });

  test('an unknown name, or no SNI at all, gets the default (first) certificate', async () => {
    assert.equal((await handshake(srv.port, { servername: 'unknown.example' })).cn, 'a.test');
    assert.equal((await handshake(srv.port)).cn, 'a.test');
  });

  test('TLS 1.2 and 1.3 are accepted; TLS 1.2 uses a configured forward-secret AEAD suite', async () => {
    const t13 = await handshake(srv.port, { servername: 'a.test' });
    assert.equal(t13.protocol, 'TLSv1.3');
    const t12 = await handshake(srv.port, { servername: 'a.test', maxVersion: 'TLSv1.2' });
    assert.equal(t12.protocol, 'TLSv1.2');
    assert.ok(CIPHERS.split(':').includes(t12.cipher), t12.cipher);
  });

  test('TLS 1.1 is refused by policy (the same client completes with a permissive server)', async () => {
    const oldClient: tls.ConnectionOptions = { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' };
    const permissive = await startServer({
      key: fs.readFileSync(certs[0]!.key), cert: fs.readFileSync(certs[0]!.cert), minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0',
    });
    try {
      assert.equal((await handshake(permissive.port, oldClient)).protocol, 'TLSv1.1');
    } finally {
      await permissive.stop();
    }
    srv.clientErrors.length = 0;
    await assert.rejects(handshake(srv.port, oldClient));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(srv.clientErrors, ['ERR_SSL_UNSUPPORTED_PROTOCOL']);
  });

  test('TLS 1.2 without forward secrecy (RSA key exchange) is refused', async () => {
    const rsaDir = tmpDir();
    const rsaCert = path.join(rsaDir, 'r.crt');
    const rsaKey = path.join(rsaDir, 'r.key');
    execFileSync('/usr/bin/openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', rsaKey, '-out', rsaCert,
      '-days', '30', '-subj', '/CN=r.test'], { stdio: 'ignore' });
    const m = await TlsManager.create({ tls: tlsConfig([{ cert: rsaCert, key: rsaKey }]), hostname: 'r.test', dataDir: rsaDir, logger: silentLogger() });
    const s = await startServer(m.serverOptions());
    try {
      assert.equal((await handshake(s.port, { maxVersion: 'TLSv1.2' })).cipher, 'ECDHE-RSA-AES128-GCM-SHA256');
      await assert.rejects(handshake(s.port, { maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256' }));
    } finally {
      await s.stop();
    }
  });

  test('min_version TLSv1.3 refuses TLS 1.2 clients', async () => {
    const m = await TlsManager.create({ tls: tlsConfig(certs, { min_version: 'TLSv1.3' }), hostname: 'mx.test', dataDir: dir, logger: silentLogger() });
    const s = await startServer(m.serverOptions());
    try {
      assert.equal((await handshake(s.port, { servername: 'b.test' })).protocol, 'TLSv1.3');
      await assert.rejects(handshake(s.port, { servername: 'b.test', maxVersion: 'TLSv1.2' }));
    } finally {
      await s.stop();
    }
  });

  test('sockets wrapped with new TLSSocket (STARTTLS) get SNI and the version policy too', async () => {
    const m = await TlsManager.create({ tls: tlsConfig(certs, { min_version: 'TLSv1.3' }), hostname: 'mx.test', dataDir: dir, logger: silentLogger() });
    const s = await startWrappingServer(m);
    try {
      assert.equal((await handshake(s.port, { servername: 'x.w.test' })).cn, 'b.test');
      assert.equal((await handshake(s.port)).cn, 'a.test');
      await assert.rejects(handshake(s.port, { servername: 'b.test', maxVersion: 'TLSv1.2' }));
    } finally {
      await close(s.server);
    }
  });
});

/** Tries a TLS 1.2 renegotiation; resolves 'ok' or the error it met. */
function renegotiate(port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, maxVersion: 'TLSv1.2' }, () => {
      c.on('data', () => undefined);
      c.renegotiate({ rejectUnauthorized: false }, (err) => {
        c.destroy();
        resolve(err ? err.message : 'ok');
      });
      c.write('x');
    });
    c.on('error', (err) => {
      c.destroy();
      resolve(err.message);
    });
  });
}

describe('TlsManager protocol details', () => {
  test('client-initiated TLS 1.2 renegotiation is refused (a plain Node server allows it)', async () => {
    const dir = tmpDir();
    const a = makeCert(dir, 'a', { cn: 'a.test', san: ['a.test'] });
    const m = await TlsManager.create({ tls: tlsConfig([a]), hostname: 'mx.test', dataDir: dir, logger: silentLogger() });
    const plain = await startServer({ key: fs.readFileSync(a.key), cert: fs.readFileSync(a.cert) });
    const ours = await startServer(m.serverOptions());
    try {
      assert.equal(await renegotiate(plain.port), 'ok');
      assert.match(await renegotiate(ours.port), /no renegotiation/);
    } finally {
      await plain.stop();
      await ours.stop();
    }
  });

  test('a certificate file with the chain: intermediates are sent, clients trusting the root verify', async () => {
    const dir = tmpDir();
    const f = (n: string) => path.join(dir, n);
    const ossl = (...args: string[]) => execFileSync('/usr/bin/openssl', args, { stdio: 'ignore' });
    fs.writeFileSync(f('ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
    fs.writeFileSync(f('leaf.ext'), 'subjectAltName=DNS:chain.test\nextendedKeyUsage=serverAuth\n');
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    ossl('req', '-x509', ...ec, '-keyout', f('root.key'), '-out', f('root.crt'), '-days', '30', '-subj', '/CN=Test Root',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    ossl('req', '-new', ...ec, '-keyout', f('int.key'), '-out', f('int.csr'), '-subj', '/CN=Test Intermediate');
    ossl('x509', '-req', '-in', f('int.csr'), '-CA', f('root.crt'), '-CAkey', f('root.key'), '-set_serial', '2', '-days', '30',
      '-extfile', f('ca.ext'), '-out', f('int.crt'));
    ossl('req', '-new', ...ec, '-keyout', f('leaf.key'), '-out', f('leaf.csr'), '-subj', '/CN=chain.test');
    ossl('x509', '-req', '-in', f('leaf.csr'), '-CA', f('int.crt'), '-CAkey', f('int.key'), '-set_serial', '3', '-days', '30',
      '-extfile', f('leaf.ext'), '-out', f('leaf.crt'));
    fs.writeFileSync(f('fullchain.pem'), fs.readFileSync(f('leaf.crt'), 'utf8') + fs.readFileSync(f('int.crt'), 'utf8'));
    fs.writeFileSync(f('wrongorder.pem'), fs.readFileSync(f('int.crt'), 'utf8') + fs.readFileSync(f('leaf.crt'), 'utf8'));

    const { logger, lines } = captureLogger();
    const m = await TlsManager.create({ tls: tlsConfig([{ cert: f('fullchain.pem'), key: f('leaf.key') }]), hostname: 'mx.test', dataDir: dir, logger });
    assert.deepEqual(m.describe(), [{ names: ['chain.test'], notAfter: m.describe()[0]!.notAfter, selfSigned: false }]);
    assert.equal(lines.filter((l) => l.level === 'warn').length, 0, 'a complete chain draws no warning');
    const s = await startServer(m.serverOptions());
    try {
      const h = await handshake(s.port, { servername: 'chain.test', rejectUnauthorized: true, ca: fs.readFileSync(f('root.crt')) });
      assert.equal(h.cn, 'chain.test');
    } finally {
      await s.stop();
    }

    await assert.rejects(
      TlsManager.create({ tls: tlsConfig([{ cert: f('wrongorder.pem'), key: f('leaf.key') }]), hostname: 'mx.test', dataDir: dir, logger: silentLogger() }),
      /^TlsConfigError: tls\.certificates\[0\]: key does not match certificate .*must come first/);

    const bare = captureLogger();
    await TlsManager.create({ tls: tlsConfig([{ cert: f('leaf.crt'), key: f('leaf.key') }]), hostname: 'mx.test', dataDir: dir, logger: bare.logger });
    assert.ok(bare.lines.some((l) => l.level === 'warn' && /no intermediate certificates/.test(l.msg)), 'a leaf without its chain is warned about');
  });
});

describe('TlsManager.reload', () => {
  test('a replaced certificate serves new connections; established ones keep theirs', async () => {
    const dir = tmpDir();
    const a = makeCert(dir, 'a', { cn: 'a.test', san: ['a.test'] });
    const b = makeCert(dir, 'b', { cn: 'b.test', san: ['b.test'] });
    const { logger, lines } = captureLogger();
    const m = await TlsManager.create({ tls: tlsConfig([a, b]), hostname: 'mx.test', dataDir: dir, logger });
    const s = await startServer(m.serverOptions());
    m.onReload(() => s.server.setSecureContext(m.serverOptions()));
    const wrapping = await startWrappingServer(m);
    try {
      const oldA = fingerprintOf(a.cert);
      const oldB = fingerprintOf(b.cert);
      assert.equal((await handshake(s.port, { servername: 'b.test' })).fingerprint, oldB);
      const held = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const c = tls.connect({ host: '127.0.0.1', port: s.port, servername: 'b.test', rejectUnauthorized: false }, () => resolve(c));
        c.on('error', reject);
      });

      const tmp = tmpDir();
      const newA = makeCert(tmp, 'a', { cn: 'a.test', san: ['a.test', 'new.test'] });
      const newB = makeCert(tmp, 'b', { cn: 'b.test', san: ['b.test'] });
      fs.copyFileSync(newA.cert, a.cert);
      fs.copyFileSync(newA.key, a.key);
      fs.copyFileSync(newB.cert, b.cert);
      fs.copyFileSync(newB.key, b.key);
      await m.reload();

      assert.equal((await handshake(s.port, { servername: 'b.test' })).fingerprint, fingerprintOf(b.cert));
      assert.notEqual(fingerprintOf(b.cert), oldB);
      // no SNI: the tls.Server default was refreshed through onReload, the wrapping server per connection
      assert.equal((await handshake(s.port)).fingerprint, fingerprintOf(a.cert));
      assert.equal((await handshake(wrapping.port)).fingerprint, fingerprintOf(a.cert));
      assert.notEqual(fingerprintOf(a.cert), oldA);
      assert.deepEqual(m.describe()[0]!.names, ['a.test', 'new.test']);

      // the connection established before the reload is still up, with its certificate
      assert.equal(held.getPeerCertificate().fingerprint256, oldB);
      const echo = new Promise<string>((resolve) => held.once('data', (d: Buffer) => resolve(d.toString())));
      held.write('ping');
      assert.equal(await echo, 'ping');
      held.destroy();

      const done = lines.find((l) => l.msg === 'TLS certificates reloaded');
      assert.ok(done, 'success is logged');
      assert.deepEqual((done.certificates as { names: string[] }[]).map((c) => c.names), [['a.test', 'new.test'], ['b.test']]);
      assert.ok((done.certificates as { notAfter: string }[]).every((c) => !Number.isNaN(Date.parse(c.notAfter))));
    } finally {
      await s.stop();
      await close(wrapping.server);
    }
  });

  test('a broken file keeps the old certificates in service and the error names the key', async () => {
    const dir = tmpDir();
    const a = makeCert(dir, 'a', { cn: 'a.test', san: ['a.test'] });
    const b = makeCert(dir, 'b', { cn: 'b.test', san: ['b.test'] });
    const { logger, lines } = captureLogger();
    const m = await TlsManager.create({ tls: tlsConfig([a, b]), hostname: 'mx.test', dataDir: dir, logger });
    const s = await startServer(m.serverOptions());
    try {
      const oldB = fingerprintOf(b.cert);
      fs.writeFileSync(b.key, 'not a key\n');
      const err = await m.reload().then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof TlsConfigError);
      assert.equal(err.key, 'tls.certificates[1].key');
      assert.match(err.message, /^tls\.certificates\[1\]\.key: /);
      assert.equal((await handshake(s.port, { servername: 'b.test' })).fingerprint, oldB);
      const logged = lines.find((l) => l.level === 'error');
      assert.ok(logged, 'the failure is logged as an error');
      assert.equal(logged.key, 'tls.certificates[1].key');

      fs.rmSync(a.cert);
      await assert.rejects(m.reload(), (e: Error) => {
        assert.equal(e.message, `tls.certificates[0].cert: cannot read ${a.cert}: ENOENT (no such file)`);
        return true;
      });
      assert.equal((await handshake(s.port, { servername: 'b.test' })).fingerprint, oldB);
      assert.deepEqual(m.describe().map((c) => c.names), [['a.test'], ['b.test']]);
    } finally {
      await s.stop();
    }
  });

  test('concurrent reloads run one after the other and both succeed', async () => {
    const dir = tmpDir();
    const a = makeCert(dir, 'a', { cn: 'a.test', san: ['a.test'] });
    const m = await TlsManager.create({ tls: tlsConfig([a]), hostname: 'mx.test', dataDir: dir, logger: silentLogger() });
    await Promise.all([m.reload(), m.reload()]);
    assert.deepEqual(m.describe().map((c) => c.names), [['a.test']]);
  });
});

describe('TlsManager.create errors', () => {
  test('a key that does not match its certificate', async () => {
    const dir = tmpDir();
    const a = makeCert(dir, 'a', { cn: 'a.test' });
    const b = makeCert(dir, 'b', { cn: 'b.test' });
    await assert.rejects(
      TlsManager.create({ tls: tlsConfig([a, { cert: b.cert, key: a.key }]), hostname: 'mx.test', dataDir: dir, logger: silentLogger() }),
      (e: unknown) => {
        assert.ok(e instanceof TlsConfigError);
        assert.equal(e.key, 'tls.certificates[1]');
        assert.match(e.message, /^tls\.certificates\[1\]: key does not match certificate/);
        return true;
      });
  });

  test('a missing file names the key, the path and the fault', async () => {
    const dir = tmpDir();
    const a = makeCert(dir, 'a', { cn: 'a.test' });
    const missing = path.join(dir, 'nope.pem');
    await assert.rejects(
      TlsManager.create({ tls: tlsConfig([a, { cert: a.cert, key: missing }]), hostname: 'mx.test', dataDir: dir, logger: silentLogger() }),
      { name: 'TlsConfigError', message: `tls.certificates[1].key: cannot read ${missing}: ENOENT (no such file)` });
  });

  test('a certificate file without a PEM certificate', async () => {
    const dir = tmpDir();
    const a = makeCert(dir, 'a', { cn: 'a.test' });
    await assert.rejects(
      TlsManager.create({ tls: tlsConfig([{ cert: a.key, key: a.key }]), hostname: 'mx.test', dataDir: dir, logger: silentLogger() }),
      /^TlsConfigError: tls\.certificates\[0\]\.cert: .* holds no PEM certificate/);
  });

  test('an encrypted key is explained', async () => {
    const dir = tmpDir();
    const a = makeCert(dir, 'a', { cn: 'a.test' });
    const enc = path.join(dir, 'enc.key');
    execFileSync('/usr/bin/openssl', ['pkcs8', '-topk8', '-in', a.key, '-out', enc, '-passout', 'pass:secret'], { stdio: 'ignore' });
    await assert.rejects(
      TlsManager.create({ tls: tlsConfig([{ cert: a.cert, key: enc }]), hostname: 'mx.test', dataDir: dir, logger: silentLogger() }),
      /tls\.certificates\[0\]\.key: .*encrypted keys are not supported/);
  });

  test('a cipher list OpenSSL cannot use names tls.ciphers', async () => {
    const dir = tmpDir();
    const a = makeCert(dir, 'a', { cn: 'a.test' });
    await assert.rejects(
      TlsManager.create({ tls: tlsConfig([a], { ciphers: 'NO-SUCH-CIPHER' }), hostname: 'mx.test', dataDir: dir, logger: silentLogger() }),
      /^TlsConfigError: tls\.ciphers: /);
  });
});

describe('TlsManager expiry warnings', () => {
  test('warns when a certificate expires within 14 days, and when it has expired', async () => {
    const dir = tmpDir();
    const a = makeCert(dir, 'a', { cn: 'a.test', san: ['a.test'], days: 30 });
    const notAfter = new Date(new crypto.X509Certificate(fs.readFileSync(a.cert)).validTo).getTime();
    const warnings = async (now: number) => {
      const { logger, lines } = captureLogger();
      await TlsManager.create({ tls: tlsConfig([a]), hostname: 'mx.test', dataDir: dir, logger, now: () => new Date(now) });
      return lines.filter((l) => l.level === 'warn' && /expire|EXPIRED/.test(l.msg)).map((l) => l.msg);
    };
    assert.deepEqual(await warnings(notAfter - 20 * DAY), []);
    const soon = await warnings(notAfter - 10 * DAY + 60_000);
    assert.equal(soon.length, 1);
    assert.match(soon[0]!, /a\.test expires in 10 days/);
    const expired = await warnings(notAfter + DAY);
    assert.equal(expired.length, 1);
    assert.match(expired[0]!, /a\.test has EXPIRED/);
  });
});

describe('TlsManager self-signed default', () => {
  test('generated once into <data_dir>/tls with private modes, reused on the next start, with a warning', async () => {
    const dataDir = tmpDir();
    const { logger, lines } = captureLogger();
    const opts = { tls: tlsConfig([], { self_signed: true }), hostname: 'mx.example.org', dataDir, logger };
    const m1 = await TlsManager.create(opts);
    assert.equal(m1.available, true);
    const [desc] = m1.describe();
    assert.deepEqual(desc!.names, ['mx.example.org', 'localhost']);
    assert.equal(desc!.selfSigned, true);
    const days = (Date.parse(desc!.notAfter) - Date.now()) / DAY;
    assert.ok(days > 360 && days < 370, `valid about a year, got ${days} days`);

    const certFile = path.join(dataDir, 'tls', 'selfsigned.crt');
    const keyFile = path.join(dataDir, 'tls', 'selfsigned.key');
    assert.equal(fs.statSync(path.join(dataDir, 'tls')).mode & 0o777, 0o700);
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    const x509 = new crypto.X509Certificate(fs.readFileSync(certFile));
    assert.match(x509.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    assert.equal(x509.publicKey.asymmetricKeyType, 'rsa');
    assert.equal(x509.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    const warn = lines.find((l) => l.level === 'warn' && /self-signed/.test(l.msg));
    assert.ok(warn, 'a warning about the self-signed certificate');
    assert.match(warn.msg, /not trust/);
    assert.match(warn.msg, /tls\.certificates/);

    const m2 = await TlsManager.create(opts);
    assert.equal(fingerprintOf(certFile), x509.fingerprint256, 'the stored certificate is reused');
    assert.equal(m2.describe()[0]!.notAfter, desc!.notAfter);
    assert.equal(lines.filter((l) => l.msg === 'TLS: generated a self-signed certificate').length, 1);

    // a client that trusts exactly this certificate verifies it for the hostname
    const s = await startServer(m2.serverOptions());
    try {
      const h = await handshake(s.port, { servername: 'mx.example.org', rejectUnauthorized: true, ca: fs.readFileSync(certFile) });
      assert.equal(h.fingerprint, x509.fingerprint256);
    } finally {
      await s.stop();
    }
  });

  test('regenerated when it has expired or the hostname changed', async () => {
    const dataDir = tmpDir();
    const certFile = path.join(dataDir, 'tls', 'selfsigned.crt');
    const base = { tls: tlsConfig([], { self_signed: true }), dataDir, logger: silentLogger() };
    await TlsManager.create({ ...base, hostname: 'mx.example.org' });
    const first = fingerprintOf(certFile);

    await TlsManager.create({ ...base, hostname: 'mx.example.org', now: () => new Date(Date.now() + 400 * DAY) });
    const second = fingerprintOf(certFile);
    assert.notEqual(second, first, 'expired: regenerated');

    const m = await TlsManager.create({ ...base, hostname: 'mail.example.net' });
    assert.notEqual(fingerprintOf(certFile), second, 'other hostname: regenerated');
    assert.deepEqual(m.describe()[0]!.names, ['mail.example.net', 'localhost']);
  });

  test('a damaged stored key is replaced rather than fatal', async () => {
    const dataDir = tmpDir();
    const opts = { tls: tlsConfig([], { self_signed: true }), hostname: 'mx.example.org', dataDir, logger: silentLogger() };
    await TlsManager.create(opts);
    fs.writeFileSync(path.join(dataDir, 'tls', 'selfsigned.key'), 'garbage');
    const m = await TlsManager.create(opts);
    assert.equal(m.available, true);
  });
});

describe('TlsManager without certificates', () => {
  test('self_signed false: TLS unavailable', async () => {
    const dataDir = tmpDir();
    const m = await TlsManager.create({ tls: tlsConfig([]), hostname: 'mx.test', dataDir, logger: silentLogger() });
    assert.equal(m.available, false);
    assert.deepEqual(m.describe(), []);
    assert.throws(() => m.serverOptions(), TlsConfigError);
    await m.reload();
    assert.equal(fs.existsSync(path.join(dataDir, 'tls')), false, 'nothing generated');
  });
});
