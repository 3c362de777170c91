// The SMTP listeners: MX and submission (plain, STARTTLS available) and submissions (implicit
// TLS, RFC 8314). Each accepted connection becomes an SmtpSession; the connection limit is
// enforced here with a 421 rather than a silent drop.
import net from 'node:net';
import tls from 'node:tls';
import { SmtpSession, type SessionDeps } from './session.js';
import { R, formatReply } from '../protocol/reply.js';
import type { ListenerConfig } from './config.js';
import type { Logger } from '../log.js';

export type ListenerDeps = Omit<SessionDeps, 'listener'>;

export class SmtpListeners {
  private readonly servers: { listener: ListenerConfig; server: net.Server }[] = [];
  private readonly sessions = new Set<SmtpSession>();
  private readonly log: Logger;

  constructor(private readonly deps: ListenerDeps) {
    this.log = deps.logger.child({ component: 'smtp' });
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Bound addresses, by listener name (useful when a port was configured as 0). */
  addresses(): Record<string, { address: string; port: number }> {
    const out: Record<string, { address: string; port: number }> = {};
    for (const { listener, server } of this.servers) {
      const a = server.address() as net.AddressInfo;
      out[listener.name] = { address: a.address, port: a.port };
    }
    return out;
  }

  async start(listeners: readonly ListenerConfig[]): Promise<void> {
    for (const listener of listeners) {
      const deps: SessionDeps = { ...this.deps, listener };
      let server: net.Server;
      if (listener.kind === 'submissions') {
        const options = this.deps.tlsOptions();
        if (!options) throw new Error(`listeners: ${listener.name} (submissions) needs a TLS certificate; configure tls.certificates or tls.self_signed`);
        const tlsServer = tls.createServer({ ...options }, (socket) => this.accept(socket, deps, true));
        tlsServer.on('tlsClientError', (err, socket) => {
          this.log.debug({ event: 'tls_failed', listener: listener.name, client: socket.remoteAddress, err: err.message }, 'TLS handshake failed');
        });
        server = tlsServer;
      } else {
        server = net.createServer((socket) => this.accept(socket, deps, false));
      }
      server.on('error', (err) => this.log.error({ event: 'listener_error', listener: listener.name, err: err.message }, 'listener error'));
      await new Promise<void>((resolve, reject) => {
        const fail = (err: Error) => reject(new Error(`listeners: ${listener.name}: cannot listen on ${listener.address}:${listener.port}: ${err.message}`));
        server.once('error', fail);
        server.listen({ host: listener.address, port: listener.port, backlog: 1024 }, () => {
          server.removeListener('error', fail);
          resolve();
        });
      });
      this.servers.push({ listener, server });
    }
  }

  /** New default certificate for implicit-TLS listeners (SNI already follows the manager). */
  refreshTls(): void {
    const options = this.deps.tlsOptions();
    if (!options) return;
    for (const { server } of this.servers) if (server instanceof tls.Server) server.setSecureContext(options);
  }

  private accept(socket: net.Socket, deps: SessionDeps, implicitTls: boolean): void {
    socket.on('error', () => undefined);
    if (this.sessions.size >= this.deps.config.smtp.max_connections) {
      socket.end(formatReply(R.tooManyConnections(this.deps.config.hostname)));
      socket.setTimeout(5000, () => socket.destroy());
      return;
    }
    const session = new SmtpSession(socket, deps, implicitTls);
    this.sessions.add(session);
    this.deps.metrics.sessions.inc({ listener: deps.listener.name });
    session.onClose = () => {
      this.sessions.delete(session);
      this.deps.metrics.sessions.dec({ listener: deps.listener.name });
    };
    session.start().catch((err) => this.log.error({ event: 'internal_error', err: (err as Error).stack }, 'session start failed'));
  }

  /** Stops listening, tells idle sessions 421, lets busy ones finish within graceMs. */
  async stop(graceMs: number): Promise<void> {
    // server.close() only calls back once every connection has ended: start it, do not wait.
    const closed = Promise.all(this.servers.map(({ server }) => new Promise<void>((r) => server.close(() => r()))));
    for (const s of this.sessions) s.shutdown();
    const deadline = Date.now() + graceMs;
    while (this.sessions.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (this.sessions.size) {
      this.log.warn({ event: 'shutdown_forced', sessions: this.sessions.size }, 'closing sessions still open after the grace period');
      for (const s of this.sessions) s.abort();
    }
    await closed;
  }
}
