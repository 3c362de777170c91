// A POP3 server started in-process for the end-to-end tests: a temporary data directory, a real
// AccountStore with one user, the real BruteForce over a real SQLite state store, a self-signed
// TlsManager, and listeners on free loopback ports. Plus a small raw POP3 client for dialogues
// where the exact bytes matter.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { Readable, Writable } from 'node:stream';
import { pino } from 'pino';
import { AccountStore, accountsFile, mailboxPath } from '../../src/auth/accounts.js';
import { BruteForce, type BruteForceConfig } from '../../src/auth/brute-force.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { TlsManager } from '../../src/tls/certificates.js';
import { MaildirDelivery } from '../../src/delivery/maildir.js';
import { pop3ConfigSchema, startPop3, type Pop3Server } from '../../src/mailbox/pop3/server.js';
import type { Logger } from '../../src/log.js';
import type { Config } from '../../src/config/schema.js';

export const USER = 'alice@example.org';
export const PASSWORD = 'Correct-Horse-Battery-9';
export const OTHER = 'bob@example.org';
export const OTHER_PASSWORD = 'Another-Strong-Secret-7';

export interface LogLine {
  level: string;
  msg: string;
  event?: string;
  [k: string]: unknown;
}

export interface Harness {
  readonly dir: string;
  readonly server: Pop3Server;
  readonly accounts: AccountStore;
  readonly store: SqliteStore;
  readonly logs: LogLine[];
  readonly plainPort: number;
  readonly tlsPort: number;
  mailbox(user?: string): string;
  /** Delivers through the gateway's own Maildir delivery (as the queue does). */
  deliver(message: Buffer | string, user?: string): Promise<string>;
  close(): Promise<void>;
}

export const bruteForceDefaults: BruteForceConfig = {
  window: 3_600_000, block_time: 900_000, pair_limit: 5, ip_limit: 20, net_limit: 100,
  base_delay: 0, max_delay: 0, spray_accounts: 10, spray_sources: 10, known_network_ttl: 30 * 86_400_000,
};

export async function startHarness(options: {
  pop3?: Record<string, unknown>;
  bruteForce?: Partial<BruteForceConfig>;
  tls?: boolean;
} = {}): Promise<Harness> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-pop3-'));
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim()) logs.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  const logger: Logger = pino({ level: 'debug' }, sink);
  const accounts = AccountStore.open(accountsFile(dir), { hashParams: { ln: 10, r: 8, p: 1, saltBytes: 16, keyBytes: 32 } });
  await accounts.addUser(USER, PASSWORD);
  await accounts.addUser(OTHER, OTHER_PASSWORD);
  const store = SqliteStore.open(path.join(dir, 'state.db'));
  const bruteForce = new BruteForce(store, { ...bruteForceDefaults, ...options.bruteForce });
  const tlsManager = await TlsManager.create({
    tls: {
      certificates: [], min_version: 'TLSv1.2', self_signed: options.tls !== false,
      ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384',
    } satisfies Config['tls'],
    hostname: 'pop.example.org', dataDir: dir, logger,
  });
  const config = pop3ConfigSchema.parse({
    listeners: [
      { name: 'pop3', address: '127.0.0.1', port: 0, tls: 'starttls' },
      ...(options.tls === false ? [] : [{ name: 'pop3s', address: '127.0.0.1', port: 0, tls: 'implicit' }]),
    ],
    ...options.pop3,
  });
  const server = await startPop3({ config, dataDir: dir, accounts, bruteForce, tls: tlsManager, logger });
  const maildir = new MaildirDelivery({ fsync: false, hostname: 'pop.example.org' });
  const port = (name: string) => server.addresses.find((a) => a.name === name)?.port ?? 0;
  return {
    dir, server, accounts, store, logs,
    plainPort: port('pop3'),
    tlsPort: port('pop3s'),
    mailbox: (user = USER) => mailboxPath(dir, user),
    deliver: (message, user = USER) => {
      const buf = Buffer.isBuffer(message) ? message : Buffer.from(message);
      return maildir.deliver(mailboxPath(dir, user), 'INBOX', { size: buf.length, buffers: [buf], stream: () => Readable.from([buf]) });
    },
    async close() {
      await server.close(2000);
      store.close();
      accounts.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A raw POP3 client: lines in, replies (single or multi-line) out, exact bytes kept. */
export class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(public socket: net.Socket) {
    this.listen(socket);
  }

  private listen(s: net.Socket): void {
    s.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    const done = () => {
      this.closed = true;
      this.wake();
    };
    s.on('close', done);
    s.on('error', done);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  static async connect(port: number, opts: { implicitTls?: boolean; localAddress?: string } = {}): Promise<RawClient> {
    const raw = net.connect({ port, host: '127.0.0.1', localAddress: opts.localAddress });
    let sock: net.Socket = raw;
    if (opts.implicitTls) {
      sock = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'pop.example.org' });
      await new Promise<void>((resolve, reject) => {
        sock.once('secureConnect', () => resolve());
        sock.once('error', reject);
      });
    } else {
      await new Promise<void>((resolve, reject) => {
        raw.once('connect', () => resolve());
        raw.once('error', reject);
      });
    }
    return new RawClient(sock);
  }

  /** Waits until `n` bytes-terminated condition holds or the connection closes. */
  private async until(pred: () => number, timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = pred();
      if (n >= 0) return n;
      if (this.closed) return -1;
      if (Date.now() > deadline) throw new Error(`no reply within ${timeoutMs} ms; have ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** One line without CRLF; '' when the connection closed. */
  async line(): Promise<string> {
    const i = await this.until(() => this.buf.indexOf('\r\n'));
    if (i < 0) return '';
    const l = this.buf.subarray(0, i).toString('latin1');
    this.buf = this.buf.subarray(i + 2);
    return l;
  }

  /** A multi-line body after its status line: raw bytes up to and excluding "\r\n.\r\n" (the CRLF before "." included). */
  async multiline(): Promise<Buffer> {
    const end = Buffer.from('\r\n.\r\n');
    // The terminator may directly follow the status line (empty body): "." alone first.
    const i = await this.until(() => (this.buf.subarray(0, 3).equals(Buffer.from('.\r\n')) ? 0 : (() => {
      const k = this.buf.indexOf(end);
      return k < 0 ? -1 : k + 2;
    })()));
    if (i < 0) throw new Error('connection closed inside a multi-line reply');
    const body = this.buf.subarray(0, i);
    this.buf = this.buf.subarray(i + 3);
    return Buffer.from(body);
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async cmd(line: string): Promise<string> {
    this.write(`${line}\r\n`);
    return this.line();
  }

  async starttls(): Promise<void> {
    const secure = tls.connect({ socket: this.socket, rejectUnauthorized: false, servername: 'pop.example.org' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket.removeAllListeners('data');
    this.socket = secure;
    this.listen(secure);
  }

  async waitClosed(timeoutMs = 10_000): Promise<void> {
    await this.until(() => (this.closed ? 0 : -1), timeoutMs).catch(() => undefined);
    if (!this.closed) throw new Error('connection still open');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Connects over implicit TLS and logs in with USER/PASS; returns the client after "+OK Logged in.". */
export async function loggedIn(h: Harness, user = USER, password = PASSWORD): Promise<RawClient> {
  const c = await RawClient.connect(h.tlsPort, { implicitTls: true });
  await c.line();
  const u = await c.cmd(`USER ${user}`);
  if (!u.startsWith('+OK')) throw new Error(`USER: ${u}`);
  const p = await c.cmd(`PASS ${password}`);
  if (p !== '+OK Logged in.') throw new Error(`PASS: ${p}`);
  return c;
}

/** The message as RETR must send it: CRLF line ends (not byte-stuffed). */
export function crlf(message: Buffer): Buffer {
  return Buffer.from(message.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

/** Undoes byte-stuffing of a multi-line body. */
export function unstuff(body: Buffer): Buffer {
  return Buffer.from(body.toString('latin1').split('\r\n').map((l) => (l.startsWith('.') ? l.slice(1) : l)).join('\r\n'), 'latin1');
}
