// `kind: milter` listeners: Postfix (smtpd_milters, non_smtpd_milters) and Sendmail
// (INPUT_MAIL_FILTER) connect here and run the SMTP path's checks at each stage of their own
// sessions (session.ts; docs/integrations.md has the recipes). TCP with an `allow` list, or a
// unix socket (its file mode is the access control).
import fs from 'node:fs';
import net from 'node:net';
import type { MilterListenerConfig } from '../../smtp/config.js';
import { allowList } from '../service.js';
import type { RunningScanListener } from '../spamd.js';
import type { MilterService } from './service.js';
import { MilterSession } from './session.js';

export async function startMilter(listener: MilterListenerConfig, service: MilterService): Promise<RunningScanListener> {
  const log = service.logger.child({ component: 'milter', listener: listener.name });
  const allowed = allowList(listener.allow);
  const sessions = new Set<MilterSession>();
  const server = net.createServer((socket) => {
    // A unix socket has no remote address: its file permissions decided who may connect.
    if (!listener.path && !allowed(socket.remoteAddress)) {
      log.warn({ event: 'milter_refused', client: socket.remoteAddress }, 'connection from a network not in allow: closed');
      socket.destroy();
      return;
    }
    const session = new MilterSession(socket, listener, service, log);
    sessions.add(session);
    socket.once('close', () => sessions.delete(session));
    session.start();
  });
  server.maxConnections = listener.max_connections;
  server.on('error', (err) => log.error({ event: 'listener_error', err: err.message }, 'listener error'));
  const where = listener.path ?? `${listener.address}:${listener.port}`;
  // A socket file left by a previous run that did not stop cleanly.
  if (listener.path) await fs.promises.rm(listener.path, { force: true });
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => reject(new Error(`listeners: ${listener.name}: cannot listen on ${where}: ${err.message}`));
    server.once('error', fail);
    const opts = listener.path ? { path: listener.path } : { host: listener.address, port: listener.port };
    server.listen(opts, () => {
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
        for (const s of sessions) s.abort();
      }, graceMs);
      timer.unref();
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      // Between messages a connection can go now (the MTA reconnects or applies its default action).
      for (const s of sessions) if (s.idle) s.abort();
    }),
  };
}
