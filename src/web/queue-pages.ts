// The administrator's queue page: the queue as `portcullis queue list` shows it, with flush,
// delete, hold and release (the hold queue of src/queue/hold.ts, through the same control
// commands as `portcullis queue hold|release`), and the senders locked by the outbound limits
// with unlock (`portcullis user locks|unlock`). Every change is a CSRF-checked POST (server.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { html } from './html.js';
import { csrfField } from './layout.js';
import type { ConsoleContext, OutboundLock } from './context.js';

/** How many queued messages the page lists (the count above the table is of all of them). */
const SHOWN = 1000;

const str = (v: unknown) => (typeof v === 'string' ? v.trim() : '');
/** A lock's subject is `user:ADDRESS` or `ip:ADDRESS`; `user unlock` takes the address alone. */
const unlockName = (subject: string) => subject.replace(/^(user|ip):/, '');

export function registerQueuePages(app: FastifyInstance, ctx: ConsoleContext): void {
  type Notice = { kind: 'ok' | 'error'; text: string };
  const queuePage = async (req: FastifyRequest, reply: FastifyReply, notice?: Notice, status = 200) => {
    const s = req.consoleSession;
    const list = ctx.queue.list();
    const held = list.filter((m) => m.state === 'held').length;
    let locks: OutboundLock[] = [];
    let locksError: string | undefined;
    try {
      locks = await ctx.queue.locks();
    } catch (err) {
      locksError = (err as Error).message;
    }
    const action = (path: string, id: string, label: string, cls = '') =>
      html`<form method="post" action="${path}" class="inline">${csrfField(s)}<input type="hidden" name="id" value="${id}"><button type="submit"${cls ? html` class="${cls}"` : ''}>${label}</button></form>`;
    return ctx.render(req, reply, { title: 'Queue', notice }, html`
<form method="post" action="/admin/queue/flush">${csrfField(s)}<button type="submit">Flush: retry every deferred message now</button></form>
<p>${list.length} message(s) in the queue, ${held} held.${list.length > SHOWN ? ` The first ${SHOWN} are shown.` : ''}</p>
${list.length ? html`<table class="queue" id="queue"><thead><tr><th>Queue id</th><th>State</th><th>Arrived</th><th>Sender</th><th>Recipients</th><th>Attempts</th><th></th></tr></thead><tbody>
${list.slice(0, SHOWN).map((m) => html`<tr><td>${m.id}</td>
<td>${m.state}${m.held ? html`<br><span class="muted">${m.held.reason}, since ${m.held.since.replace('T', ' ').slice(0, 19)}</span>` : ''}</td>
<td>${m.arrived}</td><td>${m.sender || '<>'}</td>
<td>${m.recipients.map((r) => html`${r.address} (${r.status}${r.last_reply ? `: ${r.last_reply}` : ''})<br>`)}</td><td>${m.attempts}</td>
<td>${m.state === 'held' ? action('/admin/queue/release', m.id, 'Release') : action('/admin/queue/hold', m.id, 'Hold')}
${action('/admin/queue/delete', m.id, 'Delete', 'danger')}</td></tr>`)}
</tbody></table>` : ''}
<h2>Locked senders</h2>
<p class="muted">Senders the outbound limits locked: their new submissions are refused until unlocked. Unlocking does not release their held mail.</p>
${locksError ? html`<p class="notice error">The locks cannot be read: ${locksError}</p>`
    : locks.length ? html`<table class="queue" id="locks"><thead><tr><th>User or address</th><th>Since</th><th>Why</th><th></th></tr></thead><tbody>
${locks.map((l) => html`<tr><td>${l.subject}</td><td>${l.since.replace('T', ' ').slice(0, 19)}</td><td>${l.code}: ${l.reason}</td>
<td><form method="post" action="/admin/queue/unlock" class="inline">${csrfField(s)}<input type="hidden" name="subject" value="${unlockName(l.subject)}"><button type="submit">Unlock</button></form></td></tr>`)}
</tbody></table>` : html`<p>No sender is locked.</p>`}`, status);
  };
  /** Runs a queue change; an Error (an unknown id, a refused subject) is shown on the page with 400. */
  const change = async (req: FastifyRequest, reply: FastifyReply, event: string, fn: (body: Record<string, unknown>) => Promise<Notice>) => {
    if (!ctx.admin(req, reply)) return;
    const body = req.body as Record<string, unknown>;
    let notice: Notice;
    try {
      notice = await fn(body);
    } catch (err) {
      ctx.log.info({ event, user: req.consoleSession.user, id: str(body.id) || str(body.subject), result: 'refused', err: (err as Error).message }, 'queue change refused');
      return queuePage(req, reply, { kind: 'error', text: (err as Error).message }, 400);
    }
    ctx.log.info({ event, user: req.consoleSession.user, id: str(body.id) || str(body.subject), result: notice.kind }, `queue change from the console: ${notice.text}`);
    return queuePage(req, reply, notice);
  };

  app.get('/admin/queue', (req, reply) => {
    if (ctx.admin(req, reply)) return queuePage(req, reply);
  });
  app.post('/admin/queue/flush', (req, reply) => change(req, reply, 'console_queue_flush', async () => {
    const n = ctx.queue.flush();
    return { kind: 'ok', text: `${n} message(s) scheduled for delivery now.` };
  }));
  app.post('/admin/queue/delete', (req, reply) => change(req, reply, 'console_queue_delete', async (b) => {
    const id = str(b.id);
    const result = await ctx.queue.delete(id);
    return result === 'deleted' ? { kind: 'ok', text: `Deleted ${id}.` }
      : { kind: 'error', text: result === 'busy' ? `${id} is being delivered right now; try again in a moment.` : `No message ${id} in the queue.` };
  }));
  app.post('/admin/queue/hold', (req, reply) => change(req, reply, 'console_queue_hold', async (b) => {
    const ids = await ctx.queue.hold(str(b.id));
    return ids.length ? { kind: 'ok', text: `Held ${ids.join(', ')}: it is not delivered until released.` } : { kind: 'error', text: `${str(b.id)} was held already (or is being delivered).` };
  }));
  app.post('/admin/queue/release', (req, reply) => change(req, reply, 'console_queue_release', async (b) => {
    const ids = await ctx.queue.release(str(b.id));
    return ids.length ? { kind: 'ok', text: `Released ${ids.join(', ')}: it is delivered now.` } : { kind: 'error', text: `${str(b.id)} was not held.` };
  }));
  app.post('/admin/queue/unlock', (req, reply) => change(req, reply, 'console_user_unlock', async (b) => {
    const subject = str(b.subject);
    const unlocked = await ctx.queue.unlock(subject);
    return unlocked ? { kind: 'ok', text: `${subject} unlocked: new submissions are accepted again (held mail stays held until released).` }
      : { kind: 'ok', text: `${subject} was not locked (its counts were reset).` };
  }));
}
