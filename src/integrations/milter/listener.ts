// `kind: milter` listeners: Postfix (smtpd_milters, non_smtpd_milters) and Sendmail
// (INPUT_MAIL_FILTER) connect here and run the SMTP path's checks at each stage of their own
// sessions (session.ts; docs/integrations.md has the recipes). TCP with an `allow` list, or a
// unix socket (its file mode is the access control).
import type net from 'node:net';
import type { MilterListenerConfig } from '../../smtp/config.js';
import { listenTcp, type RunningListener } from '../listen.js';
import type { MilterService } from './service.js';
import { MilterSession } from './session.js';

export async function startMilter(listener: MilterListenerConfig, service: MilterService): Promise<RunningListener> {
  const log = service.logger.child({ component: 'milter', listener: listener.name });
  const sessions = new WeakMap<net.Socket, MilterSession>();
  return listenTcp({
    listener, log, refusedEvent: 'milter_refused',
    onConnection: (socket) => {
      const session = new MilterSession(socket, listener, service, log);
      sessions.set(socket, session);
      session.start();
    },
    // Between messages a connection can go at once (the MTA reconnects or applies its default action).
    busy: (socket) => !(sessions.get(socket)?.idle ?? true),
  });
}
