// The page shell every console page shares: the navigation for the visitor's role, the one
// stylesheet, and nothing inline (the Content-Security-Policy forbids inline script and style).
import { html, type SafeHtml } from './html.js';
import type { ConsoleSession } from './sessions.js';

export interface PageOptions {
  readonly title: string;
  readonly session?: ConsoleSession;
  /** A short notice above the content: what the last action did, or why it was refused. */
  readonly notice?: { readonly kind: 'ok' | 'error'; readonly text: string };
  /** Whether the quarantine pages exist (the quarantine store is configured). */
  readonly quarantine?: boolean;
  /** Whether the reports page exists. */
  readonly reports?: boolean;
  /** Whether the Junk training page exists. */
  readonly junk?: boolean;
}

function nav(s: ConsoleSession | undefined, quarantine: boolean, reports: boolean, junk: boolean): SafeHtml {
  if (!s?.user) return html``;
  const admin = s.admin ? html`
      <a href="/admin">Dashboard</a>
      <a href="/admin/trace">Message trace</a>
      ${quarantine ? html`<a href="/admin/quarantine">Quarantine (all)</a>` : ''}
      <a href="/admin/queue">Queue</a>
      ${reports ? html`<a href="/admin/reports">Reports</a>` : ''}
      <a href="/admin/users">Users and aliases</a>` : '';
  return html`<nav>
      ${admin}
      ${quarantine ? html`<a href="/quarantine">My quarantine</a>` : ''}
      ${junk ? html`<a href="/junk">Junk</a>` : ''}
      <a href="/settings">Spam settings</a>
      <a href="/password">Password</a>
      <form method="post" action="/logout" class="inline">${csrfField(s)}<button type="submit">Log out ${s.user}</button></form>
    </nav>`;
}

/** The hidden field every state-changing form carries. */
export function csrfField(s: ConsoleSession): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${s.csrf}">`;
}

export function page(opts: PageOptions, body: SafeHtml): string {
  return html`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${opts.title} — Portcullis</title>
<link rel="stylesheet" href="/static/console.css">
</head>
<body>
<header><span class="brand">Portcullis</span>${nav(opts.session, !!opts.quarantine, !!opts.reports, !!opts.junk)}</header>
<main>
<h1>${opts.title}</h1>
${opts.notice ? html`<p class="notice ${opts.notice.kind}" role="status">${opts.notice.text}</p>` : ''}
${body}
</main>
</body>
</html>
`.text;
}
