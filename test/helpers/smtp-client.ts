// A raw SMTP client for dialogue tests: it writes exactly the bytes a test asks for (several
// commands in one write, broken end-of-data sequences, over-long lines) and parses the replies,
// keeping a transcript that assertion messages quote. The polite clients (swaks, smtplib,
// nodemailer) live in clients.ts; this one is for what polite clients never send.
import net from 'node:net';
import tls from 'node:tls';

export interface Reply {
  readonly code: number;
  /** Enhanced status code ("5.7.1") taken from the first line, when there is one. */
  readonly enhanced?: string;
  /** The text of each line, without the code and separator. */
  readonly lines: string[];
  /** All lines' texts joined by "\n". */
  readonly text: string;
  /** The reply as received (lines joined by "\n", without CRLF). */
  readonly raw: string;
}

export interface ConnectOptions {
  host?: string;
  /** Source address, e.g. 127.0.0.2 (Linux routes all of 127/8 to loopback): lets a test be another client. */
  localAddress?: string;
  /** TLS from the first byte (the submissions port). */
  implicitTls?: boolean;
  /** Wait for and parse the greeting (default true). */
  readGreeting?: boolean;
  timeoutMs?: number;
  tlsOptions?: tls.ConnectionOptions;
}

const DEFAULT_TIMEOUT = 10_000;

function printable(s: string, max = 400): string {
  const t = JSON.stringify(s);
  return t.length > max ? `${t.slice(0, max)}…(${s.length} chars)` : t;
}

export class SmtpClient {
  /** Every line sent (C:) and received (S:), plus events (*), for failure messages. */
  readonly transcript: string[] = [];
  greeting?: Reply;
  secure = false;
  private socket: net.Socket;
  private buffer = Buffer.alloc(0);
  private pendingLines: string[] = [];
  private replies: Reply[] = [];
  private waiters: Array<() => void> = [];
  private closedFlag = false;
  private closeWaiters: Array<() => void> = [];
  private readonly onData = (chunk: Buffer) => this.ingest(chunk);
  /** Bytes received in plaintext after the STARTTLS reply and before the handshake. */
  plaintextAfterStartTls: Buffer = Buffer.alloc(0);

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  static async connect(port: number, opts: ConnectOptions = {}): Promise<SmtpClient> {
    const host = opts.host ?? '127.0.0.1';
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT;
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s: net.Socket = opts.implicitTls
        ? tls.connect({ host, port, rejectUnauthorized: false, ...opts.tlsOptions })
        : net.connect({ host, port, localAddress: opts.localAddress });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      s.once(opts.implicitTls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.removeListener('error', reject);
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    const client = new SmtpClient(socket);
    client.secure = Boolean(opts.implicitTls);
    client.transcript.push(`* connected to ${host}:${port}${opts.implicitTls ? ' (implicit TLS)' : ''}`);
    if (opts.readGreeting !== false) client.greeting = await client.readReply(timeoutMs);
    return client;
  }

  private attach(socket: net.Socket): void {
    socket.on('data', this.onData);
    socket.on('error', (err) => {
      this.transcript.push(`* socket error: ${err.message}`);
    });
    socket.on('close', () => {
      if (socket !== this.socket) return;
      this.closedFlag = true;
      this.transcript.push('* connection closed');
      for (const w of this.waiters.splice(0)) w();
      for (const w of this.closeWaiters.splice(0)) w();
    });
  }

  private ingest(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const nl = this.buffer.indexOf(0x0a);
      if (nl < 0) break;
      let line = this.buffer.subarray(0, nl).toString('utf8');
      this.buffer = this.buffer.subarray(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      this.transcript.push(`S: ${line}`);
      this.pendingLines.push(line);
      const m = /^(\d{3})([ -]?)(.*)$/.exec(line);
      if (!m || m[2] !== '-') this.finishReply();
    }
    for (const w of this.waiters.splice(0)) w();
  }

  private finishReply(): void {
    const lines = this.pendingLines.splice(0);
    const first = /^(\d{3})[ -]?(.*)$/.exec(lines[0] ?? '');
    const code = first ? Number(first[1]) : -1;
    const texts = lines.map((l) => /^\d{3}[ -]?(.*)$/.exec(l)?.[1] ?? l);
    const enhanced = /^([245]\.\d{1,3}\.\d{1,3})(?:\s|$)/.exec(texts[0] ?? '')?.[1];
    this.replies.push({ code, enhanced, lines: texts, text: texts.join('\n'), raw: lines.join('\n') });
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** The transcript as text, for assertion messages. */
  describe(): string {
    return `transcript:\n  ${this.transcript.join('\n  ')}`;
  }

  /** Writes bytes exactly as given. */
  write(data: string | Buffer): void {
    const text = typeof data === 'string' ? data : data.toString('latin1');
    this.transcript.push(`C: ${printable(text)}`);
    this.socket.write(data);
  }

  /** Writes one command line, adding CRLF. */
  send(line: string): void {
    this.transcript.push(`C: ${line.length > 300 ? `${line.slice(0, 300)}…(${line.length} chars)` : line}`);
    this.socket.write(`${line}\r\n`);
  }

  /** The next complete reply; rejects on timeout or when the connection closes first. */
  async readReply(timeoutMs = DEFAULT_TIMEOUT): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.replies.shift();
      if (r) return r;
      if (this.closedFlag) throw new Error(`connection closed while waiting for a reply\n${this.describe()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms\n${this.describe()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== wake);
          resolve();
        }, left);
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        this.waiters.push(wake);
      });
    }
  }

  /** Reads `n` replies in order. */
  async readReplies(n: number, timeoutMs = DEFAULT_TIMEOUT): Promise<Reply[]> {
    const out: Reply[] = [];
    for (let i = 0; i < n; i++) out.push(await this.readReply(timeoutMs));
    return out;
  }

  /** Sends a command line and reads its reply. */
  async cmd(line: string, timeoutMs = DEFAULT_TIMEOUT): Promise<Reply> {
    this.send(line);
    return this.readReply(timeoutMs);
  }

  /** Replies that arrive within `ms` (already queued ones included), without waiting for more. */
  async collect(ms: number): Promise<Reply[]> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline && !this.closedFlag) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.replies.splice(0);
  }

  /** Replies parsed but not read yet, and bytes of an unfinished line. */
  unread(): { replies: Reply[]; partial: string } {
    return { replies: [...this.replies], partial: this.buffer.toString('utf8') + this.pendingLines.join('\n') };
  }

  /** EHLO, returning the reply and its keywords (upper case) with their parameters. */
  async ehlo(name = 'client.example.net'): Promise<{ reply: Reply; keywords: Map<string, string> }> {
    const reply = await this.cmd(`EHLO ${name}`);
    const keywords = new Map<string, string>();
    for (const line of reply.lines.slice(1)) {
      const [kw, ...rest] = line.trim().split(/\s+/);
      if (kw) keywords.set(kw.toUpperCase(), rest.join(' '));
    }
    return { reply, keywords };
  }

  /** Sends STARTTLS; on 220 performs the handshake. Returns the STARTTLS reply. */
  async startTls(tlsOptions: tls.ConnectionOptions = {}): Promise<Reply> {
    const r = await this.cmd('STARTTLS');
    if (r.code !== 220) return r;
    await this.upgrade(tlsOptions);
    return r;
  }

  /**
   * Performs the TLS handshake over the current plaintext connection (after a 220 to STARTTLS).
   * Whatever arrived in plaintext after the 220 is kept in plaintextAfterStartTls, not parsed as
   * a TLS-protected reply.
   */
  async upgrade(tlsOptions: tls.ConnectionOptions = {}): Promise<void> {
    const plain = this.socket;
    plain.removeListener('data', this.onData);
    const leftoverText = this.buffer.toString('latin1') + this.pendingLines.join('\n');
    const leftoverReplies = this.replies.splice(0).map((r) => r.raw).join('\n');
    this.plaintextAfterStartTls = Buffer.from(leftoverReplies + leftoverText, 'latin1');
    this.buffer = Buffer.alloc(0);
    this.pendingLines = [];
    this.transcript.push('* TLS handshake');
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: plain, rejectUnauthorized: false, ...tlsOptions });
      const timer = setTimeout(() => reject(new Error(`TLS handshake timed out\n${this.describe()}`)), DEFAULT_TIMEOUT);
      s.once('secureConnect', () => {
        clearTimeout(timer);
        s.removeListener('error', onError);
        resolve(s);
      });
      const onError = (e: Error) => {
        clearTimeout(timer);
        this.transcript.push(`* TLS handshake failed: ${e.message}`);
        reject(e);
      };
      s.once('error', onError);
    });
    this.socket = secure;
    this.secure = true;
    this.attach(secure);
    this.transcript.push(`* TLS established (${secure.getProtocol()})`);
  }

  /** Resolves true when the server closes the connection within `timeoutMs`. */
  waitClosed(timeoutMs = DEFAULT_TIMEOUT): Promise<boolean> {
    if (this.closedFlag) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** QUIT politely (ignoring failures), then close. */
  async quit(): Promise<void> {
    if (!this.closedFlag) {
      try {
        await this.cmd('QUIT', 3000);
      } catch {
        // already gone
      }
    }
    this.close();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** "250 2.0.0 Ok: queued as ABC" → "ABC". */
export function queuedId(r: Reply | string): string | undefined {
  const text = typeof r === 'string' ? r : r.text;
  return /queued as (\S+)/i.exec(text)?.[1];
}

/** Dot-stuffs a message (CRLF line ends) and appends the end-of-data sequence. */
export function dataBlock(message: string | Buffer): Buffer {
  const body = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
  let text = body.toString('latin1');
  text = text.replace(/(^|\r\n)\./g, '$1..');
  if (!text.endsWith('\r\n')) text += '\r\n';
  return Buffer.from(`${text}.\r\n`, 'latin1');
}

export interface SendResult {
  mail: Reply;
  rcpts: Reply[];
  data?: Reply;
  final?: Reply;
}

/**
 * One plain transaction, step by step (MAIL, each RCPT, DATA, content): stops at the first step
 * that cannot go on (MAIL refused, no RCPT accepted, DATA refused).
 */
export async function transaction(
  c: SmtpClient,
  from: string,
  to: string[],
  message: string | Buffer,
  mailParams = '',
): Promise<SendResult> {
  const mail = await c.cmd(`MAIL FROM:<${from}>${mailParams ? ` ${mailParams}` : ''}`);
  const rcpts: Reply[] = [];
  if (mail.code !== 250) return { mail, rcpts };
  for (const r of to) rcpts.push(await c.cmd(`RCPT TO:<${r}>`));
  if (!rcpts.some((r) => r.code === 250)) return { mail, rcpts };
  const data = await c.cmd('DATA');
  if (data.code !== 354) return { mail, rcpts, data };
  c.write(dataBlock(message));
  const final = await c.readReply(30_000);
  return { mail, rcpts, data, final };
}

/** Formats a reply for messages: "550 5.1.1 <x>: ...". */
export function show(r: Reply | undefined): string {
  return r ? r.raw : '(no reply)';
}
