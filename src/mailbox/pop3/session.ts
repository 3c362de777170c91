// One POP3 session: RFC 1939 (states AUTHORIZATION → TRANSACTION → UPDATE), RFC 2449 (CAPA,
// response codes, 255-octet commands), RFC 2595 (STLS), RFC 5034 (AUTH PLAIN with an initial
// response or a "+ " continuation), RFC 3206 (codes [AUTH] [SYS/TEMP] [IN-USE]).
//
// Written by hand: npm has POP3 *clients* but no maintained POP3 server library (the servers
// there are whole mail systems, e.g. WildDuck on MongoDB), and the rules that matter here —
// no credential before TLS, the shared brute-force defence, the Maildir shared with IMAP and
// delivery — sit inside the protocol loop anyway.
//
// Credentials are refused before TLS with Dovecot's own `disable_plaintext_auth` answers; the
// password given there is never looked at. Logins go through BruteForce exactly as SMTP AUTH
// does: a blocked source is answered like a wrong password, after the same delay, unchecked.
import net from 'node:net';
import tls from 'node:tls';
import type { AccountStore } from '../../auth/accounts.js';
import { mailboxPath, normalizeAddress } from '../../auth/accounts.js';
import type { BruteForce } from '../../auth/brute-force.js';
import { accountOf, checkLogin, decodeSaslResponse, malformedLogin, parsePlain } from '../../auth/login.js';
import type { Logger } from '../../log.js';
import { clientAddress } from '../../net/cidr.js';
import { upgradeToTls } from '../../net/starttls.js';
import type { Pop3Config, Pop3ListenerConfig } from './config.js';
import { Maildrop, pumpMessage, type MaildropMessage, type SizeCache } from './maildrop.js';
import { TXT, shown } from './replies.js';
import type { SessionRegistry } from './session-registry.js';
import { WireEncoder } from './wire-encoder.js';

export interface Pop3SessionDeps {
  readonly config: Pop3Config;
  readonly listener: Pop3ListenerConfig;
  readonly dataDir: string;
  readonly accounts: AccountStore;
  readonly bruteForce: BruteForce;
  /** TLS options for STLS, fetched per connection (certificates can be reloaded); undefined without a certificate. */
  readonly tlsOptions: () => tls.TlsOptions | undefined;
  readonly logger: Logger;
  readonly registry: SessionRegistry;
  readonly sizes: SizeCache;
}

/** RFC 2449 s4: a command is at most 255 octets, CRLF included. */
export const MAX_COMMAND_LINE = 255;
/** A SASL response on its own line (RFC 5034 s4 leaves it to the mechanism; PLAIN needs little). */
export const MAX_SASL_LINE = 8192;
/** Answers queued for a client that does not read, before we stop reading its commands. */
const MAX_PENDING_OUTPUT = 256 * 1024;

type State = 'authorization' | 'transaction' | 'closed';

let sessionCounter = 0;

export class Pop3Session {
  private socket: net.Socket;
  private state: State = 'authorization';
  private secure: boolean;
  private inbuf: Buffer = Buffer.alloc(0);
  private skippingLongLine = false;
  private busy = false;
  private closing = false;
  private errors = 0;
  private pendingUser: string | undefined;
  private saslContinuation: ((line: string) => Promise<void> | void) | undefined;
  /** Account name holding a per-user slot in the registry (from the password check on). */
  private userSlot: string | undefined;
  private user: string | undefined;
  private mailboxDir: string | undefined;
  private maildrop: Maildrop | undefined;
  private updating = false;
  private finished = false;
  private readonly id: string;
  private readonly ip: string;
  private readonly log: Logger;
  private readonly started = Date.now();
  /** From the connection until login (see pop3.login_timeout). */
  private loginDeadline: NodeJS.Timeout | undefined;
  /** Called once when the session is over. */
  onClose: (() => void) | undefined;

  constructor(socket: net.Socket, private readonly deps: Pop3SessionDeps, implicitTls: boolean) {
    this.socket = socket;
    this.secure = implicitTls;
    this.id = `p${process.pid.toString(36)}${(++sessionCounter).toString(36)}`;
    this.ip = clientAddress(socket.remoteAddress);
    this.log = deps.logger.child({ session: this.id, listener: deps.listener.name, client: this.ip });
    this.attach(socket);
  }

  start(): void {
    this.send(`+OK ${TXT.greeting}`);
  }

  /** Graceful shutdown: an idle session is told and closed now, a busy one after its command. */
  shutdown(): void {
    this.closing = true;
    if (!this.busy) this.closeWith(`-ERR ${TXT.shuttingDown}`);
  }

  abort(): void {
    this.socket.destroy();
  }

  // ---- connection ---------------------------------------------------------------------------

  private attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.log.debug({ event: 'socket_error', err: err.message }, 'socket error'));
    socket.on('close', () => this.finish());
    socket.setTimeout(this.deps.config.idle_timeout, () => {
      this.log.info({ event: 'idle_timeout', user: this.user }, 'idle timeout');
      this.closeWith(`-ERR ${TXT.idle}`);
    });
    this.loginDeadline = setTimeout(() => {
      if (this.state !== 'authorization') return;
      this.log.info({ event: 'login_timeout' }, 'no login within pop3.login_timeout of connecting');
      this.closeWith(`-ERR ${TXT.loginTimeout}`);
    }, this.deps.config.login_timeout);
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.inbuf = this.inbuf.length ? Buffer.concat([this.inbuf, chunk]) : chunk;
    this.processInput();
  }

  private processInput(): void {
    while (!this.busy && this.state !== 'closed') {
      // A client that pipelines commands and never reads the answers (LIST, RETR…) would make
      // us buffer without end: stop taking commands until what is queued has gone out.
      if (this.socket.writableLength > MAX_PENDING_OUTPUT) return this.waitForDrain();
      const limit = this.saslContinuation ? MAX_SASL_LINE : MAX_COMMAND_LINE;
      const lf = this.inbuf.indexOf(0x0a);
      if (lf < 0) {
        // No line end yet: keep at most one line's worth, drop the rest of an over-long line.
        if (this.inbuf.length > limit) {
          this.skippingLongLine = true;
          this.inbuf = Buffer.alloc(0);
        }
        return;
      }
      const raw = this.inbuf.subarray(0, lf);
      this.inbuf = this.inbuf.subarray(lf + 1);
      if (this.skippingLongLine || raw.length + 1 > limit) {
        this.skippingLongLine = false;
        this.saslContinuation = undefined;
        this.err(TXT.lineTooLong);
        continue;
      }
      const line = (raw.at(-1) === 0x0d ? raw.subarray(0, -1) : raw).toString('utf8');
      let result: void | Promise<void>;
      try {
        result = this.dispatch(line);
      } catch (err) {
        result = Promise.reject(err);
      }
      if (result instanceof Promise) {
        this.busy = true;
        this.socket.pause();
        result
          .catch((err: unknown) => {
            this.log.error({ event: 'internal_error', err: (err as Error).stack }, 'internal error');
            this.err(TXT.internal);
          })
          .finally(() => {
            this.busy = false;
            if (this.state === 'closed') return;
            if (this.closing) return this.closeWith(`-ERR ${TXT.shuttingDown}`);
            this.socket.resume();
            this.processInput();
          });
      }
    }
  }

  private waitForDrain(): void {
    const s = this.socket;
    this.busy = true;
    s.pause();
    const go = () => {
      s.removeListener('drain', go);
      s.removeListener('close', go);
      this.busy = false;
      if (this.state === 'closed') return;
      if (this.closing) return this.closeWith(`-ERR ${TXT.shuttingDown}`);
      s.resume();
      this.processInput();
    };
    s.once('drain', go);
    s.once('close', go);
  }

  private send(line: string): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    this.socket.write(`${line}\r\n`);
  }

  /** A -ERR reply to a client's command; too many of them end the session. */
  private err(text: string): void {
    this.send(`-ERR ${text}`);
    this.errors++;
    if (this.errors >= this.deps.config.max_errors && this.state !== 'closed') {
      this.log.info({ event: 'too_many_errors', errors: this.errors, user: this.user }, 'too many bad commands');
      this.closeWith(`-ERR ${TXT.tooManyErrors}`);
    }
  }

  /** Writes with backpressure; false once the peer is gone. */
  private write(b: Buffer): Promise<boolean> {
    const s = this.socket;
    if (this.state === 'closed' || s.destroyed) return Promise.resolve(false);
    if (s.write(b)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        s.removeListener('drain', done);
        s.removeListener('close', done);
        resolve(!s.destroyed && this.state !== 'closed');
      };
      s.once('drain', done);
      s.once('close', done);
    });
  }

  private closeWith(line: string | undefined): void {
    if (this.state === 'closed') return;
    if (line) this.send(line);
    this.state = 'closed';
    this.socket.end();
    // Do not wait forever for a peer that never reads.
    setTimeout(() => this.socket.destroy(), 5000).unref();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.loginDeadline);
    this.state = 'closed';
    this.releaseMailbox();
    if (this.userSlot !== undefined) this.deps.registry.leaveUser(this.userSlot);
    this.userSlot = undefined;
    this.log.debug({ event: 'disconnect', user: this.user, errors: this.errors, ms: Date.now() - this.started }, 'disconnect');
    const cb = this.onClose;
    this.onClose = undefined;
    cb?.();
  }

  /** A method, not a field test: the state changes while a command awaits. */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private releaseMailbox(): void {
    // The UPDATE state keeps the lock until its last unlink, even if the client left meanwhile.
    if (this.updating || this.mailboxDir === undefined) return;
    this.deps.registry.unlock(this.mailboxDir);
    this.mailboxDir = undefined;
    this.maildrop = undefined;
  }

  // ---- commands -----------------------------------------------------------------------------

  private dispatch(line: string): void | Promise<void> {
    const k = this.saslContinuation;
    if (k) {
      this.saslContinuation = undefined;
      return k(line);
    }
    const sp = line.indexOf(' ');
    const verbRaw = sp < 0 ? line : line.slice(0, sp);
    const arg = sp < 0 ? '' : line.slice(sp + 1);
    // RFC 1939 s3: keywords are 3 or 4 printable characters.
    if (!/^[A-Za-z]{3,4}$/.test(verbRaw)) return this.err(this.state === 'transaction' ? TXT.unknownVerb(shown(verbRaw)) : TXT.unknown);
    const verb = verbRaw.toUpperCase();
    if (verb === 'CAPA') return this.cmdCapa();
    if (verb === 'QUIT') return this.cmdQuit();
    return this.state === 'authorization' ? this.authorization(verb, arg) : this.transaction(verb, arg);
  }

  private authorization(verb: string, arg: string): void | Promise<void> {
    switch (verb) {
      case 'STLS': return this.cmdStls(arg);
      case 'USER': return this.cmdUser(arg);
      case 'PASS': return this.cmdPass(arg);
      case 'AUTH': return this.cmdAuth(arg);
      case 'APOP': return this.err(TXT.apop);
      case 'STAT': case 'LIST': case 'UIDL': case 'RETR': case 'TOP': case 'DELE': case 'RSET': case 'NOOP':
        return this.err(TXT.notLoggedIn);
      default: return this.err(TXT.unknown);
    }
  }

  private transaction(verb: string, arg: string): void | Promise<void> {
    const drop = this.maildrop!;
    const args = arg.split(' ').filter((a) => a.length > 0);
    switch (verb) {
      case 'STAT': {
        if (args.length) return this.err(TXT.noise);
        const { count, size } = drop.stat();
        return this.send(`+OK ${count} ${size}`);
      }
      case 'LIST':
      case 'UIDL': {
        const field = (m: MaildropMessage) => (verb === 'LIST' ? String(m.size) : m.uidl);
        if (args.length > 1) return this.err(TXT.noise);
        if (args.length === 1) {
          const m = this.message(args[0]!);
          if (m) this.send(`+OK ${m.number} ${field(m)}`);
          return;
        }
        const lines = [verb === 'LIST' ? `+OK ${drop.stat().count} messages:` : '+OK'];
        for (const m of drop.messages) if (!m.deleted) lines.push(`${m.number} ${field(m)}`);
        lines.push('.');
        return this.send(lines.join('\r\n'));
      }
      case 'RETR': {
        if (args.length !== 1) return this.err(args.length ? TXT.noise : TXT.missingArgument);
        const m = this.message(args[0]!);
        if (m) return this.sendMessage(m, undefined);
        return;
      }
      case 'TOP': {
        if (args.length !== 2) return this.err(args.length > 2 ? TXT.noise : TXT.missingArgument);
        const m = this.message(args[0]!);
        if (!m) return;
        if (!/^\d{1,9}$/.test(args[1]!)) return this.err(TXT.invalidLines(shown(args[1]!)));
        return this.sendMessage(m, Number(args[1]));
      }
      case 'DELE': {
        if (args.length !== 1) return this.err(args.length ? TXT.noise : TXT.missingArgument);
        const m = this.message(args[0]!);
        if (!m) return;
        m.deleted = true;
        return this.send(`+OK ${TXT.marked}`);
      }
      case 'RSET':
        if (args.length) return this.err(TXT.noise);
        drop.reset();
        return this.send('+OK');
      case 'NOOP':
        if (args.length) return this.err(TXT.noise);
        return this.send('+OK');
      case 'STLS': return this.err(TXT.stlsAfterLogin);
      case 'USER': case 'PASS': case 'AUTH': case 'APOP': return this.err(TXT.alreadyLoggedIn);
      default: return this.err(TXT.unknownVerb(verb));
    }
  }

  /** The message a number names, or undefined after answering -ERR (RFC 1939: deleted messages may not be referred to). */
  private message(arg: string): MaildropMessage | undefined {
    if (!/^\d{1,10}$/.test(arg)) {
      this.err(TXT.invalidNumber(shown(arg)));
      return undefined;
    }
    const m = this.maildrop!.get(Number(arg));
    if (!m) this.err(TXT.noSuchMessage(String(Number(arg))));
    else if (m.deleted) this.err(TXT.deleted);
    else return m;
    return undefined;
  }

  private async sendMessage(m: MaildropMessage, bodyLines: number | undefined): Promise<void> {
    let fh;
    try {
      fh = await this.maildrop!.open(m);
    } catch (err) {
      this.log.error({ event: 'read_error', user: this.user, uidl: m.uidl, err: (err as Error).message }, 'cannot open message');
      return this.err(TXT.readError);
    }
    if (!fh) {
      this.log.info({ event: 'message_vanished', user: this.user, uidl: m.uidl }, 'message removed by another client');
      return this.err(TXT.vanished);
    }
    try {
      this.send(bodyLines === undefined ? `+OK ${m.size} octets` : '+OK');
      await pumpMessage(fh, new WireEncoder({ stuff: true, bodyLines }), (b) => this.write(b));
      this.send('.');
    } catch (err) {
      // The +OK is out: a multi-line answer cannot turn into -ERR now. Hang up rather than end
      // it with "." and let the client keep half a message as if it were whole.
      this.log.error({ event: 'read_error', user: this.user, uidl: m.uidl, err: (err as Error).message }, 'message read failed while sending');
      this.socket.destroy();
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  private cmdCapa(): void {
    const caps = ['CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE'];
    if (this.state === 'authorization') {
      if (!this.secure && this.deps.tlsOptions()) caps.push('STLS');
      // No USER and no SASL before TLS: nothing invites a client to send a password in clear.
      if (this.secure) caps.push('USER', 'SASL PLAIN');
    }
    this.send(['+OK', ...caps, '.'].join('\r\n'));
  }

  private cmdQuit(): void | Promise<void> {
    if (this.state !== 'transaction') return this.closeWith(`+OK ${TXT.logout}`);
    return this.update();
  }

  /** The UPDATE state (RFC 1939 s6): only reached through QUIT. */
  private async update(): Promise<void> {
    const drop = this.maildrop!;
    const marked = drop.messages.filter((m) => m.deleted).length;
    if (!marked) return this.closeWith(`+OK ${TXT.logout}`);
    this.updating = true;
    let result;
    try {
      result = await drop.update();
    } finally {
      this.updating = false;
    }
    this.log.info({ event: 'pop3_update', user: this.user, removed: result.removed, vanished: result.vanished, failed: result.failed.length }, 'messages removed');
    if (result.failed.length) {
      this.log.error({ event: 'pop3_update_failed', user: this.user, failed: result.failed }, 'some deleted messages could not be removed');
    }
    this.closeWith(result.failed.length ? `-ERR ${TXT.updateFailed}` : `+OK ${TXT.logoutDeleted}`);
    this.releaseMailbox();
  }

  // ---- TLS and authentication ---------------------------------------------------------------

  private cmdStls(arg: string): void {
    if (arg) return this.err(TXT.noise);
    if (this.secure) return this.err(TXT.tlsActive);
    const options = this.deps.tlsOptions();
    if (!options) return this.err(TXT.tlsUnavailable);
    if (this.inbuf.length) {
      // Plain text pipelined behind STLS must never run inside TLS (the STARTTLS injection of
      // CVE-2011-0411, RFC 2595 s4: the client must wait for the answer).
      this.log.warn({ event: 'stls_injection', bytes: this.inbuf.length }, 'discarded plaintext pipelined after STLS');
      this.inbuf = Buffer.alloc(0);
    }
    this.send(`+OK ${TXT.beginTls}`);
    const plain = this.socket;
    this.busy = true; // hold input until the handshake is done
    upgradeToTls(plain, options, {
      timeoutMs: this.deps.config.idle_timeout,
      log: this.log,
      onFail: () => {
        this.state = 'closed';
        this.finish();
      },
      onSecure: (secure) => {
        this.socket = secure;
        this.secure = true;
        // RFC 2595 s4: whatever was said before TLS is forgotten.
        this.pendingUser = undefined;
        this.attach(secure);
        this.busy = false;
        this.processInput();
      },
    });
    plain.on('close', () => {
      if (this.socket === plain) this.finish();
    });
  }

  private refuseClearText(reply: string, what: string): void {
    this.log.info({ event: 'pop3_login', result: 'tls_required', command: what }, 'credentials refused before TLS');
    this.err(reply);
  }

  private cmdUser(arg: string): void {
    if (!this.secure) return this.refuseClearText(TXT.plaintextDisallowed, 'USER');
    const name = arg.trim();
    if (!name) return this.err(TXT.missingArgument);
    // No lookup here: USER says +OK to any name, so it cannot be used to find accounts.
    this.pendingUser = name.slice(0, 321);
    this.send('+OK');
  }

  private cmdPass(arg: string): void | Promise<void> {
    if (!this.secure) return this.refuseClearText(TXT.plaintextDisallowed, 'PASS');
    const user = this.pendingUser;
    this.pendingUser = undefined;
    if (user === undefined) return this.err(TXT.noUser);
    // The whole rest of the line: a password may hold spaces.
    return this.login(user, arg, 'USER');
  }

  private cmdAuth(arg: string): void | Promise<void> {
    const [mechRaw, initial, extra] = arg.split(' ').filter((a) => a.length > 0);
    if (mechRaw === undefined) {
      // The pre-RFC 5034 listing some clients still send: mechanisms usable right now.
      return this.send(this.secure ? '+OK\r\nPLAIN\r\n.' : '+OK\r\n.');
    }
    const mech = mechRaw.toUpperCase();
    if (mech !== 'PLAIN') return this.err(TXT.unsupportedMech);
    if (!this.secure) return this.refuseClearText(TXT.plaintextDisabled, 'AUTH');
    if (extra !== undefined) return this.err(TXT.noise);
    if (initial !== undefined) return this.authPlain(initial);
    this.send('+ ');
    this.saslContinuation = (line) => this.authPlain(line);
  }

  private authPlain(b64: string): void | Promise<void> {
    const decoded = decodeSaslResponse(b64);
    if (decoded === null) return this.err(TXT.authAborted);
    const plain = decoded === undefined ? undefined : parsePlain(decoded);
    if (!plain) {
      this.log.info({ event: 'pop3_login', mechanism: 'PLAIN', result: 'malformed' }, 'malformed AUTH PLAIN');
      this.err(TXT.badBase64);
      return malformedLogin(this.deps, this.ip);
    }
    return this.login(plain.user, plain.pass, 'PLAIN', plain.authz);
  }

  /** The password check of src/auth/login.ts, then the maildrop (RFC 1939 s4: locked while in use). */
  private async login(user: string, pass: string, mechanism: 'USER' | 'PLAIN', authz = ''): Promise<void> {
    const account = accountOf(user);
    const registry = this.deps.registry;
    if (!registry.enterUser(account)) {
      this.log.info({ event: 'pop3_login', user: account, mechanism, result: 'user_limit' }, 'too many sessions for this account');
      return this.err(TXT.userLimit);
    }
    let keepSlot = false;
    try {
      const outcome = await checkLogin(this.deps, this.ip, user, pass, authz);
      if (!outcome.ok && outcome.reason === 'unavailable') {
        // RFC 3206 SYS/TEMP.
        this.log.warn({ event: 'pop3_login', user: account, mechanism, result: 'unavailable', err: outcome.error }, 'accounts unavailable: temporary authentication failure');
        return this.err(TXT.accountsUnavailable);
      }
      if (!outcome.ok) {
        this.log.info({ event: 'pop3_login', user: account, mechanism, result: outcome.blocked ? 'blocked' : 'failed', scope: outcome.blocked }, 'login failed');
        return this.err(TXT.authFailed);
      }
      if (this.isClosed()) return;
      const address = normalizeAddress(user);
      const dir = mailboxPath(this.deps.dataDir, address);
      if (!registry.lock(dir)) {
        this.log.info({ event: 'pop3_login', user: address, mechanism, result: 'in_use' }, 'mailbox locked by another POP3 session');
        return this.err(TXT.inUse);
      }
      let drop: Maildrop;
      try {
        drop = await Maildrop.open(dir, this.deps.sizes);
      } catch (err) {
        registry.unlock(dir);
        this.log.error({ event: 'pop3_login', user: address, mechanism, result: 'mailbox_error', err: (err as Error).message }, 'cannot open the mailbox');
        return this.err(TXT.mailboxError);
      }
      if (this.isClosed()) {
        registry.unlock(dir);
        return;
      }
      this.user = address;
      this.mailboxDir = dir;
      this.maildrop = drop;
      this.state = 'transaction';
      clearTimeout(this.loginDeadline);
      keepSlot = true;
      this.userSlot = account;
      const { count, size } = drop.stat();
      this.log.info({ event: 'pop3_login', user: address, mechanism, result: 'ok', messages: count, octets: size }, 'logged in');
      this.send(`+OK ${TXT.loggedIn}`);
    } finally {
      if (!keepSlot) registry.leaveUser(account);
    }
  }
}

