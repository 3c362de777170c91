// The mailing lists' web links (docs/lists.md), usable without logging in: GET /list/confirm
// shows what a confirmation token would do and POST /list/confirm does it (the pattern of
// /q/link: a link opened by a mail scanner changes nothing); POST /list/unsubscribe is RFC
// 8058's one-click unsubscribe, which a mail client sends without a session or CSRF token
// (the signed token in the URL is the proof), and GET /list/unsubscribe offers the same as a button.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TokenError } from '../lists/tokens.js';
import { ListError } from '../lists/store.js';
import type { ListService } from '../lists/service.js';
import { html } from './html.js';
import { csrfField } from './layout.js';
import type { ConsoleContext } from './context.js';

declare module './context.js' {
  interface ConsoleDeps {
    /** The list engine (absent: the list pages answer 404). */
    readonly lists?: ListService;
  }
}

const str = (v: unknown) => (typeof v === 'string' ? v.trim() : '');

export function registerListPages(app: FastifyInstance, ctx: ConsoleContext, lists: ListService): void {
  const refused = (req: FastifyRequest, reply: FastifyReply, err: unknown) => {
    if (err instanceof TokenError) {
      const text = err.code === 'REUSED' ? 'This link was already used.' : err.code === 'EXPIRED' ? 'This link has expired: ask again for a new one.' : 'This link is not valid.';
      return ctx.render(req, reply, { title: 'Link refused' }, html`<p>${text}</p>`, err.code === 'ALTERED' ? 400 : 410);
    }
    if (err instanceof ListError) return ctx.render(req, reply, { title: 'Not possible' }, html`<p>That list does not exist (any longer).</p>`, 404);
    throw err;
  };
  const tokenOf = (req: FastifyRequest) => str((req.query as Record<string, unknown>).token) || str((req.body as Record<string, unknown> | undefined)?.token);

  app.get('/list/confirm', async (req, reply) => {
    const token = tokenOf(req);
    try {
      const claim = await lists.describe(token);
      if (claim.action === 'leave') throw new TokenError('ALTERED', 'not a confirmation link');
      const what = claim.action === 'subscribe' ? html`Subscribe <strong>${claim.address}</strong> to the list <strong>${claim.list}</strong>?`
        : html`Unsubscribe <strong>${claim.address}</strong> from the list <strong>${claim.list}</strong>?`;
      return ctx.render(req, reply, { title: 'Confirm' }, html`<p>${what}</p>
<form method="post" action="/list/confirm">${csrfField(req.consoleSession)}<input type="hidden" name="token" value="${token}"><button type="submit">${claim.action === 'subscribe' ? 'Subscribe' : 'Unsubscribe'}</button></form>`);
    } catch (err) {
      return refused(req, reply, err);
    }
  });
  app.post('/list/confirm', async (req, reply) => {
    try {
      const done = await lists.confirm(tokenOf(req));
      ctx.log.info({ event: 'console_list_confirm', list: done.list, member: done.address, action: done.action }, 'list confirmation by link');
      const text = done.action === 'subscribe' ? `${done.address} is now subscribed to ${done.list}.` : `${done.address} is not subscribed to ${done.list} (any longer).`;
      return ctx.render(req, reply, { title: 'Done', notice: { kind: 'ok', text } }, html``);
    } catch (err) {
      return refused(req, reply, err);
    }
  });
  app.get('/list/unsubscribe', async (req, reply) => {
    const token = tokenOf(req);
    try {
      const claim = await lists.describe(token);
      if (claim.action === 'subscribe') throw new TokenError('ALTERED', 'not an unsubscribe link');
      return ctx.render(req, reply, { title: 'Unsubscribe' }, html`<p>Unsubscribe <strong>${claim.address}</strong> from <strong>${claim.list}</strong>?</p>
<form method="post" action="/list/unsubscribe?token=${token}">${csrfField(req.consoleSession)}<button type="submit">Unsubscribe</button></form>`);
    } catch (err) {
      return refused(req, reply, err);
    }
  });
  // RFC 8058 s3.2: a POST with "List-Unsubscribe=One-Click", no cookies, no redirects expected.
  app.post('/list/unsubscribe', { config: { csrfExempt: true } }, async (req, reply) => {
    try {
      const done = await lists.leave(tokenOf(req));
      ctx.log.info({ event: 'console_list_unsubscribe', list: done.list, member: done.address }, 'one-click unsubscribe');
      return ctx.render(req, reply, { title: 'Unsubscribed', notice: { kind: 'ok', text: `${done.address} is not subscribed to ${done.list} (any longer).` } }, html``);
    } catch (err) {
      return refused(req, reply, err);
    }
  });
}
