// The administrator's pages: the dashboard (from the message trace and the metrics), the
// message trace and the users and aliases (the account store, as `portcullis user|alias` use
// it). The queue is in queue-pages.ts. Every page checks the role first.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Counter } from 'prom-client';
import { AccountError } from '../auth/accounts.js';
import { parseTraceQuery, type TraceRow } from '../trace/trace-store.js';
import { barList, hourlyChart } from './charts.js';
import { html, type SafeHtml } from './html.js';
import { csrfField } from './layout.js';
import type { ConsoleContext } from './context.js';

const DAY = 86_400_000;

async function counterTotal(c: Counter<string>): Promise<number> {
  return (await c.get()).values.reduce((n, v) => n + v.value, 0);
}

const str = (v: unknown) => (typeof v === 'string' ? v.trim() : '');
const when = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

function card(label: string, value: string | number): SafeHtml {
  return html`<div class="card"><div class="value">${value}</div><div class="label">${label}</div></div>`;
}

export function traceTable(rows: readonly TraceRow[]): SafeHtml {
  if (!rows.length) return html`<p class="muted">No message matches.</p>`;
  return html`<table class="trace">
<thead><tr><th>Time (UTC)</th><th>Queue id</th><th>Sender</th><th>Recipients</th><th>Action</th><th>Score</th></tr></thead>
<tbody>${rows.map((r) => html`<tr>
<td>${when(r.time)}</td><td><a href="/admin/trace/${r.id}">${r.queueId}</a></td><td>${r.sender || '<>'}</td>
<td>${r.recipients.join(', ')}</td><td>${r.action}</td><td>${r.score.toFixed(2)}</td></tr>`)}</tbody>
</table>`;
}

export function registerAdminPages(app: FastifyInstance, ctx: ConsoleContext): void {
  const q = ctx.quarantineEnabled;

  app.get('/admin', async (req, reply) => {
    if (!ctx.admin(req, reply)) return;
    const since = Date.now() - DAY;
    const top = ctx.trace.topSymbols(since, 300);
    const dnsHits = top.filter((s) => /^DNS[BW]L_/.test(s.name) && s.name !== 'DNSBL_TEMPFAIL').slice(0, 10);
    const viruses = top.find((s) => s.name === 'AV_VIRUS')?.count ?? 0;
    const m = ctx.metrics;
    const [smtpFailures, blocks, spraying] = await Promise.all([counterTotal(m.authFailures), counterTotal(m.authBlocks), counterTotal(m.authSpraying)]);
    const queued = ctx.queue.list();
    const held = queued.filter((x) => x.state === 'held').length;
    return ctx.render(req, reply, { title: 'Dashboard', quarantine: q }, html`
<div class="cards">
  ${card('messages, last 24 h', ctx.trace.hourly(24).reduce((n, h) => n + Object.values(h.counts).reduce((a, b) => a + b, 0), 0))}
  ${card('viruses refused, 24 h', viruses)}
  ${card('queue size', queued.length)}
  ${card('outbound holds', held)}
  ${card('failed logins (SMTP, since start)', smtpFailures)}
  ${card('failed console logins', ctx.failedLogins)}
  ${card('brute-force blocks', blocks)}
  ${card('spraying alerts', spraying)}
</div>
<h2>Messages per hour by action (last 24 hours, UTC)</h2>
<div class="chart" id="hourly">${hourlyChart(ctx.trace.hourly(24))}</div>
<h2>Top symbols (24 hours)</h2>
<div class="chart" id="symbols">${barList(top.slice(0, 12), 'No symbols in the last 24 hours.')}</div>
<h2>DNS-list hits (24 hours)</h2>
<div class="chart" id="dnsbl">${barList(dnsHits, 'No DNS-list hits in the last 24 hours.')}</div>`);
  });

  app.get('/admin/trace', (req, reply) => {
    if (!ctx.admin(req, reply)) return;
    const raw = str((req.query as Record<string, unknown>).q).slice(0, 1000);
    const rows = ctx.trace.find(parseTraceQuery(raw), 200);
    return ctx.render(req, reply, { title: 'Message trace', quarantine: q }, html`
<form method="get" action="/admin/trace" role="search">
  <input type="search" name="q" value="${raw}" size="50" placeholder="queue id, &lt;message-id&gt; or address">
  <button type="submit">Search</button>
</form>
<p class="muted">${raw ? html`Results for ${raw}` : 'The most recent messages'} (at most 200).</p>
${traceTable(rows)}`);
  });

  app.get('/admin/trace/:id', (req, reply) => {
    if (!ctx.admin(req, reply)) return;
    const id = Number((req.params as { id: string }).id);
    const r = Number.isSafeInteger(id) ? ctx.trace.get(id) : undefined;
    if (!r) return ctx.render(req, reply, { title: 'Not found', quarantine: q }, html`<p>No such trace entry.</p>`, 404);
    return ctx.render(req, reply, { title: `Message ${r.queueId}`, quarantine: q }, html`
<table class="fields">
<tr><th>Time (UTC)</th><td>${when(r.time)}</td></tr>
<tr><th>Queue id</th><td>${r.queueId}</td></tr>
<tr><th>Message-ID</th><td>${r.messageId ?? '(none)'}</td></tr>
<tr><th>Sender</th><td>${r.sender || '<>'}</td></tr>
<tr><th>Recipients</th><td>${r.recipients.join(', ')}</td></tr>
<tr><th>Client</th><td>${r.client ?? ''}${r.user ? html` (logged in as ${r.user})` : ''}</td></tr>
<tr><th>Action</th><td>${r.action}</td></tr>
<tr><th>Reply</th><td>${r.reply}</td></tr>
<tr><th>Score</th><td>${r.score.toFixed(2)}</td></tr>
<tr><th>Size</th><td>${r.size} bytes</td></tr>
${r.attachments.length ? html`<tr><th>Attachments</th><td>${r.attachments.map((a) => html`${a}<br>`)}</td></tr>` : ''}
</table>
<h2>Symbols</h2>
${r.symbols.length ? html`<table class="symbols"><thead><tr><th>Symbol</th><th>Score</th><th>Reason</th></tr></thead><tbody>
${r.symbols.map((s) => html`<tr><td>${s.name}</td><td>${s.score.toFixed(2)}</td><td>${s.reason ?? ''}</td></tr>`)}</tbody></table>` : html`<p class="muted">No symbols.</p>`}`);
  });

  const usersPage = (req: FastifyRequest, reply: FastifyReply, notice?: { kind: 'ok' | 'error'; text: string }, status = 200) => {
    const s = req.consoleSession;
    const users = ctx.accounts.listUsers();
    const aliases = ctx.accounts.listAliases();
    return ctx.render(req, reply, { title: 'Users and aliases', notice, quarantine: q }, html`
<h2>Users</h2>
<table class="users"><thead><tr><th>Address</th><th>Created</th><th>Reset the password</th><th></th></tr></thead><tbody>
${users.map((u) => html`<tr><td>${u.address}${ctx.config.admins.includes(u.address) ? html` <span class="muted">(administrator)</span>` : ''}</td><td>${u.created.slice(0, 10)}</td>
<td><form method="post" action="/admin/users/password" class="inline">${csrfField(s)}<input type="hidden" name="address" value="${u.address}"><input type="password" name="password" autocomplete="new-password" aria-label="new password for ${u.address}"> <button type="submit">Set</button></form></td>
<td><form method="post" action="/admin/users/delete" class="inline">${csrfField(s)}<input type="hidden" name="address" value="${u.address}"><button type="submit" class="danger">Delete</button></form></td></tr>`)}
</tbody></table>
<form method="post" action="/admin/users/add">${csrfField(s)}
<fieldset><legend>Add a user</legend>
<label>Address <input type="text" name="address" required></label>
<label>Password <input type="password" name="password" autocomplete="new-password" required></label>
<button type="submit">Add</button></fieldset></form>
<h2>Aliases</h2>
<table class="aliases"><thead><tr><th>Alias</th><th>Delivers to</th><th></th></tr></thead><tbody>
${aliases.map((a) => html`<tr><td>${a.address}</td><td>${a.targets.join(', ')}</td>
<td><form method="post" action="/admin/aliases/delete" class="inline">${csrfField(s)}<input type="hidden" name="address" value="${a.address}"><button type="submit" class="danger">Delete</button></form></td></tr>`)}
</tbody></table>
<form method="post" action="/admin/aliases/add">${csrfField(s)}
<fieldset><legend>Add an alias</legend>
<label>Alias <input type="text" name="address" required></label>
<label>Targets (separated by spaces or commas) <input type="text" name="targets" size="60" required></label>
<button type="submit">Add</button></fieldset></form>`, status);
  };
  /** Runs an account change; an AccountError is shown on the page (400), anything else is a fault. */
  const change = async (req: FastifyRequest, reply: FastifyReply, what: string, fn: (body: Record<string, unknown>) => Promise<string> | string) => {
    if (!ctx.admin(req, reply)) return;
    try {
      const done = await fn(req.body as Record<string, unknown>);
      ctx.log.info({ event: 'console_accounts', user: req.consoleSession.user, what, detail: done }, 'accounts changed from the console');
      return usersPage(req, reply, { kind: 'ok', text: done });
    } catch (err) {
      if (err instanceof AccountError) return usersPage(req, reply, { kind: 'error', text: err.message }, 400);
      throw err;
    }
  };
  app.get('/admin/users', (req, reply) => {
    if (ctx.admin(req, reply)) return usersPage(req, reply);
  });
  app.post('/admin/users/add', (req, reply) => change(req, reply, 'user_add', async (b) => {
    await ctx.accounts.addUser(str(b.address), typeof b.password === 'string' ? b.password : '');
    return `Added ${str(b.address).toLowerCase()}.`;
  }));
  app.post('/admin/users/password', (req, reply) => change(req, reply, 'user_password', async (b) => {
    const address = str(b.address);
    await ctx.accounts.setPassword(address, typeof b.password === 'string' ? b.password : '');
    ctx.sessions.destroyUser(address.toLowerCase(), req.consoleSession.id);
    return `New password set for ${address}.`;
  }));
  app.post('/admin/users/delete', (req, reply) => change(req, reply, 'user_delete', async (b) => {
    const address = str(b.address);
    await ctx.accounts.deleteUser(address);
    ctx.sessions.destroyUser(address.toLowerCase(), req.consoleSession.id);
    return `Deleted ${address}.`;
  }));
  app.post('/admin/aliases/add', (req, reply) => change(req, reply, 'alias_add', async (b) => {
    const targets = str(b.targets).split(/[\s,]+/).filter(Boolean);
    await ctx.accounts.addAlias(str(b.address), targets);
    return `Added the alias ${str(b.address).toLowerCase()}.`;
  }));
  app.post('/admin/aliases/delete', (req, reply) => change(req, reply, 'alias_delete', async (b) => {
    await ctx.accounts.deleteAlias(str(b.address));
    return `Deleted the alias ${str(b.address)}.`;
  }));
}
