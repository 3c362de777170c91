// Delivery to downstream hosts over SMTP or LMTP with nodemailer's SMTPConnection.
//
// One pool of connections per route: at most route.max_connections open, idle ones reused and
// closed after idleTimeout. RSET goes before a message when the previous transaction ended
// early (MAIL, RCPT or DATA refused...) and as a liveness probe after a pause; after a completed
// transaction the server has already reset its state (RFC 5321 4.1.1.4), and an RSET per
// message would cost a round trip each time.
//
// Every recipient gets its own outcome: from its RCPT reply (SMTP) or its own reply after the
// data (LMTP, RFC 2033): 2xx delivered, 4xx deferred, 5xx failed. Anything that goes wrong on
// the connection defers, never fails: the queue tries again later.
import net from 'node:net';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import type { RouteConfig } from './config.js';
import type { Logger } from '../log.js';
import type { Content, RecipientOutcome } from './types.js';

export interface RelayOptions {
  /** Name sent with EHLO / LHLO. */
  readonly hostname: string;
  readonly logger: Logger;
  /** TCP connect, ms (default 30 s). */
  readonly connectTimeout?: number;
  /** Waiting for the 220 greeting, ms (default 60 s). */
  readonly greetingTimeout?: number;
  /** Silence allowed while waiting for any reply or writing data, ms (default 5 min). */
  readonly commandTimeout?: number;
  /** Whole transaction, MAIL FROM to the last reply after the data, ms (default 10 min). */
  readonly dataTimeout?: number;
  /** An unused pooled connection is closed after this, ms (default 30 s). */
  readonly idleTimeout?: number;
  /**
   * After a route's connect attempt failed while none of its connections is open, defer its
   * messages at once for this long instead of trying again for each, ms (default 5 s, 0: off).
   */
  readonly hostDownDelay?: number;
}

export interface RelayEnvelope {
  /** Envelope sender; '' is the null sender. */
  readonly from: string;
  readonly to: readonly string[];
  /**
   * '8BITMIME' (the default) declares BODY=8BITMIME to servers offering it, which is always
   * safe; '7BIT' declares nothing. SMTPUTF8 is declared when an address needs it.
   */
  readonly body?: '7BIT' | '8BITMIME';
}

const DEFAULTS = {
  connectTimeout: 30_000,
  greetingTimeout: 60_000,
  commandTimeout: 300_000,
  dataTimeout: 600_000,
  idleTimeout: 30_000,
  hostDownDelay: 5_000,
};
const QUIT_GRACE = 2_000;
/** A pooled session idle longer than this is probed with RSET before use. */
const PROBE_AFTER_IDLE = 2_000;

type SmtpError = SMTPConnection.SMTPError;

/** The replies of one transaction, in order: one per RCPT, one per LMTP recipient after data. */
interface Trace {
  rcpt: string[];
  data: string[];
}

interface Session {
  readonly conn: SMTPConnection;
  readonly pool: Pool;
  readonly trace: Trace;
  readonly lmtp: boolean;
  ended: boolean;
  quitting: boolean;
  /** The last transaction stopped before its end-of-data reply: RSET before the next. */
  needsReset: boolean;
  idleSince: number;
  idleTimer?: NodeJS.Timeout;
}

interface Lease {
  readonly session: Session;
  /** Taken from the pool (or handed over) rather than opened for this message. */
  readonly reused: boolean;
}

interface Pool {
  readonly key: string;
  route: RouteConfig;
  /** Sessions open or being opened; never above route.max_connections. */
  live: number;
  /** Sessions past EHLO and not yet closed. */
  established: number;
  idle: Session[];
  waiters: { resolve: (l: Lease) => void; reject: (e: Error) => void }[];
  downUntil: number;
  downReason: string;
}

/** The envelope as sent: recipients checked and trimmed. */
interface Tx {
  from: string;
  to: string[];
  body?: RelayEnvelope['body'];
}

interface TransactionResult {
  outcomes: RecipientOutcome[];
  /** The connection failed before any data was sent on a reused connection: try a fresh one. */
  retryable: boolean;
}

export class RelayDelivery {
  private readonly opts: Required<Omit<RelayOptions, 'logger' | 'hostname'>> & { hostname: string };
  private readonly log: Logger;
  private readonly pools = new Map<string, Pool>();
  private closed = false;
  private drained: (() => void)[] = [];

  constructor(opts: RelayOptions) {
    assertTraceable();
    this.opts = {
      hostname: opts.hostname,
      connectTimeout: opts.connectTimeout ?? DEFAULTS.connectTimeout,
      greetingTimeout: opts.greetingTimeout ?? DEFAULTS.greetingTimeout,
      commandTimeout: opts.commandTimeout ?? DEFAULTS.commandTimeout,
      dataTimeout: opts.dataTimeout ?? DEFAULTS.dataTimeout,
      idleTimeout: opts.idleTimeout ?? DEFAULTS.idleTimeout,
      hostDownDelay: opts.hostDownDelay ?? DEFAULTS.hostDownDelay,
    };
    this.log = opts.logger; // the caller names the component (a child logger)
  }

  /** Relay one message; one outcome per envelope.to entry, in the same order. Never throws. */
  async deliver(route: RouteConfig, envelope: RelayEnvelope, content: Content): Promise<RecipientOutcome[]> {
    const outcomes: RecipientOutcome[] = new Array(envelope.to.length);
    if (!isSendable(envelope.from, true)) {
      return envelope.to.map(() => failed(`invalid envelope sender ${JSON.stringify(envelope.from)}`));
    }
    const send: number[] = [];
    envelope.to.forEach((rcpt, i) => {
      if (isSendable(rcpt, false)) send.push(i);
      else outcomes[i] = failed(`invalid recipient address ${JSON.stringify(rcpt)}`);
    });
    if (send.length > 0) {
      const to = send.map((i) => envelope.to[i].trim());
      const sent = await this.transfer(route, { from: envelope.from.trim(), to, body: envelope.body }, content);
      send.forEach((i, j) => { outcomes[i] = sent[j]; });
    }
    return outcomes;
  }

  /** Close idle connections now, refuse new work, and resolve once every connection is closed. */
  /** Forgets which hosts were found down, so the next attempt connects (`queue flush`). */
  forgetDownHosts(): void {
    for (const pool of this.pools.values()) pool.downUntil = 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const pool of this.pools.values()) {
      for (const w of pool.waiters.splice(0)) w.reject(new Error('relay is shutting down'));
      for (const s of [...pool.idle]) this.quitSession(s);
    }
    if (this.liveCount() === 0) return;
    await new Promise<void>((resolve) => this.drained.push(resolve));
  }

  private async transfer(route: RouteConfig, env: Tx, content: Content): Promise<RecipientOutcome[]> {
    const pool = this.poolFor(route);
    let result: TransactionResult | undefined;
    for (let attempt = 1; attempt <= 2; attempt++) {
      if (this.closed) return env.to.map(() => deferred('relay is shutting down'));
      let lease: Lease;
      try {
        lease = await this.acquire(pool, attempt > 1);
      } catch (err) {
        return env.to.map(() => deferred(messageOf(err)));
      }
      result = await this.transact(lease, env, content);
      if (!result.retryable) break;
      this.log.debug({ route: pool.key }, 'pooled connection was broken, retrying on a fresh one');
    }
    return result!.outcomes;
  }

  private poolFor(route: RouteConfig): Pool {
    const key = `${route.host}:${route.port}:${route.protocol}:${route.tls}:${route.tls_verify ? 'verify' : 'noverify'}`;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = { key, route, live: 0, established: 0, idle: [], waiters: [], downUntil: 0, downReason: '' };
      this.pools.set(key, pool);
    }
    pool.route = route;
    return pool;
  }

  // ---- the pool ----------------------------------------------------------------------------

  private acquire(pool: Pool, fresh: boolean): Promise<Lease> {
    if (!fresh) {
      const s = pool.idle.pop();
      if (s) {
        clearTimeout(s.idleTimer);
        return Promise.resolve({ session: s, reused: true });
      }
    } else if (pool.live >= pool.route.max_connections && pool.idle.length > 0) {
      // make room for the fresh connection: an idle one is the cheapest to give up
      this.quitSession(pool.idle[0]);
    }
    if (pool.live < pool.route.max_connections) {
      if (pool.established === 0 && Date.now() < pool.downUntil) {
        return Promise.reject(new Error(`delivery temporarily suspended: ${pool.downReason}`));
      }
      return this.openLease(pool);
    }
    return new Promise((resolve, reject) => pool.waiters.push({ resolve, reject }));
  }

  /** Open a connection in a new slot (counted at once, so callers never exceed the limit). */
  private async openLease(pool: Pool): Promise<Lease> {
    pool.live += 1;
    try {
      return { session: await this.open(pool), reused: false };
    } catch (err) {
      pool.live -= 1;
      const reason = connectReason(pool.route, err);
      this.log.warn({ event: 'relay.connect_failed', route: pool.key, reason }, 'relay connection failed');
      if (pool.established === 0) {
        // nothing works on this route: the messages waiting for it would fail the same way
        pool.downUntil = Date.now() + this.opts.hostDownDelay;
        pool.downReason = reason;
        for (const w of pool.waiters.splice(0)) w.reject(new Error(reason));
      } else {
        this.slotFreed(pool);
      }
      this.checkDrained();
      throw new Error(reason);
    }
  }

  /** A session is done with its message: hand it to a waiter or keep it idle. */
  private release(s: Session): void {
    if (s.ended || s.quitting) return;
    if (this.closed) return this.quitSession(s);
    const pool = s.pool;
    s.idleSince = Date.now();
    const w = pool.waiters.shift();
    if (w) return w.resolve({ session: s, reused: true });
    if (pool.live > pool.route.max_connections) return this.quitSession(s);
    s.idleTimer = setTimeout(() => this.quitSession(s), this.opts.idleTimeout);
    s.idleTimer.unref();
    pool.idle.push(s);
  }

  private slotFreed(pool: Pool): void {
    if (this.closed) return;
    while (pool.waiters.length > 0 && pool.live < pool.route.max_connections) {
      const w = pool.waiters.shift()!;
      this.openLease(pool).then(w.resolve, w.reject);
    }
  }

  /** Polite close: QUIT, then the socket after a grace period; 'end' does the bookkeeping. */
  private quitSession(s: Session): void {
    if (s.ended || s.quitting) return;
    s.quitting = true;
    clearTimeout(s.idleTimer);
    removeFrom(s.pool.idle, s);
    s.conn.quit();
    setTimeout(() => s.conn.close(), QUIT_GRACE).unref();
  }

  /** The connection is gone (or must go): free its slot. Idempotent. */
  private endSession(s: Session): void {
    if (s.ended) return;
    s.ended = true;
    clearTimeout(s.idleTimer);
    removeFrom(s.pool.idle, s);
    s.pool.established -= 1;
    s.pool.live -= 1;
    s.conn.close();
    this.slotFreed(s.pool);
    this.checkDrained();
  }

  private liveCount(): number {
    let n = 0;
    for (const pool of this.pools.values()) n += pool.live;
    return n;
  }

  private checkDrained(): void {
    if (this.closed && this.drained.length > 0 && this.liveCount() === 0) {
      for (const resolve of this.drained.splice(0)) resolve();
    }
  }

  // ---- one connection ----------------------------------------------------------------------

  private async open(pool: Pool): Promise<Session> {
    const route = pool.route;
    try {
      return await this.connect(pool, route.tls);
    } catch (err) {
      // Opportunistic TLS that fails in the handshake falls back to plain text, as Postfix's
      // "may" level does; 'required' never does.
      if (route.tls !== 'opportunistic' || (err as SmtpError).code !== 'ETLS') throw err;
      this.log.warn({ event: 'relay.tls_fallback', route: pool.key, reason: messageOf(err) },
        'STARTTLS failed, delivering without TLS');
      return await this.connect(pool, 'none');
    }
  }

  private connect(pool: Pool, tls: RouteConfig['tls']): Promise<Session> {
    const route = pool.route;
    const conn = new SMTPConnection({
      host: route.host,
      port: route.port,
      secure: false,
      lmtp: route.protocol === 'lmtp',
      name: this.opts.hostname,
      ignoreTLS: tls === 'none',
      requireTLS: tls === 'required',
      opportunisticTLS: tls === 'opportunistic',
      tls: { rejectUnauthorized: route.tls_verify, minVersion: 'TLSv1.2' },
      connectionTimeout: this.opts.connectTimeout,
      dnsTimeout: this.opts.connectTimeout,
      greetingTimeout: this.opts.greetingTimeout,
      socketTimeout: this.opts.commandTimeout,
      logger: false,
      // Our own socket, to turn Nagle off: commands, the data and its final "." are separate
      // small writes, and Nagle with the peer's delayed ACK costs ~40 ms per message.
      socket: new net.Socket().setNoDelay(true),
    });
    const s: Session = {
      conn, pool, trace: traceReplies(conn), lmtp: route.protocol === 'lmtp',
      ended: false, quitting: false, needsReset: false, idleSince: 0,
    };
    return new Promise((resolve, reject) => {
      let state: 'connecting' | 'open' | 'failed' = 'connecting';
      // Always listening: an 'error' without a listener would crash the process.
      conn.on('error', (err: SmtpError) => {
        if (state === 'open') {
          this.log.debug({ route: pool.key, reason: err.message }, 'relay connection error');
        } else if (state === 'connecting') {
          state = 'failed';
          // a failed handshake comes as a socket error; nodemailer's `upgrading` tells it apart
          if ((conn as unknown as { upgrading?: boolean }).upgrading === true) err.code = 'ETLS';
          reject(err);
          conn.close();
        }
      });
      conn.once('end', () => {
        if (state === 'open') return this.endSession(s);
        if (state === 'connecting') {
          state = 'failed';
          const last = conn.lastServerResponse;
          reject(Object.assign(new Error(`connection closed before the session began${last ? `: ${last}` : ''}`),
            { code: 'ECONNECTION' }));
        }
      });
      conn.connect(() => {
        if (state !== 'connecting') return;
        state = 'open';
        pool.established += 1;
        this.log.debug({ route: pool.key, secure: conn.secure }, 'relay connection open');
        resolve(s);
      });
    });
  }

  /** RSET a reused session if needed, then send; release or close the session afterwards. */
  private async transact(lease: Lease, env: Tx, content: Content): Promise<TransactionResult> {
    const s = lease.session;
    if (lease.reused && (s.needsReset || Date.now() - s.idleSince > PROBE_AFTER_IDLE)) {
      const err = await this.reset(s);
      if (err) {
        this.endSession(s);
        const reason = connectionReason(`${s.pool.route.host}:${s.pool.route.port}`, err);
        return { outcomes: env.to.map(() => deferred(reason)), retryable: true };
      }
    }
    const r = await this.send(s, env, content);
    s.needsReset = !r.complete;
    if (r.reusable) this.release(s);
    else this.endSession(s);
    return { outcomes: r.outcomes, retryable: lease.reused && r.broken && !r.dataStarted };
  }

  private reset(s: Session): Promise<Error | undefined> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        s.conn.off('error', finish);
        s.conn.off('end', onEnd);
        resolve(err);
      };
      const onEnd = () => finish(new Error('connection closed'));
      s.conn.on('error', finish);
      s.conn.once('end', onEnd);
      if (s.ended) return finish(new Error('connection closed'));
      s.conn.reset((err) => finish(err ?? undefined));
    });
  }

  private send(s: Session, env: Tx, content: Content): Promise<SendResult> {
    const { conn, trace } = s;
    const where = `${s.pool.route.host}:${s.pool.route.port}`;
    trace.rcpt.length = 0;
    trace.data.length = 0;
    // A message held in memory goes as one buffer: one socket write instead of one per chunk
    // (a write costs tens of microseconds here; see docs/benchmarks.md).
    const whole = content.buffers ? Buffer.concat(content.buffers as Buffer[]) : undefined;
    const src = whole ? undefined : content.stream();
    return new Promise((resolve) => {
      let settled = false;
      let aborted: string | undefined;
      const finish = (err: SmtpError | null, info?: SMTPConnection.SentMessageInfo) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        conn.off('error', onError);
        conn.off('end', onEnd);
        src?.destroy(); // release the spool file whatever happened
        resolve(judge(env.to, trace, s.lmtp, err, info, where));
      };
      const onError = (err: SmtpError) => finish(err);
      const onEnd = () =>
        finish(Object.assign(new Error(aborted ?? 'connection closed unexpectedly'), { code: 'ECONNECTION' }));
      const timer = setTimeout(() => {
        aborted = `no final reply within ${Math.round(this.opts.dataTimeout / 1000)} s`;
        conn.close();
      }, this.opts.dataTimeout);
      conn.on('error', onError);
      conn.once('end', onEnd);
      if (s.ended) return onEnd();
      conn.send({ from: env.from, to: env.to, size: content.size, use8BitMime: env.body !== '7BIT' }, whole ?? src!, finish);
    });
  }
}

// ---- outcomes ----------------------------------------------------------------------------

interface SendResult {
  outcomes: RecipientOutcome[];
  /** The session is in a known state and may carry another message (after RSET). */
  reusable: boolean;
  /** The connection failed (no reply to judge by). */
  broken: boolean;
  /** The DATA command may have gone out: a retry could deliver twice. */
  dataStarted: boolean;
  /** The transaction ended with the reply(ies) to the data: the server's state is reset. */
  complete: boolean;
}

const CONNECTION_CODES = new Set(['ECONNECTION', 'ESOCKET', 'ETIMEDOUT', 'ETLS', 'EPROTOCOL', 'EDNS']);

/** Turn what nodemailer reported, plus the traced replies, into one outcome per recipient. */
function judge(to: string[], trace: Trace, lmtp: boolean, err: SmtpError | null,
  info: SMTPConnection.SentMessageInfo | undefined, where: string): SendResult {
  const dataStarted = trace.rcpt.length >= to.length && trace.rcpt.some((r) => r.startsWith('2'));
  const code = err?.code;
  const broken = err !== null && (code === undefined || CONNECTION_CODES.has(code));
  // What applies to every recipient the server did not refuse by itself.
  let common: RecipientOutcome | undefined;
  if (err === null) {
    common = lmtp ? undefined : fromReply(info?.response ?? '250 accepted');
  } else if (code === 'ESTREAM') {
    common = deferred(`reading the queued message failed: ${err.message}`);
  } else if (code === 'EMESSAGE' && !err.response) {
    common = failed(`${where}: ${err.message}`); // larger than the SIZE the server announced
  } else if (!broken && err.response) {
    common = fromReply(err.response); // MAIL FROM, DATA or the message refused as a whole
  } else {
    common = deferred(connectionReason(where, err));
  }

  let accepted = 0;
  const outcomes = to.map((_, i): RecipientOutcome => {
    const rcpt = trace.rcpt[i];
    if (rcpt !== undefined && !rcpt.startsWith('2')) return fromReply(rcpt);
    if (lmtp && rcpt !== undefined) {
      const reply = trace.data[accepted++];
      if (reply !== undefined) return fromReply(reply);
    }
    return common ?? deferred(`${where}: no reply for this recipient after the data`);
  });
  // after a failed read the DATA is half sent: that session cannot be used again
  return { outcomes, reusable: !broken && code !== 'ESTREAM', broken, dataStarted, complete: err === null };
}

function fromReply(reply: string): RecipientOutcome {
  const text = reply.replace(/\r?\n/g, ' ').trim();
  switch (text.charAt(0)) {
    case '2': return { status: 'delivered', reply: text };
    case '5': return { status: 'failed', reply: text };
    default: return { status: 'deferred', reply: text };
  }
}

const deferred = (reply: string): RecipientOutcome => ({ status: 'deferred', reply });
const failed = (reply: string): RecipientOutcome => ({ status: 'failed', reply });

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The error text, naming host:port unless it already does ("connect ECONNREFUSED 127.0.0.1:2526"). */
function connectionReason(where: string, err: Error): string {
  // nodemailer says just "Timeout" when a reply does not come in time
  const msg = err.message === 'Timeout' ? 'timed out waiting for a reply' : err.message.replace(/\r?\n/g, ' ');
  return msg.includes(where) ? msg : `${where}: ${msg}`;
}

function connectReason(route: RouteConfig, err: unknown): string {
  const where = `${route.host}:${route.port}`;
  const e = err instanceof Error ? err : new Error(String(err));
  if ((e as SmtpError).code === 'ETLS' && route.tls === 'required') {
    return `${where}: TLS is required for this route but STARTTLS failed: ${e.message.replace(/\r?\n/g, ' ')}`;
  }
  return connectionReason(where, e);
}

/** What nodemailer would refuse locally: CR, LF, angle brackets; an empty recipient. */
function isSendable(address: string, isSender: boolean): boolean {
  return !/[\r\n<>]/.test(address) && (isSender || address.trim().length > 0);
}

function removeFrom<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}

// ---- reading every reply -----------------------------------------------------------------
// nodemailer keeps only the accepted/rejected lists; the outcome of each recipient needs its
// own reply. Two of SMTPConnection's reply handlers are wrapped per instance to record them.
// They are internals of nodemailer 8: assertTraceable() fails loudly at start if they change.

interface ReplyHandlers {
  _actionRCPT(this: SMTPConnection, str: string, callback: unknown): void;
  _actionLMTPStream(this: SMTPConnection, recipient: string, final: boolean, str: string, callback: unknown): void;
}

const handlers = SMTPConnection.prototype as unknown as Partial<ReplyHandlers>;

function assertTraceable(): void {
  if (typeof handlers._actionRCPT !== 'function' || typeof handlers._actionLMTPStream !== 'function') {
    throw new Error('this nodemailer version has no SMTPConnection._actionRCPT/_actionLMTPStream; relay needs them');
  }
}

function traceReplies(conn: SMTPConnection): Trace {
  const trace: Trace = { rcpt: [], data: [] };
  const rcpt = handlers._actionRCPT!;
  const lmtp = handlers._actionLMTPStream!;
  const own = conn as unknown as ReplyHandlers;
  own._actionRCPT = function (str, callback) {
    trace.rcpt.push(str);
    rcpt.call(this, str, callback);
  };
  own._actionLMTPStream = function (recipient, final, str, callback) {
    trace.data.push(str);
    lmtp.call(this, recipient, final, str, callback);
  };
  return trace;
}
