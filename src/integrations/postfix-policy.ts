// `kind: policy` listeners: Postfix policy delegation (SMTPD_POLICY_README), so Postfix's
// `check_policy_service inet:HOST:PORT` asks our connect-, HELO-, MAIL- and RCPT-stage checks
// (DNS lists, rDNS, HELO, SPF, the client limits) and enforces the answer
// (postfix-policy-judge.ts). One connection per smtpd process, many requests on it, answered
// in order; reading pauses while one is judged, so a client cannot pile requests up in memory.
import net from 'node:net';
import type { PolicyListenerConfig } from '../smtp/config.js';
import type { PolicyService } from './policy-service.js';
import { printable } from './service.js';
import { formatAnswer, PolicyOverflow, PolicyReader } from './policy-protocol.js';
import { PostfixPolicyJudge } from './postfix-policy-judge.js';
import { listenTcp, type RunningListener } from './listen.js';

export async function startPostfixPolicy(listener: PolicyListenerConfig, service: PolicyService): Promise<RunningListener> {
  const log = service.logger.child({ component: 'policy', listener: listener.name });
  const busy = new WeakSet<net.Socket>();
  return listenTcp({
    listener, log, refusedEvent: 'policy_refused',
    onConnection: (socket) => serve(socket, listener, service, log, busy),
    // Idle connections go at once (Postfix reconnects, or applies smtpd_policy_service_default_action);
    // one being answered gets the grace.
    busy: (s) => busy.has(s),
  });
}

function serve(socket: net.Socket, listener: PolicyListenerConfig, service: PolicyService, log: PolicyService['logger'], busy: WeakSet<net.Socket>): void {
  const reader = new PolicyReader();
  const judge = new PostfixPolicyJudge(service, listener);
  const queue: ReadonlyMap<string, string>[] = [];
  const malformed = new WeakMap<ReadonlyMap<string, string>, string>();
  let working = false;
  const client = socket.remoteAddress;

  socket.setTimeout(listener.timeout, () => {
    log.info({ event: 'policy_timeout', client, partial: reader.partial }, 'policy connection idle: closed');
    socket.destroy();
  });
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const r of reader.push(chunk)) {
        if (r.malformed) malformed.set(r.attrs, r.malformed);
        queue.push(r.attrs);
      }
    } catch (err) {
      const why = err instanceof PolicyOverflow ? err.message : `unreadable input: ${(err as Error).message}`;
      service.count?.(listener.name, 'request', 'overflow');
      log.warn({ event: 'policy_overflow', client, why }, `request over the limits (${why}): connection closed`);
      socket.destroy();
      return;
    }
    void next();
  });

  const next = async (): Promise<void> => {
    if (working) return;
    working = true;
    busy.add(socket);
    socket.pause();
    try {
      while (queue.length && !socket.destroyed) {
        const attrs = queue.shift()!;
        const t0 = performance.now();
        const fault = malformed.get(attrs);
        const answer = fault
          ? { action: 'DUNNO', outcome: 'malformed' as const, symbols: [], why: fault }
          : await judge.judge(attrs);
        const state = (attrs.get('protocol_state') ?? '').toLowerCase() || 'unknown';
        service.count?.(listener.name, /^[a-z-]{1,20}$/.test(state) ? state : 'unknown', answer.outcome);
        const fields = {
          event: 'policy_request', client, state, client_address: attrs.get('client_address'), helo: attrs.get('helo_name'),
          sender: attrs.get('sender'), recipient: attrs.get('recipient'), instance: attrs.get('instance'), sasl_username: attrs.get('sasl_username') || undefined,
          action: answer.action, outcome: answer.outcome, why: answer.why && printable(answer.why),
          symbols: answer.symbols.map((s) => ({ name: s.name, score: s.score })), ms: Math.round(performance.now() - t0),
        };
        if (answer.outcome === 'malformed') log.warn(fields, `unreadable policy request (${printable(answer.why ?? '')}): DUNNO`);
        else log.info(fields, `policy ${state}: ${answer.action.split(' ')[0]}`);
        if (socket.destroyed) return;
        socket.write(formatAnswer(answer.action));
      }
    } catch (err) {
      // A fault of ours outside the judge (which answers its own errors): this connection ends,
      // Postfix reconnects or applies its default action; the listener goes on.
      log.error({ event: 'policy_internal_error', client, err: (err as Error).message }, 'internal error: connection closed');
      socket.destroy();
    } finally {
      working = false;
      busy.delete(socket);
      if (!socket.destroyed) socket.resume();
    }
  };
}
