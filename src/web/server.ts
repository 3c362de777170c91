// The web console (docs/console.md): fastify over HTTPS only, with the listeners' certificates.
// What every response gets (security headers), what every request goes through (the session
// cookie, CSRF on every POST, the role checks), and the login with the account store and the
// brute-force defence every protocol shares. The pages themselves are in *-pages.ts.
import fs from 'node:fs';
import path from 'node:path';
import type https from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import { clientAddress } from '../net/cidr.js';
import { SESSION_COOKIE, SessionStore, csrfMatches, type ConsoleSession } from './sessions.js';
import { html } from './html.js';
import { csrfField, page } from './layout.js';
import type { ConsoleContext, ConsoleDeps, ConsoleServer } from './context.js';
import { registerUserPages } from './user-pages.js';
import { registerAdminPages } from './admin-pages.js';
import { checkLogin } from '../auth/login.js';
import { registerQuarantinePages } from './quarantine-pages.js';
import { registerListPages } from './list-pages.js';
import { registerReportPages } from './report-pages.js';
import { registerQueuePages } from './queue-pages.js';
import { registerJunkPages } from './junk-pages.js';

const STATIC_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/web/static');

/** The Content-Security-Policy of every console page: nothing inline, nothing from elsewhere, never framed. */
export const PAGE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export async function startConsole(deps: ConsoleDeps): Promise<ConsoleServer> {
  const log = deps.logger.child({ component: 'console' });
  const css = fs.readFileSync(path.join(STATIC_DIR, 'console.css'));
  const app: FastifyInstance = Fastify({
    // HTTPS only. The SNI callback follows certificate reloads; the default context is refreshed below.
    https: deps.tls.serverOptions() as https.ServerOptions,
    logger: false,
    bodyLimit: 256 * 1024,
    trustProxy: false,
    return503OnClosing: true,
  });
  await app.register(fastifyCookie);
  await app.register(fastifyFormbody);
  const sessions = new SessionStore(deps.config.session_idle);
  const offReload = deps.tls.onReload(() => (app.server as https.Server).setSecureContext(deps.tls.serverOptions()));
  // A plain-HTTP request to this port fails the TLS handshake and is dropped by Node; log it once per client.
  app.server.on('tlsClientError', (err: Error, socket) => {
    log.debug({ event: 'console_tls_error', client: clientAddress(socket.remoteAddress), err: err.message }, 'TLS handshake failed');
  });

  const ctx: ConsoleContext = {
    ...deps, sessions, log, failedLogins: 0, quarantineEnabled: !!deps.quarantine, reportsEnabled: !!deps.reports, junkEnabled: !!deps.junk,
    render(req, reply, opts, body, status = 200) {
      return reply.code(status).type('text/html; charset=utf-8').send(page({ quarantine: ctx.quarantineEnabled, reports: ctx.reportsEnabled, junk: ctx.junkEnabled, ...opts, session: req.consoleSession }, body));
    },
    user(req, reply) {
      const s = req.consoleSession;
      if (s.user) return s.user;
      void reply.redirect('/login', 303);
      return undefined;
    },
    admin(req, reply) {
      const s = req.consoleSession;
      if (!s.user) {
        void reply.redirect('/login', 303);
        return false;
      }
      if (s.admin) return true;
      ctx.render(req, reply, { title: 'Not allowed' }, html`<p>This page is for administrators.</p>`, 403);
      return false;
    },
  };

  app.decorateRequest('consoleSession', null as unknown as ConsoleSession);
  // Every request has a session (anonymous before login), so every form can carry a CSRF token.
  app.addHook('onRequest', async (req, reply) => {
    // The stylesheet and the icon need no session; giving them one would race a login in
    // another tab (a late request with the old cookie would set a fresh anonymous one).
    if (req.url.startsWith('/static/') || req.url === '/favicon.ico') return;
    const existing = sessions.get(req.cookies[SESSION_COOKIE]);
    req.consoleSession = existing ?? sessions.create();
    if (!existing) setSessionCookie(reply, req.consoleSession);
  });
  // CSRF: every state-changing request carries the session's token (forms: hidden field _csrf).
  app.addHook('preHandler', async (req, reply) => {
    if (req.method === 'GET' || req.method === 'HEAD') return;
    // RFC 8058 one-click unsubscribe (list-pages.ts): its signed token is the proof, a mail client has no session.
    if ((req.routeOptions.config as { csrfExempt?: boolean }).csrfExempt) return;
    const body = req.body as Record<string, unknown> | undefined;
    if (!csrfMatches(req.consoleSession, body?._csrf)) {
      log.warn({ event: 'console_csrf_refused', client: clientAddress(req.ip), url: req.url, user: req.consoleSession.user }, 'request without a valid CSRF token refused');
      return ctx.render(req, reply, { title: 'Refused' }, html`<p>This form has expired or did not come from this console. Go back, reload the page and try again.</p>`, 403);
    }
  });
  app.addHook('onSend', async (req, reply, payload) => {
    // Routes that serve foreign content (the quarantine's sandboxed body) set their own stricter policy.
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', PAGE_CSP);
    if (!reply.hasHeader('x-frame-options')) reply.header('x-frame-options', 'DENY');
    reply.header('strict-transport-security', 'max-age=31536000');
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cross-origin-opener-policy', 'same-origin');
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });
  app.setNotFoundHandler((req, reply) => ctx.render(req, reply, { title: 'Not found' }, html`<p>There is no such page.</p>`, 404));
  app.setErrorHandler((err, req, reply) => {
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) log.error({ event: 'console_error', url: req.url, err: (err as Error).message }, 'console page failed');
    return ctx.render(req, reply, { title: status >= 500 ? 'Error' : 'Bad request' },
      html`<p>${status >= 500 ? 'The page could not be made; the log says why.' : 'The request was not understood.'}</p>`, status);
  });

  app.get('/static/console.css', (_req, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'max-age=3600').send(css));
  app.get('/favicon.ico', (_req, reply) => reply.code(204).header('cache-control', 'max-age=86400').send());
  app.get('/', (req, reply) => reply.redirect(!req.consoleSession.user ? '/login' : req.consoleSession.admin ? '/admin' : '/settings', 303));
  app.get('/login', (req, reply) => loginPage(ctx, req, reply));
  app.post('/login', async (req, reply) => {
    const body = req.body as Record<string, unknown>;
    const user = typeof body.user === 'string' ? body.user.trim() : '';
    const pass = typeof body.password === 'string' ? body.password : '';
    const ip = clientAddress(req.socket.remoteAddress);
    const result = await checkLogin(deps, ip, user, pass);
    if (!result.ok && result.reason === 'unavailable') {
      log.warn({ event: 'console_login', user: result.account, client: ip, result: 'unavailable', err: result.error }, 'accounts unavailable: console login refused for now');
      return loginPage(ctx, req, reply, 'Logins are temporarily unavailable; try again in a moment.', 503);
    }
    if (!result.ok) {
      ctx.failedLogins++;
      log.info({ event: 'console_login', user: result.account, client: ip, result: result.blocked ? 'blocked' : 'failed', scope: result.blocked }, 'console login failed');
      return loginPage(ctx, req, reply, 'The address or the password is wrong.', 401);
    }
    const account = result.account;
    const address = account;
    const admin = deps.config.admins.includes(address);
    const fresh = sessions.login(req.consoleSession, address, admin);
    req.consoleSession = fresh;
    setSessionCookie(reply, fresh);
    log.info({ event: 'console_login', user: address, client: ip, admin, result: 'ok' }, 'console login');
    return reply.redirect(admin ? '/admin' : '/settings', 303);
  });
  app.post('/logout', (req, reply) => {
    sessions.destroy(req.consoleSession.id);
    const anon = sessions.create();
    req.consoleSession = anon;
    setSessionCookie(reply, anon);
    return reply.redirect('/login', 303);
  });
  registerUserPages(app, ctx);
  registerAdminPages(app, ctx);
  registerQueuePages(app, ctx);
  if (deps.quarantine) registerQuarantinePages(app, ctx, deps.quarantine);
  if (deps.lists) registerListPages(app, ctx, deps.lists);
  if (deps.reports) registerReportPages(app, ctx, deps.reports);
  if (deps.junk) registerJunkPages(app, ctx, deps.junk);

  // Traces older than the retention go, now and every hour.
  const prune = () => {
    try {
      const n = deps.trace.prune(deps.config.trace_retention);
      if (n) log.info({ event: 'trace_pruned', rows: n }, 'old message traces dropped');
    } catch (err) {
      log.error({ event: 'trace_prune_failed', err: (err as Error).message }, 'cannot prune the message trace');
    }
  };
  prune();
  const pruneTimer = setInterval(prune, 3_600_000).unref();
  app.addHook('onClose', async () => clearInterval(pruneTimer));
  try {
    await app.listen({ host: deps.config.address, port: deps.config.port });
  } catch (err) {
    offReload();
    await app.close();
    throw new Error(`console: cannot listen on ${deps.config.address}:${deps.config.port} (console.address, console.port): ${(err as Error).message}`, { cause: err });
  }
  const a = app.server.address() as AddressInfo;
  log.info({ event: 'console_ready', address: a.address, port: a.port, admins: deps.config.admins.length }, `console on https://${a.address}:${a.port}/`);
  if (!deps.config.admins.length) log.warn({ event: 'console_no_admins' }, 'console.admins is empty: nobody sees the administrator pages');
  return {
    address: { address: a.address, port: a.port },
    async close() {
      offReload();
      await app.close();
    },
  };
}

function setSessionCookie(reply: FastifyReply, s: ConsoleSession): void {
  reply.setCookie(SESSION_COOKIE, s.id, { path: '/', secure: true, httpOnly: true, sameSite: 'strict' });
}

function loginPage(ctx: ConsoleContext, req: FastifyRequest, reply: FastifyReply, error?: string, status = 200): FastifyReply {
  const s = req.consoleSession;
  return ctx.render(req, reply, { title: 'Log in', notice: error ? { kind: 'error', text: error } : undefined }, html`
<form method="post" action="/login" class="login">
  ${csrfField(s)}
  <label>Address <input type="text" name="user" autocomplete="username" required></label>
  <label>Password <input type="password" name="password" autocomplete="current-password" required></label>
  <button type="submit">Log in</button>
</form>`, status);
}
