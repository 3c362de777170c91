// One IMAP connection (RFC 3501): the state machine (not authenticated → authenticated →
// selected → logout), STARTTLS, LOGIN / AUTHENTICATE PLAIN through the shared brute-force
// defence, IDLE, and the untagged updates (EXISTS, EXPUNGE, FETCH FLAGS) that keep a client's
// view in step with changes made by other sessions and processes. Mailbox commands live in
// mailbox-commands.ts and selected-commands.ts.
//
// Hand-written protocol code: no maintained standalone IMAP server library exists on npm
// (wildduck's imap-core ships only inside wildduck, which needs MongoDB).
import type net from 'node:net';
import { mailboxPath } from '../../auth/accounts.js';
import { checkLogin, decodeSaslResponse, malformedLogin, parsePlain } from '../../auth/login.js';
import type { Logger } from '../../log.js';
import { upgradeToTls } from '../../net/starttls.js';
import { DEFAULT_FOLDERS } from '../folder-names.js';
import { ensureFolder } from '../maildir-folders.js';
import { imapFlags, type FolderIndex } from '../maildir-index.js';
import { CommandReader, type ReaderEvent } from './command-reader.js';
import { runMailboxCommand } from './mailbox-commands.js';
import { runSelectedCommand, SELECTED_COMMANDS } from './selected-commands.js';
import type { ImapServices } from './services.js';
import { SyntaxError, asString, isNil, parseCommand, type ParsedCommand } from './tokens.js';
import { bad, no, ok, type CommandSession, type Completion, type SelectedMailbox, type SessionState } from './command-context.js';

/** Commands during which EXPUNGE responses must not be sent (RFC 3501 7.4.1). */
const NO_EXPUNGE_DURING = new Set(['FETCH', 'STORE', 'SEARCH', 'UID FETCH', 'UID STORE', 'UID SEARCH']);

export class ImapSession implements CommandSession {
  state: SessionState = 'notauth';
  user: string | undefined;
  /** The user's Maildir. */
  root = '';
  selected: SelectedMailbox | undefined;
  readonly log: Logger;
  private socket: net.Socket;
  private secure: boolean;
  private readonly reader: CommandReader;
  private readonly inbox: ReaderEvent[] = [];
  private running = false;
  private paused = false;
  private badCount = 0;
  private closed = false;
  /** Raw-line handler while AUTHENTICATE or IDLE waits for the client. */
  private continuation: ((line: string) => Promise<void> | void) | undefined;
  private idleTag: string | undefined;
  private tlsPending = false;
  private readonly onClosed: () => void;
  /** From the connection until login: the idle timer restarts on every byte, this does not. */
  private loginDeadline: NodeJS.Timeout | undefined;

  constructor(
    socket: net.Socket,
    readonly services: ImapServices,
    readonly listener: { name: string; tls: 'starttls' | 'implicit' },
    readonly remoteAddress: string,
    onClosed: () => void,
  ) {
    this.socket = socket;
    this.secure = listener.tls === 'implicit';
    this.onClosed = onClosed;
    this.log = services.logger.child({ component: 'imap', listener: listener.name, client: remoteAddress });
    const cfg = services.config;
    this.reader = new CommandReader(
      { maxLine: cfg.max_line, maxLiteral: services.maxLiteral, maxLiterals: 64 },
      (e) => this.onReaderEvent(e),
    );
    this.attach(socket);
    this.loginDeadline = setTimeout(() => {
      if (this.state !== 'notauth' || this.closed) return;
      this.log.info({ event: 'login_timeout' }, 'no login within imap.login_timeout of connecting');
      this.send('* BYE Autologout; no login in time');
      this.end();
    }, cfg.login_timeout);
    this.send(`* OK [CAPABILITY ${this.capabilities().join(' ')}] Portcullis IMAP ready`);
  }

  // --- connection -------------------------------------------------------------------------------

  private attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => {
      if (this.tlsPending) return; // plaintext behind STARTTLS: dropped
      this.reader.feed(chunk);
    });
    socket.on('error', (err) => this.log.debug({ event: 'socket_error', err: err.message }, 'connection error'));
    socket.on('close', () => this.cleanup());
    socket.on('timeout', () => {
      this.send('* BYE Autologout; idle for too long');
      this.end();
    });
    socket.setTimeout(this.state === 'notauth' ? this.services.config.login_timeout : this.services.config.idle_timeout);
  }

  /** Writes a response line (CRLF added). */
  send(line: string): void {
    if (this.closed || this.socket.destroyed) return;
    this.socket.write(`${line}\r\n`);
  }

  /** Writes raw bytes (FETCH responses with literals); waits when the client reads slowly. */
  async sendRaw(data: Buffer): Promise<void> {
    if (this.closed || this.socket.destroyed) return;
    if (!this.socket.write(data)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.socket.off('drain', done);
          this.socket.off('close', done);
          resolve();
        };
        this.socket.on('drain', done);
        this.socket.on('close', done);
      });
    }
  }

  end(): void {
    if (this.closed) return;
    this.state = 'logout';
    this.socket.end();
    const s = this.socket;
    setTimeout(() => s.destroy(), 2000).unref();
  }

  /** Server shutdown: say BYE and close. */
  shutdown(): void {
    this.send('* BYE Server shutting down');
    this.end();
  }

  private cleanup(): void {
    clearTimeout(this.loginDeadline);
    if (this.closed) return;
    this.closed = true;
    this.deselect();
    if (this.user) {
      const n = (this.services.userSessions.get(this.user) ?? 1) - 1;
      if (n <= 0) this.services.userSessions.delete(this.user);
      else this.services.userSessions.set(this.user, n);
    }
    this.onClosed();
  }

  get isSecure(): boolean {
    return this.secure;
  }

  // --- input ------------------------------------------------------------------------------------

  private onReaderEvent(e: ReaderEvent): void {
    if (e.kind === 'continue') {
      this.send('+ Ready for literal data');
      return;
    }
    this.inbox.push(e);
    if (this.inbox.length > 32 && !this.paused) {
      // A client pipelining faster than we answer: stop reading until the queue drains.
      this.paused = true;
      this.socket.pause();
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.inbox.length && !this.closed && !this.tlsPending) {
        if (this.paused && this.inbox.length < 8) {
          this.paused = false;
          this.socket.resume();
        }
        const e = this.inbox.shift()!;
        try {
          await this.handle(e);
        } catch (err) {
          // Nothing a client sends may take the server down: log, answer, go on.
          this.log.error({ event: 'imap_internal_error', err: (err as Error).message, stack: (err as Error).stack }, 'IMAP command failed');
          const tag = e.kind === 'command' ? /^(\S+)/.exec(e.command.lines[0] ?? '')?.[1] ?? '*' : '*';
          this.send(`${tag} NO [SERVERBUG] Internal error; the command was not completed`);
        }
      }
    } finally {
      this.running = false;
      if (this.paused && this.inbox.length < 8) {
        this.paused = false;
        this.socket.resume();
      }
    }
  }

  private async handle(e: ReaderEvent): Promise<void> {
    if (e.kind === 'continue') return;
    if (this.continuation) {
      const k = this.continuation;
      this.continuation = undefined;
      if (e.kind === 'error') return this.complete(this.idleTag ?? '*', bad(e.text));
      return k(e.command.lines[0] ?? '');
    }
    if (e.kind === 'error') {
      this.complete(e.tag ?? '*', e.code === 'TOOBIG' ? no(e.text, 'TOOBIG') : bad(e.text));
      if (e.close) this.end();
      return;
    }
    let cmd: ParsedCommand;
    try {
      cmd = parseCommand(e.command);
    } catch (err) {
      const tag = /^([^\s(){%*"\\+]+)/.exec(e.command.lines[0] ?? '')?.[1] ?? '*';
      return this.complete(tag, bad(err instanceof SyntaxError ? err.message : 'Invalid command'));
    }
    let result: Completion | undefined;
    try {
      result = await this.dispatch(cmd);
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      result = bad(`${cmd.name}: ${err.message}`);
    }
    if (result === undefined) return; // IDLE, AUTHENTICATE: completed later
    if (this.state === 'logout' && cmd.name === 'LOGOUT') {
      this.complete(cmd.tag, result);
      this.end();
      return;
    }
    if (result.status !== 'BAD') await this.sendUpdates(!NO_EXPUNGE_DURING.has(cmd.name));
    this.complete(cmd.tag, result);
  }

  /** Sends the tagged completion; counts BADs and hangs up on a client that keeps erring. */
  complete(tag: string, r: Completion): void {
    this.send(`${tag} ${r.status} ${r.code ? `[${r.code}] ` : ''}${r.text}`);
    if (r.status === 'BAD') {
      this.badCount += 1;
      if (this.badCount >= this.services.config.max_bad_commands) {
        this.log.info({ event: 'imap_too_many_errors', count: this.badCount }, 'too many invalid commands');
        this.send('* BYE Too many invalid commands');
        this.end();
      }
    }
  }

  // --- dispatch ---------------------------------------------------------------------------------

  private async dispatch(cmd: ParsedCommand): Promise<Completion | undefined> {
    switch (cmd.name) {
      case 'CAPABILITY':
        this.send(`* CAPABILITY ${this.capabilities().join(' ')}`);
        return ok('CAPABILITY completed');
      case 'NOOP':
        if (this.selected) await this.selected.index.sync();
        return ok('NOOP completed');
      case 'LOGOUT':
        this.send('* BYE Logging out');
        this.state = 'logout';
        return ok('LOGOUT completed');
      case 'ID': return this.cmdId(cmd);
      case 'STARTTLS': return this.cmdStartTls(cmd);
      case 'LOGIN': return this.cmdLogin(cmd);
      case 'AUTHENTICATE': return this.cmdAuthenticate(cmd);
    }
    if (this.state === 'notauth') {
      return KNOWN.has(cmd.name) ? bad(`${cmd.name}: log in first`) : bad(`Unknown command ${cmd.name.slice(0, 30)}`);
    }
    switch (cmd.name) {
      case 'ENABLE':
        if (!cmd.args.length) return bad('ENABLE needs capability names');
        this.send('* ENABLED');
        return ok('ENABLE completed');
      case 'NAMESPACE':
        this.send('* NAMESPACE (("" ".")) NIL NIL');
        return ok('NAMESPACE completed');
      case 'IDLE': return this.cmdIdle(cmd);
    }
    const mailboxResult = await runMailboxCommand(this, cmd);
    if (mailboxResult) return mailboxResult;
    if (SELECTED_COMMANDS.has(cmd.name)) {
      if (!this.selected) return bad(`${cmd.name}: no mailbox selected`);
      return runSelectedCommand(this, cmd);
    }
    return bad(`Unknown command ${cmd.name.slice(0, 30)}`);
  }

  capabilities(): string[] {
    const caps = ['IMAP4rev1', 'LITERAL+', 'SASL-IR', 'ID', 'ENABLE', 'IDLE'];
    if (this.state === 'notauth') {
      if (!this.secure) {
        if (this.services.tls.available) caps.push('STARTTLS');
        caps.push('LOGINDISABLED');
      } else {
        caps.push('AUTH=PLAIN');
      }
    } else {
      caps.push('NAMESPACE', 'UIDPLUS', 'MOVE', 'UNSELECT', 'CHILDREN', 'SPECIAL-USE', `APPENDLIMIT=${this.services.maxLiteral}`);
    }
    return caps;
  }

  private cmdId(cmd: ParsedCommand): Completion {
    const arg = cmd.args[0];
    if (cmd.args.length !== 1 || !(isNil(arg) || arg?.kind === 'list')) return bad('ID expects a list or NIL');
    if (arg?.kind === 'list' && arg.items.length > 60) return bad('ID list too long');
    this.send('* ID ("name" "Portcullis" "vendor" "Portcullis")');
    return ok('ID completed');
  }

  // --- STARTTLS ---------------------------------------------------------------------------------

  private cmdStartTls(cmd: ParsedCommand): Completion | undefined {
    if (cmd.args.length) return bad('STARTTLS takes no arguments');
    if (this.secure) return bad('TLS is already active');
    if (this.state !== 'notauth') return bad('STARTTLS is only valid before login');
    if (!this.services.tls.available) return no('TLS is not available');
    const dropped = this.reader.reset() + this.inbox.length;
    if (dropped) {
      // Plaintext pipelined behind STARTTLS must never run inside TLS (CVE-2011-0411, CVE-2021-33515).
      this.log.warn({ event: 'starttls_injection', bytes: dropped }, 'discarded plaintext pipelined after STARTTLS');
      this.inbox.length = 0;
    }
    this.send(`${cmd.tag} OK Begin TLS negotiation now`);
    this.tlsPending = true;
    upgradeToTls(this.socket, this.services.tls.serverOptions(), {
      // Not yet logged in: the login timeout bounds the handshake as it bounds the rest.
      timeoutMs: this.services.config.login_timeout,
      log: this.log,
      onFail: () => this.cleanup(),
      onSecure: (secure) => {
        this.socket = secure;
        this.secure = true;
        this.tlsPending = false;
        this.attach(secure);
        void this.pump();
      },
    });
    return undefined;
  }

  // --- authentication ---------------------------------------------------------------------------

  private cmdLogin(cmd: ParsedCommand): Completion | Promise<Completion> {
    if (this.state !== 'notauth') return bad('Already logged in');
    if (!this.secure) {
      this.log.info({ event: 'auth_refused_cleartext' }, 'LOGIN before STARTTLS refused');
      return no('Logins are only accepted over TLS: use STARTTLS first', 'PRIVACYREQUIRED');
    }
    if (cmd.args.length !== 2) return bad('LOGIN expects a user name and a password');
    return this.verify(asString(cmd.args[0], 'user name'), asString(cmd.args[1], 'password'));
  }

  private cmdAuthenticate(cmd: ParsedCommand): Completion | Promise<Completion> | undefined {
    if (this.state !== 'notauth') return bad('Already logged in');
    if (cmd.args.length < 1 || cmd.args.length > 2) return bad('AUTHENTICATE expects a mechanism');
    const mech = asString(cmd.args[0], 'mechanism').toUpperCase();
    if (!this.secure) {
      this.log.info({ event: 'auth_refused_cleartext' }, 'AUTHENTICATE before STARTTLS refused');
      return no('Logins are only accepted over TLS: use STARTTLS first', 'PRIVACYREQUIRED');
    }
    if (mech !== 'PLAIN') return no(`Unsupported authentication mechanism ${mech.slice(0, 20)}`);
    if (cmd.args.length === 2) return this.authPlain(asString(cmd.args[1], 'initial response'));
    this.send('+ ');
    this.continuation = async (line) => {
      const r = await this.authPlain(line);
      this.complete(cmd.tag, r);
    };
    return undefined;
  }

  private async authPlain(b64: string): Promise<Completion> {
    const decoded = decodeSaslResponse(b64);
    if (decoded === null) return bad('Authentication cancelled');
    if (decoded === undefined) {
      await malformedLogin(this.services, this.remoteAddress);
      return bad('Invalid base64 in the SASL response');
    }
    const plain = parsePlain(decoded);
    if (!plain) {
      await malformedLogin(this.services, this.remoteAddress);
      return no('Malformed PLAIN response', 'AUTHENTICATIONFAILED');
    }
    return this.verify(plain.user, plain.pass, plain.authz);
  }

  /** The password check of src/auth/login.ts (as SMTP AUTH and POP3); this maps its outcome to IMAP. */
  private async verify(user: string, pass: string, authz = ''): Promise<Completion> {
    const s = this.services;
    const outcome = await checkLogin(s, this.remoteAddress, user, pass, authz);
    if (!outcome.ok && outcome.reason === 'unavailable') {
      // RFC 5530 UNAVAILABLE.
      this.log.warn({ event: 'auth_unavailable', user: outcome.account, protocol: 'imap', err: outcome.error }, 'accounts unavailable: temporary authentication failure');
      return no('Temporary authentication failure, try again later', 'UNAVAILABLE');
    }
    if (this.closed) return no('Connection closed');
    if (!outcome.ok) {
      if (outcome.blocked) this.log.info({ event: 'auth_blocked', user: outcome.account, scope: outcome.blocked }, 'login attempt from a blocked source');
      this.log.info({ event: 'auth_failed', user: outcome.account, protocol: 'imap' }, 'authentication failed');
      return outcome.authz ? no('Authorization identity must be empty or the user', 'AUTHORIZATIONFAILED') : no('Authentication failed', 'AUTHENTICATIONFAILED');
    }
    const account = outcome.account;
    const open = s.userSessions.get(account) ?? 0;
    if (open >= s.config.max_connections_per_user) {
      this.log.info({ event: 'imap_user_limit', user: account, open }, 'too many connections for this user');
      return no(`Too many connections for this user (limit ${s.config.max_connections_per_user})`, 'LIMIT');
    }
    let root: string;
    try {
      root = mailboxPath(s.dataDir, account);
    } catch {
      return no('Authentication failed', 'AUTHENTICATIONFAILED');
    }
    s.userSessions.set(account, open + 1);
    this.user = account;
    this.root = root;
    this.state = 'auth';
    clearTimeout(this.loginDeadline);
    this.socket.setTimeout(s.config.idle_timeout);
    try {
      await ensureFolder(root, 'INBOX');
      for (const f of DEFAULT_FOLDERS) await ensureFolder(root, f);
    } catch (err) {
      this.log.error({ event: 'imap_mailbox_error', user: account, err: (err as Error).message }, `cannot create the Maildir ${root}`);
    }
    this.log.info({ event: 'auth', user: account, protocol: 'imap' }, 'authenticated');
    return ok('Logged in', `CAPABILITY ${this.capabilities().join(' ')}`);
  }

  // --- IDLE -------------------------------------------------------------------------------------

  private async cmdIdle(cmd: ParsedCommand): Promise<Completion | undefined> {
    if (cmd.args.length) return bad('IDLE takes no arguments');
    this.send('+ idling');
    this.idleTag = cmd.tag;
    await this.sendUpdates(true);
    this.continuation = async (line) => {
      this.idleTag = undefined;
      if (line.toUpperCase() !== 'DONE') return this.complete(cmd.tag, bad('Expected DONE'));
      await this.sendUpdates(true);
      this.complete(cmd.tag, ok('IDLE terminated'));
    };
    return undefined;
  }

  /** Called by the folder index on every change: an IDLE client hears of it at once. */
  onFolderChange(): void {
    if (this.idleTag && !this.running) void this.sendUpdates(true);
    else if (this.idleTag) queueMicrotask(() => void this.sendUpdates(true));
  }

  // --- selected mailbox view --------------------------------------------------------------------

  select(name: string, index: FolderIndex, readOnly: boolean): SelectedMailbox {
    this.deselect();
    const sel: SelectedMailbox = {
      name, index, readOnly, uids: [], flagsSeen: new Map(), recent: new Set(), version: index.version,
      stopListening: index.onChange(() => this.onFolderChange()),
    };
    for (const m of index.messages) {
      sel.uids.push(m.uid);
      sel.flagsSeen.set(m.uid, m.flags);
      if (m.recent && !readOnly) {
        m.recent = false;
        sel.recent.add(m.uid);
      }
    }
    this.selected = sel;
    this.state = 'selected';
    return sel;
  }

  deselect(): void {
    const sel = this.selected;
    if (!sel) return;
    sel.stopListening();
    this.selected = undefined;
    if (this.state === 'selected') this.state = 'auth';
    sel.index.flushSizes().catch(() => {});
    this.services.registry.release(sel.index);
  }

  /**
   * Tells the client what changed in the selected mailbox since it last heard: EXPUNGE (unless
   * the running command forbids it), EXISTS / RECENT, FETCH FLAGS.
   */
  async sendUpdates(allowExpunge: boolean): Promise<void> {
    const sel = this.selected;
    if (!sel || sel.version === sel.index.version) return;
    const idx = sel.index;
    const version = idx.version;
    const lines: string[] = [];
    let pendingExpunge = false;
    if (allowExpunge) {
      const keep: number[] = [];
      const gone: number[] = [];
      sel.uids.forEach((uid, i) => (idx.get(uid) ? keep.push(uid) : gone.push(i + 1)));
      // Reported from the highest sequence number down, so each number is right when sent.
      for (let k = gone.length - 1; k >= 0; k--) lines.push(`* ${gone[k]} EXPUNGE`);
      if (gone.length) {
        for (const uid of sel.uids) if (!idx.get(uid)) {
          sel.flagsSeen.delete(uid);
          sel.recent.delete(uid);
        }
        sel.uids = keep;
      }
    } else {
      pendingExpunge = sel.uids.some((uid) => !idx.get(uid));
    }
    const maxUid = sel.uids.length ? sel.uids[sel.uids.length - 1]! : 0;
    const msgs = idx.messages;
    let first = msgs.length;
    while (first > 0 && msgs[first - 1]!.uid > maxUid) first--;
    let recentAdded = false;
    for (let k = first; k < msgs.length; k++) {
      const m = msgs[k]!;
      sel.uids.push(m.uid);
      sel.flagsSeen.set(m.uid, m.flags);
      if (m.recent && !sel.readOnly) {
        m.recent = false;
        sel.recent.add(m.uid);
        recentAdded = true;
      }
    }
    if (first < msgs.length) {
      lines.push(`* ${sel.uids.length} EXISTS`);
      if (recentAdded) lines.push(`* ${sel.recent.size} RECENT`);
    }
    sel.uids.forEach((uid, i) => {
      const m = idx.get(uid);
      if (m && m.flags !== sel.flagsSeen.get(uid)) {
        sel.flagsSeen.set(uid, m.flags);
        lines.push(`* ${i + 1} FETCH (UID ${uid} FLAGS (${this.flagList(uid, m.flags)}))`);
      }
    });
    if (!pendingExpunge) sel.version = version;
    if (lines.length) await this.sendRaw(Buffer.from(lines.map((l) => `${l}\r\n`).join('')));
  }

  flagList(uid: number, letters: string): string {
    const f = imapFlags(letters);
    if (this.selected?.recent.has(uid)) f.push('\\Recent');
    return f.join(' ');
  }
}

const KNOWN = new Set(['SELECT', 'EXAMINE', 'CREATE', 'DELETE', 'RENAME', 'SUBSCRIBE', 'UNSUBSCRIBE', 'LIST', 'LSUB', 'STATUS',
  'APPEND', 'CHECK', 'CLOSE', 'UNSELECT', 'EXPUNGE', 'SEARCH', 'FETCH', 'STORE', 'COPY', 'MOVE', 'UID FETCH', 'UID SEARCH',
  'UID STORE', 'UID COPY', 'UID MOVE', 'UID EXPUNGE', 'IDLE', 'ENABLE', 'NAMESPACE']);
