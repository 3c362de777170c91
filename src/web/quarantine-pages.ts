// The quarantine in the console (docs/console.md, docs/quarantine.md): the administrator's list,
// search and message view with release / delete / release and learn as ham / learn as spam; each
// user's own quarantine (release, allow the sender); and the digest links, GET /q/link (a
// confirmation page) and POST /q/link (does it), usable without logging in.
//
// A held message is hostile by assumption. Its view shows the header fields and the text as
// escaped text (HTML reduced to text by the same renderer the checks use); the HTML itself is
// only ever served from its own route, under `Content-Security-Policy: default-src 'none';
// sandbox`, into an <iframe sandbox> — no script runs and nothing remote loads.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import PostalMime from 'postal-mime';
import { renderHtml } from '../mime/html-text.js';
import { followLink } from '../pipeline/quarantine-link.js';
import { LinkError } from '../quarantine/links.js';
import { QuarantineError, type QuarantineItem } from '../quarantine/types.js';
import { applyAssignments, SettingsError } from '../pipeline/user-settings.js';
import { html, type SafeHtml } from './html.js';
import { csrfField } from './layout.js';
import type { ConsoleContext, ConsoleQuarantine } from './context.js';
import { settingsOf } from './user-pages.js';

/** The most of an original read for its view (the rest is not shown). */
const VIEW_BYTES = 4 * 1024 * 1024;
/** The most text shown. */
const VIEW_CHARS = 200_000;

const str = (v: unknown) => (typeof v === 'string' ? v.trim() : '');

async function readOriginal(q: ConsoleQuarantine, id: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of q.store.original(id)) {
    const b = c as Buffer;
    chunks.push(b);
    n += b.length;
    if (n >= VIEW_BYTES) break;
  }
  return Buffer.concat(chunks).subarray(0, VIEW_BYTES);
}

interface Rendered {
  readonly text: string;
  readonly html?: string;
  readonly attachments: { filename: string; mimeType: string; size: number }[];
}

async function render(q: ConsoleQuarantine, id: string): Promise<Rendered> {
  const raw = await readOriginal(q, id);
  try {
    const parsed = await PostalMime.parse(raw, { attachmentEncoding: 'arraybuffer' });
    const text = parsed.text ?? (parsed.html ? renderHtml(parsed.html, VIEW_CHARS).text : '');
    return {
      text: text.slice(0, VIEW_CHARS), html: parsed.html?.slice(0, VIEW_BYTES),
      attachments: parsed.attachments.map((a) => ({ filename: a.filename ?? '(no name)', mimeType: a.mimeType, size: (a.content as ArrayBuffer).byteLength ?? 0 })),
    };
  } catch {
    // Unparseable: the raw bytes as text are still safe to show escaped.
    return { text: raw.toString('latin1').slice(0, VIEW_CHARS), attachments: [] };
  }
}

const when = (iso: string) => iso.replace('T', ' ').slice(0, 19);

function listTable(items: readonly QuarantineItem[], base: string): SafeHtml {
  if (!items.length) return html`<p class="muted">Nothing held.</p>`;
  return html`<table class="quarantine"><thead><tr><th>Held (UTC)</th><th>From</th><th>Subject</th><th>To</th><th>Why</th><th>State</th></tr></thead><tbody>
${items.map((i) => html`<tr><td>${when(i.time)}</td><td>${i.sender || '<>'}</td><td><a href="${base}/${encodeURIComponent(i.id)}">${i.subject || '(no subject)'}</a></td>
<td>${i.recipients.map((r) => r.address).join(', ')}</td><td>${i.reason}</td><td>${i.state}</td></tr>`)}</tbody></table>`;
}

export function registerQuarantinePages(app: FastifyInstance, ctx: ConsoleContext, q: ConsoleQuarantine): void {
  const nav = { quarantine: true };
  const notFound = (req: FastifyRequest, reply: FastifyReply) => ctx.render(req, reply, { title: 'Not found', ...nav }, html`<p>There is no such message in your quarantine.</p>`, 404);
  const idOf = (req: FastifyRequest) => String((req.params as { id: string }).id);

  /** The message view, for the administrator (recipient undefined) or for one user. */
  const messagePage = async (req: FastifyRequest, reply: FastifyReply, item: QuarantineItem, base: string, admin: boolean, notice?: { kind: 'ok' | 'error'; text: string }) => {
    const s = req.consoleSession;
    const [headers, body] = await Promise.all([q.store.headers(item.id).catch(() => []), render(q, item.id).catch(() => ({ text: '(the original cannot be read)', attachments: [] }) as Rendered)]);
    const held = item.recipients.some((r) => r.state === 'held');
    const action = (path: string, label: string, danger = false) => html`<form method="post" action="${base}/${encodeURIComponent(item.id)}/${path}" class="inline">${csrfField(s)}<button type="submit"${danger ? html` class="danger"` : ''}>${label}</button></form> `;
    return ctx.render(req, reply, { title: item.subject || '(no subject)', notice, ...nav }, html`
<p class="actions">
${held ? action('release', 'Release') : ''}
${admin && held ? action('release-ham', 'Release and learn as ham') : ''}
${admin ? action('learn-spam', 'Learn as spam') : ''}
${!admin && item.sender ? action('allow', 'Always accept this sender') : ''}
${admin ? action('delete', 'Delete', true) : ''}
</p>
<table class="fields">
<tr><th>Held (UTC)</th><td>${when(item.time)}</td></tr>
<tr><th>Why</th><td>${item.reason}${item.detail ? html` — ${item.detail}` : ''}</td></tr>
<tr><th>Sender</th><td>${item.sender || '<>'}</td></tr>
<tr><th>Recipients</th><td>${item.recipients.map((r) => html`${r.address} (${r.state}${r.by ? ` by ${r.by}` : ''})<br>`)}</td></tr>
${item.score !== undefined ? html`<tr><th>Score</th><td>${item.score.toFixed(2)}</td></tr>` : ''}
<tr><th>Size</th><td>${item.size} bytes</td></tr>
${item.node ? html`<tr><th>Held on</th><td>node ${item.node} (it reads and releases the original)</td></tr>` : ''}
</table>
${item.symbols.length ? html`<h2>Symbols</h2><table class="symbols"><thead><tr><th>Symbol</th><th>Score</th><th>Reason</th></tr></thead><tbody>
${item.symbols.map((x) => html`<tr><td>${x.name}</td><td>${x.score ?? ''}</td><td>${x.reason}</td></tr>`)}</tbody></table>` : ''}
${body.attachments.length ? html`<h2>Attachments</h2><ul class="attachments">${body.attachments.map((a) => html`<li>${a.filename} <span class="muted">(${a.mimeType}, ${a.size} bytes)</span></li>`)}</ul>` : ''}
<h2>Text</h2>
<pre class="body">${body.text}</pre>
${body.html ? html`<h2>As HTML (sandboxed: no script, nothing remote)</h2>
<iframe class="body" sandbox="" referrerpolicy="no-referrer" src="${base}/${encodeURIComponent(item.id)}/html" title="message body"></iframe>` : ''}
<h2>Header</h2>
<table class="headers">${headers.map((h) => html`<tr><th>${h.name}</th><td>${h.value}</td></tr>`)}</table>`);
  };

  /** The HTML part alone, for the iframe: nothing may load or run. */
  const htmlPart = async (reply: FastifyReply, item: QuarantineItem) => {
    const body = await render(q, item.id);
    return reply.type('text/html; charset=utf-8')
      .header('content-security-policy', "default-src 'none'; frame-ancestors 'self'; sandbox")
      .header('x-frame-options', 'SAMEORIGIN')
      .send(body.html ?? '');
  };

  // ---- administrator ----------------------------------------------------------------------
  const adminBase = '/admin/quarantine';
  app.get(adminBase, (req, reply) => {
    if (!ctx.admin(req, reply)) return;
    const query = req.query as Record<string, unknown>;
    const search = str(query.q).slice(0, 200);
    const before = str(query.before) || undefined;
    let page;
    try {
      page = q.store.list({ search: search || undefined, before, limit: 100 });
    } catch (err) {
      if (!(err instanceof QuarantineError)) throw err;
      return ctx.render(req, reply, { title: 'Quarantine', ...nav, notice: { kind: 'error', text: err.message } }, html``, 400);
    }
    // The running totals, not stats(): its count per reason scans the whole index (≈200 ms at 100,000 entries).
    const stats = q.store.totals();
    return ctx.render(req, reply, { title: 'Quarantine', ...nav }, html`
<form method="get" action="${adminBase}" role="search"><input type="search" name="q" value="${search}" size="40" placeholder="subject, sender, recipient or Message-ID"> <button type="submit">Search</button></form>
<p class="muted">${stats.count} message(s) kept, ${Math.round(stats.bytes / 1024)} KiB.</p>
${listTable(page.items, adminBase)}
${page.next ? html`<p><a href="${adminBase}?${new URLSearchParams({ ...(search ? { q: search } : {}), before: page.next }).toString()}">Older…</a></p>` : ''}`);
  });
  const adminItem = (req: FastifyRequest, reply: FastifyReply): QuarantineItem | undefined => {
    if (!ctx.admin(req, reply)) return undefined;
    const item = q.store.get(idOf(req));
    if (!item) void notFound(req, reply);
    return item;
  };
  app.get(`${adminBase}/:id`, async (req, reply) => {
    const item = adminItem(req, reply);
    if (item) return messagePage(req, reply, item, adminBase, true);
  });
  app.get(`${adminBase}/:id/html`, async (req, reply) => {
    const item = adminItem(req, reply);
    if (item) return htmlPart(reply, item);
  });
  const adminAction = (path: string, act: (item: QuarantineItem, by: string) => Promise<string>) =>
    app.post(`${adminBase}/:id/${path}`, async (req, reply) => {
      const item = adminItem(req, reply);
      if (!item) return;
      const by = req.consoleSession.user!;
      try {
        const text = await act(item, by);
        ctx.log.info({ event: 'console_quarantine', user: by, id: item.id, action: path }, `quarantine ${path} from the console`);
        return messagePage(req, reply, q.store.get(item.id) ?? item, adminBase, true, { kind: 'ok', text });
      } catch (err) {
        if (!(err instanceof QuarantineError)) throw err;
        return messagePage(req, reply, item, adminBase, true, { kind: 'error', text: err.message });
      }
    });
  const released = (r: Awaited<ReturnType<typeof q.store.release>>) => r.recipients.map((x) => `${x.address}: ${x.status}`).join(', ');
  const learn = async (item: QuarantineItem, cls: 'ham' | 'spam', by: string) => {
    if (!q.learn) return ' (Bayes is off: nothing learned)';
    await q.learn(await readOriginal(q, item.id), cls, by);
    return ` Learned as ${cls}.`;
  };
  adminAction('release', async (item, by) => `Released: ${released(await q.store.release(item.id, { by }))}.`);
  adminAction('release-ham', async (item, by) => `Released: ${released(await q.store.release(item.id, { by }))}.${await learn(item, 'ham', by)}`);
  adminAction('learn-spam', async (item, by) => (await learn(item, 'spam', by)).trim());
  adminAction('delete', async (item, by) => {
    const r = await q.store.delete(item.id, { by });
    return `Deleted for ${r.recipients.join(', ') || 'nobody (already gone)'}.`;
  });

  // ---- each user's own --------------------------------------------------------------------
  const userBase = '/quarantine';
  app.get(userBase, (req, reply) => {
    const user = ctx.user(req, reply);
    if (!user) return;
    const before = str((req.query as Record<string, unknown>).before) || undefined;
    let page;
    try {
      page = q.store.list({ recipient: user, before, limit: 100 });
    } catch (err) {
      if (!(err instanceof QuarantineError)) throw err;
      page = { items: [] };
    }
    return ctx.render(req, reply, { title: 'My quarantine', ...nav }, html`
<p class="muted">Mail to you that was held, and why. Release what you want; the rest goes after ${''}the retention period.</p>
${listTable(page.items, userBase)}
${page.next ? html`<p><a href="${userBase}?before=${page.next}">Older…</a></p>` : ''}`);
  });
  /** Only the user's own: another id answers 404, exactly like one that does not exist. */
  const userItem = (req: FastifyRequest, reply: FastifyReply): { user: string; item: QuarantineItem } | undefined => {
    const user = ctx.user(req, reply);
    if (!user) return undefined;
    const item = q.store.get(idOf(req), user);
    if (!item) {
      void notFound(req, reply);
      return undefined;
    }
    return { user, item };
  };
  app.get(`${userBase}/:id`, async (req, reply) => {
    const own = userItem(req, reply);
    if (own) return messagePage(req, reply, own.item, userBase, false);
  });
  app.get(`${userBase}/:id/html`, async (req, reply) => {
    const own = userItem(req, reply);
    if (own) return htmlPart(reply, own.item);
  });
  app.post(`${userBase}/:id/release`, async (req, reply) => {
    const own = userItem(req, reply);
    if (!own) return;
    try {
      const r = await q.store.release(own.item.id, { by: own.user, recipient: own.user });
      ctx.log.info({ event: 'console_quarantine', user: own.user, id: own.item.id, action: 'release' }, 'quarantine release by its recipient');
      return messagePage(req, reply, q.store.get(own.item.id, own.user) ?? own.item, userBase, false, { kind: 'ok', text: `Released: ${released(r)}.` });
    } catch (err) {
      if (!(err instanceof QuarantineError)) throw err;
      return messagePage(req, reply, own.item, userBase, false, { kind: 'error', text: err.message });
    }
  });
  app.post(`${userBase}/:id/allow`, async (req, reply) => {
    const own = userItem(req, reply);
    if (!own) return;
    const current = settingsOf(ctx, own.user);
    try {
      if (!current.allow.includes(own.item.sender.toLowerCase())) {
        await ctx.accounts.putSettingsJson(own.user, JSON.stringify(applyAssignments(current, [`allow+=${own.item.sender}`])));
      }
    } catch (err) {
      if (!(err instanceof SettingsError)) throw err;
      return messagePage(req, reply, own.item, userBase, false, { kind: 'error', text: err.message });
    }
    return messagePage(req, reply, own.item, userBase, false, { kind: 'ok', text: `${own.item.sender} is now on your allow list (it counts when the sender is authenticated).` });
  });

  // ---- digest links (no login) ------------------------------------------------------------
  const linkRefused = (req: FastifyRequest, reply: FastifyReply, err: unknown) => {
    if (err instanceof LinkError) {
      const text = err.code === 'REUSED' ? 'This link was already used.' : err.code === 'EXPIRED' ? 'This link has expired.' : 'This link is not valid.';
      return ctx.render(req, reply, { title: 'Link refused' }, html`<p>${text} Log in to see your quarantine.</p>`, err.code === 'ALTERED' ? 400 : 410);
    }
    if (err instanceof QuarantineError) return ctx.render(req, reply, { title: 'Not possible' }, html`<p>${err.message}</p>`, 404);
    throw err;
  };
  app.get('/q/link', async (req, reply) => {
    const token = str((req.query as Record<string, unknown>).token);
    try {
      const claim = await q.links.verifyLink(token);
      const item = q.store.get(claim.id, claim.recipient);
      if (!item) throw new QuarantineError('NOT_FOUND', 'that message is no longer in the quarantine');
      const what = claim.action === 'release' ? html`Release the message <strong>${item.subject || '(no subject)'}</strong> from ${item.sender || '<>'} to ${claim.recipient}?`
        : html`Always accept mail from <strong>${item.sender}</strong> for ${claim.recipient}?`;
      return ctx.render(req, reply, { title: 'Confirm' }, html`<p>${what}</p>
<form method="post" action="/q/link">${csrfField(req.consoleSession)}<input type="hidden" name="token" value="${token}"><button type="submit">${claim.action === 'release' ? 'Release' : 'Allow the sender'}</button></form>`);
    } catch (err) {
      return linkRefused(req, reply, err);
    }
  });
  app.post('/q/link', async (req, reply) => {
    const token = str((req.body as Record<string, unknown>).token);
    try {
      const outcome = await followLink(token, { links: q.links, quarantine: q.store, accounts: ctx.accounts });
      ctx.log.info({ event: 'console_link', user: outcome.claim.recipient, id: outcome.claim.id, action: outcome.action }, 'digest link followed');
      const text = outcome.action === 'release' ? `Released: ${released(outcome.result)}.` : `${outcome.sender} is now on the allow list of ${outcome.claim.recipient}.`;
      return ctx.render(req, reply, { title: 'Done', notice: { kind: 'ok', text } }, html``);
    } catch (err) {
      return linkRefused(req, reply, err);
    }
  });
}
