// `kind: spamd` listeners: the SPAMC/1.5 protocol as SpamAssassin's spamd speaks it, so Debian's
// spamc, Haraka's spamassassin plugin and other spamc clients are judged by our scanner
// (docs/integrations.md). Hand-written: no maintained npm package implements the server side of
// this protocol. The reference is spamd itself (/usr/sbin/spamd, sub check, dotell,
// parse_headers): the same request line, header names, answers and error lines.
//
// One request per connection: "METHOD SPAMC/1.5", header lines ("Name: value"), a blank line,
// then Content-length bytes of message (zlib-deflated with "Compress: zlib"). Bounded: a line
// of 8 KiB, 255 header lines, the body within smtp.max_message_size (refused before it is
// read when Content-length says more), the whole request within the listener's timeout.
import net from 'node:net';
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import type { SpamdListenerConfig } from '../smtp/config.js';
import type { MessageScan } from '../pipeline/message-scanner.js';
import { printable, type ScanService } from './service.js';
import { listenTcp, type RunningListener } from './listen.js';
import { processedMessage, spamdNumber, spamReport, symbolList } from './verdict.js';

const inflate = promisify(zlib.inflate);

/** sysexits.h, as spamd names them in its answers. */
const EX = {
  OK: 0, DATAERR: 65, UNAVAILABLE: 69, SOFTWARE: 70, TEMPFAIL: 75, PROTOCOL: 76, TIMEOUT: 79,
} as const;

const MAX_LINE = 8192;
/** spamd's own bound ("avoid too-many-headers DOS attack"). */
const MAX_HEADERS = 255;
const METHODS = new Set(['PROCESS', 'CHECK', 'SYMBOLS', 'REPORT', 'HEADERS', 'REPORT_IFSPAM', 'TELL', 'PING', 'SKIP']);

interface Request {
  method: string;
  version: number;
  length?: number;
  user?: string;
  compress: boolean;
  messageClass?: 'spam' | 'ham';
  set: boolean;
  remove: boolean;
}

class SpamdError extends Error {
  constructor(readonly line: string) {
    super(line);
  }
}
/** spamd's protocol_error(): EX_PROTOCOL, "Bad header line: ...". */
const badHeader = (why: string) => new SpamdError(`SPAMD/1.0 ${EX.PROTOCOL} Bad header line: ${why}`);
const unavailable = (why: string) => new SpamdError(`SPAMD/1.0 ${EX.UNAVAILABLE} Service Unavailable: ${why}`);

export async function startSpamd(listener: SpamdListenerConfig, service: ScanService): Promise<RunningListener> {
  const log = service.logger.child({ component: 'spamd', listener: listener.name });
  return listenTcp({
    listener, log, refusedEvent: 'spamd_refused',
    // Half-open: spamc shuts its sending side down after the message and waits for the answer.
    allowHalfOpen: true,
    onConnection: (socket) => new SpamdConnection(socket, listener, service, log).start(),
    // Idle ones go at once (nothing asked yet); those being answered get the grace.
    busy: (s) => s.readableLength > 0 || (s as net.Socket & { spamdBusy?: boolean }).spamdBusy === true,
  });
}

class SpamdConnection {
  private head: Buffer = Buffer.alloc(0);
  private request?: Request;
  private headerLines = 0;
  private body: Buffer[] = [];
  private bodyBytes = 0;
  private state: 'line' | 'headers' | 'body' | 'busy' | 'done' = 'line';
  private deadline?: NodeJS.Timeout;

  constructor(
    private readonly socket: net.Socket & { spamdBusy?: boolean },
    private readonly listener: SpamdListenerConfig,
    private readonly service: ScanService,
    private readonly log: ScanService['logger'],
  ) {}

  start(): void {
    const s = this.socket;
    const seconds = Math.round(this.listener.timeout / 1000);
    // Silence, and a request that trickles in: both end in spamd's timeout answer.
    s.setTimeout(this.listener.timeout, () => this.fail(new SpamdError(`SPAMD/1.0 ${EX.TIMEOUT} Timeout: (${seconds} second socket timeout reading input from client)`)));
    this.deadline = setTimeout(() => this.fail(new SpamdError(`SPAMD/1.0 ${EX.TIMEOUT} Timeout: (${seconds} second timeout reading the request)`)), this.listener.timeout);
    s.on('data', (chunk: Buffer) => {
      try {
        this.take(chunk);
      } catch (err) {
        this.fail(err);
      }
    });
    s.on('end', () => {
      try {
        this.ended();
      } catch (err) {
        this.fail(err);
      }
    });
    // A client that vanishes: nothing to answer, nothing kept.
    s.on('error', () => s.destroy());
    s.on('close', () => this.stopTimers());
  }

  private stopTimers(): void {
    clearTimeout(this.deadline);
    this.socket.setTimeout(0);
  }

  private take(chunk: Buffer): void {
    if (this.state === 'busy' || this.state === 'done') return; // after the request: ignored, not kept
    if (this.state === 'body') {
      this.addBody(chunk);
      return;
    }
    this.head = this.head.length ? Buffer.concat([this.head, chunk]) : chunk;
    for (;;) {
      const lf = this.head.indexOf(0x0a);
      if (lf < 0) {
        if (this.head.length > MAX_LINE) throw badHeader('(line too long)');
        return;
      }
      if (lf > MAX_LINE) throw badHeader('(line too long)');
      const line = this.head.subarray(0, lf).toString('latin1').replace(/\r$/, '');
      this.head = this.head.subarray(lf + 1);
      if (this.state === 'line') this.requestLine(line);
      else if (this.headerLine(line)) {
        const rest = this.head;
        this.head = Buffer.alloc(0);
        this.headersDone();
        if ((this.state as string) === 'body' && rest.length) this.addBody(rest);
        return;
      }
      if (this.state !== 'line' && this.state !== 'headers') return;
    }
  }

  private requestLine(line: string): void {
    const m = /^([A-Z_]+) SPAMC\/(\d+\.\d+)$/.exec(line);
    if (!m || !METHODS.has(m[1]!)) throw badHeader(printable(line));
    this.request = { method: m[1]!, version: Number(m[2]), compress: false, set: false, remove: false };
    this.state = 'headers';
    // Before 1.5, PING and SKIP had no header section (spamd's doskip_or_ping).
    if ((m[1] === 'PING' || m[1] === 'SKIP') && this.request.version < 1.5) this.headersDone();
  }

  /** One header line; true at the blank line that ends them. */
  private headerLine(line: string): boolean {
    if (!line) return true;
    if (++this.headerLines > MAX_HEADERS) throw badHeader('(too many headers)');
    const m = /^([^:]*):\s*(.*)$/.exec(line);
    if (!m) throw badHeader("(header not in 'Name: value' format)");
    // spamd matches names exactly (spamc writes "Content-length"); other clients write
    // "Content-Length", so the case is not held against them.
    const [name, value] = [m[1]!.toLowerCase(), m[2]!];
    const r = this.request!;
    switch (name) {
      case 'content-length':
        if (!/^\d{1,15}$/.test(value)) throw badHeader('(Content-Length contains non-numeric bytes)');
        r.length = Number(value);
        break;
      case 'user':
        if (!/^[\x20-\xff]*$/.test(value)) throw badHeader('(User header contains control chars)');
        r.user = value.trim();
        break;
      case 'message-class': {
        const cls = value.trim().toLowerCase();
        if (cls !== 'spam' && cls !== 'ham') throw badHeader('(Message-class header contains invalid class)');
        r.messageClass = cls;
        break;
      }
      case 'set':
        r.set = /local/i.test(value);
        break;
      case 'remove':
        r.remove = /local/i.test(value);
        break;
      case 'compress':
        if (!/zlib/i.test(value)) throw badHeader(`(compression type not supported: ${printable(value, 50)})`);
        r.compress = true;
        break;
      default:
        break; // spamd ignores headers it does not know
    }
    return false;
  }

  private headersDone(): void {
    const r = this.request!;
    if (r.method === 'PING') return this.answer(`SPAMD/1.5 ${EX.OK} PONG\r\n`);
    if (r.method === 'SKIP') return this.answer('');
    if (r.method === 'TELL') {
      if (!this.listener.allow_tell) throw unavailable('TELL commands are not enabled, set allow_tell on the spamd listener.');
      if (!this.service.scanner.canLearn) throw unavailable('TELL needs Bayes (bayes.enabled).');
      if (r.set && r.remove) throw badHeader('Unable to set local and remove local in the same operation.');
      if (r.set && !r.messageClass) throw badHeader('(Set: local needs a Message-class header)');
    }
    if (r.compress && r.length === undefined) throw unavailable('Compress requires Content-length header');
    const limit = this.service.maxMessageSize;
    if (r.length !== undefined && r.length > limit) throw badHeader(`(Content-length ${r.length} is above the message size limit ${limit})`);
    this.state = 'body';
    if (r.length === 0) this.bodyDone();
  }

  private addBody(chunk: Buffer): void {
    const r = this.request!;
    const want = r.length;
    if (want !== undefined && this.bodyBytes + chunk.length >= want) {
      this.body.push(chunk.subarray(0, want - this.bodyBytes));
      this.bodyBytes = want;
      this.bodyDone();
      return;
    }
    this.body.push(chunk);
    this.bodyBytes += chunk.length;
    if (this.bodyBytes > this.service.maxMessageSize) throw badHeader(`(message above the size limit ${this.service.maxMessageSize})`);
  }

  private ended(): void {
    if (this.state === 'line') throw badHeader(this.head.length ? '(EOF during headers)' : '(closed before headers)');
    if (this.state === 'headers') throw badHeader('(EOF during headers)');
    if (this.state !== 'body') return;
    const r = this.request!;
    if (r.length !== undefined) throw badHeader(`(Content-Length mismatch: Expected ${r.length} bytes, got ${this.bodyBytes} bytes)`);
    this.bodyDone(); // no Content-length: the message is what came before the end
  }

  private bodyDone(): void {
    this.state = 'busy';
    this.socket.spamdBusy = true;
    this.stopTimers();
    const raw = Buffer.concat(this.body);
    this.body = [];
    void this.handle(raw).then((text) => this.answer(text), (err: unknown) => this.fail(err));
  }

  private async handle(body: Buffer): Promise<string | Buffer> {
    const r = this.request!;
    let raw = body;
    if (r.compress) {
      try {
        raw = await inflate(body, { maxOutputLength: this.service.maxMessageSize });
      } catch (err) {
        throw unavailable(`zlib: ${printable((err as Error).message)}`);
      }
    }
    const user = r.user ? this.service.userAddress(r.user) : undefined;
    if (r.method === 'TELL') return this.tell(raw, r, user);
    const t0 = performance.now();
    let scan: MessageScan;
    try {
      scan = await this.service.scanner.scan(raw, { user });
    } catch (err) {
      this.service.count?.(this.listener.name, 'scan', 'error');
      this.log.error({ event: 'spamd_scan_failed', err: (err as Error).message }, 'scan failed');
      throw new SpamdError(`SPAMD/1.0 ${EX.SOFTWARE} Internal error: the scan failed`);
    }
    this.log.info({
      event: 'spamd_scan', method: r.method, client: this.socket.remoteAddress, user: r.user && printable(r.user), applied: user,
      size: raw.length, score: scan.score, required: scan.required, action: scan.action, spam: scan.spam, ...(scan.wouldReject ? { observe: 'would reject' } : {}),
      symbols: scan.symbols.map((s) => ({ name: s.name, score: s.score })), ms: Math.round(performance.now() - t0),
    }, scan.spam ? 'identified spam' : 'clean message');
    this.service.count?.(this.listener.name, 'scan', scan.demand?.kind === 'tempfail' ? 'tempfail' : scan.action);
    // A scanner that could not run (clamd down) is no verdict: the client retries later.
    if (scan.demand?.kind === 'tempfail') return `SPAMD/1.0 ${EX.TEMPFAIL} Temporary failure: ${printable(scan.demand.reply.text)}\r\n`;
    return this.result(r, raw, scan);
  }

  private result(r: Request, raw: Buffer, scan: MessageScan): string | Buffer {
    const ifSpam = r.method === 'REPORT_IFSPAM';
    const spamHdr = `Spam: ${scan.spam ? (ifSpam ? 'Yes' : 'True') : ifSpam ? 'No' : 'False'} ; ${spamdNumber(scan.score)} / ${spamdNumber(scan.required)}`;
    const ok = `SPAMD/1.1 ${EX.OK} EX_OK\r\n`;
    if (r.method === 'CHECK') return `${ok}${spamHdr}\r\n\r\n`;
    if (r.method === 'PROCESS' || r.method === 'HEADERS') {
      const m = processedMessage(raw, scan, this.service.hostname, this.service.subjectTag);
      const out = r.method === 'HEADERS' ? m.headers : Buffer.concat([m.headers, m.body]);
      return Buffer.concat([Buffer.from(`${ok}Content-length: ${out.length}\r\n${spamHdr}\r\n\r\n`, 'latin1'), out]);
    }
    let text = '';
    if (r.method === 'SYMBOLS') text = symbolList(scan);
    else if (r.method === 'REPORT' || (ifSpam && scan.spam)) text = spamReport(scan, this.service.hostname);
    const bytes = Buffer.from(text, 'utf8');
    return Buffer.concat([Buffer.from(`${ok}Content-length: ${bytes.length}\r\n${spamHdr}\r\n\r\n`, 'latin1'), bytes]);
  }

  /** TELL: Bayes learns (Set: local) or forgets (Remove: local), as `portcullis train` does. */
  private async tell(raw: Buffer, r: Request, user: string | undefined): Promise<string> {
    const did: string[] = [];
    let outcome: string = 'nothing';
    try {
      if (r.set) {
        outcome = await this.service.scanner.learn(raw, r.messageClass!);
        // spamd's did_learn(): false when the message was learned as this class already.
        if (outcome !== 'already') did.push('DidSet: local');
      } else if (r.remove) {
        outcome = await this.service.scanner.forget(raw);
        if (outcome === 'forgotten') did.push('DidRemove: local');
      }
    } catch (err) {
      this.service.count?.(this.listener.name, 'learn', 'error');
      this.log.error({ event: 'spamd_tell_failed', err: (err as Error).message }, 'learning failed');
      throw new SpamdError(`SPAMD/1.0 ${EX.TEMPFAIL} Temporary failure: cannot learn now`);
    }
    this.service.count?.(this.listener.name, 'learn', outcome);
    this.log.info({ event: 'spamd_tell', client: this.socket.remoteAddress, user, class: r.messageClass, set: r.set, remove: r.remove, outcome }, `tell: ${outcome}`);
    return `SPAMD/1.1 ${EX.OK} EX_OK\r\n${did.map((d) => `${d}\r\n`).join('')}\r\n`;
  }

  private answer(text: string | Buffer): void {
    this.state = 'done';
    this.stopTimers();
    const s = this.socket;
    if (s.destroyed) return; // the client went away while we scanned
    s.end(text);
    // Whatever the client still sends is read and dropped; one that never closes is cut off.
    s.resume();
    setTimeout(() => s.destroy(), 5000).unref();
  }

  private fail(err: unknown): void {
    if (this.state === 'done') return;
    if (err instanceof SpamdError) {
      this.log.info({ event: 'spamd_error', client: this.socket.remoteAddress, reply: err.line }, 'request refused');
      this.answer(`${err.line}\r\n`);
      return;
    }
    this.log.error({ event: 'spamd_internal_error', err: (err as Error)?.message }, 'internal error');
    this.answer(`SPAMD/1.0 ${EX.SOFTWARE} Internal error\r\n`);
  }
}
