// TLS material for every listener (SMTP STARTTLS on mx/submission, implicit TLS on submissions,
// later IMAP and POP3). Loads the configured certificate/key pairs (or a generated self-signed
// one), picks a certificate per connection by SNI, carries the protocol and cipher policy in
// every context, and swaps everything atomically on reload: new connections see the new
// certificates, connections already established keep theirs, a failed reload changes nothing.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { generate } from 'selfsigned';
import type { TlsConfig } from './config.js';
import type { Logger } from '../log.js';

/** A fault in the TLS configuration or its files; `key` is the configuration key at fault. */
export class TlsConfigError extends Error {
  constructor(readonly key: string, readonly fault: string, options?: { cause?: unknown }) {
    super(`${key}: ${fault}`, options);
    this.name = 'TlsConfigError';
  }
}

export interface CertificateSummary {
  /** DNS names the certificate covers (subjectAltName, or the CN when it has none), lower case. */
  names: string[];
  /** Expiry, ISO 8601. */
  notAfter: string;
  selfSigned: boolean;
}

export interface TlsManagerOptions {
  tls: TlsConfig;
  hostname: string;
  dataDir: string;
  logger: Logger;
  /** Clock, for tests; defaults to the system clock. */
  now?: () => Date;
}

/** A certificate warns in the log when it expires within this many days. */
export const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 86_400_000;
const SELF_SIGNED_KEY = 'tls.self_signed';

interface LoadedCertificate {
  /** Configuration key it came from, e.g. `tls.certificates[1]`. */
  readonly key: string;
  readonly names: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly selfSigned: boolean;
  readonly fingerprint: string;
  readonly certPem: Buffer;
  readonly keyPem: Buffer;
  readonly context: tls.SecureContext;
}

/** One consistent generation of certificates; replaced as a whole by reload(). */
interface Material {
  readonly certs: readonly LoadedCertificate[];
  /** Exact DNS name → first certificate that names it. */
  readonly exact: ReadonlyMap<string, LoadedCertificate>;
  /** Parent of a wildcard (`example.org` for `*.example.org`) → first certificate. */
  readonly wildcard: ReadonlyMap<string, LoadedCertificate>;
}

type Source =
  | { kind: 'files'; pairs: readonly { cert: string; key: string }[] }
  | { kind: 'self-signed'; dir: string }
  | { kind: 'none' };

interface Policy {
  minVersion: tls.SecureVersion;
  ciphers: string;
  honorCipherOrder: true;
  /** TLS 1.2 renegotiation is refused (TLS 1.3 has none). */
  secureOptions: number;
}

export class TlsManager {
  private material: Material | undefined;
  private reloading: Promise<unknown> = Promise.resolve();
  private readonly reloadListeners = new Set<() => void>();

  private constructor(
    private readonly source: Source,
    private readonly policy: Policy,
    private readonly hostname: string,
    private readonly log: Logger,
    private readonly now: () => Date,
  ) {}

  static async create(opts: TlsManagerOptions): Promise<TlsManager> {
    const log = opts.logger.child({ component: 'tls' });
    const policy: Policy = {
      minVersion: opts.tls.min_version,
      ciphers: opts.tls.ciphers,
      honorCipherOrder: true,
      secureOptions: crypto.constants.SSL_OP_NO_RENEGOTIATION,
    };
    try {
      tls.createSecureContext({ ciphers: policy.ciphers });
    } catch (err) {
      throw new TlsConfigError('tls.ciphers', `"${policy.ciphers}" is not usable by this OpenSSL: ${message(err)}`, { cause: err });
    }
    const source: Source = opts.tls.certificates.length > 0
      ? { kind: 'files', pairs: opts.tls.certificates.map((c) => ({ cert: c.cert, key: c.key })) }
      : opts.tls.self_signed
        ? { kind: 'self-signed', dir: path.join(opts.dataDir, 'tls') }
        : { kind: 'none' };
    const manager = new TlsManager(source, policy, opts.hostname.toLowerCase(), log, opts.now ?? (() => new Date()));

    if (source.kind === 'none') {
      log.warn('TLS is unavailable: no certificates are configured (tls.certificates) and tls.self_signed is false; ' +
        'STARTTLS will not be offered, implicit-TLS listeners (submissions) cannot start, and no login is accepted');
      return manager;
    }
    manager.material = await manager.load();
    log.info({ certificates: manager.describe() }, 'TLS certificates loaded');
    if (source.kind === 'self-signed') {
      log.warn({ cert: path.join(source.dir, 'selfsigned.crt'), names: manager.material.certs[0]!.names },
        'TLS uses a self-signed certificate: mail clients will show warnings or refuse to connect, and other mail servers ' +
        'will not trust it (most still encrypt). Configure a real certificate (e.g. from Let\'s Encrypt) under ' +
        'tls.certificates as [{ cert: /path/fullchain.pem, key: /path/privkey.pem }], or set tls.self_signed: false to run without TLS');
    }
    manager.checkExpiry();
    return manager;
  }

  /** True when a certificate is loaded, i.e. STARTTLS can be offered and implicit TLS can listen. */
  get available(): boolean {
    return this.material !== undefined;
  }

  describe(): CertificateSummary[] {
    return (this.material?.certs ?? []).map((c) => ({
      names: [...c.names],
      notAfter: c.notAfter.toISOString(),
      selfSigned: c.selfSigned,
    }));
  }

  /**
   * Options for `tls.createServer()` or `new tls.TLSSocket(socket, { isServer: true, ...opts })`.
   * The SNICallback always uses the current certificates, so a reload reaches SNI clients of any
   * listener. Clients without SNI get the default (first) certificate as of this call: call
   * serverOptions() per connection when wrapping sockets (STARTTLS), and for a `tls.Server`
   * refresh it with `onReload(() => server.setSecureContext(manager.serverOptions()))`.
   */
  serverOptions(): tls.TlsOptions {
    const material = this.material;
    if (!material) {
      throw new TlsConfigError('tls.certificates', 'TLS is unavailable: no certificates are configured and tls.self_signed is false');
    }
    const first = material.certs[0]!;
    return {
      // Used by a TLSSocket; a tls.Server ignores it and builds its default context from key/cert.
      secureContext: first.context,
      key: first.keyPem,
      cert: first.certPem,
      SNICallback: (servername, callback) => callback(null, this.contextFor(servername)),
      ...this.policy,
    };
  }

  /** Registers a function called after each successful reload; returns its removal. */
  onReload(listener: () => void): () => void {
    this.reloadListeners.add(listener);
    return () => this.reloadListeners.delete(listener);
  }

  /**
   * Re-reads every certificate and key (SIGHUP). On success new connections get the new
   * certificates; on failure the previous ones stay in service and the promise rejects with a
   * TlsConfigError naming the key. Concurrent calls run one after another.
   */
  reload(): Promise<void> {
    const run = this.reloading.then(() => this.reloadNow());
    this.reloading = run.catch(() => undefined);
    return run;
  }

  /**
   * Logs a warning for each certificate that has expired, expires within EXPIRY_WARNING_DAYS or
   * is not valid yet. Runs at start and after each reload; a long-running daemon may call it daily.
   */
  checkExpiry(): void {
    const now = this.now().getTime();
    for (const c of this.material?.certs ?? []) {
      const fields = { key: c.key, names: c.names, notAfter: c.notAfter.toISOString() };
      const left = c.notAfter.getTime() - now;
      if (left <= 0) {
        this.log.warn(fields, `TLS certificate for ${c.names.join(', ')} has EXPIRED; clients that verify certificates will refuse it`);
      } else if (left < EXPIRY_WARNING_DAYS * DAY_MS) {
        const days = Math.ceil(left / DAY_MS);
        this.log.warn({ ...fields, daysLeft: days }, `TLS certificate for ${c.names.join(', ')} expires in ${days} day${days === 1 ? '' : 's'}; renew it and reload (SIGHUP)`);
      }
      if (c.notBefore.getTime() > now) {
        this.log.warn({ ...fields, notBefore: c.notBefore.toISOString() }, `TLS certificate for ${c.names.join(', ')} is not valid yet (check the system clock)`);
      }
    }
  }

  private async reloadNow(): Promise<void> {
    if (this.source.kind === 'none') {
      this.log.info('TLS reload: no certificates are configured, nothing to reload');
      return;
    }
    let material: Material;
    try {
      material = await this.load();
    } catch (err) {
      this.log.error({ key: err instanceof TlsConfigError ? err.key : undefined, err: message(err) },
        `TLS reload failed, still serving the previous certificates: ${message(err)}`);
      throw err;
    }
    this.material = material;
    this.log.info({ certificates: this.describe() }, 'TLS certificates reloaded');
    this.checkExpiry();
    for (const listener of this.reloadListeners) {
      try {
        listener();
      } catch (err) {
        this.log.error({ err: message(err) }, 'TLS reload listener failed');
      }
    }
  }

  /** The context for an SNI server name: exact name, then wildcard one label deep, else the default. */
  private contextFor(servername: string): tls.SecureContext {
    const material = this.material!;
    const name = servername.toLowerCase().replace(/\.$/, '');
    const exact = material.exact.get(name);
    if (exact) return exact.context;
    const dot = name.indexOf('.');
    const wild = dot > 0 ? material.wildcard.get(name.slice(dot + 1)) : undefined;
    return (wild ?? material.certs[0]!).context;
  }

  private async load(): Promise<Material> {
    const certs = this.source.kind === 'files'
      ? await Promise.all(this.source.pairs.map((p, i) => this.loadPair(`tls.certificates[${i}]`, p.cert, p.key)))
      : this.source.kind === 'self-signed' ? [await this.loadSelfSigned(this.source.dir)] : [];
    const exact = new Map<string, LoadedCertificate>();
    const wildcard = new Map<string, LoadedCertificate>();
    for (const c of certs) {
      for (const n of c.names) {
        const [map, k] = n.startsWith('*.') ? [wildcard, n.slice(2)] : [exact, n];
        if (!map.has(k)) map.set(k, c);
      }
    }
    return { certs, exact, wildcard };
  }

  private async loadPair(key: string, certPath: string, keyPath: string): Promise<LoadedCertificate> {
    const [certPem, keyPem] = await Promise.all([readFile(`${key}.cert`, certPath), readFile(`${key}.key`, keyPath)]);
    const chainPems = certPem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (chainPems.length === 0) throw new TlsConfigError(`${key}.cert`, `${certPath} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    let chain: crypto.X509Certificate[];
    try {
      chain = chainPems.map((p) => new crypto.X509Certificate(p));
    } catch (err) {
      throw new TlsConfigError(`${key}.cert`, `${certPath}: cannot parse certificate: ${message(err)}`, { cause: err });
    }
    let privateKey: crypto.KeyObject;
    try {
      privateKey = crypto.createPrivateKey(keyPem);
    } catch (err) {
      const encrypted = /ENCRYPTED PRIVATE KEY|Proc-Type: 4,ENCRYPTED/.test(keyPem.toString('latin1'));
      const hint = encrypted ? ' (encrypted keys are not supported; store it decrypted, mode 0600)' : '';
      throw new TlsConfigError(`${key}.key`, `${keyPath} holds no usable private key: ${message(err)}${hint}`, { cause: err });
    }
    const leaf = chain[0]!;
    if (!leaf.checkPrivateKey(privateKey)) {
      throw new TlsConfigError(key, `key does not match certificate (${keyPath} against the first certificate in ${certPath}; ` +
        'the server\'s own certificate must come first, before the intermediates)');
    }
    let context: tls.SecureContext;
    try {
      context = tls.createSecureContext({ cert: certPem, key: keyPem, ...this.policy });
    } catch (err) {
      throw new TlsConfigError(key, `cannot use ${certPath} with ${keyPath}: ${message(err)}`, { cause: err });
    }
    const selfSigned = leaf.issuer === leaf.subject && leaf.verify(leaf.publicKey);
    const names = namesOf(leaf);
    const loaded: LoadedCertificate = {
      key, names, selfSigned, certPem, keyPem, context,
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
      fingerprint: leaf.fingerprint256,
    };
    if (key !== SELF_SIGNED_KEY) this.lintPair(loaded, chain, certPath, keyPath);
    return loaded;
  }

  /** Warnings for pairs that load but will cause trouble. */
  private lintPair(c: LoadedCertificate, chain: crypto.X509Certificate[], certPath: string, keyPath: string): void {
    if (c.names.length === 0) {
      this.log.warn({ key: c.key }, `${certPath} names no DNS host (no subjectAltName DNS entry, no CN); it can only serve as the default`);
    }
    if (!c.selfSigned && chain.length === 1) {
      this.log.warn({ key: c.key }, `${certPath} holds no intermediate certificates; most clients need them (use the full chain, e.g. fullchain.pem)`);
    }
    for (let i = 0; i + 1 < chain.length; i++) {
      if (!chain[i]!.checkIssued(chain[i + 1]!)) {
        this.log.warn({ key: c.key }, `${certPath}: certificate ${i + 2} did not issue certificate ${i + 1}; the chain must run from the server's certificate up`);
        break;
      }
    }
    fs.stat(keyPath).then((st) => {
      if (st.mode & 0o004) this.log.warn({ key: c.key }, `${keyPath} is readable by every user; make it mode 0600 or 0640`);
    }, () => undefined);
  }

  /** The generated certificate in <data_dir>/tls, reused while valid for the hostname. */
  private async loadSelfSigned(dir: string): Promise<LoadedCertificate> {
    const certPath = path.join(dir, 'selfsigned.crt');
    const keyPath = path.join(dir, 'selfsigned.key');
    try {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      await fs.chmod(dir, 0o700);
    } catch (err) {
      throw new TlsConfigError('data_dir', `cannot create ${dir}: ${errorCode(err)}`, { cause: err });
    }
    let existing: LoadedCertificate | undefined;
    try {
      existing = await this.loadPair(SELF_SIGNED_KEY, certPath, keyPath);
    } catch (err) {
      const missing = err instanceof TlsConfigError && err.cause instanceof Error && (err.cause as NodeJS.ErrnoException).code === 'ENOENT';
      if (!missing) this.log.warn({ err: message(err) }, 'TLS: the stored self-signed certificate is unusable; generating a new one');
    }
    if (existing) {
      const left = existing.notAfter.getTime() - this.now().getTime();
      if (!existing.names.includes(this.hostname)) {
        this.log.info({ names: existing.names }, `TLS: the self-signed certificate does not name ${this.hostname}; generating a new one`);
      } else if (left < EXPIRY_WARNING_DAYS * DAY_MS) {
        this.log.info({ notAfter: existing.notAfter.toISOString() }, 'TLS: the self-signed certificate expires soon or has expired; generating a new one');
      } else {
        return existing;
      }
    }
    await this.generateSelfSigned(certPath, keyPath);
    return this.loadPair(SELF_SIGNED_KEY, certPath, keyPath);
  }

  private async generateSelfSigned(certPath: string, keyPath: string): Promise<void> {
    const now = this.now().getTime();
    const altNames: { type: 2 | 7; value?: string; ip?: string }[] = [{ type: 2, value: this.hostname }];
    if (this.hostname !== 'localhost') altNames.push({ type: 2, value: 'localhost' });
    altNames.push({ type: 7, ip: '127.0.0.1' });
    const pems = await generate([{ name: 'commonName', value: this.hostname }], {
      keyType: 'rsa', // RSA rather than EC: some old MTAs still offer only RSA suites.
      keySize: 2048,
      algorithm: 'sha256',
      notBeforeDate: new Date(now - 3_600_000), // an hour of slack for clients with slow clocks
      notAfterDate: new Date(now + 365 * DAY_MS),
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames },
      ],
    });
    try {
      // Key first: a crash in between leaves a mismatched pair, which is regenerated on next start.
      await writePrivateFile(keyPath, pems.private);
      await writePrivateFile(certPath, pems.cert);
    } catch (err) {
      throw new TlsConfigError('data_dir', `cannot write the self-signed certificate to ${path.dirname(certPath)}: ${errorCode(err)}`, { cause: err });
    }
    this.log.info({ cert: certPath, names: altNames.map((a) => a.value ?? a.ip) }, 'TLS: generated a self-signed certificate');
  }
}

/** DNS names of a certificate: its subjectAltName DNS entries, else its subject CN(s); lower case. */
function namesOf(cert: crypto.X509Certificate): string[] {
  const dns = splitNameList(cert.subjectAltName ?? '')
    .filter((e) => e.startsWith('DNS:'))
    .map((e) => unquote(e.slice(4)));
  const names = dns.length > 0
    ? dns
    : cert.subject.split('\n').filter((l) => l.startsWith('CN=')).map((l) => unquote(l.slice(3)));
  return [...new Set(names.map((n) => n.trim().toLowerCase().replace(/\.$/, '')).filter((n) => n.length > 0))];
}

/** Splits Node's "DNS:a, DNS:b, IP Address:…" list, where a value may be a JSON-quoted string. */
function splitNameList(list: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < list.length; i++) {
    const ch = list[i]!;
    if (quoted && ch === '\\') {
      cur += ch + (list[++i] ?? '');
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (!quoted && ch === ',' && list[i + 1] === ' ') {
      out.push(cur);
      cur = '';
      i++;
      continue;
    }
    cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}

function unquote(v: string): string {
  if (!v.startsWith('"')) return v;
  try {
    return String(JSON.parse(v));
  } catch {
    return v.slice(1, -1);
  }
}

async function readFile(key: string, file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    throw new TlsConfigError(key, `cannot read ${file}: ${errorCode(err)}`, { cause: err });
  }
}

async function writePrivateFile(file: string, data: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await fs.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.chmod(tmp, 0o600);
  await fs.rename(tmp, file);
}

const ERRNO_HINTS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'a path component is not a directory',
};

function errorCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (!code) return message(err);
  return ERRNO_HINTS[code] ? `${code} (${ERRNO_HINTS[code]})` : code;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
