// The IMAP listeners: STARTTLS (plain until the client asks; no login before TLS) and implicit
// TLS, connection limits per IP and in all (per user at login), graceful close with BYE.
import net from 'node:net';
import tls from 'node:tls';
import type { AccountStore } from '../../auth/accounts.js';
import type { BruteForce } from '../../auth/brute-force.js';
import type { Logger } from '../../log.js';
import type { TlsManager } from '../../tls/certificates.js';
import { MaildirRegistry } from '../maildir-registry.js';
import { StructureCache } from '../message-structure.js';
import type { ImapConfig } from './config.js';
import { MessageAccess } from './message-access.js';
import type { ImapServices, JunkTrainHook } from './services.js';
import { ImapSession } from './session.js';

export interface ImapDeps {
  readonly config: ImapConfig;
  readonly dataDir: string;
  readonly accounts: AccountStore;
  readonly bruteForce: BruteForce;
  readonly tls: TlsManager;
  readonly logger: Logger;
  /** smtp.max_message_size: the APPEND limit unless imap.max_literal says otherwise. */
  readonly maxMessageSize: number;
  /** Called for each message moved/copied into Junk (spam) or out of it (ham); errors are logged. */
  readonly onJunkTrain?: JunkTrainHook;
  /** Rescan period of selected folders (fallback for missed inotify events), ms. */
  readonly rescanMs?: number;
}

export interface ImapServer {
  readonly addresses: { name: string; address: string; port: number }[];
  /** Says BYE to every client, stops listening, waits for the connections to end. */
  close(): Promise<void>;
}

export async function startImap(deps: ImapDeps): Promise<ImapServer> {
  const log = deps.logger.child({ component: 'imap' });
  const cfg = deps.config;
  const registry = new MaildirRegistry({
    rescanMs: deps.rescanMs,
    onError: (dir, err) => log.warn({ event: 'imap_rescan_failed', dir, err: (err as Error).message }, `rescan of ${dir} failed`),
  });
  const services: ImapServices = {
    config: cfg,
    dataDir: deps.dataDir,
    accounts: deps.accounts,
    bruteForce: deps.bruteForce,
    tls: deps.tls,
    logger: deps.logger,
    maxLiteral: cfg.max_literal ?? deps.maxMessageSize,
    registry,
    access: new MessageAccess(new StructureCache()),
    userSessions: new Map(),
    onJunkTrain: deps.onJunkTrain,
  };
  const sessions = new Set<ImapSession>();
  const perIp = new Map<string, number>();
  const sockets = new Set<net.Socket>();
  const servers: { server: net.Server; name: string }[] = [];
  const addresses: { name: string; address: string; port: number }[] = [];
  let closing = false;

  const accept = (socket: net.Socket, listener: { name: string; tls: 'starttls' | 'implicit' }) => {
    const ip = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    socket.on('error', () => {});
    if (closing) return socket.destroy();
    const fromIp = perIp.get(ip) ?? 0;
    if (sessions.size >= cfg.max_connections || fromIp >= cfg.max_connections_per_ip) {
      log.info({ event: 'imap_connection_limit', client: ip, fromIp, total: sessions.size }, 'connection refused: limit reached');
      socket.end('* BYE Too many connections, try again later\r\n');
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    perIp.set(ip, fromIp + 1);
    sockets.add(socket);
    const session = new ImapSession(socket, services, listener, ip, () => {
      sessions.delete(session);
      sockets.delete(socket);
      const n = (perIp.get(ip) ?? 1) - 1;
      if (n <= 0) perIp.delete(ip);
      else perIp.set(ip, n);
    });
    sessions.add(session);
  };

  try {
    for (const l of cfg.listeners) {
      let server: net.Server;
      if (l.tls === 'implicit') {
        if (!deps.tls.available) {
          throw new Error(`imap.listeners: ${l.name} (implicit TLS) needs a TLS certificate; configure tls.certificates or tls.self_signed`);
        }
        const tlsServer = tls.createServer({ ...deps.tls.serverOptions() }, (s) => accept(s, l));
        tlsServer.on('tlsClientError', (err, s) => log.debug({ event: 'tls_failed', listener: l.name, client: s.remoteAddress, err: err.message }, 'TLS handshake failed'));
        const off = deps.tls.onReload(() => tlsServer.setSecureContext(deps.tls.serverOptions()));
        tlsServer.on('close', off);
        server = tlsServer;
      } else {
        server = net.createServer((s) => accept(s, l));
      }
      server.on('error', (err) => log.error({ event: 'imap_listener_error', listener: l.name, err: err.message }, 'IMAP listener error'));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(l.port, l.address, () => {
          server.off('error', reject);
          resolve();
        });
      }).catch((err: Error) => {
        throw new Error(`imap.listeners: ${l.name} cannot listen on ${l.address}:${l.port}: ${err.message}`, { cause: err });
      });
      const a = server.address() as net.AddressInfo;
      servers.push({ server, name: l.name });
      addresses.push({ name: l.name, address: a.address, port: a.port });
      log.info({ event: 'imap_listening', listener: l.name, address: a.address, port: a.port, tls: l.tls }, `IMAP listening on ${a.address}:${a.port} (${l.tls})`);
    }
  } catch (err) {
    for (const { server } of servers) server.close();
    registry.close();
    throw err;
  }

  return {
    addresses,
    async close() {
      closing = true;
      const stopped = Promise.all(servers.map(({ server }) => new Promise<void>((resolve) => server.close(() => resolve()))));
      for (const s of sessions) s.shutdown();
      // Clients that do not close within the grace period are cut off.
      const deadline = Date.now() + 3000;
      while (sockets.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      for (const s of sockets) s.destroy();
      await stopped;
      registry.close();
    },
  };
}
