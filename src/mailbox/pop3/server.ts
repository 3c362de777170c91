// The POP3 listeners: STLS (clear-text greeting, TLS before any login) and implicit TLS. Each
// connection becomes a Pop3Session; the connection limits are enforced here with an RFC 3206
// [SYS/TEMP] answer rather than a silent drop.
import net from 'node:net';
import tls from 'node:tls';
import type { AccountStore } from '../../auth/accounts.js';
import type { BruteForce } from '../../auth/brute-force.js';
import type { Logger } from '../../log.js';
import { clientAddress } from '../../net/cidr.js';
import type { TlsManager } from '../../tls/certificates.js';
import type { Pop3Config, Pop3ListenerConfig } from './config.js';
import { SizeCache } from './maildrop.js';
import { TXT } from './replies.js';
import { Pop3Session } from './session.js';
import { SessionRegistry } from './session-registry.js';

export { pop3ConfigSchema, type Pop3Config } from './config.js';

export interface Pop3Deps {
  readonly config: Pop3Config;
  readonly dataDir: string;
  readonly accounts: AccountStore;
  readonly bruteForce: BruteForce;
  readonly tls: TlsManager;
  readonly logger: Logger;
}

export interface Pop3Server {
  /** Bound addresses (port 0 in the configuration gets a real one here). */
  readonly addresses: { name: string; address: string; port: number }[];
  /** Stops listening, tells idle sessions, lets busy ones finish (at most `graceMs`, default 10 s). */
  close(graceMs?: number): Promise<void>;
}

/** Starts the configured POP3 listeners; resolves once all of them listen (or rejects naming the one that cannot). */
export async function startPop3(deps: Pop3Deps): Promise<Pop3Server> {
  const log = deps.logger.child({ component: 'pop3' });
  const cfg = deps.config;
  if (!cfg.enabled) return { addresses: [], close: async () => undefined };
  if (cfg.idle_timeout < 600_000) log.warn({ idle_timeout_ms: cfg.idle_timeout }, 'pop3.idle_timeout is below the 10 minutes RFC 1939 asks for');
  const registry = new SessionRegistry({ total: cfg.max_connections, perIp: cfg.max_connections_per_ip, perUser: cfg.max_connections_per_user });
  const sizes = new SizeCache();
  const sessions = new Set<Pop3Session>();
  const servers: { listener: Pop3ListenerConfig; server: net.Server }[] = [];
  const tlsOptions = () => (deps.tls.available ? deps.tls.serverOptions() : undefined);

  if (!deps.tls.available) {
    log.warn('POP3 has no TLS certificate: STLS is not offered and no login is possible (configure tls.certificates or tls.self_signed)');
  }

  const accept = (socket: net.Socket, listener: Pop3ListenerConfig, implicitTls: boolean) => {
    socket.on('error', () => undefined);
    const ip = clientAddress(socket.remoteAddress);
    const refused = registry.admit(ip);
    if (refused) {
      log.info({ event: 'pop3_limit', limit: refused, client: ip, listener: listener.name }, 'connection refused by limits');
      socket.end(`-ERR ${refused === 'ip' ? TXT.ipLimit : TXT.serverBusy}\r\n`);
      socket.setTimeout(5000, () => socket.destroy());
      return;
    }
    const session = new Pop3Session(socket, {
      config: cfg, listener, dataDir: deps.dataDir, accounts: deps.accounts, bruteForce: deps.bruteForce,
      tlsOptions, logger: log, registry, sizes,
    }, implicitTls);
    sessions.add(session);
    session.onClose = () => {
      sessions.delete(session);
      registry.leave(ip);
    };
    session.start();
  };

  try {
    for (const listener of cfg.listeners) {
      let server: net.Server;
      if (listener.tls === 'implicit') {
        const options = tlsOptions();
        if (!options) throw new Error(`pop3.listeners: ${listener.name} (implicit TLS) needs a TLS certificate; configure tls.certificates or tls.self_signed`);
        const tlsServer = tls.createServer({ ...options, handshakeTimeout: 30_000 }, (socket) => accept(socket, listener, true));
        tlsServer.on('tlsClientError', (err, socket) => {
          log.debug({ event: 'tls_failed', listener: listener.name, client: socket.remoteAddress, err: err.message }, 'TLS handshake failed');
        });
        server = tlsServer;
      } else {
        server = net.createServer((socket) => accept(socket, listener, false));
      }
      server.on('error', (err) => log.error({ event: 'listener_error', listener: listener.name, err: err.message }, 'listener error'));
      await new Promise<void>((resolve, reject) => {
        const fail = (err: Error) => reject(new Error(`pop3.listeners: ${listener.name}: cannot listen on ${listener.address}:${listener.port}: ${err.message}`));
        server.once('error', fail);
        server.listen({ host: listener.address, port: listener.port, backlog: 511 }, () => {
          server.removeListener('error', fail);
          resolve();
        });
      });
      servers.push({ listener, server });
    }
  } catch (err) {
    await Promise.all(servers.map(({ server }) => new Promise<void>((r) => server.close(() => r()))));
    throw err;
  }

  // A reloaded certificate reaches implicit-TLS clients without SNI too (STLS fetches options per connection).
  const unsubscribe = deps.tls.onReload(() => {
    const options = tlsOptions();
    if (!options) return;
    for (const { server } of servers) if (server instanceof tls.Server) server.setSecureContext(options);
  });

  const addresses = servers.map(({ listener, server }) => {
    const a = server.address() as net.AddressInfo;
    return { name: listener.name, address: a.address, port: a.port };
  });
  log.info({ event: 'pop3_listening', listeners: addresses }, 'POP3 listening');

  let closing: Promise<void> | undefined;
  const close = (graceMs = 10_000): Promise<void> => {
    closing ??= (async () => {
      unsubscribe();
      // server.close() calls back only once every connection has ended: start it, do not wait yet.
      const closed = Promise.all(servers.map(({ server }) => new Promise<void>((r) => server.close(() => r()))));
      for (const s of sessions) s.shutdown();
      const deadline = Date.now() + graceMs;
      while (sessions.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      if (sessions.size) {
        log.warn({ event: 'shutdown_forced', sessions: sessions.size }, 'closing POP3 sessions still open after the grace period');
        for (const s of sessions) s.abort();
      }
      await closed;
    })();
    return closing;
  };
  return { addresses, close };
}
