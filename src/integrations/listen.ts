// How every integration listener (spamd, scan-http, policy, dovecot-policy, milter) listens and
// stops: a bind failure names the listener and the address; `allow` is checked before a byte is
// read; closing ends idle connections at once and gives the busy ones `graceMs`.
import fs from 'node:fs';
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../log.js';
import { allowList } from './service.js';

/** A started listener, as the gateway sees it. */
export interface RunningListener {
  readonly name: string;
  address(): { address: string; port: number };
  close(graceMs: number): Promise<void>;
}

export interface TcpListenerOptions {
  readonly listener: {
    readonly name: string; readonly address: string; readonly port?: number; readonly allow: readonly string[]; readonly max_connections: number;
    /** A unix socket instead of address and port: its file mode is the access control (`allow` does not apply). */
    readonly path?: string;
  };
  readonly log: Logger;
  /** The log event of a connection refused for `allow` (spamd_refused, policy_refused…). */
  readonly refusedEvent: string;
  /** Keep the socket writable after the client ends its side (spamc shuts down its sending side). */
  readonly allowHalfOpen?: boolean;
  /** A connection from an allowed network. */
  onConnection(socket: net.Socket): void;
  /** Whether a connection is in the middle of a request: closing gives it the grace, the others go at once. */
  busy(socket: net.Socket): boolean;
}

export async function listenTcp(o: TcpListenerOptions): Promise<RunningListener> {
  const { listener, log } = o;
  const allowed = allowList(listener.allow);
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: !!o.allowHalfOpen }, (socket) => {
    if (!listener.path && !allowed(socket.remoteAddress)) {
      // No answer to a client outside `allow` (as spamd's --allowed-ips), only the log line.
      log.warn({ event: o.refusedEvent, client: socket.remoteAddress }, 'connection from a network not in allow: closed');
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    o.onConnection(socket);
  });
  server.maxConnections = listener.max_connections;
  server.on('error', (err) => log.error({ event: 'listener_error', err: err.message }, 'listener error'));
  // A socket file left by a previous run that did not stop cleanly.
  if (listener.path) await fs.promises.rm(listener.path, { force: true });
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => reject(cannotListen(listener, err));
    server.once('error', fail);
    server.listen(listener.path ? { path: listener.path } : { host: listener.address, port: listener.port }, () => {
      server.removeListener('error', fail);
      resolve();
    });
  });
  return {
    name: listener.name,
    address: () => {
      const a = server.address();
      if (typeof a === 'string' || !a) return { address: listener.path ?? '', port: 0 };
      return { address: a.address, port: a.port };
    },
    close: (graceMs) => new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const s of sockets) s.destroy();
      }, graceMs);
      timer.unref();
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      for (const s of sockets) if (!o.busy(s)) s.destroy();
    }),
  };
}

/** Starts a fastify app of an HTTP listener (scan-http, dovecot-policy) the same way. */
export async function listenHttp(app: FastifyInstance, listener: { readonly name: string; readonly address: string; readonly port: number }): Promise<RunningListener> {
  try {
    await app.listen({ host: listener.address, port: listener.port });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw cannotListen(listener, err as Error);
  }
  return {
    name: listener.name,
    address: () => {
      const a = app.server.address() as { address: string; port: number };
      return { address: a.address, port: a.port };
    },
    close: async (graceMs) => {
      const timer = setTimeout(() => app.server.closeAllConnections(), graceMs);
      timer.unref();
      app.server.closeIdleConnections();
      await app.close();
      clearTimeout(timer);
    },
  };
}

function cannotListen(listener: { name: string; address: string; port?: number; path?: string }, err: Error): Error {
  return new Error(`listeners: ${listener.name}: cannot listen on ${listener.path ?? `${listener.address}:${listener.port}`}: ${err.message}`);
}
