// Delivery to downstream hosts over SMTP or LMTP with the gateway's own client
// (smtp-client.ts, the one direct MX delivery uses: it pipelines where the server offers it).
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
import type { RouteConfig } from './config.js';
import type { Logger } from '../log.js';
import { deferred, failed, isSendable, outcomeOf, type Content, type RecipientOutcome } from './types.js';
import type { HostTlsPolicy } from './outbound-tls.js';
import { SmtpClientError, SmtpSession, formatReply, type Reply, type TransactionResult as Sent } from './smtp-client.js';

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
  /** Waiting for the reply (LMTP: the replies) after the data, ms (default 10 min). */
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
/** A pooled session idle longer than this is probed with RSET before use. */
const PROBE_AFTER_IDLE = 2_000;

interface Session {
  readonly conn: SmtpSession;
  readonly pool: Pool;
  readonly lmtp: boolean;
  ended: boolean;
  quitting: boolean;
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
      const reason = messageOf(err);
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
    // QUIT is bounded (a few seconds); the session's close ends the bookkeeping
    void s.conn.quit();
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
      // Opportunistic TLS that fails in the handshake (or, with tls_verify, in the certificate
      // check) goes on in plain text on a new connection, as Postfix's "may" level does;
      // 'required' never does.
      if (route.tls !== 'opportunistic' || (err as SmtpClientError).kind !== 'tls') throw err;
      this.log.warn({ event: 'relay.tls_fallback', route: pool.key, reason: messageOf(err) },
        'STARTTLS failed, delivering without TLS');
      return await this.connect(pool, 'none');
    }
  }

  private async connect(pool: Pool, tls: RouteConfig['tls']): Promise<Session> {
    const route = pool.route;
    const verify = route.tls_verify;
    // The route's TLS demands as a policy for the client: the certificate must verify for
    // route.host when tls_verify is on (opportunistic: a failure means plain text instead).
    const policy: HostTlsPolicy = {
      mode: tls, servername: route.host, testing: false, policyType: 'config',
      check: (_peer, authorized, authorizationError) =>
        !verify || authorized ? { ok: true } : { ok: false, reason: authorizationError ?? 'certificate not trusted', result: 'certificate-not-trusted' },
    };
    let session: Session | undefined;
    const conn = await SmtpSession.open({
      address: route.host, port: route.port, host: route.host, hostname: this.opts.hostname, lmtp: route.protocol === 'lmtp',
      tls: tls === 'none' ? undefined : policy,
      timeouts: { connect: this.opts.connectTimeout, greeting: this.opts.greetingTimeout, command: this.opts.commandTimeout, dataInit: this.opts.commandTimeout, dataBlock: this.opts.commandTimeout, dataDone: Math.min(this.opts.commandTimeout, this.opts.dataTimeout) },
      onClose: () => { if (session) this.endSession(session); },
    }).catch((err: SmtpClientError) => { throw Object.assign(err, { message: tlsReason(route, err) }); });
    if (tls === 'opportunistic' && verify && conn.tls.secure && conn.tls.result !== 'success') {
      // a certificate that does not verify: as if the handshake had failed (plain text instead)
      conn.close();
      throw new SmtpClientError(`${route.host}:${route.port}: TLS certificate not accepted: ${conn.tls.detail ?? conn.tls.result}`, 'tls', 'TLS check', undefined, conn.tls.result);
    }
    session = { conn, pool, lmtp: route.protocol === 'lmtp', ended: false, quitting: false, idleSince: 0 };
    if (conn.isClosed) {
      // closed by the server right after EHLO: not a session (openLease frees the slot)
      throw new SmtpClientError(`${route.host}:${route.port}: connection closed before the session began`, 'network', 'connect');
    }
    pool.established += 1;
    this.log.debug({ route: pool.key, secure: conn.tls.secure }, 'relay connection open');
    return session;
  }

  /** RSET a reused session if needed, then send; release or close the session afterwards. */
  private async transact(lease: Lease, env: Tx, content: Content): Promise<TransactionResult> {
    const s = lease.session;
    if (lease.reused && (s.conn.needsReset || Date.now() - s.idleSince > PROBE_AFTER_IDLE)) {
      if (!(await s.conn.reset())) {
        s.conn.close();
        this.endSession(s);
        return { outcomes: env.to.map(() => deferred(`${s.pool.route.host}:${s.pool.route.port}: connection closed`)), retryable: true };
      }
    }
    const sent = await s.conn.send({ from: env.from, to: env.to, body: env.body }, content);
    const outcomes = judge(sent, s.lmtp);
    if (sent.broken || s.conn.isClosed) {
      s.conn.close();
      this.endSession(s);
    } else {
      this.release(s);
    }
    return { outcomes, retryable: lease.reused && !!sent.broken && !sent.dataSent && !sent.mail };
  }
}

// ---- outcomes ----------------------------------------------------------------------------

/** One outcome per recipient from the replies of one transaction. */
function judge(r: Sent, lmtp: boolean): RecipientOutcome[] {
  if (r.refused) return r.rcpt.map(() => failed(r.refused!));
  const brokenReason = r.broken ? r.broken.message : undefined;
  let accepted = 0;
  return r.rcpt.map((rcpt): RecipientOutcome => {
    if (!r.mail) return deferred(brokenReason ?? 'no reply to MAIL FROM');
    if (r.mail.code !== 250) return fromReply(r.mail);
    if (!rcpt) return deferred(brokenReason ?? 'no reply to RCPT TO');
    if (rcpt.code < 200 || rcpt.code >= 300) return fromReply(rcpt);
    const done = lmtp ? r.done[accepted] : r.done[0];
    accepted += 1;
    if (!r.data) return deferred(brokenReason ?? 'no reply to DATA');
    if (r.data.code !== 354) return fromReply(r.data);
    if (done) return fromReply(done);
    return deferred(brokenReason ?? 'no reply after the data');
  });
}

function fromReply(reply: Reply): RecipientOutcome {
  return outcomeOf(reply.code, formatReply(reply));
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A TLS failure on a route that requires TLS says so. */
function tlsReason(route: RouteConfig, err: SmtpClientError): string {
  if (err.kind === 'tls' && route.tls === 'required' && !/TLS is required/.test(err.message)) {
    return err.message.replace(/^([^:]+:\d+): /, '$1: TLS is required for this route: ');
  }
  return err.message;
}

function removeFrom<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}
