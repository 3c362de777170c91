// The IMAP server started in-process for the end-to-end tests: a temporary data directory, a
// real AccountStore with two users, the real BruteForce over a real SQLite state store, a
// self-signed TlsManager, listeners on free loopback ports. Plus a raw IMAP client for the
// dialogues where exact bytes matter (hostile input, RFC examples).
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
import { imapConfigSchema, startImap, type ImapServer, type JunkTrainEvent } from '../../src/mailbox/imap/index.js';
import type { Logger } from '../../src/log.js';
import type { Config } from '../../src/config/schema.js';

export const USER = 'alice@example.org';
export const PASSWORD = 'Correct-Horse-Battery-9';
export const OTHER = 'bob@example.org';
export const OTHER_PASSWORD = 'Another-Strong-Secret-7';

export interface LogLine { level: number | string; msg: string; event?: string; [k: string]: unknown }

export interface Harness {
  readonly dir: string;
  server: ImapServer;
  readonly logs: LogLine[];
  readonly junk: JunkTrainEvent[];
  plainPort: number;
  tlsPort: number;
  mailbox(user?: string): string;
  deliver(message: Buffer | string, user?: string, folder?: 'INBOX' | 'Junk'): Promise<string>;
  /** Stops the server and starts it again on the same data (UIDs must survive). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export const bruteForceDefaults: BruteForceConfig = {
  window: 3_600_000, block_time: 900_000, pair_limit: 5, ip_limit: 1000, net_limit: 10_000,
  base_delay: 0, max_delay: 0, spray_accounts: 10, spray_sources: 10, known_network_ttl: 30 * 86_400_000,
};

export async function startHarness(options: { imap?: Record<string, unknown>; bruteForce?: Partial<BruteForceConfig>; maxMessageSize?: number } = {}): Promise<Harness> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-imap-'));
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
      certificates: [], min_version: 'TLSv1.2', self_signed: true,
      ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384',
    } satisfies Config['tls'],
    hostname: 'imap.example.org', dataDir: dir, logger,
  });
  const junk: JunkTrainEvent[] = [];
  let ports = { plain: 0, tls: 0 };
  const start = async () => {
    const config = imapConfigSchema.parse({
      listeners: [
        { name: 'imap', address: '127.0.0.1', port: ports.plain, tls: 'starttls' },
        { name: 'imaps', address: '127.0.0.1', port: ports.tls, tls: 'implicit' },
      ],
      ...options.imap,
    });
    const server = await startImap({
      config, dataDir: dir, accounts, bruteForce, tls: tlsManager, logger, maxMessageSize: options.maxMessageSize ?? 10 * 1024 * 1024,
      onJunkTrain: (e) => {
        junk.push(e);
      },
      rescanMs: 1000,
    });
    const port = (name: string) => server.addresses.find((a) => a.name === name)!.port;
    ports = { plain: port('imap'), tls: port('imaps') };
    return server;
  };
  const maildir = new MaildirDelivery({ fsync: false, hostname: 'imap.example.org' });
  const h: Harness = {
    dir, logs, junk,
    server: await start(),
    plainPort: ports.plain,
    tlsPort: ports.tls,
    mailbox: (user = USER) => mailboxPath(dir, user),
    deliver: (message, user = USER, folder = 'INBOX') => {
      const buf = Buffer.isBuffer(message) ? message : Buffer.from(message);
      return maildir.deliver(mailboxPath(dir, user), folder, { size: buf.length, buffers: [buf], stream: () => Readable.from([buf]) });
    },
    async restart() {
      await h.server.close();
      h.server = await start();
    },
    async close() {
      await h.server.close();
      store.close();
      accounts.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

export function message(subject: string, body = 'Hello.\r\n', extra = ''): string {
  return `From: Sender <sender@example.net>\r\nTo: ${USER}\r\nSubject: ${subject}\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n` +
    `Message-ID: <${subject.replace(/\W/g, '')}@example.net>\r\n${extra}\r\n${body}`;
}

export interface Tagged {
  status: string;
  text: string;
  /** Untagged and continuation lines received since the command was sent (literals inline). */
  untagged: string[];
  raw: string;
}

/** A raw IMAP client: exact bytes in and out. */
export class RawImap {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private n = 0;
  closed = false;

  private constructor(public socket: net.Socket) {
    this.listen(socket);
  }

  private listen(s: net.Socket): void {
    s.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    s.on('close', () => {
      this.closed = true;
      this.wake();
    });
    s.on('error', () => {});
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async connect(port: number, secure = false): Promise<RawImap> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s: net.Socket = secure
        ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => resolve(s))
        : net.connect({ port, host: '127.0.0.1' }, () => resolve(s));
      s.once('error', reject);
    });
    const c = new RawImap(socket);
    await c.readUntil((t) => t.includes('\r\n'));
    c.greeting = c.take();
    return c;
  }

  greeting = '';

  /** Everything received and not yet taken. */
  take(): string {
    const s = this.buf.toString('latin1');
    this.buf = Buffer.alloc(0);
    return s;
  }

  async readUntil(done: (text: string) => boolean, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.buf.toString('latin1'))) {
      if (this.closed) break;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout; received so far: ${JSON.stringify(this.buf.toString('latin1').slice(-2000))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.buf.toString('latin1');
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  nextTag(): string {
    return `T${++this.n}`;
  }

  /** Sends `tag command` and returns everything up to its tagged reply. */
  async cmd(command: string | Buffer, tag = this.nextTag(), timeoutMs = 10_000): Promise<Tagged> {
    this.write(Buffer.concat([Buffer.from(`${tag} `), Buffer.isBuffer(command) ? command : Buffer.from(command), Buffer.from('\r\n')]));
    return this.waitTagged(tag, timeoutMs);
  }

  async waitTagged(tag: string, timeoutMs = 10_000): Promise<Tagged> {
    const re = new RegExp(`(^|\\r\\n)${tag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} (OK|NO|BAD)([^\\r\\n]*)\\r\\n`);
    const text = await this.readUntil((t) => re.test(t), timeoutMs);
    const m = re.exec(text);
    if (!m) throw new Error(`connection closed before the reply to ${tag}; received ${JSON.stringify(text.slice(-500))}`);
    const end = m.index + m[0].length;
    const raw = text.slice(0, end);
    this.buf = this.buf.subarray(Buffer.byteLength(raw, 'latin1'));
    const before = raw.slice(0, m.index + m[1]!.length);
    return { status: m[2]!, text: m[3]!.trim(), untagged: before.split('\r\n').filter(Boolean), raw };
  }

  /** STARTTLS and upgrade the socket. */
  async starttls(): Promise<Tagged> {
    const r = await this.cmd('STARTTLS');
    if (r.status !== 'OK') return r;
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    this.socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: plain, rejectUnauthorized: false }, () => resolve(s));
      s.once('error', reject);
    });
    this.listen(this.socket);
    return r;
  }

  async login(user = USER, password = PASSWORD): Promise<Tagged> {
    return this.cmd(`LOGIN ${JSON.stringify(user)} ${JSON.stringify(password)}`);
  }

  close(): void {
    this.socket.destroy();
  }
}
