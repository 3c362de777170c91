// A TCP proxy in front of a test sink that can break the downstream relay the way a flaky next
// hop does: in "reset" mode it lets the SMTP dialogue through until the server's 354, forwards
// `afterBytes` of the message, then resets both connections (TCP RST), mid-DATA. In "pass"
// mode it forwards everything. Counts what it did, for the assertions and the soak's figures.
import net from 'node:net';
import { freePorts } from '../helpers/wait.js';

export type ProxyMode = 'pass' | 'reset';

export class ResetProxy {
  mode: ProxyMode = 'pass';
  /** Bytes of message content let through before the reset. */
  afterBytes = 2048;
  /** Connections reset mid-DATA so far. */
  resets = 0;
  connections = 0;
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server, readonly port: number) {}

  static async start(targetPort: number): Promise<ResetProxy> {
    const port = (await freePorts(1))[0]!;
    let proxy!: ResetProxy;
    const server = net.createServer((client) => {
      proxy.connections++;
      const mode = proxy.mode;
      const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
      proxy.track(client);
      proxy.track(upstream);
      let inData = false;
      let sent = 0;
      const reset = () => {
        proxy.resets++;
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      };
      upstream.on('data', (d: Buffer) => {
        if (mode === 'reset' && !inData && /(^|\n)354[ -]/.test(d.toString('latin1'))) inData = true;
        client.write(d);
      });
      client.on('data', (d: Buffer) => {
        if (mode === 'reset' && inData) {
          const room = proxy.afterBytes - sent;
          if (room <= 0) return;
          sent += d.length;
          upstream.write(d.subarray(0, Math.max(0, room)));
          if (sent >= proxy.afterBytes) setImmediate(reset);
          return;
        }
        upstream.write(d);
      });
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    proxy = new ResetProxy(server, port);
    return proxy;
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
