// The administrator's view of the reports others sent about our mail (docs/deliverability.md):
// complaints with the local user each was traced to, DMARC aggregate and TLS-RPT reports, and
// the reports that could not be read. Read-only: reports are never answered from here either.
// Everything shown came from outside (a reporter chose every string), so all of it goes through
// the escaping template; nothing here links anywhere but to the console itself.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ComplaintRow, ReportRow, ReportsStore } from '../reports/store.js';
import { html, type SafeHtml } from './html.js';
import type { ConsoleContext } from './context.js';

const DAY = 86_400_000;
const KINDS = ['dmarc', 'tlsrpt', 'unparsed'] as const;
type Kind = (typeof KINDS)[number];

const when = (iso: string | undefined) => (iso ? iso.replace('T', ' ').slice(0, 19) : '');
const str = (v: unknown) => (typeof v === 'string' ? v.trim() : '');
const text = (v: unknown) => (v === undefined || v === null ? '' : Array.isArray(v) ? v.map(String).join(', ') : typeof v === 'object' ? JSON.stringify(v) : String(v));

/** The list's filters, from the query string; anything unknown is ignored rather than refused. */
export interface ReportFilters {
  readonly show: 'all' | 'complaints' | Kind;
  readonly user: string;
  readonly days: number | undefined;
}

export function reportFilters(query: Record<string, unknown>): ReportFilters {
  const show = str(query.show);
  const days = Number(str(query.days));
  return {
    show: show === 'complaints' || (KINDS as readonly string[]).includes(show) ? (show as ReportFilters['show']) : 'all',
    user: str(query.user).toLowerCase().slice(0, 320),
    days: Number.isInteger(days) && days > 0 && days <= 3650 ? days : undefined,
  };
}

function complaintsTable(rows: readonly ComplaintRow[]): SafeHtml {
  if (!rows.length) return html`<p class="muted">No complaints match.</p>`;
  return html`<table class="trace" id="complaints">
<thead><tr><th>Time (UTC)</th><th>Type</th><th>Reporter</th><th>User</th><th>Message-ID</th><th>Subject</th></tr></thead>
<tbody>${rows.map((c) => html`<tr>
<td><a href="/admin/complaints/${c.id}">${when(c.at)}</a></td><td>${c.feedbackType} (${c.format})</td>
<td>${c.reporterDomain || c.reporter}${c.verified ? '' : html` <span class="muted">(unverified)</span>`}</td>
<td>${c.list ? html`list ${c.list}, member ${c.member ?? '?'} <span class="muted">(by ${c.listBy ?? '?'})</span>`
    : c.user ? html`<a href="/admin/trace?q=${encodeURIComponent(c.user)}">${c.user}</a> <span class="muted">(by ${c.attributedBy ?? '?'})</span>` : html`<span class="muted">not traced</span>`}</td>
<td>${c.messageId ? `<${c.messageId}>` : ''}</td><td>${text(c.original.subject)}</td></tr>`)}</tbody></table>`;
}

function reportsTable(rows: readonly ReportRow[]): SafeHtml {
  if (!rows.length) return html`<p class="muted">No reports match.</p>`;
  return html`<table class="trace" id="reports">
<thead><tr><th>Received (UTC)</th><th>Kind</th><th>From</th><th>Domain or reason</th><th>Messages / sessions</th><th>Failed</th></tr></thead>
<tbody>${rows.map((r) => html`<tr>
<td>${r.kind === 'unparsed' ? when(r.at) : html`<a href="/admin/reports/${r.id}">${when(r.at)}</a>`}</td><td>${r.kind}</td>
<td>${r.kind === 'unparsed' ? r.reporter : r.org}${r.verified ? '' : html` <span class="muted">(unverified)</span>`}</td>
<td>${r.kind === 'unparsed' ? r.reason ?? '' : r.domain ?? ''}</td>
<td>${r.messages ?? ''}</td><td>${r.failed ? html`<strong>${r.failed}</strong>` : r.failed ?? ''}</td></tr>`)}</tbody></table>`;
}

export function registerReportPages(app: FastifyInstance, ctx: ConsoleContext, store: ReportsStore): void {
  const notFound = (req: FastifyRequest, reply: FastifyReply, what: string) =>
    ctx.render(req, reply, { title: 'Not found' }, html`<p>There is no such ${what}.</p>`, 404);
  const idOf = (req: FastifyRequest) => {
    const id = (req.params as { id: string }).id;
    return /^\d{1,12}$/.test(id) ? Number(id) : undefined;
  };

  app.get('/admin/reports', (req, reply) => {
    if (!ctx.admin(req, reply)) return;
    const f = reportFilters(req.query as Record<string, unknown>);
    const since = f.days ? Date.now() - f.days * DAY : undefined;
    const sinceIso = since !== undefined ? new Date(since).toISOString() : '';
    const wantComplaints = f.show === 'all' || f.show === 'complaints' || !!f.user;
    const complaints = wantComplaints ? store.complaints({ ...(f.user ? { user: f.user } : {}), ...(since !== undefined ? { since } : {}), limit: 200 }) : [];
    // A user filter is about complaints (reports are about domains, not users).
    const reports = f.user || f.show === 'complaints' ? [] : store.reports({ ...(f.show !== 'all' ? { kind: f.show } : {}), limit: 200 }).filter((r) => r.at >= sinceIso);
    const opt = (v: string, label: string) => html`<option value="${v}"${f.show === v ? html` selected` : ''}>${label}</option>`;
    return ctx.render(req, reply, { title: 'Complaints and reports' }, html`
<form method="get" action="/admin/reports" role="search" class="filters">
  <label>Show <select name="show">${opt('all', 'everything')}${opt('complaints', 'complaints')}${opt('dmarc', 'DMARC aggregate reports')}${opt('tlsrpt', 'TLS-RPT reports')}${opt('unparsed', 'reports that could not be read')}</select></label>
  <label>Complaints about user <input type="search" name="user" value="${f.user}" size="30" placeholder="user@example.org"></label>
  <label>Last <input type="number" name="days" value="${f.days ?? ''}" min="1" max="3650" size="5"> days</label>
  <button type="submit">Filter</button>
</form>
${wantComplaints ? html`<h2>Complaints (newest first, at most 200)</h2>${complaintsTable(complaints)}` : ''}
${f.user || f.show === 'complaints' ? '' : html`<h2>DMARC and TLS-RPT reports (newest first, at most 200)</h2>${reportsTable(reports)}`}`);
  });

  app.get('/admin/reports/:id', (req, reply) => {
    if (!ctx.admin(req, reply)) return;
    const id = idOf(req);
    const r = id === undefined ? undefined : store.report(id);
    if (!r) return notFound(req, reply, 'report');
    const auth = r.verified ? '' : ' The report is not authenticated: its sender could be anyone.';
    if (r.kind === 'tlsrpt') {
      const policies = ((r.detail as { policies?: unknown[] } | undefined)?.policies ?? []) as Record<string, unknown>[];
      return ctx.render(req, reply, { title: `TLS-RPT report from ${r.org}` }, html`
<p>${r.domain ?? ''}, ${when(r.begin)} to ${when(r.end)} UTC; ${r.messages ?? 0} sessions, ${r.failed ?? 0} failed.${auth}</p>
<table class="trace" id="policies">
<thead><tr><th>Policy domain</th><th>Policy</th><th>Successful</th><th>Failed</th><th>Failures</th></tr></thead>
<tbody>${policies.map((p) => html`<tr><td>${text(p.policyDomain)}</td><td>${text(p.policyType)}</td><td>${text(p.success)}</td><td>${text(p.failure)}</td>
<td>${text(p.failures)}</td></tr>`)}</tbody></table>`);
    }
    return ctx.render(req, reply, { title: `DMARC report from ${r.org}` }, html`
<p>${r.domain ?? ''}, ${when(r.begin)} to ${when(r.end)} UTC; ${r.messages ?? 0} messages, ${r.failed ?? 0} not passing DMARC.${auth}</p>
<table class="trace" id="rows">
<thead><tr><th>Source IP</th><th>Messages</th><th>Disposition</th><th>DKIM (aligned)</th><th>SPF (aligned)</th><th>Header From</th><th>Raw results</th></tr></thead>
<tbody>${(r.records ?? []).map((x) => html`<tr>
<td><a href="/admin/trace?q=${encodeURIComponent(x.sourceIp)}">${x.sourceIp}</a></td><td>${x.count}</td><td>${x.disposition}</td><td>${x.dkim}</td><td>${x.spf}</td><td>${x.headerFrom}</td>
<td>${[...x.auth.dkim.map((d) => `dkim ${d}`), ...x.auth.spf.map((s) => `spf ${s}`)].join(', ')}</td></tr>`)}</tbody></table>`);
  });

  app.get('/admin/complaints/:id', (req, reply) => {
    if (!ctx.admin(req, reply)) return;
    const id = idOf(req);
    const c = id === undefined ? undefined : store.complaint(id);
    if (!c) return notFound(req, reply, 'complaint');
    const row = (label: string, v: unknown) => (v === undefined || v === '' ? '' : html`<tr><th>${label}</th><td>${text(v)}</td></tr>`);
    return ctx.render(req, reply, { title: `Complaint ${c.id}: ${c.feedbackType}` }, html`
<table class="fields" id="complaint">
${row('Received (UTC)', when(c.at))}
${row('Reporter', `${c.reporter}${c.verified ? '' : ' (unverified: the report is not authenticated)'}`)}
${row('Format', c.format)}
${c.user ? html`<tr><th>User</th><td><a href="/admin/trace?q=${encodeURIComponent(c.user)}">${c.user}</a> (traced by ${c.attributedBy ?? '?'})</td></tr>` : row('User', 'not traced to a local user')}
${c.list ? html`<tr><th>List</th><td>${c.list}: the copy went to member ${c.member ?? '?'} (found by ${c.listBy ?? '?'})</td></tr>` : ''}
${row('Submitted from', c.client)}
${row('Source IP (reported)', c.sourceIp)}
${c.queueId ? html`<tr><th>Our queue id</th><td><a href="/admin/trace?q=${encodeURIComponent(c.queueId)}">${c.queueId}</a></td></tr>` : ''}
${row('Message-ID', c.messageId ? `<${c.messageId}>` : undefined)}
</table>
<h2>The reported message's headers</h2>
<table class="fields" id="original">
${row('From', c.original.from)}
${row('To', c.original.to)}
${row('Subject', c.original.subject)}
${row('Date', c.original.date)}
${row('Original-Mail-From', c.original.mail_from)}
${row('Original-Rcpt-To', c.original.rcpt_to)}
${row('Reported-Domain', c.original.reported_domains)}
${row('User-Agent', c.original.user_agent)}
${row('Arrival-Date', c.original.arrival_date)}
${row('Subject of the report', c.original.report_subject)}
</table>`);
  });
}
