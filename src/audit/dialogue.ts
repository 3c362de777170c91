// One text-protocol conversation with a server, for the audit's probes: connect (plain or
// implicit TLS) with a deadline, read CRLF lines each with a deadline, write lines, upgrade to
// TLS in place (STARTTLS), and keep a transcript of both directions for the report's evidence.
//
// Client libraries hide exactly what the audit needs to see (the reply to a command they would
// never send, a session stopped at RCPT), so this is a small socket dialogue instead. It never
// throws anything but ProbeError, never waits without a timer, and bounds what a garbage-
// spewing server can make it hold (line length, total bytes).
import net from 'node:net';
import tls from 'node:tls';

export type ProbeErrorKind = 'refused' | 'timeout' | 'unreachable' | 'closed' | 'tls' | 'garbage' | 'aborted' | 'error';

export class ProbeError extends Error {
  /** @param connected false when no TCP connection was ever made (refused, filtered, no route). */
  constructor(readonly kind: ProbeErrorKind, message: string, readonly connected = true) {
    super(message);
    this.name = 'ProbeError';
  }
}

export interface DialogueOptions {
  readonly address: string;
  readonly port: number;
  /** TLS options for implicit TLS from the first byte; absent: a plain connection. */
  readonly implicitTls?: tls.ConnectionOptions;
  readonly connectTimeoutMs: number;
  readonly replyTimeoutMs: number;
  /** Aborting destroys the connection and fails whatever is waiting. */
  readonly signal?: AbortSignal;
  /** Awaited before the connection is opened (the audit's rate limit). */
  readonly beforeConnect?: () => Promise<void>;
}

/** Longest line kept (RFC 5321 allows 512 octets per reply line; IMAP capability lines run longer). */
const MAX_LINE = 8192;
/** Most a server may send in one dialogue before it is treated as garbage. */
const MAX_BYTES = 1 << 20;
const MAX_TRANSCRIPT = 400;

export class Dialogue {
  readonly transcript: string[] = [];
  private socket: net.Socket;
  private pending = '';
  private readonly lines: string[] = [];
  private waiter?: { resolve: (line: string) => void; reject: (err: ProbeError) => void; timer: NodeJS.Timeout };
  private failure?: ProbeError;
  private received = 0;
  private readonly onData = (chunk: Buffer) => this.take(chunk);
  private readonly onEnd = () => this.fail(new ProbeError('closed', 'the server closed the connection'));
  private readonly onError = (err: Error) => this.fail(socketError(err, this.opts.port));
  private readonly onAbort = () => this.fail(new ProbeError('aborted', 'the probe ran out of time'));

  private constructor(socket: net.Socket, private readonly opts: DialogueOptions) {
    this.socket = socket;
    this.attach();
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Connects (and for implicit TLS completes the handshake) or throws a ProbeError. */
  static async open(opts: DialogueOptions): Promise<Dialogue> {
    await opts.beforeConnect?.();
    if (opts.signal?.aborted) throw new ProbeError('aborted', 'the probe ran out of time', false);
    const socket = opts.implicitTls
      ? tls.connect({ ...opts.implicitTls, host: opts.address, port: opts.port })
      : net.connect({ host: opts.address, port: opts.port });
    await new Promise<void>((resolve, reject) => {
      let connected = false;
      const done = (err?: ProbeError) => {
        clearTimeout(timer);
        socket.off('error', onError);
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) {
          socket.on('error', () => {});
          socket.destroy();
          reject(err);
        } else resolve();
      };
      const onError = (err: Error) => done(connected && opts.implicitTls ? tlsError(err) : socketError(err, opts.port, connected));
      const onAbort = () => done(new ProbeError('aborted', 'the probe ran out of time', connected));
      const timer = setTimeout(() => done(connected
        ? new ProbeError('timeout', `no TLS handshake within ${seconds(opts.connectTimeoutMs)}`)
        : new ProbeError('timeout', `no connection within ${seconds(opts.connectTimeoutMs)} (filtered, or the host is down)`, false)), opts.connectTimeoutMs);
      socket.once('error', onError);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => {
        connected = true;
        if (!opts.implicitTls) done();
      });
      if (opts.implicitTls) socket.once('secureConnect', () => done());
    });
    return new Dialogue(socket, opts);
  }

  /** The TLS socket once TLS is up (implicit or after startTls). */
  get tlsSocket(): tls.TLSSocket | undefined {
    return this.socket instanceof tls.TLSSocket ? this.socket : undefined;
  }

  get closed(): boolean {
    return this.failure !== undefined;
  }

  /** The next line (without CRLF); throws a ProbeError on timeout, close or garbage. */
  line(timeoutMs = this.opts.replyTimeoutMs): Promise<string> {
    const next = this.lines.shift();
    if (next !== undefined) return Promise.resolve(next);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        this.fail(new ProbeError('timeout', `no answer within ${seconds(timeoutMs)}`));
        reject(this.failure);
      }, timeoutMs);
      this.waiter = { resolve, reject, timer };
    });
  }

  /** Sends one command line; `shown` replaces it in the transcript (never used for secrets: there are none). */
  send(line: string, shown = line): void {
    this.note(`C: ${shown}`);
    if (!this.failure) this.socket.write(`${line}\r\n`);
  }

  /**
   * Upgrades the connection to TLS (after the server said yes to STARTTLS/STLS). Anything the
   * server sent after that reply is discarded, as RFC 3207 s4.2 requires.
   */
  async startTls(options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
    if (this.failure) throw this.failure;
    const plain = this.socket;
    this.detach();
    plain.on('error', () => {});
    this.lines.length = 0;
    this.pending = '';
    const secure = tls.connect({ ...options, socket: plain });
    try {
      await new Promise<void>((resolve, reject) => {
        const done = (err?: ProbeError) => {
          clearTimeout(timer);
          secure.off('error', onError);
          this.opts.signal?.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else resolve();
        };
        const onError = (err: Error) => done(tlsError(err));
        const onAbort = () => done(new ProbeError('aborted', 'the probe ran out of time'));
        const timer = setTimeout(() => done(new ProbeError('timeout', `no TLS handshake within ${seconds(this.opts.replyTimeoutMs)}`)), this.opts.replyTimeoutMs);
        secure.once('error', onError);
        this.opts.signal?.addEventListener('abort', onAbort, { once: true });
        secure.once('secureConnect', () => done());
      });
    } catch (err) {
      secure.on('error', () => {});
      secure.destroy();
      plain.destroy();
      this.failure = err as ProbeError;
      throw err;
    }
    this.socket = secure;
    this.attach();
    this.note(`-- TLS ${secure.getProtocol() ?? '?'} ${secure.getCipher()?.name ?? ''}`.trimEnd());
    return secure;
  }

  /** Closes the connection at once (protocol goodbyes are the caller's: QUIT, LOGOUT). */
  close(): void {
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    if (!this.failure) this.failure = new ProbeError('closed', 'closed by the audit');
    this.detach();
    this.socket.on('error', () => {});
    this.socket.destroy();
    this.wake();
  }

  private attach(): void {
    this.socket.on('data', this.onData);
    this.socket.on('end', this.onEnd);
    this.socket.on('close', this.onEnd);
    this.socket.on('error', this.onError);
  }

  private detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
  }

  private take(chunk: Buffer): void {
    this.received += chunk.length;
    if (this.received > MAX_BYTES) {
      this.fail(new ProbeError('garbage', `the server sent more than ${MAX_BYTES} bytes`));
      return;
    }
    this.pending += chunk.toString('latin1');
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, nl).replace(/\r$/, '');
      this.pending = this.pending.slice(nl + 1);
      this.note(`S: ${line}`);
      this.lines.push(line.length > MAX_LINE ? line.slice(0, MAX_LINE) : line);
    }
    if (this.pending.length > MAX_LINE) {
      this.fail(new ProbeError('garbage', `the server sent a line longer than ${MAX_LINE} bytes`));
      return;
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    const next = this.lines.shift();
    if (next !== undefined) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.resolve(next);
    } else if (this.failure) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.reject(this.failure);
    }
  }

  private fail(err: ProbeError): void {
    if (!this.failure) {
      this.failure = err;
      if (err.kind !== 'closed') {
        this.note(`-- ${err.message}`);
        this.detach();
        this.socket.on('error', () => {});
        this.socket.destroy();
      }
    }
    this.wake();
  }

  private note(text: string): void {
    if (this.transcript.length < MAX_TRANSCRIPT) this.transcript.push(text);
  }
}

export function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

function socketError(err: Error, port: number, connected = true): ProbeError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  switch (code) {
    case 'ECONNREFUSED':
      return new ProbeError('refused', `connection refused (nothing listens on port ${port})`, false);
    case 'ETIMEDOUT':
      return new ProbeError('timeout', 'connection timed out', connected);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
    case 'EAFNOSUPPORT':
      return new ProbeError('unreachable', `unreachable (${code})`, false);
    case 'ECONNRESET':
    case 'EPIPE':
      return new ProbeError('closed', `the server reset the connection (${code})`, connected);
    default:
      return code.startsWith('ERR_SSL') || code === 'EPROTO' ? tlsError(err) : new ProbeError('error', err.message, connected);
  }
}

function tlsError(err: Error): ProbeError {
  const code = (err as NodeJS.ErrnoException).code;
  const first = err.message.split('\n')[0]!;
  // "…:SSL routines:ssl3_read_bytes:tlsv1 alert protocol version:../deps/…" → the reason.
  const reason = /routines:[^:]*:([^:]+)/.exec(first)?.[1] ?? first;
  return new ProbeError('tls', `TLS handshake failed: ${reason}${code && !reason.includes(code) ? ` (${code})` : ''}`);
}
