// `kind: dovecot-policy` listeners: Dovecot's auth policy server protocol
// (auth_policy_server_url; Dovecot's src/auth/auth-policy.c), so logins on a Dovecot IMAP or
// POP3 server feed and obey the brute-force defence our own SMTP AUTH, IMAP and POP3 use
// (src/auth/brute-force.ts) — one account guessed on Dovecot is blocked on our submission
// port too, and the other way round.
//
// Dovecot POSTs a JSON object to the URL with "?command=allow" before it checks a password
// (and, with auth_policy_check_after_auth, again after) and "?command=report" after, with
// "success" and "policy_reject" added. The object's fields are auth_policy_request_attributes;
// we read Dovecot's default names: login (%{requested_username}), remote (%{rip}), protocol.
// The answer to allow is {"status": N, "msg": "..."}: N < 0 refuses the login, 0 lets it go
// on, N > 0 delays it N seconds. Dovecot reads nothing of the answer to report.
//   allow, the source blocked (pair, IP, or network not known for the account) → status -1
//   allow, the source tarpitted (failed before)  → status = the tarpit delay, in whole seconds
//   allow, otherwise                             → status 0
//   report, success: false                       → a failed login of (remote, login)
//   report, success: true                        → a login: the pair's failures forgotten and
//                                                  the network remembered as the account's
// A refusal carries no msg: as on our own ports, a blocked attempt looks like a wrong password.
// fastify does the HTTP (body limit, timeouts, framing), as for the scan-http listener.
import net from 'node:net';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { DovecotPolicyListenerConfig } from '../smtp/config.js';
import type { PolicyService } from './policy-service.js';
import { allowList, printable } from './service.js';
import { passwordMatches } from './scan-http.js';
import { listenHttp, type RunningListener } from './listen.js';

/** Dovecot's request bodies are a few hundred bytes; this leaves room for added attributes. */
const BODY_LIMIT = 16 * 1024;

/** The header and secret of auth_policy_server_api_header ("Name: value"; bare: X-API-Key). */
export function apiHeader(setting: string): { name: string; value: string } {
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):\s*(.*)$/.exec(setting);
  return m ? { name: m[1]!.toLowerCase(), value: m[2]!.trim() } : { name: 'x-api-key', value: setting.trim() };
}

/** Whole seconds, rounded up: a tarpit may not become shorter on Dovecot than on our ports. */
export const delaySeconds = (ms: number) => (ms > 0 ? Math.ceil(ms / 1000) : 0);

export async function startDovecotPolicy(listener: DovecotPolicyListenerConfig, service: PolicyService): Promise<RunningListener> {
  const log = service.logger.child({ component: 'dovecot-policy', listener: listener.name });
  const allowed = allowList(listener.allow);
  const secret = listener.api_header ? apiHeader(listener.api_header) : undefined;
  const count = (kind: string, outcome: string) => service.count?.(listener.name, kind, outcome);
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    connectionTimeout: listener.timeout,
    requestTimeout: listener.timeout,
    // Dovecot keeps its connections (http_client max_idle_time 10 s).
    keepAliveTimeout: 15_000,
    trustProxy: false,
    return503OnClosing: true,
  });
  app.server.maxConnections = listener.max_connections;
  app.addHook('onRequest', async (req, reply) => {
    if (!allowed(req.socket.remoteAddress)) {
      log.warn({ event: 'dovecot_policy_refused', client: req.socket.remoteAddress }, 'request from a network not in allow: refused');
      count('request', 'refused');
      return reply.code(403).header('connection', 'close').send({ error: 'client address not allowed' });
    }
    if (secret) {
      const given = req.headers[secret.name];
      if (!passwordMatches(typeof given === 'string' ? given.trim() : undefined, secret.value)) {
        log.warn({ event: 'dovecot_policy_unauthorized', client: req.socket.remoteAddress, header: secret.name }, `request without the right ${secret.name} header: refused`);
        count('request', 'unauthorized');
        return reply.code(401).send({ error: `the ${secret.name} header (auth_policy_server_api_header) is missing or wrong` });
      }
    }
  });
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (code === 500) log.error({ event: 'dovecot_policy_error', err: err.message }, 'internal error');
    else count('request', 'bad-request');
    // Dovecot answers a non-2xx itself: auth_policy_reject_on_fail decides (docs/integrations.md).
    return reply.code(code).send({ error: code === 500 ? 'internal error' : err.message });
  });

  const handle = async (req: FastifyRequest, reply: FastifyReply) => {
    const command = (req.query as Record<string, unknown> | undefined)?.command;
    const body = req.body;
    if (command !== 'allow' && command !== 'report') {
      count('request', 'bad-request');
      return reply.code(400).send({ error: 'the URL must end in ?command=allow or ?command=report (Dovecot adds it to auth_policy_server_url)' });
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      count(command, 'bad-request');
      return reply.code(400).send({ error: 'the body must be a JSON object of auth_policy_request_attributes' });
    }
    const fields = body as Record<string, unknown>;
    const text = (k: string) => (typeof fields[k] === 'string' ? (fields[k] as string) : undefined);
    const remote = text('remote')?.replace(/^::ffff:(?=\d+\.)/, '');
    const login = text('login')?.trim().toLowerCase().slice(0, 320) || '(malformed)';
    const protocol = printable(text('protocol') ?? '', 20) || undefined;
    const about = { client: req.socket.remoteAddress, remote, user: printable(login, 320), protocol, session: text('session_id') && printable(text('session_id')!, 60) };
    if (!remote || !net.isIP(remote)) {
      // Nothing to judge or count without the client's address: the login goes on, as it
      // would without us; the log says why (auth_policy_request_attributes lacks remote=%{rip}?).
      log.warn({ event: 'dovecot_policy_no_remote', ...about, command }, 'request without a usable remote address: status 0');
      count(command, 'no-remote');
      return reply.send({ status: 0 });
    }
    const bf = service.bruteForce;
    if (command === 'report') {
      const success = fields.success === true;
      if (success) await bf.success(remote, login);
      else await bf.failure(remote, login);
      log.info({ event: success ? 'dovecot_login' : 'dovecot_login_failed', ...about, policy_reject: fields.policy_reject === true }, success ? 'login on dovecot' : 'failed login on dovecot');
      count('report', success ? 'success' : 'failure');
      return reply.send({ status: 0 });
    }
    const verdict = await bf.before(remote, login);
    if (verdict.blocked) {
      log.info({ event: 'auth_blocked', ...about, scope: verdict.blocked }, 'login attempt on dovecot from a blocked source: status -1');
      count('allow', 'reject');
      return reply.send({ status: -1 });
    }
    const seconds = delaySeconds(verdict.delayMs);
    if (seconds) log.info({ event: 'dovecot_tarpit', ...about, delay_s: seconds }, `login attempt on dovecot tarpitted: status ${seconds}`);
    count('allow', seconds ? 'delay' : 'accept');
    return reply.send({ status: seconds });
  };
  // Any path: auth_policy_server_url names it, Dovecot appends the command.
  app.post('/', handle);
  app.post('/*', handle);

  return listenHttp(app, listener);
}
