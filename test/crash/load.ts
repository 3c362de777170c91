// Load and bookkeeping for the crash test (crash.test.ts): messages whose every delivered copy can
// be checked on its own (a unique token, the SHA-256 and length of the body in the header), a
// ledger of what the gateway answered for each token, raw-socket SMTP clients that keep sending
// through gateway deaths, and a downstream sink that checks every copy as it arrives.
import crypto from 'node:crypto';
import net from 'node:net';
import { SMTPServer } from 'smtp-server';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- messages

/** Where a test message is addressed: the local Maildir, the relay route, or both. */
export type Target = 'box' | 'sink';

export const BOX = 'box@crash.test';
export const SINK_RCPT = 'rcpt@sink.test';
export const SENDER = 'loader@client.example';

export const ADDRESS: Record<Target, string> = { box: BOX, sink: SINK_RCPT };

export interface TestMessage {
  readonly token: string;
  readonly to: readonly Target[];
  /** The message as the receiver should see it (CRLF, not dot-stuffed). */
  readonly raw: string;
  /** The same, dot-stuffed and terminated by ".\r\n": what goes on the wire after 354. */
  readonly wire: string;
  readonly bodyLength: number;
  readonly bodySha256: string;
}

/** Special lines that exercise dot-stuffing on both hops (client → gateway → sink). */
const DOT_LINES = ['.', '..', '...', '.leading dot', '..two leading dots', '. space after the dot', '.\t'];

/**
 * A message of `bodyBytes` (about) with a unique token in a header and repeated in the body, a
 * few lines that start with ".", and the SHA-256 and length of its body in the header.
 */
export function makeTestMessage(to: readonly Target[], bodyBytes: number): TestMessage {
  const token = crypto.randomUUID();
  const lines: string[] = [`token ${token} begins`];
  let size = lines[0]!.length + 2;
  const dots = 2 + crypto.randomInt(4);
  const dotAt = new Set<number>();
  const approxLines = Math.max(1, Math.ceil(bodyBytes / 78));
  for (let k = 0; k < dots; k++) dotAt.add(crypto.randomInt(approxLines + 1));
  let n = 0;
  while (size < bodyBytes) {
    let line: string;
    if (dotAt.has(n)) line = DOT_LINES[crypto.randomInt(DOT_LINES.length)]!;
    else if (n % 500 === 250) line = `token ${token} again`;
    else line = crypto.randomBytes(57).toString('base64'); // 76 characters
    lines.push(line);
    size += line.length + 2;
    n++;
  }
  lines.push(`token ${token} ends`);
  const body = `${lines.join('\r\n')}\r\n`;
  const bodySha256 = crypto.createHash('sha256').update(body).digest('hex');
  const headers = [
    `From: Crash Loader <${SENDER}>`,
    `To: ${to.map((t) => `<${ADDRESS[t]}>`).join(', ')}`,
    `Subject: crash test ${token}`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${token}@client.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    `X-Token: ${token}`,
    `X-Crash-To: ${to.join(',')}`,
    `X-Body-Length: ${Buffer.byteLength(body)}`,
    `X-Body-SHA256: ${bodySha256}`,
  ];
  const raw = `${headers.join('\r\n')}\r\n\r\n${body}`;
  const wire = `${raw.replace(/^\./gm, '..')}.\r\n`;
  return { token, to, raw, wire, bodyLength: Buffer.byteLength(body), bodySha256 };
}

/** What a delivered copy says about itself, and whether its body matches what it says. */
export interface CopyCheck {
  readonly token?: string;
  /** The gateway's queue id, from the Received header it put on top. */
  readonly queueId?: string;
  /** X-Crash-To as written by the client. */
  readonly to?: string;
  readonly declaredSha256?: string;
  readonly declaredLength?: number;
  readonly bodyLength: number;
  readonly bodySha256: string;
  /** The header carries a token, a hash and a length, and the body matches both. */
  readonly intact: boolean;
  /** Why it is not intact (empty when it is). */
  readonly problem: string;
}

/** Checks one delivered copy (a Maildir file or what the sink received), byte for byte. */
export function checkCopy(raw: Buffer): CopyCheck {
  const end = raw.indexOf('\r\n\r\n');
  const headerText = (end < 0 ? raw : raw.subarray(0, end)).toString('latin1');
  const body = end < 0 ? Buffer.alloc(0) : raw.subarray(end + 4);
  const fields = new Map<string, string>();
  for (const line of headerText.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    if (!fields.has(key)) fields.set(key, line.slice(colon + 1).trim());
  }
  const token = fields.get('x-token');
  const declaredSha256 = fields.get('x-body-sha256');
  const lengthField = fields.get('x-body-length');
  const declaredLength = lengthField === undefined ? undefined : Number(lengthField);
  const bodySha256 = crypto.createHash('sha256').update(body).digest('hex');
  const problems: string[] = [];
  if (end < 0) problems.push('no end of header section');
  if (!token) problems.push('no X-Token header');
  if (!declaredSha256) problems.push('no X-Body-SHA256 header');
  if (declaredLength === undefined) problems.push('no X-Body-Length header');
  else if (declaredLength !== body.length) problems.push(`body is ${body.length} bytes, header says ${declaredLength}${body.length < declaredLength ? ' (truncated)' : ''}`);
  if (declaredSha256 && declaredSha256 !== bodySha256) problems.push(`body SHA-256 ${bodySha256} differs from the header's ${declaredSha256}`);
  const queueId = /\bid ([A-Za-z0-9]+)[;\s]/.exec(fields.get('received') ?? '')?.[1];
  return {
    token, queueId, to: fields.get('x-crash-to'), declaredSha256, declaredLength, bodyLength: body.length, bodySha256,
    intact: problems.length === 0, problem: problems.join('; '),
  };
}

// ---------------------------------------------------------------- the ledger

/**
 * What the client knows about a token:
 * - `in-doubt`: DATA was accepted (354) and the message may have been sent in full, but no final
 *   reply arrived (the gateway died). Delivered or not, both are correct.
 * - `acked`: "250 2.0.0 Ok: queued as ID" arrived. It must be delivered to every recipient.
 * - `refused`: a final reply other than 250 arrived. It must never be delivered.
 */
export type Outcome = 'in-doubt' | 'acked' | 'refused';

export interface Sent {
  readonly token: string;
  readonly to: readonly Target[];
  readonly bodyLength: number;
  readonly bodySha256: string;
  outcome: Outcome;
  queueId?: string;
  reply?: string;
  /** How many times the gateway had been killed when the transaction began / ended. */
  readonly killsAtStart: number;
  killsAtEnd?: number;
  readonly client: number;
}

export class Ledger {
  readonly sent = new Map<string, Sent>();

  count(outcome: Outcome): number {
    let n = 0;
    for (const s of this.sent.values()) if (s.outcome === outcome) n++;
    return n;
  }
}

// ---------------------------------------------------------------- a raw SMTP client

interface Reply {
  code: number;
  text: string;
}

class ConnectionLost extends Error {}

/** One SMTP connection: writes commands, reads (multi-line) replies; no cleverness. */
class RawSmtp {
  private buf = '';
  private lines: string[] = [];
  private replies: Reply[] = [];
  private wake: (() => void) | undefined;
  private closed = false;
  private lastError = '';

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
      for (;;) {
        const nl = this.buf.indexOf('\n');
        if (nl < 0) break;
        const line = this.buf.slice(0, nl).replace(/\r$/, '');
        this.buf = this.buf.slice(nl + 1);
        this.lines.push(line);
        if (!/^\d{3}-/.test(line)) {
          const code = Number(line.slice(0, 3));
          this.replies.push({ code: Number.isFinite(code) ? code : -1, text: this.lines.map((l) => l.slice(4)).join('\n') });
          this.lines = [];
        }
      }
      this.poke();
    });
    socket.on('error', (e) => {
      this.lastError = e.message;
    });
    socket.on('close', () => {
      this.closed = true;
      this.poke();
    });
  }

  static connect(port: number, timeoutMs = 5000): Promise<RawSmtp> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new ConnectionLost('connect timed out'));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(new RawSmtp(s));
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(new ConnectionLost(e.message));
      });
    });
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async reply(timeoutMs = 30_000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.replies.shift();
      if (r) return r;
      if (this.closed) throw new ConnectionLost(`connection closed${this.lastError ? ` (${this.lastError})` : ''}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new ConnectionLost(`no reply within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  write(data: string): void {
    if (!this.closed) this.socket.write(data, 'latin1');
  }

  async cmd(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

// ---------------------------------------------------------------- the load

export interface LoadOptions {
  readonly port: number;
  readonly clients: number;
  readonly ledger: Ledger;
  /** How many times the gateway has been killed so far (read at each transaction). */
  readonly kills: () => number;
  readonly minBody?: number;
  readonly maxBody?: number;
  /** Messages per connection before QUIT and a new connection. */
  readonly perConnection?: number;
}

export interface LoadStats {
  connections: number;
  connectFailures: number;
  /** Sessions that broke off (the gateway died under them, or a reply was unexpected). */
  broken: number;
  unexpected: string[];
}

const MIXES: readonly (readonly Target[])[] = [['box'], ['sink'], ['box', 'sink']];

/** Runs `clients` sessions that send in a loop until stop(); reconnects after any failure. */
export class Load {
  readonly stats: LoadStats = { connections: 0, connectFailures: 0, broken: 0, unexpected: [] };
  private stopped = false;
  private readonly workers: Promise<void>[] = [];

  constructor(private readonly opts: LoadOptions) {}

  start(): void {
    for (let k = 0; k < this.opts.clients; k++) this.workers.push(this.worker(k));
  }

  /** Lets each session finish the transaction it is in, then waits for all of them. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.workers);
  }

  private async worker(client: number): Promise<void> {
    const perConnection = this.opts.perConnection ?? 10;
    while (!this.stopped) {
      let c: RawSmtp | undefined;
      try {
        try {
          c = await RawSmtp.connect(this.opts.port);
        } catch {
          this.stats.connectFailures++;
          await sleep(50 + crypto.randomInt(100));
          continue;
        }
        this.stats.connections++;
        const greeting = await c.reply();
        if (greeting.code !== 220) throw new Error(`greeting ${greeting.code} ${greeting.text}`);
        const ehlo = await c.cmd(`EHLO loader${client}.client.example`);
        if (ehlo.code !== 250) throw new Error(`EHLO → ${ehlo.code} ${ehlo.text}`);
        for (let n = 0; n < perConnection && !this.stopped; n++) await this.transaction(c, client);
        await c.cmd('QUIT').catch(() => undefined);
      } catch (err) {
        this.stats.broken++;
        if (!(err instanceof ConnectionLost)) this.note(`client ${client}: ${(err as Error).message}`);
        await sleep(50 + crypto.randomInt(100));
      } finally {
        c?.destroy();
      }
    }
  }

  private note(s: string): void {
    if (this.stats.unexpected.length < 50) this.stats.unexpected.push(s);
  }

  private async transaction(c: RawSmtp, client: number): Promise<void> {
    const { ledger, kills } = this.opts;
    const min = this.opts.minBody ?? 1024;
    const max = this.opts.maxBody ?? 200 * 1024;
    const to = MIXES[crypto.randomInt(MIXES.length)]!;
    const msg = makeTestMessage(to, min + crypto.randomInt(max - min + 1));
    const mail = await c.cmd(`MAIL FROM:<${SENDER}>`);
    if (mail.code !== 250) throw new Error(`MAIL → ${mail.code} ${mail.text}`);
    for (const t of to) {
      const r = await c.cmd(`RCPT TO:<${ADDRESS[t]}>`);
      if (r.code !== 250) throw new Error(`RCPT ${ADDRESS[t]} → ${r.code} ${r.text}`);
    }
    const data = await c.cmd('DATA');
    if (data.code !== 354) throw new Error(`DATA → ${data.code} ${data.text}`);
    const sent: Sent = {
      token: msg.token, to, bodyLength: msg.bodyLength, bodySha256: msg.bodySha256,
      outcome: 'in-doubt', killsAtStart: kills(), client,
    };
    ledger.sent.set(msg.token, sent);
    c.write(msg.wire);
    const final = await c.reply(60_000);
    sent.killsAtEnd = kills();
    sent.reply = `${final.code} ${final.text}`;
    const queued = /^2\.0\.0 Ok: queued as (\S+)/.exec(final.text);
    if (final.code === 250 && queued) {
      sent.outcome = 'acked';
      sent.queueId = queued[1];
    } else {
      sent.outcome = 'refused';
      this.note(`client ${client}: end of data → ${sent.reply}`);
    }
  }
}

// ---------------------------------------------------------------- the downstream sink

export interface SinkCopy {
  readonly check: CopyCheck;
  readonly rcptTo: string[];
  readonly size: number;
  readonly at: number;
}

/**
 * The relay route's next hop: an SMTP server (npm smtp-server) that checks each message as it
 * arrives and keeps the result, not the bytes (thousands of 100 KB messages add up).
 */
export class CheckingSink {
  readonly copies: SinkCopy[] = [];
  /** Messages whose DATA did not end properly (connection lost mid-transfer): never accepted. */
  aborted = 0;

  private constructor(private readonly server: SMTPServer, readonly port: number) {}

  static async start(): Promise<CheckingSink> {
    let sink!: CheckingSink;
    const server = new SMTPServer({
      logger: false,
      banner: 'crash-test sink',
      disabledCommands: ['AUTH', 'STARTTLS'],
      authOptional: true,
      disableReverseLookup: true,
      size: 64 * 1024 * 1024,
      closeTimeout: 1000,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('error', () => {
          sink.aborted++;
        });
        stream.on('end', () => {
          if ((stream as unknown as { sizeExceeded?: boolean }).sizeExceeded) {
            callback(new Error('too big'));
            return;
          }
          const raw = Buffer.concat(chunks);
          sink.copies.push({ check: checkCopy(raw), rcptTo: session.envelope.rcptTo.map((r) => r.address), size: raw.length, at: Date.now() });
          callback(null, 'Ok: checked by the crash-test sink');
        });
      },
    });
    server.on('error', () => undefined);
    const port = await new Promise<number>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.server.address() as net.AddressInfo).port));
    });
    sink = new CheckingSink(server, port);
    return sink;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
