// One outbound SMTP (or LMTP) session: connect, greeting, EHLO, STARTTLS under a TLS policy,
// then transactions that pipeline (RFC 2920) where the server offers PIPELINING.
//
// Why not nodemailer's SMTPConnection (used by relay.ts): in nodemailer 8.0.11,
// lib/smtp-connection/index.js sends MAIL FROM and waits for its reply before the first RCPT
// (_actionMAIL is a response action), and sends DATA only from _actionRCPT once every RCPT
// reply is in, so a transaction costs three round trips even with PIPELINING; RFC 2920 lets
// MAIL, all RCPTs and DATA go in one write. It also hides each recipient's reply and the TLS
// peer behind its own state machine, which the TLS policy (outbound-tls.ts) needs to see.
//
// Bounded on every axis: reply lines (MAX_LINE octets), lines per reply (MAX_LINES), and a
// timeout for every wait (RFC 5321 4.5.3.2: greeting 5 min, MAIL/RCPT 5 min, DATA initiation
// 2 min, each data block 3 min, the final "." 10 min; connect 30 s as Postfix's default).
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import type { HostTlsPolicy, TlsResultType } from './outbound-tls.js';
import type { Content } from './types.js';

export interface SmtpTimeouts {
  readonly connect: number;
  readonly greeting: number;
  /** EHLO, STARTTLS, MAIL, RCPT, RSET, QUIT. */
  readonly command: number;
  readonly dataInit: number;
  /** Silence allowed while the server takes our data (per write). */
  readonly dataBlock: number;
  /** The reply(ies) to the final ".". */
  readonly dataDone: number;
}

export const RFC5321_TIMEOUTS: SmtpTimeouts = {
  connect: 30_000, greeting: 300_000, command: 300_000, dataInit: 120_000, dataBlock: 180_000, dataDone: 600_000,
};

/** Longest reply line we read (RFC 5321 4.5.3.1.5 says 512; real servers send longer), lines per reply. */
export const MAX_LINE = 4096;
export const MAX_LINES = 100;

export interface Reply {
  readonly code: number;
  /** The lines without their code, joined with a space; the enhanced code left in. */
  readonly text: string;
}

export const formatReply = (r: Reply): string => `${r.code} ${r.text}`.trim();

export interface SessionOptions {
  /** The address to connect to (an IP literal; a relay route may give a host name). */
  readonly address: string;
  readonly port: number;
  /** The host name we connect to, for messages. */
  readonly host: string;
  /** Our source address, if any (must be of the address's family). */
  readonly localAddress?: string;
  /** EHLO / LHLO name. */
  readonly hostname: string;
  readonly lmtp?: boolean;
  readonly timeouts?: Partial<SmtpTimeouts>;
  /** What TLS this host demands; undefined: none at all. */
  readonly tls?: HostTlsPolicy;
  /** Opportunistic fallback: the handshake failed before, so do not try STARTTLS this time. */
  readonly skipStartTls?: boolean;
  /** Called once when the session ends, whoever ended it (a pool's bookkeeping). */
  readonly onClose?: () => void;
}

export type FailureKind = 'network' | 'timeout' | 'protocol' | 'reply' | 'tls';

/** A session that could not be set up, or broke: `reply` when the server said no. */
export class SmtpClientError extends Error {
  constructor(
    message: string,
    readonly kind: FailureKind,
    readonly stage: string,
    readonly reply?: Reply,
    /** TLS outcome when the failure is TLS's (for TLS-RPT). */
    readonly tlsResult?: TlsResultType,
  ) {
    super(message);
  }
  /** A 5xx from the server at this stage (not a transient failure). */
  get permanent(): boolean {
    return this.kind === 'reply' && this.reply !== undefined && this.reply.code >= 500;
  }
}

export interface Envelope {
  readonly from: string;
  readonly to: readonly string[];
  /** '8BITMIME' (default) declares BODY=8BITMIME where offered; '7BIT' declares nothing. */
  readonly body?: '7BIT' | '8BITMIME';
}

export interface TransactionResult {
  /** The MAIL reply (undefined when the session broke before it). */
  readonly mail?: Reply;
  /** One per recipient, in order (missing entries: no reply came). */
  readonly rcpt: (Reply | undefined)[];
  /** DATA's reply. */
  readonly data?: Reply;
  /** After the ".": one reply (SMTP) or one per accepted recipient (LMTP). */
  readonly done: Reply[];
  /** The session broke (or timed out) before the transaction's end: the reason. */
  readonly broken?: SmtpClientError;
  /** A refusal we decided ourselves (SIZE, SMTPUTF8), with the reply to give all recipients. */
  readonly refused?: string;
  /** The DATA content went out (in part or whole): retrying elsewhere could duplicate it. */
  readonly dataSent: boolean;
}

export interface TlsState {
  /** STARTTLS succeeded and the policy's check passed (or was not binding). */
  readonly secure: boolean;
  /** The attempt's result for TLS-RPT; undefined when TLS was not attempted by policy. */
  readonly result?: TlsResultType;
  readonly detail?: string;
}

export class SmtpSession {
  private socket: net.Socket;
  private buf = '';
  private replies: Reply[] = [];
  private waiters: { resolve: (r: Reply) => void; reject: (e: SmtpClientError) => void }[] = [];
  private failure?: SmtpClientError;
  private pendingLines: string[] = [];
  readonly timeouts: SmtpTimeouts;
  extensions = new Map<string, string>();
  tls: TlsState = { secure: false };
  /** Our source address and port as the socket has them. */
  localAddress = '';
  private closed = false;
  /** The last transaction ended in an unknown state (RSET needed before the next). */
  needsReset = false;

  private constructor(private readonly opts: SessionOptions, socket: net.Socket) {
    this.socket = socket;
    this.timeouts = { ...RFC5321_TIMEOUTS, ...opts.timeouts };
    this.attach(socket);
  }

  get where(): string {
    return where(this.opts);
  }

  get isClosed(): boolean {
    return this.closed || this.failure !== undefined;
  }

  /** Connects, reads the greeting, says EHLO (HELO if refused) and STARTTLS per the policy. */
  static async open(opts: SessionOptions): Promise<SmtpSession> {
    const timeouts = { ...RFC5321_TIMEOUTS, ...opts.timeouts };
    const at = where(opts);
    const socket = net.connect({ host: opts.address, port: opts.port, localAddress: opts.localAddress, noDelay: true });
    const s = new SmtpSession(opts, socket);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new SmtpClientError(`${at}: connect timed out after ${span(timeouts.connect)}`, 'timeout', 'connect')), timeouts.connect);
        socket.once('connect', () => { clearTimeout(timer); resolve(); });
        socket.once('error', (e) => { clearTimeout(timer); reject(new SmtpClientError(prefixed(at, e.message), 'network', 'connect')); });
      });
      s.localAddress = socket.localAddress ?? '';
      const greeting = await s.read(timeouts.greeting, 'greeting');
      if (greeting.code !== 220) throw s.refusal('greeting', greeting);
      await s.hello();
      await s.startTls();
      return s;
    } catch (err) {
      s.close();
      throw err instanceof SmtpClientError ? err : new SmtpClientError(prefixed(at, (err as Error).message), 'network', 'connect');
    }
  }

  private async hello(): Promise<void> {
    const verb = this.opts.lmtp ? 'LHLO' : 'EHLO';
    let r = await this.command(`${verb} ${this.opts.hostname}`, this.timeouts.command, verb);
    if (r.code !== 250 && !this.opts.lmtp && r.code >= 500) {
      // RFC 5321 3.2: a server that does not know EHLO gets HELO (no extensions then)
      r = await this.command(`HELO ${this.opts.hostname}`, this.timeouts.command, 'HELO');
      if (r.code !== 250) throw this.refusal('HELO', r);
      this.extensions = new Map();
      return;
    }
    if (r.code !== 250) throw this.refusal(verb, r);
    this.extensions = parseExtensions(this.lastLines);
  }

  private async startTls(): Promise<void> {
    const policy = this.opts.tls;
    if (!policy || policy.mode === 'none' || this.opts.skipStartTls) return;
    if (!this.extensions.has('STARTTLS')) {
      if (policy.mode === 'required' && !policy.testing) {
        throw new SmtpClientError(`${this.where}: TLS is required but the server does not offer STARTTLS`, 'tls', 'STARTTLS', undefined, 'starttls-not-supported');
      }
      this.tls = { secure: false, result: 'starttls-not-supported', detail: 'STARTTLS not offered' };
      return;
    }
    const r = await this.command('STARTTLS', this.timeouts.command, 'STARTTLS');
    if (r.code !== 220) {
      if (policy.mode === 'required' && !policy.testing) {
        throw new SmtpClientError(`${this.where}: TLS is required but STARTTLS was refused: ${formatReply(r)}`, 'tls', 'STARTTLS', r, 'starttls-not-supported');
      }
      this.tls = { secure: false, result: 'starttls-not-supported', detail: `STARTTLS refused: ${formatReply(r)}` };
      return;
    }
    const raw = this.socket;
    this.detach(raw);
    raw.on('error', () => {}); // the TLS socket reports what matters from here on
    // Anything the server sent after its 220 came in clear and must not be read as a reply
    // inside TLS (the STARTTLS injection of CVE-2011-0411).
    this.buf = '';
    this.replies = [];
    // rejectUnauthorized false: the policy's check decides (it sees the socket's own verdict).
    const secure = tls.connect({
      socket: raw, servername: net.isIP(policy.servername) ? undefined : policy.servername,
      ca: policy.ca ? [...tls.rootCertificates, ...policy.ca] : undefined, rejectUnauthorized: false, minVersion: 'TLSv1.2',
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`TLS handshake timed out after ${span(this.timeouts.command)}`)), this.timeouts.command);
        secure.once('secureConnect', () => { clearTimeout(timer); resolve(); });
        secure.once('error', (e) => { clearTimeout(timer); reject(e); });
        raw.once('close', () => { clearTimeout(timer); reject(new Error('connection closed during the TLS handshake')); });
      });
    } catch (err) {
      secure.destroy();
      raw.destroy();
      this.closed = true;
      throw new SmtpClientError(`${this.where}: TLS handshake failed: ${(err as Error).message}`, 'tls', 'TLS handshake', undefined, 'validation-failure');
    }
    this.socket = secure;
    this.attach(secure);
    const check = policy.check(secure.getPeerCertificate(true), secure.authorized, secure.authorizationError ? String(secure.authorizationError) : undefined);
    if (!check.ok) {
      if (policy.mode === 'required' && !policy.testing) {
        this.close();
        throw new SmtpClientError(`${this.where}: TLS certificate refused: ${check.reason}`, 'tls', 'TLS check', undefined, check.result);
      }
      this.tls = { secure: true, result: check.result, detail: check.reason };
    } else {
      this.tls = { secure: true, result: 'success' };
    }
    // RFC 3207 4.2: forget what we knew and say EHLO again.
    await this.hello();
  }

  /** One transaction: pipelined where the server offers PIPELINING. Never throws. */
  async send(env: Envelope, content: Content): Promise<TransactionResult> {
    const rcpt: (Reply | undefined)[] = env.to.map(() => undefined);
    const result = (extra: Partial<TransactionResult>): TransactionResult => ({ rcpt, done: [], dataSent: false, ...extra });
    if (this.failure) return result({ broken: this.failure });
    const maxSize = Number(this.extensions.get('SIZE') ?? 0);
    if (maxSize > 0 && content.size > maxSize) return result({ refused: `5.3.4 message of ${content.size} octets exceeds the ${maxSize} octets ${this.opts.host} accepts (SIZE)` });
    const utf8 = [env.from, ...env.to].some((a) => /[^\x00-\x7f]/.test(a));
    if (utf8 && !this.extensions.has('SMTPUTF8')) return result({ refused: `5.6.7 ${this.opts.host} does not support SMTPUTF8, which the addresses need (RFC 6531)` });
    const params = [
      ...(this.extensions.has('SIZE') ? [`SIZE=${content.size}`] : []),
      ...(env.body !== '7BIT' && this.extensions.has('8BITMIME') ? ['BODY=8BITMIME'] : []),
      ...(utf8 ? ['SMTPUTF8'] : []),
    ];
    const mailCmd = `MAIL FROM:<${env.from}>${params.length ? ` ${params.join(' ')}` : ''}`;
    const rcptCmds = env.to.map((a) => `RCPT TO:<${a}>`);
    this.needsReset = true;
    let mail: Reply | undefined;
    let data: Reply | undefined;
    try {
      if (this.extensions.has('PIPELINING')) {
        // RFC 2920 3.1: MAIL, every RCPT and DATA in one write; the replies come in order.
        this.write([mailCmd, ...rcptCmds, 'DATA'].map((c) => `${c}\r\n`).join(''));
        mail = await this.read(this.timeouts.command, 'MAIL');
        for (let i = 0; i < rcpt.length; i++) rcpt[i] = await this.read(this.timeouts.command, 'RCPT');
        data = await this.read(this.timeouts.dataInit, 'DATA');
      } else {
        mail = await this.command(mailCmd, this.timeouts.command, 'MAIL');
        if (mail.code !== 250) return result({ mail });
        for (let i = 0; i < rcpt.length; i++) rcpt[i] = await this.command(rcptCmds[i]!, this.timeouts.command, 'RCPT');
        if (!rcpt.some((r) => r && r.code >= 200 && r.code < 300)) return result({ mail });
        data = await this.command('DATA', this.timeouts.dataInit, 'DATA');
      }
    } catch (err) {
      return result({ mail, broken: err as SmtpClientError });
    }
    const accepted = rcpt.filter((r) => r && r.code >= 200 && r.code < 300).length;
    if (data.code !== 354) {
      // MAIL or every RCPT refused (DATA then gets 503/554), or DATA itself refused.
      return result({ mail, data });
    }
    if (mail.code !== 250 || accepted === 0) {
      // A server that says 354 with no valid recipient (RFC 2920 says it must not): end the
      // empty data at once, as Postfix does, and ignore its reply.
      try {
        this.write('.\r\n');
        await this.read(this.timeouts.dataDone, 'end of data');
      } catch (err) {
        return result({ mail, data, broken: err as SmtpClientError });
      }
      return result({ mail, data });
    }
    try {
      await this.writeData(content);
    } catch (err) {
      return result({ mail, data, dataSent: true, broken: err as SmtpClientError });
    }
    const done: Reply[] = [];
    try {
      const expected = this.opts.lmtp ? accepted : 1;
      for (let i = 0; i < expected; i++) done.push(await this.read(this.timeouts.dataDone, 'end of data'));
    } catch (err) {
      return result({ mail, data, done, dataSent: true, broken: err as SmtpClientError });
    }
    // after the reply to the data the server has reset its state (RFC 5321 4.1.1.4)
    this.needsReset = false;
    return result({ mail, data, done, dataSent: true });
  }

  /** RSET; false when the session is unusable. */
  async reset(): Promise<boolean> {
    try {
      const r = await this.command('RSET', this.timeouts.command, 'RSET');
      this.needsReset = r.code !== 250;
      return r.code === 250;
    } catch {
      return false;
    }
  }

  /** QUIT politely (bounded), then close. */
  async quit(): Promise<void> {
    if (this.isClosed) return this.close();
    try {
      await this.command('QUIT', Math.min(this.timeouts.command, 5_000), 'QUIT');
    } catch {
      // the server went away first: fine
    }
    this.close();
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
    this.fail(new SmtpClientError(`${this.where}: connection closed`, 'network', 'close'));
  }

  // ---- the wire ----------------------------------------------------------------------------

  private lastLines: string[] = [];

  private attach(socket: net.Socket): void {
    socket.setEncoding('utf8'); // SMTPUTF8 replies; the decoder keeps characters split across chunks whole
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  private detach(socket: net.Socket): void {
    socket.off('data', this.onData);
    socket.off('error', this.onError);
    socket.off('close', this.onClose);
  }

  private readonly onData = (chunk: string) => {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      this.onLine(line);
      if (this.failure) return;
    }
    if (this.buf.length > MAX_LINE) this.protocolError(`reply line longer than ${MAX_LINE} octets`);
  };

  private onLine(line: string): void {
    if (line.length > MAX_LINE) return this.protocolError(`reply line longer than ${MAX_LINE} octets`);
    const m = /^([2-5]\d\d)([ -]|$)(.*)$/.exec(line);
    if (!m) return this.protocolError(`not an SMTP reply: ${JSON.stringify(line.slice(0, 80))}`);
    this.pendingLines.push(m[3]!);
    if (this.pendingLines.length > MAX_LINES) return this.protocolError(`reply of more than ${MAX_LINES} lines`);
    if (m[2] === '-') return;
    const lines = this.pendingLines;
    this.pendingLines = [];
    this.lastLines = lines;
    const reply: Reply = { code: Number(m[1]), text: lines.join(' ').trim() };
    const w = this.waiters.shift();
    if (w) w.resolve(reply);
    else if (this.replies.length < MAX_LINES) this.replies.push(reply);
    else this.protocolError('too many replies we did not ask for');
  }

  private readonly onError = (e: Error) => this.fail(new SmtpClientError(prefixed(this.where, e.message), 'network', 'connection'));
  private readonly onClose = () => this.fail(new SmtpClientError(`${this.where}: connection closed by the server`, 'network', 'connection'));

  private protocolError(what: string): void {
    this.fail(new SmtpClientError(`${this.where}: protocol error: ${what}`, 'protocol', 'reply'));
    this.socket.destroy();
  }

  private fail(err: SmtpClientError): void {
    if (this.failure) return;
    this.failure = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.opts.onClose?.();
  }

  private write(text: string): void {
    if (this.failure) throw this.failure;
    this.socket.write(text, 'utf8'); // SMTPUTF8 addresses (RFC 6531); ASCII otherwise
  }

  /** The next reply, within ms; the session fails (and closes) when it does not come. */
  private read(ms: number, stage: string): Promise<Reply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = new SmtpClientError(`${this.where}: no reply to ${stage} within ${span(ms)}`, 'timeout', stage);
        this.fail(err);
        this.socket.destroy();
      }, ms);
      this.waiters.push({
        resolve: (r) => { clearTimeout(timer); resolve(r); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
    });
  }

  private command(line: string, ms: number, stage: string): Promise<Reply> {
    try {
      this.write(`${line}\r\n`);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.read(ms, stage);
  }

  private refusal(stage: string, r: Reply): SmtpClientError {
    return new SmtpClientError(`${this.where} said to ${stage}: ${formatReply(r)}`, 'reply', stage, r);
  }

  /** Streams the content dot-stuffed (RFC 5321 4.5.2), then CRLF "." CRLF; honours backpressure. */
  private async writeData(content: Content): Promise<void> {
    const stuffer = new DotStuffer();
    const socket = this.socket;
    if (content.buffers) {
      // In memory already: the message and its end in one write (a write costs tens of
      // microseconds; docs/benchmarks.md).
      const body = stuffer.push(Buffer.concat(content.buffers as Buffer[]));
      if (!socket.write(Buffer.concat([body, stuffer.end()]))) await this.drained();
      return;
    }
    const src = content.stream();
    try {
      for await (const chunk of src) {
        if (this.failure) throw this.failure;
        const out = stuffer.push(chunk as Buffer);
        if (!socket.write(out)) await this.drained();
      }
      socket.write(stuffer.end());
    } catch (err) {
      src.destroy();
      if (err instanceof SmtpClientError) throw err;
      const e = new SmtpClientError(`reading the queued message failed: ${(err as Error).message}`, 'network', 'data');
      this.fail(e);
      this.socket.destroy();
      throw e;
    }
  }

  private async drained(): Promise<void> {
    const ms = this.timeouts.dataBlock;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), ms);
    try {
      await Promise.race([
        once(this.socket, 'drain', { signal: ac.signal }),
        once(this.socket, 'close', { signal: ac.signal }).then(() => { throw this.failure ?? new Error('closed'); }),
      ]);
    } catch (err) {
      if (err instanceof SmtpClientError) throw err;
      const e = this.failure ?? new SmtpClientError(`${this.where}: the server took no data for ${span(ms)}`, 'timeout', 'data');
      this.fail(e);
      this.socket.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
  }
}

/** "host[address]:port", or "address:port" when the host is the address. */
function where(o: Pick<SessionOptions, 'host' | 'address' | 'port'>): string {
  return o.host === o.address ? `${o.address}:${o.port}` : `${o.host}[${o.address}]:${o.port}`;
}

/** The message, naming where unless it already does ("connect ECONNREFUSED 127.0.0.1:2526"). */
function prefixed(at: string, message: string): string {
  const m = message.replace(/\r?\n/g, ' ');
  return m.includes(at) ? m : `${at}: ${m}`;
}

const span = (ms: number) => (ms >= 1000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`);

/** EHLO lines after the first → keyword (upper case) → parameters. */
export function parseExtensions(lines: readonly string[]): Map<string, string> {
  const ext = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const m = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?$/.exec(line.trim());
    if (m) ext.set(m[1]!.toUpperCase(), (m[2] ?? '').trim());
  }
  return ext;
}

/**
 * Dot-stuffing while streaming (RFC 5321 4.5.2): a line that begins with "." gets another one.
 * The content is CRLF-terminated lines (types.ts); the state across chunks is whether the
 * next octet begins a line.
 */
export class DotStuffer {
  private atLineStart = true;
  private last2: Buffer = Buffer.from('\r\n');

  push(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    const parts: Buffer[] = [];
    let from = 0;
    if (this.atLineStart && chunk[0] === 0x2e) parts.push(Buffer.from('.'));
    for (let i = chunk.indexOf(0x0a); i >= 0 && i < chunk.length - 1; i = chunk.indexOf(0x0a, i + 1)) {
      if (chunk[i + 1] === 0x2e) {
        parts.push(chunk.subarray(from, i + 1), Buffer.from('.'));
        from = i + 1;
      }
    }
    parts.push(chunk.subarray(from));
    this.atLineStart = chunk[chunk.length - 1] === 0x0a;
    this.last2 = chunk.length >= 2 ? chunk.subarray(chunk.length - 2) : Buffer.concat([this.last2, chunk]).subarray(-2);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** The end of data: CRLF first if the content did not end with one. */
  end(): Buffer {
    return Buffer.from(this.last2.equals(Buffer.from('\r\n')) ? '.\r\n' : '\r\n.\r\n');
  }
}
