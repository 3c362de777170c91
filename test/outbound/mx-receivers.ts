// Receiving MX hosts for the direct-delivery tests, on loopback addresses other than 127.0.0.1
// (all on the same port, as real MX hosts all listen on 25): an smtp-server (the npm package)
// behind a recording TCP front that keeps every chunk the gateway wrote, as it arrived, so that
// pipelining is visible on the wire; and scripted misbehaving servers (silent, garbage).
import net from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface Received {
  from: string;
  to: string[];
  raw: Buffer;
  helo: string;
  secure: boolean;
}

export class MxReceiver {
  readonly messages: Received[] = [];
  /** Client → server chunks, in arrival order, per connection. */
  readonly chunks: string[][] = [];
  readonly rcptLog: { address: string; code: number }[] = [];

  private constructor(readonly address: string, readonly port: number, private readonly front: net.Server, private readonly smtp: SMTPServer, private readonly sockets: Set<net.Socket>) {}

  static async start(address: string, port: number, opts: { name: string; reject?: Record<string, 450 | 550>; starttls?: boolean }): Promise<MxReceiver> {
    let self!: MxReceiver;
    const smtp = new SMTPServer({
      logger: false, banner: `${opts.name} test MX`, authOptional: true, disableReverseLookup: true,
      disabledCommands: opts.starttls === false ? ['AUTH', 'STARTTLS'] : ['AUTH'], size: 10 * 1024 * 1024, closeTimeout: 500,
      onRcptTo(a, _s, cb) {
        const code = opts.reject?.[a.address.toLowerCase()];
        self.rcptLog.push({ address: a.address, code: code ?? 250 });
        if (code) return cb(Object.assign(new Error(code === 450 ? '4.2.1 mailbox busy, try later' : '5.1.1 no such user here'), { responseCode: code }));
        cb();
      },
      onData(stream, session, cb) {
        const parts: Buffer[] = [];
        stream.on('data', (c: Buffer) => parts.push(c));
        stream.on('end', () => {
          self.messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(parts), helo: session.hostNameAppearsAs, secure: session.secure,
          });
          cb(null, `queued on ${opts.name}`);
        });
      },
    });
    smtp.on('error', () => {});
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()));
    const inner = (smtp.server.address() as net.AddressInfo).port;
    const sockets = new Set<net.Socket>();
    const front = net.createServer((client) => {
      const log: string[] = [];
      self.chunks.push(log);
      const upstream = net.connect(inner, '127.0.0.1');
      sockets.add(client).add(upstream);
      client.on('data', (d) => { log.push(d.toString('latin1')); upstream.write(d); });
      upstream.pipe(client);
      const end = () => { client.destroy(); upstream.destroy(); };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    await listen(front, address, port);
    self = new MxReceiver(address, port, front, smtp, sockets);
    return self;
  }

  find(marker: string): Received[] {
    return this.messages.filter((m) => m.raw.includes(marker));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.front.close(() => r()));
    await new Promise<void>((r) => this.smtp.close(() => r()));
  }
}

/** A server that runs `script` on each connection (and counts them). */
export async function scriptedMx(address: string, port: number, script: (s: net.Socket) => void): Promise<{ connections: () => number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let n = 0;
  const server = net.createServer((s) => { n++; sockets.add(s); s.on('error', () => {}); script(s); });
  await listen(server, address, port);
  return { connections: () => n, close: () => { for (const s of sockets) s.destroy(); return new Promise<void>((r) => server.close(() => r())); } };
}

function listen(server: net.Server, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => { server.off('error', reject); resolve(); });
  });
}
