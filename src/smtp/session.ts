// One SMTP session: the RFC 5321 state machine, its limits, and the hostile-protocol defences.
//
// Why our own protocol engine rather than the smtp-server package: the defences this gateway
// promises live inside the protocol loop — only CRLF.CRLF ends DATA (data-reader.ts), bytes
// pipelined behind STARTTLS are thrown away (CVE-2011-0411), content sent before the 354 is a
// synchronization error, and every stage calls the check pipeline before it answers. smtp-server
// ends DATA on "\n.\r\n" too and gives no hook at several of these points.
import net from 'node:net';
import tls from 'node:tls';
import { parsePathArgument, AddressError, formatAddress, type Address } from './address.js';
import { DataReader } from './data-reader.js';
import { MessageSpool } from './spool.js';
import { parseHeaderBlock, type HeaderField } from '../protocol/headers.js';
import { R, formatReply, reply, replyLine, type Reply } from '../protocol/reply.js';
import { buildPrefix, rewriteHeaders } from './trace-headers.js';
import { writeRewritten } from '../mime/rewrite.js';
import { messageModel, type MessageModelOptions } from '../mime/model.js';
import fs from 'node:fs';
import type { RecipientResolver, Resolution } from './recipients.js';
import type { GreetingConfig, ListenerConfig, SmtpConfig, TarpitConfig } from './config.js';
import type { AuthConfig } from '../auth/config.js';
import type { QueueConfig } from '../queue/config.js';
import type { PolicyConfig } from '../pipeline/config.js';
import { isAccountsUnavailable, type AccountStore } from '../auth/accounts.js';
import type { BruteForce } from '../auth/brute-force.js';
import { checkLogin, decodeSaslResponse, malformedLogin, parsePlain } from '../auth/login.js';
import type { CheckRunner } from '../pipeline/runner.js';
import { decide, type Action, type RecipientPolicy } from '../pipeline/policy.js';
import type { ConnectionFacts, Demand, Facts, MessageFacts, ScoredSymbol, Stage, StageInput } from '../checks/types.js';
import type { StageOutcome } from '../pipeline/runner.js';
import { strongerFloor, type Floor } from '../pipeline/actions.js';
import { listMatches, recipientPolicy } from '../pipeline/user-settings.js';
import { contentRefusal, messageRefusal, senderFacts } from '../pipeline/message-verdict.js';
import type { UserPolicies } from '../pipeline/user-policies.js';
import type { Destination, Queue } from '../queue/queue.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { NetworkSet } from '../net/cidr.js';
import { upgradeToTls } from '../net/starttls.js';
import { clientAddress } from '../net/cidr.js';
import type { StateStore } from '../store/store.js';
import type { ClientLimits } from './client-limits.js';
import type { OutboundGuard } from '../pipeline/outbound/limits.js';
import { outboundSymbols } from '../pipeline/outbound/content.js';
import type { HoldInfo } from '../queue/hold.js';
import { isOutOfSpace } from '../queue/storage.js';
import type { TraceEntry } from '../trace/trace-store.js';
import type { QuarantineEntry, QuarantineReason } from '../quarantine/types.js';

/** The sections of the configuration a session reads (the whole Config fits). */
export interface SessionConfig {
  readonly hostname: string;
  readonly smtp: SmtpConfig;
  readonly greeting: GreetingConfig;
  readonly tarpit: TarpitConfig;
  readonly auth: AuthConfig;
  readonly queue: QueueConfig;
  readonly policy: PolicyConfig;
}

export interface SessionDeps {
  readonly config: SessionConfig;
  readonly listener: ListenerConfig;
  /** TLS options for STARTTLS; undefined when no certificate is available. */
  readonly tlsOptions: () => tls.TlsOptions | undefined;
  readonly resolver: RecipientResolver;
  readonly accounts: AccountStore;
  readonly runner: CheckRunner;
  readonly queue: Queue;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly trusted: NetworkSet;
  readonly newId: () => string;
  readonly bruteForce: BruteForce;
  readonly store: StateStore;
  readonly limits: ClientLimits;
  /** Content spam: per-user settings and Bayes autolearning (absent in tests that do not need them). */
  readonly spam?: SessionSpam;
  /**
   * How each message's model is built (src/gateway/checks.ts messageModelOptions: the scan cap,
   * the MIME walk's limits and inspectors). Absent in tests that need no content checks: defaults.
   */
  readonly messageModel?: MessageModelOptions;
  /** Outbound limits, locks and the outbound content policy for authenticated users (absent in tests that do not need them). */
  readonly outbound?: OutboundGuard;
  /** The console's message trace (src/trace/): each decision logged as "message" is also recorded here. Never throws. */
  readonly trace?: (entry: TraceEntry) => void;
  /** Where held originals go (src/quarantine/, docs/quarantine.md); absent: nothing is kept. */
  readonly quarantine?: SessionQuarantine;
}

/** The quarantine as a session uses it (Quarantine fits). */
export interface SessionQuarantine {
  /** Keeps the original; resolves with its id once durable, rejects when it could not. */
  add(entry: QuarantineEntry, original: NodeJS.ReadableStream): Promise<string>;
  /** Takes back an entry of a message that was not accepted after all (the client will retry). */
  discard(id: string): Promise<void>;
  /** antivirus.quarantine: also keep the infected mail that was refused. */
  readonly keepInfected: boolean;
}

/** One quarantine entry of a transaction, for the log line. */
interface Held {
  readonly id: string;
  readonly reason: QuarantineReason;
  readonly recipients: readonly string[];
}

export interface SessionSpam {
  readonly users?: UserPolicies;
  /** Learns from a message the verdict was sure about (see src/checks/spam-engine.ts). Never throws. */
  autolearn(message: MessageFacts, symbols: readonly ScoredSymbol[], id: string, client: { ip: string; helo?: string }): void;
}

interface AcceptedRecipient {
  readonly shown: string;
  readonly resolution: Extract<Resolution, { kind: 'local' | 'relay' }>;
}

interface Transaction {
  readonly id: string;
  readonly sender: string;
  readonly smtputf8: boolean;
  readonly body8bit: boolean;
  readonly declaredSize?: number;
  readonly recipients: AcceptedRecipient[];
  readonly symbols: ScoredSymbol[];
  readonly authResults: string[];
  readonly trace: string[];
  /** A MAIL-stage refusal (SPF fail…), applied at each RCPT so the envelope is logged. */
  readonly deferred?: Demand;
  /** What the MAIL stage's checks found, for the checks after them (SPF for DMARC, the allow lists). */
  readonly facts: Facts;
  /** The strongest folder a symbol of the connection or the transaction asked for. */
  floor?: Floor;
  /** Observe mode: the refusals of the session so far that were not sent. */
  readonly wouldRefuse: string[];
  rejectedRecipients: number;
  /** From the header section, for the message trace. */
  messageId?: string;
}

type Mode = 'command' | 'data' | 'auth' | 'closed';

const MAX_HEADER = 1024 * 1024;
const FORBIDDEN = /^(?:CONNECT|GET|POST|PUT|HEAD|OPTIONS|USER|PASS)\b|^[A-Za-z-]+:\s/;

let sessionCounter = 0;

/** The replies when the account store cannot answer (Redis down): temporary, to be retried. */
const ACCOUNTS_UNAVAILABLE = {
  auth: reply(454, '4.7.0', 'Temporary authentication failure, try again later'),
  lookup: (a: string) => reply(451, '4.3.0', `<${a}>: Recipient address lookup failed temporarily, try again later`),
  sender: (a: string) => reply(451, '4.3.0', `<${a}>: Sender address lookup failed temporarily, try again later`),
};

export class SmtpSession {
  private socket: net.Socket;
  private mode: Mode = 'command';
  private inbuf: Buffer | undefined;
  private busy = false;
  private skippingLongLine = false;
  private out: string[] = [];
  private errors = 0;
  private helo: string | undefined;
  private esmtp = false;
  private tlsInfo: ConnectionFacts['tls'];
  private authUser: string | undefined;
  private tx: Transaction | undefined;
  private connSymbols: ScoredSymbol[] = [];
  /** The HELO stage's symbols, replaced at each HELO/EHLO. */
  private heloSymbols: ScoredSymbol[] = [];
  /** Facts of the connect and HELO stages. */
  private connFacts: Facts = {};
  private heloFacts: Facts = {};
  private connFloor: Floor | undefined;
  /** Observe mode: connect/HELO refusals that were not sent ("would reject" replies). */
  private connWouldRefuse: string[] = [];
  private heloWouldRefuse: string[] = [];
  /** Authentication-Results methods found at connect (iprev). */
  private connAuthResults: string[] = [];
  /** Connect- and HELO-stage refusals (DNSBL, early talker…), applied at RCPT as Postfix's smtpd_delay_reject. */
  private connDeferred: Demand | undefined;
  private heloDeferred: Demand | undefined;
  /** No command is read before our banner; bytes that arrive earlier make an early talker. */
  private greeted = false;
  private earlyBytes = 0;
  /** Counted by ClientLimits.admit(); released when the session ends. */
  private admitted = false;
  private reader: DataReader | undefined;
  private spool: MessageSpool | undefined;
  private dataTimer: NodeJS.Timeout | undefined;
  /** Set when smtp.max_session_time has passed: the session ends at the next command boundary. */
  private expired = false;
  private sessionTimer: NodeJS.Timeout | undefined;
  /** Runs from the first byte of a command line until its end (see armLineDeadline). */
  private lineTimer: NodeJS.Timeout | undefined;
  private authContinuation: ((line: string) => Promise<void> | void) | undefined;
  private readonly id: string;
  private readonly remoteAddress: string;
  private readonly remotePort: number;
  private readonly trustedNetwork: boolean;
  private readonly log: Logger;
  private readonly started = Date.now();
  private messages = 0;
  private closing = false;
  /** Called once when the session ends. */
  onClose: (() => void) | undefined;

  constructor(socket: net.Socket, private readonly deps: SessionDeps, implicitTls: boolean) {
    this.socket = socket;
    this.id = `${process.pid.toString(36)}${(++sessionCounter).toString(36)}`;
    this.remoteAddress = clientAddress(socket.remoteAddress);
    this.remotePort = socket.remotePort ?? 0;
    this.trustedNetwork = deps.trusted.has(this.remoteAddress);
    this.log = deps.logger.child({ session: this.id, listener: deps.listener.name, client: this.remoteAddress });
    if (implicitTls) this.tlsInfo = describeTls(socket as tls.TLSSocket);
    this.attach(socket);
  }

  private get hostname(): string {
    return this.deps.config.hostname;
  }

  private get secure(): boolean {
    return this.tlsInfo !== undefined;
  }

  /**
   * Admits the client (connection limits), runs the connect-stage checks (DNSBL, rDNS) during
   * the greeting delay, catches early talkers, then greets. A refusal found here is applied at
   * RCPT (so the envelope is logged and postmaster@ stays reachable), unless it is a tempfail.
   */
  async start(): Promise<void> {
    this.deps.metrics.connections.inc({ listener: this.deps.listener.name });
    if (!this.trustedNetwork) {
      const refused = await this.deps.limits.admit(this.remoteAddress);
      if (!refused) this.admitted = true;
      if (this.mode === 'closed') return this.release();
      if (refused) {
        this.log.info({ event: 'client_limit', reply: refused.text }, 'connection refused by limits');
        this.deps.metrics.limited.inc({ limit: 'connection' });
        this.send(refused);
        return this.close();
      }
    }
    const mx = this.deps.listener.kind === 'mx' && !this.trustedNetwork;
    const wait = mx ? await this.greetingDelay() : 0;
    const [outcome] = await Promise.all([
      this.runStage('connect', { conn: this.facts() }),
      wait ? new Promise((r) => setTimeout(r, wait)) : undefined,
    ]);
    if (this.mode === 'closed') return;
    this.connSymbols.push(...outcome.symbols);
    this.connAuthResults = outcome.authResults;
    this.connFacts = outcome.facts;
    this.connFloor = strongerFloor(this.connFloor, outcome.floor);
    this.connWouldRefuse.push(...this.observed('connect', outcome));
    if (outcome.demand?.kind === 'tempfail') {
      this.send({ ...outcome.demand.reply, code: 421 });
      return this.close();
    }
    if (outcome.demand) this.connDeferred = outcome.demand;
    if (mx) this.judgeEarlyTalk(wait);
    const tarpit = this.tarpitDelay();
    if (tarpit) {
      await new Promise((r) => setTimeout(r, tarpit));
      if (this.isClosed()) return;
    }
    this.send(reply(220, undefined, `${this.hostname} ${this.deps.config.smtp.banner}`));
    this.greeted = true;
    this.flush();
    this.processInput();
  }

  /** The greeting delay for this client: none once it has waited politely (greeting.pass_ttl). */
  private async greetingDelay(): Promise<number> {
    const g = this.deps.config.greeting;
    if (!g.delay) return 0;
    const passed = await this.deps.store.getValue(`greet:pass:${this.remoteAddress}`).catch(() => undefined);
    return passed ? 0 : g.delay;
  }

  private judgeEarlyTalk(waited: number): void {
    const g = this.deps.config.greeting;
    if (!this.earlyBytes) {
      if (waited) this.deps.store.set(`greet:pass:${this.remoteAddress}`, '1', g.pass_ttl).catch(() => undefined);
      return;
    }
    const first = (this.inbuf?.subarray(0, 40).toString('latin1') ?? '').replace(/[^\x20-\x7e]/g, '.');
    const runner = this.deps.runner;
    this.log.info({ event: 'early_talker', bytes: this.earlyBytes, first, action: runner.policy.actions.of('EARLY_TALKER') }, 'client talked before the greeting');
    this.deps.metrics.limited.inc({ limit: 'early_talker' });
    // A finding of the session itself, judged by the actions layer like a check's (EARLY_TALKER: reject by default).
    const outcome = runner.judge('connect', [{
      name: 'EARLY_TALKER', reason: `${this.earlyBytes} bytes before the greeting: "${first}"`,
      reply: reply(550, '5.5.1', 'Error: protocol error: you talked before my greeting'),
    }]);
    this.connSymbols.push(...outcome.symbols);
    this.connFloor = strongerFloor(this.connFloor, outcome.floor);
    this.connWouldRefuse.push(...this.observed('connect', outcome));
    if (outcome.demand && !this.connDeferred) this.connDeferred = outcome.demand;
  }

  /** Observe mode: logs and counts each refusal that was held back; returns their replies. */
  private observed(stage: Stage, outcome: Pick<StageOutcome, 'wouldRefuse'>): string[] {
    return outcome.wouldRefuse.map((w) => {
      const text = replyLine(w.reply);
      this.log.info({ event: 'would_reject', stage, symbol: w.symbol, kind: w.kind, would_reply: text }, `observe: would ${w.kind === 'reject' ? 'reject' : 'tempfail'}`);
      this.deps.metrics.wouldReject.inc({ stage, symbol: w.symbol });
      return text;
    });
  }

  /** Suspicious clients wait before each reply: their score is high, or they keep making errors. */
  private tarpitDelay(): number {
    const t = this.deps.config.tarpit;
    if (this.trustedNetwork || this.authUser) return 0;
    const score = [...this.connSymbols, ...this.heloSymbols].reduce((n, s) => n + s.score, 0);
    if (t.delay && score >= t.score) return t.delay;
    if (t.error_delay && t.errors > 0 && this.errors >= t.errors) return t.error_delay;
    return 0;
  }

  /** The mode read afresh (TypeScript narrows `this.mode` across awaits and calls). */
  private isClosed(): boolean {
    return this.mode === 'closed';
  }

  private release(): void {
    if (!this.admitted) return;
    this.admitted = false;
    this.deps.limits.release(this.remoteAddress);
  }

  /** Ends the session from outside (shutdown): 421 when idle, else after the current command. */
  shutdown(): void {
    if (this.mode === 'closed') return;
    this.closing = true;
    if (!this.busy && this.mode !== 'data') {
      this.send(R.shuttingDown(this.hostname));
      this.close();
    }
  }

  /** Drops the connection at once (shutdown after the grace period). */
  abort(): void {
    this.mode = 'closed';
    this.socket.destroy();
  }

  private attach(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.setTimeout(this.deps.config.smtp.idle_timeout);
    this.sessionTimer = setTimeout(() => {
      this.expired = true;
      this.processInput();
    }, this.deps.config.smtp.max_session_time);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('timeout', () => {
      if (this.mode === 'closed') return;
      this.send(R.idleTimeout(this.hostname));
      this.close();
    });
    socket.on('error', (err) => this.log.debug({ event: 'socket_error', err: err.message }, 'socket error'));
    socket.on('close', () => this.finish());
  }

  private facts(): ConnectionFacts {
    const s = this.socket;
    return {
      sessionId: this.id,
      listener: this.deps.listener.name,
      listenerKind: this.deps.listener.kind,
      remoteAddress: this.remoteAddress,
      remotePort: this.remotePort,
      localAddress: clientAddress(s.localAddress),
      localPort: s.localPort ?? 0,
      trustedNetwork: this.trustedNetwork,
      tls: this.tlsInfo,
      helo: this.helo,
      esmtp: this.esmtp,
      authUser: this.authUser,
    };
  }

  // ---- input -------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.mode === 'closed') return;
    if (!this.greeted) {
      this.earlyBytes += chunk.length;
      this.inbuf = this.inbuf ? Buffer.concat([this.inbuf, chunk]) : chunk;
      // Held until the greeting; a client that keeps talking is not read further.
      if (this.inbuf.length > 64 * 1024) this.socket.pause();
      return;
    }
    if (this.mode === 'data' && !this.inbuf && !this.busy) {
      this.feedData(chunk);
      return;
    }
    this.inbuf = this.inbuf ? Buffer.concat([this.inbuf, chunk]) : chunk;
    // Bound what a client can make us hold while a command is being handled.
    if (this.busy && this.inbuf.length > 256 * 1024) this.socket.pause();
    this.processInput();
  }

  private processInput(): void {
    if (this.expired && this.greeted && this.mode !== 'data' && this.mode !== 'closed' && !this.busy) {
      this.log.info({ event: 'session_too_long', messages: this.messages }, 'session closed after smtp.max_session_time');
      this.send(R.sessionTooLong(this.hostname));
      this.close();
      return;
    }
    while (!this.busy && this.mode !== 'closed' && this.inbuf && this.inbuf.length) {
      if (this.mode === 'data') {
        const buf = this.inbuf;
        this.inbuf = undefined;
        this.feedData(buf);
        continue;
      }
      const lf = this.inbuf.indexOf(0x0a);
      const max = this.deps.config.smtp.max_line_length;
      if (lf < 0) {
        if (this.inbuf.length > max) {
          // Discard the rest of this line as it arrives, then answer once.
          if (!this.skippingLongLine) this.deps.metrics.protocolViolations.inc({ kind: 'line_too_long' });
          this.skippingLongLine = true;
          this.inbuf = undefined;
        }
        break;
      }
      this.clearLineDeadline();
      let end = lf;
      if (end > 0 && this.inbuf[end - 1] === 0x0d) end--;
      const raw = this.inbuf.subarray(0, end);
      this.inbuf = lf + 1 < this.inbuf.length ? this.inbuf.subarray(lf + 1) : undefined;
      if (this.skippingLongLine || raw.length > max) {
        this.skippingLongLine = false;
        this.reply(R.lineTooLong);
        continue;
      }
      let result = this.dispatch(raw.toString('utf8'));
      // The tarpit: the reply waits on a timer (no thread, no buffer beyond the reply itself).
      const delay = this.isClosed() ? 0 : this.tarpitDelay();
      if (delay) result = Promise.resolve(result).then(() => new Promise<void>((r) => setTimeout(r, delay)));
      if (result instanceof Promise) {
        this.busy = true;
        result
          .catch((err) => {
            this.log.error({ event: 'internal_error', err: (err as Error).stack }, 'internal error');
            this.reply(R.localError);
          })
          .finally(() => {
            this.busy = false;
            if (this.mode === 'closed') return;
            this.socket.resume();
            if (this.closing && this.mode !== 'data') {
              this.send(R.shuttingDown(this.hostname));
              this.close();
              return;
            }
            this.processInput();
          });
        return;
      }
    }
    if (!this.busy) this.flush();
    this.armLineDeadline();
  }

  /**
   * A command line must be complete within smtp.idle_timeout of its first byte, as Postfix's
   * smtpd_per_record_deadline: the socket's idle timer restarts with every byte, so a client that
   * drips one byte a minute would otherwise hold the session (and a connection slot) for days.
   * DATA has its own deadline (smtp.data_timeout for the whole message).
   */
  private armLineDeadline(): void {
    const partial = this.greeted && this.mode !== 'data' && this.mode !== 'closed' && !this.busy
      && (this.skippingLongLine || (this.inbuf?.length ?? 0) > 0);
    if (!partial) return this.clearLineDeadline();
    if (this.lineTimer) return;
    this.lineTimer = setTimeout(() => {
      this.lineTimer = undefined;
      if (this.mode === 'closed') return;
      this.log.info({ event: 'line_deadline', bytes: this.inbuf?.length ?? 0 }, 'command line not completed in time');
      this.send(R.idleTimeout(this.hostname));
      this.close();
    }, this.deps.config.smtp.idle_timeout);
  }

  private clearLineDeadline(): void {
    if (!this.lineTimer) return;
    clearTimeout(this.lineTimer);
    this.lineTimer = undefined;
  }

  // ---- output ------------------------------------------------------------------------------

  private send(r: Reply): void {
    if (this.mode === 'closed') return;
    this.out.push(formatReply(r));
    this.deps.metrics.replies.inc({ listener: this.deps.listener.name, code: String(r.code) });
  }

  /** Sends a reply to a client command; failures count towards the error limit (Postfix's hard limit). */
  private reply(r: Reply): void {
    this.send(r);
    if (r.code >= 400 && r.code !== 421) {
      this.errors++;
      if (this.errors >= this.deps.config.smtp.max_errors) {
        this.log.info({ event: 'too_many_errors', errors: this.errors }, 'too many errors');
        this.send(R.tooManyErrors(this.hostname));
        this.close();
      }
    }
  }

  private flush(): void {
    if (!this.out.length) return;
    const text = this.out.join('');
    this.out = [];
    if (!this.socket.destroyed) this.socket.write(text);
  }

  private close(): void {
    if (this.mode === 'closed') return;
    this.flush();
    this.mode = 'closed';
    this.socket.end();
    // Do not wait forever for a peer that never reads.
    setTimeout(() => this.socket.destroy(), 5000).unref();
  }

  private finish(): void {
    if (this.dataTimer) clearTimeout(this.dataTimer);
    clearTimeout(this.sessionTimer);
    this.clearLineDeadline();
    this.release();
    // While endOfData() runs, the spool belongs to it (it may be committing the spill file).
    if (!this.busy) {
      this.spool?.discard();
      this.spool = undefined;
    }
    if (this.mode !== 'closed') this.mode = 'closed';
    this.log.debug({ event: 'disconnect', messages: this.messages, errors: this.errors, ms: Date.now() - this.started }, 'disconnect');
    const cb = this.onClose;
    this.onClose = undefined;
    cb?.();
  }

  // ---- commands ----------------------------------------------------------------------------

  private dispatch(line: string): void | Promise<void> {
    if (this.mode === 'auth') {
      const k = this.authContinuation!;
      this.authContinuation = undefined;
      this.mode = 'command';
      return k(line);
    }
    const sp = line.indexOf(' ');
    const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
    const arg = sp < 0 ? '' : line.slice(sp + 1).trim();
    switch (verb) {
      case 'EHLO': return this.cmdHelo(arg, true);
      case 'HELO': return this.cmdHelo(arg, false);
      case 'MAIL': return this.cmdMail(arg);
      case 'RCPT': return this.cmdRcpt(arg);
      case 'DATA': return this.cmdData(arg);
      case 'RSET':
        if (arg) return this.reply(R.syntax('RSET'));
        this.resetTransaction();
        return this.send(R.resetOk);
      case 'NOOP': return this.send(R.noopOk);
      case 'QUIT':
        this.send(R.bye);
        return this.close();
      case 'STARTTLS': return this.cmdStartTls(arg);
      case 'AUTH': return this.cmdAuth(arg);
      case 'VRFY': return this.reply(R.vrfyDisabled);
      case 'EXPN': return this.reply(R.expnDisabled);
      case 'HELP': return this.send(R.help);
      default:
        if (FORBIDDEN.test(line)) {
          // A web or proxy client abusing the port: say so and hang up (Postfix smtpd_forbidden_commands).
          this.log.info({ event: 'forbidden_command', verb }, 'non-SMTP client');
          this.send(reply(521, '5.7.0', 'Error: this is an SMTP server, not a web or proxy server'));
          return this.close();
        }
        return this.reply(R.unknownCommand);
    }
  }

  private async cmdHelo(arg: string, extended: boolean): Promise<void> {
    if (!arg || /\s/.test(arg)) return this.reply(R.syntax(extended ? 'EHLO hostname' : 'HELO hostname'));
    this.resetTransaction();
    this.helo = arg;
    this.esmtp = extended;
    const outcome = await this.runStage('helo', { conn: this.facts(), facts: this.connFacts });
    // A new HELO replaces what the last one found.
    this.heloSymbols = outcome.symbols;
    this.heloFacts = outcome.facts;
    this.heloWouldRefuse = this.observed('helo', outcome);
    if (outcome.demand?.kind === 'tempfail') return this.refuse(outcome.demand);
    this.heloDeferred = outcome.demand;
    if (!extended) return this.send(reply(250, undefined, this.hostname));
    const c = this.deps.config;
    const lines = [this.hostname, 'PIPELINING', `SIZE ${c.smtp.max_message_size}`];
    if (!this.secure && this.deps.tlsOptions()) lines.push('STARTTLS');
    if (this.authOffered()) lines.push(`AUTH ${c.auth.mechanisms.join(' ')}`);
    lines.push('ENHANCEDSTATUSCODES', '8BITMIME', 'SMTPUTF8');
    this.send(reply(250, undefined, lines.join('\n')));
  }

  /** AUTH is offered only over TLS, on submission listeners, and on MX only when configured. */
  private authOffered(): boolean {
    return this.secure && !this.authUser && this.authAvailable();
  }

  private authAvailable(): boolean {
    return this.deps.listener.kind !== 'mx' || this.deps.config.auth.on_mx;
  }

  private cmdStartTls(arg: string): void {
    if (arg) return this.reply(R.syntax('STARTTLS'));
    if (this.secure) return this.reply(R.alreadyTls);
    const options = this.deps.tlsOptions();
    if (!options) return this.reply(R.tlsUnavailable);
    if (this.inbuf?.length) {
      // CVE-2011-0411: plaintext pipelined behind STARTTLS must never run inside TLS.
      this.log.warn({ event: 'starttls_injection', bytes: this.inbuf.length }, 'discarded plaintext pipelined after STARTTLS');
      this.deps.metrics.protocolViolations.inc({ kind: 'starttls_injection' });
      this.inbuf = undefined;
    }
    this.send(R.startTls);
    this.flush();
    this.busy = true; // hold input until the handshake is done
    upgradeToTls(this.socket, options, {
      timeoutMs: this.deps.config.smtp.idle_timeout,
      log: this.log,
      onFail: () => {
        this.mode = 'closed';
        this.finish();
      },
      onSecure: (secure) => {
        this.socket = secure;
        this.tlsInfo = describeTls(secure);
        // RFC 3207 s4.2: forget everything learnt before TLS.
        this.helo = undefined;
        this.esmtp = false;
        this.resetTransaction();
        this.attach(secure);
        this.busy = false;
        this.processInput();
      },
    });
  }

  private cmdAuth(arg: string): void | Promise<void> {
    if (!this.authAvailable()) return this.reply(R.authNotAvailable);
    if (!this.secure) {
      this.deps.metrics.authFailures.inc({ listener: this.deps.listener.name });
      return this.reply(R.encryptionRequired);
    }
    if (!this.helo) return this.reply(R.heloFirst);
    if (this.authUser) return this.reply(R.alreadyAuth);
    if (this.tx) return this.reply(R.authInTransaction);
    const [mechRaw, initial, extra] = arg.split(/\s+/);
    const mech = (mechRaw ?? '').toUpperCase();
    if (!mech || extra !== undefined) return this.reply(R.syntax('AUTH mechanism [initial-response]'));
    if (!(this.deps.config.auth.mechanisms as readonly string[]).includes(mech)) return this.reply(R.authUnsupported);
    if (mech === 'PLAIN') {
      if (initial !== undefined) return this.authPlain(initial);
      return this.challenge('', (line) => this.authPlain(line));
    }
    // LOGIN: username and password prompts (draft-murchison-sasl-login).
    const withUser = (userB64: string) => {
      const user = decodeSaslResponse(userB64);
      if (user === undefined) return this.authFail(R.authBadBase64);
      if (user === null) return this.reply(R.authCancelled);
      return this.challenge('UGFzc3dvcmQ6', (passLine) => {
        const pass = decodeSaslResponse(passLine);
        if (pass === undefined) return this.authFail(R.authBadBase64);
        if (pass === null) return this.reply(R.authCancelled);
        return this.verify(user, pass);
      });
    };
    if (initial !== undefined) return withUser(initial);
    return this.challenge('VXNlcm5hbWU6', withUser);
  }

  private challenge(text: string, next: (line: string) => Promise<void> | void): void {
    this.send(reply(334, undefined, text));
    this.mode = 'auth';
    this.authContinuation = next;
  }

  private authPlain(b64: string): void | Promise<void> {
    const decoded = decodeSaslResponse(b64);
    if (decoded === undefined) return this.authFail(R.authBadBase64);
    if (decoded === null) return this.reply(R.authCancelled);
    const plain = parsePlain(decoded);
    if (!plain) return this.authFail(R.authBadBase64);
    return this.verify(plain.user, plain.pass, plain.authz);
  }

  /** The password check of src/auth/login.ts; this maps its outcome to SMTP. */
  private async verify(user: string, pass: string, authz = ''): Promise<void> {
    const outcome = await checkLogin(this.deps, this.remoteAddress, user, pass, authz);
    if (!outcome.ok && outcome.reason === 'unavailable') {
      this.log.warn({ event: 'auth_unavailable', user: outcome.account, err: outcome.error }, 'accounts unavailable: temporary authentication failure');
      return this.reply(ACCOUNTS_UNAVAILABLE.auth);
    }
    if (this.mode === 'closed') return;
    if (!outcome.ok) {
      if (outcome.blocked) this.log.info({ event: 'auth_blocked', user: outcome.account, scope: outcome.blocked }, 'login attempt from a blocked source');
      return this.authFail(R.authFailed, outcome.account);
    }
    const account = outcome.account;
    this.authUser = account;
    this.log.info({ event: 'auth', user: this.authUser }, 'authenticated');
    await this.deps.outbound?.authenticated(account, this.remoteAddress);
    this.send(R.authOk);
  }

  private authFail(r: Reply, user?: string): void | Promise<void> {
    this.deps.metrics.authFailures.inc({ listener: this.deps.listener.name });
    this.log.info({ event: 'auth_failed', user: user?.slice(0, 320) }, 'authentication failed');
    this.reply(r);
    // A malformed exchange counts against the source like a wrong password.
    if (user === undefined) return malformedLogin(this.deps, this.remoteAddress);
  }

  private async cmdMail(arg: string): Promise<void> {
    if (!this.helo) return this.reply(R.heloFirst);
    if (this.tx) return this.reply(R.nestedMail);
    if (this.deps.listener.kind !== 'mx' && !this.authUser) {
      return this.reply(this.secure || !this.deps.tlsOptions() ? R.authRequired : R.mustStartTls);
    }
    let parsed;
    try {
      parsed = parsePathArgument(arg, 'FROM');
    } catch (err) {
      if (err instanceof AddressError) return this.reply(R.badSenderSyntax(arg.replace(/^FROM:\s*/i, '')));
      throw err;
    }
    let smtputf8 = false;
    let body8bit = false;
    let declaredSize: number | undefined;
    for (const [key, value] of parsed.params) {
      switch (key) {
        case 'SIZE': {
          if (value === true || !/^\d{1,15}$/.test(value)) return this.reply(R.badParamValue('SIZE'));
          declaredSize = Number(value);
          if (declaredSize > this.deps.config.smtp.max_message_size) return this.reply(R.sizeExceedsLimit);
          break;
        }
        case 'BODY':
          if (value === true || !/^(7BIT|8BITMIME)$/i.test(value)) return this.reply(R.badParamValue('BODY'));
          body8bit = value.toUpperCase() === '8BITMIME';
          break;
        case 'SMTPUTF8':
          if (value !== true) return this.reply(R.badParamValue('SMTPUTF8'));
          smtputf8 = true;
          break;
        case 'AUTH':
          break; // RFC 4954 s5: accepted and not trusted.
        default:
          return this.reply(R.unsupportedParam(key));
      }
    }
    const addr = parsed.address;
    const sender = addr ? formatAddress(addr) : '';
    if (addr?.utf8 && !smtputf8) return this.reply(R.utf8NeedsSmtputf8(sender));
    if (addr?.literal && this.authUser) return this.reply(R.senderNotOwned(sender, this.authUser));
    let owned = true;
    try {
      owned = !addr || !this.authUser || (!addr.quoted && this.deps.resolver.owns(this.authUser, `${addr.local}@${addr.domain}`));
    } catch (err) {
      if (!isAccountsUnavailable(err)) throw err;
      this.log.warn({ event: 'accounts_unavailable', user: this.authUser, sender, err: (err as Error).message }, 'accounts unavailable: sender not checked, temporary failure');
      return this.reply(ACCOUNTS_UNAVAILABLE.sender(sender));
    }
    if (!owned) {
      this.log.info({ event: 'sender_mismatch', user: this.authUser, sender }, 'sender not owned by user');
      return this.reply(R.senderNotOwned(sender, this.authUser!));
    }
    // A locked account (or client address) gets the 451 with the reason (docs/outbound.md).
    const suspended = this.authUser ? await this.deps.outbound?.suspended(this.authUser, this.remoteAddress) : undefined;
    if (suspended) {
      this.log.info({ event: 'outbound_suspended', user: this.authUser, sender, reply: suspended.text }, 'submission refused: sending suspended');
      return this.reply(suspended);
    }
    if (!this.trustedNetwork && !this.authUser) {
      const limited = await this.deps.limits.message(this.remoteAddress);
      if (limited) {
        this.deps.metrics.limited.inc({ limit: 'messages' });
        this.log.info({ event: 'client_limit', sender, reply: limited.text }, 'message rate limit');
        return this.reply(limited);
      }
    }
    // Room in the queue for the message, as Postfix checks it at MAIL (src/queue/storage.ts).
    const room = await this.deps.queue.room(declaredSize ?? this.deps.config.smtp.max_message_size);
    if (!room.ok) {
      this.log.warn({ event: 'insufficient_storage', sender, reason: room.reason }, 'queue file system full: MAIL refused');
      return this.reply(R.insufficientStorage);
    }
    const outcome = await this.runStage('mail', { conn: this.facts(), sender, facts: { ...this.connFacts, ...this.heloFacts } });
    this.tx = {
      id: this.deps.newId(), sender, smtputf8, body8bit, declaredSize, recipients: [], symbols: [...outcome.symbols], rejectedRecipients: 0,
      authResults: outcome.authResults, trace: outcome.trace, deferred: outcome.demand, facts: outcome.facts, floor: outcome.floor,
      wouldRefuse: this.observed('mail', outcome),
    };
    this.send(R.senderOk);
  }

  private async cmdRcpt(arg: string): Promise<void> {
    const tx = this.tx;
    if (!tx) return this.reply(R.needMail);
    let parsed;
    try {
      parsed = parsePathArgument(arg, 'TO');
    } catch (err) {
      if (!(err instanceof AddressError)) throw err;
      const shown = arg.replace(/^TO:\s*/i, '').replace(/^<|>.*$/g, '');
      if (err.fault === 'needs-domain') return this.rejectRcpt(R.needFqdnRecipient(shown), shown, 'no domain');
      return this.rejectRcpt(R.badRecipientSyntax(arg.replace(/^TO:\s*/i, '')), shown, err.message);
    }
    for (const key of parsed.params.keys()) return this.reply(R.unsupportedParam(key));
    if (tx.recipients.length >= this.deps.config.smtp.max_recipients) return this.reply(R.tooManyRecipients);
    let resolution: Resolution;
    const shown = parsed.postmasterOnly ? 'postmaster' : formatAddress(parsed.address!);
    if (parsed.address?.utf8 && !tx.smtputf8) return this.reply(R.utf8NeedsSmtputf8(shown));
    try {
      if (parsed.postmasterOnly) resolution = this.deps.resolver.postmaster();
      else resolution = this.deps.resolver.resolve(parsed.address!, { authenticated: !!this.authUser, trusted: this.trustedNetwork });
      // The recipient's own block list is read here too: the same temporary failure if it cannot be.
      if (resolution.kind === 'local' && !resolution.role && !this.authUser && tx.sender) this.deps.spam?.users?.settingsFor(resolution.address);
    } catch (err) {
      // The accounts cannot be read (Redis down): neither "user unknown" nor accepted.
      if (!isAccountsUnavailable(err)) throw err;
      return this.rejectRcpt(ACCOUNTS_UNAVAILABLE.lookup(shown), shown, 'accounts unavailable');
    }
    if (resolution.kind === 'reject') return this.rejectRcpt(resolution.reply, shown, resolution.why);
    if (!resolution.role && !this.authUser) {
      // Refusals found earlier in the session land here (smtpd_delay_reject): the envelope is
      // logged, and postmaster@/abuse@ stay reachable for a listed sender asking to be unlisted.
      const deferred = this.connDeferred ?? this.heloDeferred ?? tx.deferred;
      if (deferred) return this.rejectRcpt(deferred.reply, shown, `refused earlier in the session: ${deferred.reply.text}`);
      // The user's own block list, on the envelope sender: refused for this recipient only.
      const settings = resolution.kind === 'local' && tx.sender ? this.deps.spam?.users?.settingsFor(resolution.address) : undefined;
      if (settings && listMatches(settings.block, tx.sender)) {
        return this.rejectRcpt(reply(550, '5.7.1', `<${shown}>: Recipient address rejected: the recipient does not accept mail from <${tx.sender}>`), shown, 'sender on the recipient\'s block list');
      }
      if (!this.trustedNetwork) {
        const limited = await this.deps.limits.recipient(this.remoteAddress);
        if (limited) {
          this.deps.metrics.limited.inc({ limit: 'recipients' });
          return this.rejectRcpt(limited, shown, 'recipient rate limit');
        }
      }
    }
    const outcome = await this.runStage('rcpt', { conn: this.facts(), sender: tx.sender, recipient: resolution.address, facts: tx.facts });
    tx.wouldRefuse.push(...this.observed('rcpt', outcome));
    if (outcome.demand && !resolution.role) return this.refuse(outcome.demand, shown);
    tx.floor = strongerFloor(tx.floor, outcome.floor);
    tx.symbols.push(...outcome.symbols);
    if (!tx.recipients.some((r) => r.resolution.address === resolution.address)) tx.recipients.push({ shown, resolution });
    this.send(R.recipientOk);
  }

  private rejectRcpt(r: Reply, recipient: string, why: string): void {
    if (this.tx) this.tx.rejectedRecipients++;
    this.log.info({
      event: 'rcpt_reject', id: this.tx?.id, helo: this.helo, sender: this.tx?.sender, recipient, why, reply: `${r.code} ${r.enhanced}`,
      symbols: [...this.connSymbols, ...(this.tx?.symbols ?? [])].map((x) => ({ name: x.name, score: x.score, reason: x.reason })),
    }, 'recipient refused');
    this.reply(r);
  }

  private cmdData(arg: string): void {
    if (arg) return this.reply(R.syntax('DATA'));
    const tx = this.tx;
    if (!tx) return this.reply(R.needMail);
    if (!tx.recipients.length) return this.reply(R.noValidRecipients);
    if (this.inbuf?.length) {
      // Message content sent before our 354: a client that does not wait for replies, the
      // precondition of SMTP smuggling. Nothing after this point can be trusted to be a command.
      this.deps.metrics.protocolViolations.inc({ kind: 'pipelining' });
      this.log.warn({ event: 'pipelining_violation', id: tx.id, bytes: this.inbuf.length }, 'data sent before 354');
      this.inbuf = undefined;
      this.send(R.pipeliningViolation);
      return this.close();
    }
    const c = this.deps.config;
    this.spool = new MessageSpool(MAX_HEADER, c.queue.memory_spill, this.deps.queue.largeFile(tx.id));
    const spool = this.spool;
    this.reader = new DataReader(c.smtp.max_message_size, (b) => spool.write(b), c.smtp.bare_newline);
    this.mode = 'data';
    this.send(R.startData);
    this.flush();
    this.dataTimer = setTimeout(() => {
      this.send(R.idleTimeout(this.hostname));
      this.close();
    }, c.smtp.data_timeout);
  }

  private feedData(chunk: Buffer): void {
    const reader = this.reader!;
    const { consumed, done } = reader.push(chunk);
    if (!done) return;
    if (consumed < chunk.length) this.inbuf = chunk.subarray(consumed);
    this.mode = 'command';
    clearTimeout(this.dataTimer);
    this.dataTimer = undefined;
    this.busy = true;
    this.endOfData()
      .catch((err) => {
        this.log.error({ event: 'internal_error', err: (err as Error).stack }, 'internal error at end of data');
        this.spool?.discard();
        this.reply(R.localError);
      })
      .finally(() => {
        this.spool = undefined;
        this.reader = undefined;
        this.resetTransaction();
        this.busy = false;
        if (this.mode === 'closed') return;
        if (this.closing) {
          this.send(R.shuttingDown(this.hostname));
          this.close();
          return;
        }
        this.processInput();
      });
  }

  private async endOfData(): Promise<void> {
    const tx = this.tx!;
    const spool = this.spool!;
    const reader = this.reader!;
    await spool.finish();
    // The log line of a refusal after the checks ran carries their symbols and the score (why).
    const refuse = (r: Reply, outcome: string, why?: { symbols: ScoredSymbol[]; score: number }) => {
      spool.discard();
      this.deps.metrics.messages.inc({ outcome });
      this.logMessage(tx, outcome, r, why?.symbols ?? [], spool.size, why?.score);
      this.reply(r);
    };
    if (reader.overflow) return refuse(R.messageTooBig, 'too_big');
    if (spool.headerOverflow) return refuse(reply(552, '5.3.4', 'Error: message header section too big'), 'too_big');
    if (reader.bareNewlines) this.deps.metrics.protocolViolations.inc({ kind: 'bare_newline' });
    if (reader.rejectBareNewline) return refuse(R.bareNewline, 'bare_newline');
    if (spool.error) {
      this.log.error({ event: 'spool_error', id: tx.id, err: spool.error.message }, 'cannot write message');
      return refuse(writeFailure(spool.error), 'tempfail');
    }
    const headers = parseHeaderBlock(spool.headerBlock!);
    tx.messageId = headers.find((h) => h.key === 'message-id')?.value.trim().replace(/^<|>$/g, '').slice(0, 998);
    const hops = headers.filter((h) => h.key === 'received').length;
    if (hops > 50) return refuse(reply(554, '5.4.6', 'Error: too many hops (mail loop?)'), 'loop');
    const conn = this.facts();
    // The one message model, over the spool (a large message stays on disk): every content check
    // reads its facets, each computed once.
    const model = messageModel({ size: spool.size, stream: () => spool.stream() }, this.deps.messageModel);
    const message = { ...model, headers, bareNewlines: reader.bareNewlines };
    const facts: Facts = { ...this.connFacts, ...this.heloFacts, ...tx.facts };
    const outcome = await this.runStage('data', {
      conn,
      envelope: { sender: tx.sender, recipients: tx.recipients.map((r) => r.resolution.address) },
      message,
      facts,
    });
    const symbols = [...this.connSymbols, ...this.heloSymbols, ...tx.symbols, ...outcome.symbols];
    tx.wouldRefuse.push(...this.observed('data', outcome));
    if (outcome.demand) {
      // antivirus.quarantine: the refused infected message is kept (it was never accepted, so
      // nobody else has it); a failure to keep it never turns the refusal into an accept.
      const virus = outcome.demand.kind === 'reject' && this.deps.quarantine?.keepInfected ? symbols.find((s) => s.name === 'AV_VIRUS') : undefined;
      const held = virus ? await this.hold(tx, 'virus', this.destinations(tx, tx.recipients.map(() => 'deliver')), symbols, undefined, virus.reason) : undefined;
      this.logMessage(tx, outcome.demand.kind, outcome.demand.reply, symbols, spool.size, undefined, undefined, undefined, held ? [held] : undefined);
      spool.discard();
      this.deps.metrics.messages.inc({ outcome: outcome.demand.kind });
      return this.reply(outcome.demand.reply);
    }
    const p = this.deps.config.policy;
    const floor = strongerFloor(strongerFloor(this.connFloor, tx.floor), outcome.floor);
    const policies = this.recipientPolicies(tx, headers, outcome.facts);
    // Authenticated mail is scored without the client-path symbols and held, not refused, for spam (pipeline/outbound/content.ts).
    const ob = this.authUser ? this.deps.outbound : undefined;
    let verdict = decide(ob ? outboundSymbols(tx.symbols, outcome.symbols) : symbols, policies, p.thresholds, p.observe, floor);
    const content = ob?.content(verdict, p.thresholds.junk, p.observe);
    if (content) verdict = content.verdict;
    if (content?.wouldHold) this.log.info({ event: 'would_hold', id: tx.id, user: this.authUser, reason: content.wouldHold.reason }, 'observe: would hold outbound spam');
    const contentReply = () => contentRefusal(verdict.score, symbols);
    const refusal = messageRefusal(verdict, policies, symbols);
    if (refusal) return refuse(refusal, 'reject', { symbols, score: verdict.score });
    if (verdict.wouldReject && p.observe) {
      tx.wouldRefuse.push(...this.observed('data', { wouldRefuse: [{ kind: 'reject', reply: contentReply(), symbol: 'SCORE' }] }));
    }
    // Limits and locks count the message now; a tripped limit holds it (or refuses it with 451).
    let outboundHold: HoldInfo | undefined;
    if (ob) {
      const s = await ob.submitted({ id: tx.id, user: this.authUser!, ip: this.remoteAddress, recipients: tx.recipients.map((r) => r.resolution.address), spamHold: content?.hold });
      if (s.kind === 'refuse') return refuse(s.reply, 'tempfail', { symbols, score: verdict.score });
      if (s.kind === 'hold') {
        outboundHold = s.held;
        this.log.warn({ event: 'outbound_held', id: tx.id, user: this.authUser, code: s.code, reason: s.held.reason }, 'outbound message held');
      }
    }
    // The quarantine band (a symbol's action `quarantine`): those recipients' copy is held, the
    // original as received, instead of delivered. If it cannot be kept it goes to Junk, as before
    // the quarantine existed: the mail is never lost.
    const actions = [...verdict.actions];
    const held: Held[] = [];
    const bandIndex = actions.flatMap((a, k) => (a === 'quarantine' ? [k] : []));
    if (bandIndex.length) {
      const band = await this.hold(tx, 'policy_band', this.destinations(tx, actions.map((a) => (a === 'quarantine' ? 'deliver' : 'reject'))), symbols, verdict.score);
      if (band) held.push(band);
      for (const k of bandIndex) actions[k] = band ? 'quarantine' : 'junk';
    }
    const destinations = this.destinations(tx, actions);
    // Stripped or defanged attachments: the original is kept for the recipients of the rewritten copy.
    const rewritePlan = destinations.length ? outcome.rewrite : undefined;
    if (rewritePlan) {
      const stripped = rewritePlan.changes.some((c) => c.action === 'strip');
      const detail = rewritePlan.changes.slice(0, 20).map((c) => `${c.action === 'strip' ? 'stripped' : 'defanged'} ${JSON.stringify(c.name)} (${c.reason})`).join('; ');
      const kept = await this.hold(tx, stripped ? 'attachment_stripped' : 'attachment_defanged', destinations, symbols, verdict.score, detail);
      if (kept) held.push(kept);
    }
    const forget = () => {
      for (const h of held) this.deps.quarantine?.discard(h.id).catch(() => undefined);
    };
    // The one rewrite (strip/defang attachments), after every check saw the message as received.
    // It goes to the message's spill file; the original is never changed in place, and a failed
    // rewrite refuses the message rather than queue half of one.
    let block = spool.headerBlock!;
    let fields = headers;
    let bodySize = spool.size - block.length;
    let file = spool.spilled ? { name: `${tx.id}.eml`, offset: block.length } : undefined;
    const trace = [...tx.trace, ...outcome.trace];
    const rewrite = rewritePlan;
    if (rewrite) {
      try {
        const out = await writeRewritten(spool.stream(), rewrite, spool.spillPath, { fsync: false }); // commit() fsyncs it
        block = out.headerBlock;
        fields = parseHeaderBlock(block);
        bodySize = out.size - block.length;
        file = { name: `${tx.id}.eml`, offset: block.length };
        trace.push(rewrite.summaryHeader);
        // Where the user (or the console) finds the original.
        const kept = held.find((h) => h.reason !== 'policy_band');
        if (kept) trace.push(`X-Portcullis-Quarantine: ${kept.id} (the original, as received)`);
      } catch (err) {
        this.log.error({ event: 'rewrite_failed', id: tx.id, err: (err as Error).message }, 'cannot rewrite message');
        fs.rm(spool.spillPath, { force: true }, () => undefined);
        forget();
        return refuse(writeFailure(err), 'tempfail');
      }
    }
    const prefix = buildPrefix({
      hostname: this.hostname, id: tx.id, conn, recipients: tx.recipients.map((r) => r.shown), smtputf8: tx.smtputf8,
      authResults: [...this.connAuthResults, ...tx.authResults, ...outcome.authResults], trace, score: verdict.score, symbols, thresholds: p.thresholds,
    });
    const header = rewriteHeaders(fields, block, this.hostname, verdict.score >= p.thresholds.tag ? p.subject_tag : '');
    const inline = file ? [prefix, header] : [prefix, header, ...(spool.body ?? [])];
    const size = prefix.length + header.length + bodySize;
    const attachments = rewrite?.changes.map((c) => `${c.action} ${JSON.stringify(c.name)}${c.newName ? ` → ${JSON.stringify(c.newName)}` : ''} (${c.reason})`);
    const meta = {
      client: this.remoteAddress, helo: this.helo, listener: this.deps.listener.name, user: this.authUser,
      tls: this.tlsInfo?.protocol, score: verdict.score, symbols: symbols.map((s) => s.name), ...(attachments ? { attachments } : {}),
      // The From domain DMARC proved (lists accept a member's post only from its proven author).
      ...(outcome.facts.dmarc?.result === 'pass' && outcome.facts.dmarc.domain ? { dmarc_pass: outcome.facts.dmarc.domain.toLowerCase() } : {}),
    };
    try {
      // Every recipient held in the quarantine: nothing to queue (the quarantine is durable).
      if (destinations.length) {
        await this.deps.queue.commit({
          id: tx.id, sender: tx.sender, recipients: destinations, meta, inline, size, authenticated: !!this.authUser,
          file, ...(outboundHold ? { held: outboundHold } : {}),
        });
      } else spool.discard();
    } catch (err) {
      this.log.error({ event: 'queue_write_failed', id: tx.id, err: (err as Error).message }, 'queue write failed');
      if (rewrite) fs.rm(spool.spillPath, { force: true }, () => undefined);
      forget();
      return refuse(writeFailure(err), 'tempfail');
    }
    this.messages++;
    const distinct = [...new Set(actions)];
    const outcomeName = outboundHold ? 'held' : distinct.length === 1 ? distinct[0]! : 'mixed';
    this.deps.metrics.messages.inc({ outcome: outcomeName });
    for (const s of symbols) this.deps.metrics.symbols.inc({ symbol: s.name });
    this.logMessage(tx, outcomeName, R.queued(tx.id), symbols, size, verdict.score, [...this.connWouldRefuse, ...this.heloWouldRefuse, ...tx.wouldRefuse], attachments, held);
    this.send(R.queued(tx.id));
    // Autolearn after the answer: it must not delay the client, and a failure only costs a lesson.
    if (!this.authUser) this.deps.spam?.autolearn(message, symbols, tx.id, { ip: this.remoteAddress, helo: this.helo });
  }

  /**
   * Keeps the message as received in the quarantine for `recipients` (their final destinations);
   * undefined when there is no quarantine, nobody to keep it for, or the write failed (logged:
   * the message goes on where the policy sends it).
   */
  private async hold(tx: Transaction, reason: QuarantineReason, recipients: readonly { address: string; destination: Destination }[], symbols: readonly ScoredSymbol[], score: number | undefined, detail?: string): Promise<Held | undefined> {
    const q = this.deps.quarantine;
    const spool = this.spool;
    if (!q || !spool || !recipients.length) return undefined;
    try {
      const id = await q.add({
        reason, sender: tx.sender, recipients, queueId: tx.id, score: score ?? totalOf(symbols),
        symbols: symbols.map((s) => ({ name: s.name, score: s.score, reason: s.reason })), ...(detail ? { detail } : {}),
      }, spool.stream());
      return { id, reason, recipients: recipients.map((r) => r.address) };
    } catch (err) {
      this.log.error({ event: 'quarantine_failed', id: tx.id, reason, err: (err as Error).message }, 'could not keep the message in the quarantine');
      return undefined;
    }
  }

  /** Each recipient's policy: role addresses exempt, then the user's own spam settings. */
  private recipientPolicies(tx: Transaction, headers: readonly HeaderField[], facts: Facts): RecipientPolicy[] {
    const users = this.deps.spam?.users;
    // The allow lists trust an address only when SPF or DMARC proved it: the checks' facts say so.
    const sender = senderFacts(tx.sender, headers, facts);
    return tx.recipients.map((r) => {
      const exempt = r.resolution.role;
      const settings = users && r.resolution.kind === 'local' && !exempt ? users.settingsFor(r.resolution.address) : undefined;
      return recipientPolicy(settings, this.deps.config.policy.thresholds, sender, exempt);
    });
  }

  /** One queue recipient per final destination; the folder follows the recipient's action. */
  private destinations(tx: Transaction, actions: readonly Action[]): { address: string; destination: Destination }[] {
    const out: { address: string; destination: Destination }[] = [];
    const seen = new Set<string>();
    tx.recipients.forEach((r, k) => {
      // Held in the quarantine (or, for hold(), not part of this entry): no copy here.
      if (actions[k] === 'quarantine' || actions[k] === 'reject') return;
      const folder = actions[k] === 'junk' ? 'Junk' : 'INBOX';
      const res = r.resolution;
      const add = (address: string, destination: Destination) => {
        const key = `${address}|${destination.kind}`;
        if (seen.has(key)) return;
        seen.add(key);
        out.push({ address, destination });
      };
      if (res.kind === 'relay') add(res.address, { kind: 'relay', domain: res.domain });
      else {
        for (const m of res.mailboxes) add(m, { kind: 'local', mailbox: m, folder });
        for (const e of res.external) add(e, { kind: 'relay', domain: e.slice(e.lastIndexOf('@') + 1), forwarded: true });
      }
    });
    return out;
  }

  private logMessage(tx: Transaction, action: string, r: Reply, symbols: ScoredSymbol[], size: number, score?: number, wouldReject?: readonly string[], attachments?: string[], held?: readonly Held[]): void {
    this.log.info({
      event: 'message', id: tx.id, helo: this.helo, user: this.authUser, tls: this.tlsInfo?.protocol,
      sender: tx.sender, recipients: tx.recipients.map((x) => x.shown), rejected_recipients: tx.rejectedRecipients,
      action, reply: `${r.code} ${r.enhanced ?? ''}`.trim(), size, score: score ?? Math.round(symbols.reduce((n, s) => n + s.score, 0) * 100) / 100,
      symbols: symbols.map((s) => ({ name: s.name, score: s.score, reason: s.reason })),
      // Observe mode: every refusal that was held back, with the exact reply it would have sent.
      ...(wouldReject?.length ? { observe: 'would reject', would_reply: wouldReject } : {}),
      // What was kept in the quarantine, under which id (docs/quarantine.md).
      ...(held?.length ? { quarantine: held.map((h) => ({ id: h.id, reason: h.reason, recipients: h.recipients })) } : {}),
      ...(attachments ? { attachments } : {}),
    }, 'message');
    this.deps.trace?.({ queueId: tx.id, messageId: tx.messageId, sender: tx.sender, recipients: tx.recipients.map((x) => x.shown), action, reply: `${r.code} ${r.enhanced ?? ''}`.trim(),
      score: score ?? symbols.reduce((n, s) => n + s.score, 0), size, client: this.remoteAddress, user: this.authUser, symbols, attachments });
  }

  private refuse(demand: Demand, recipient?: string): void {
    if (recipient && this.tx) this.tx.rejectedRecipients++;
    this.reply(demand.reply);
  }

  private resetTransaction(): void {
    this.tx = undefined;
  }

  private async runStage<S extends Stage>(stage: S, input: StageInput[S]): Promise<StageOutcome> {
    if (!this.deps.runner.has(stage)) return { symbols: [], wouldRefuse: [], facts: { ...input.facts }, authResults: [], trace: [] };
    return this.deps.runner.run(stage, input);
  }
}


function totalOf(symbols: readonly ScoredSymbol[]): number {
  return Math.round(symbols.reduce((n, s) => n + s.score, 0) * 100) / 100;
}

function describeTls(s: tls.TLSSocket): ConnectionFacts['tls'] {
  const cipher = s.getCipher();
  return { protocol: s.getProtocol() ?? 'unknown', cipher: cipher?.standardName ?? cipher?.name ?? 'unknown', servername: (s as tls.TLSSocket & { servername?: string }).servername || undefined };
}

export type { HeaderField };

/** A failed write of the message: 452 4.3.1 when the disk (or quota) is full, as Postfix says it; else 451 4.3.0. */
function writeFailure(err: unknown): Reply {
  return isOutOfSpace(err) ? R.insufficientStorage : R.queueFailure;
}
