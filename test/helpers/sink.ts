// A capturing downstream SMTP or LMTP server (the npm `smtp-server` package): the "next hop" of
// the gateway's relay routes. It records the envelope and the raw bytes of each message and can be
// told to answer RCPT with 450 or 550 for chosen addresses.
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { freePorts, waitFor } from './wait.js';

export interface SinkMessage {
  mailFrom: string;
  rcptTo: string[];
  /** The message as the sink received it (dot-unstuffed), byte for byte. */
  raw: Buffer;
  /** True when the gateway used STARTTLS to reach the sink. */
  secure: boolean;
  /** What the gateway said in EHLO/LHLO. */
  helo: string;
  remoteAddress: string;
  receivedAt: number;
}

export interface SinkOptions {
  /** Port to listen on (default: a free one). */
  port?: number;
  /** Speak LMTP instead of SMTP. */
  lmtp?: boolean;
  /** Offer STARTTLS (smtp-server's built-in self-signed certificate). Default false. */
  starttls?: boolean;
  /** Recipients to refuse at RCPT: address (lower case) → 450 or 550. */
  reject?: Record<string, 450 | 550>;
}

export class Sink {
  readonly messages: SinkMessage[] = [];
  /** Every RCPT TO the sink saw, with the code it answered. */
  readonly rcptLog: Array<{ address: string; code: number }> = [];
  /** Every connection the sink accepted (counted, whatever happened next). */
  connections = 0;
  readonly reject = new Map<string, 450 | 550>();

  private constructor(
    private readonly server: SMTPServer,
    readonly port: number,
    readonly lmtp: boolean,
  ) {}

  static async start(opts: SinkOptions = {}): Promise<Sink> {
    const port = opts.port ?? (await freePorts(1))[0]!;
    let sink!: Sink;
    const disabled = ['AUTH'];
    if (!opts.starttls) disabled.push('STARTTLS');
    const server = new SMTPServer({
      lmtp: Boolean(opts.lmtp),
      logger: false,
      banner: 'capture sink',
      disabledCommands: disabled,
      authOptional: true,
      disableReverseLookup: true,
      size: 64 * 1024 * 1024,
      closeTimeout: 1000,
      onConnect(_session, callback) {
        sink.connections++;
        callback();
      },
      onRcptTo(address, _session, callback) {
        const code = sink.reject.get(address.address.toLowerCase());
        sink.rcptLog.push({ address: address.address, code: code ?? 250 });
        if (code) {
          const err = new Error(code === 450 ? 'Mailbox busy, try later (sink)' : 'No such user here (sink)') as Error & { responseCode: number };
          err.responseCode = code;
          callback(err);
          return;
        }
        callback();
      },
      onData(stream, session: SMTPServerSession, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const env = session.envelope;
          sink.messages.push({
            mailFrom: env.mailFrom ? env.mailFrom.address : '',
            rcptTo: env.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks),
            secure: session.secure,
            helo: session.hostNameAppearsAs,
            remoteAddress: session.remoteAddress,
            receivedAt: Date.now(),
          });
          callback(null, 'Ok: captured by sink');
        });
      },
    });
    server.on('error', () => {
      // connection-level errors (a client that went away) are not the sink's business
    });
    sink = new Sink(server, port, Boolean(opts.lmtp));
    for (const [a, c] of Object.entries(opts.reject ?? {})) sink.reject.set(a.toLowerCase(), c);
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      server.server.once('error', onError);
      server.listen(port, '127.0.0.1', () => {
        server.server.removeListener('error', onError);
        resolve();
      });
    });
    return sink;
  }

  /** Messages with `marker` anywhere in the raw bytes. */
  find(marker: string): SinkMessage[] {
    return this.messages.filter((m) => m.raw.includes(marker));
  }

  /** Waits for the first message containing `marker`. */
  async waitFor(marker: string, timeoutMs = 15_000): Promise<SinkMessage> {
    return waitFor(`the ${this.lmtp ? 'LMTP' : 'SMTP'} sink on port ${this.port} to receive a message containing ${JSON.stringify(marker)}`,
      () => this.find(marker)[0], { timeoutMs });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
