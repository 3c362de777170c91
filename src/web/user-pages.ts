// What every user sees: their own spam settings (the model `portcullis user set` uses,
// src/pipeline/user-settings.ts) and their password (the account store's policy, with a
// strength meter). Nothing here takes a user id from the request: the session says whose.
import type { FastifyInstance } from 'fastify';
import { AccountError } from '../auth/accounts.js';
import { DEFAULT_SETTINGS, SettingsError, applyAssignments, userSettingsSchema, type UserSettings } from '../pipeline/user-settings.js';
import { html } from './html.js';
import { csrfField } from './layout.js';
import type { ConsoleContext } from './context.js';
import { passwordStrength, strengthMeter } from './password-strength.js';
import { checkLogin } from '../auth/login.js';
import { clientAddress } from '../net/cidr.js';

export function settingsOf(ctx: ConsoleContext, user: string): UserSettings {
  const json = ctx.accounts.getSettingsJson(user);
  if (json === undefined) return DEFAULT_SETTINGS;
  try {
    return userSettingsSchema.parse(JSON.parse(json));
  } catch {
    return DEFAULT_SETTINGS;
  }
}

const str = (v: unknown) => (typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : '');
const lines = (v: unknown) => str(v).split(/[\s,]+/).map((s) => s.trim().toLowerCase()).filter(Boolean);

/** The form's fields as `user set` assignments, so the CLI's validation applies unchanged. */
export function assignmentsFromForm(current: UserSettings, body: Record<string, unknown>): string[] {
  const out = [`spam-filter=${str(body.spam_filter) === 'on' ? 'on' : 'off'}`];
  for (const k of ['tag', 'junk', 'reject'] as const) {
    const v = str(body[k]).trim();
    out.push(`${k}=${v === '' ? 'default' : v}`);
  }
  for (const k of ['allow', 'block'] as const) {
    const wanted = lines(body[k]);
    for (const e of current[k]) if (!wanted.includes(e)) out.push(`${k}-=${e}`);
    for (const e of wanted) if (!current[k].includes(e)) out.push(`${k}+=${e}`);
  }
  return out;
}

export function registerUserPages(app: FastifyInstance, ctx: ConsoleContext): void {
  const settingsPage = (req: Parameters<ConsoleContext['render']>[0], reply: Parameters<ConsoleContext['render']>[1], user: string, notice?: { kind: 'ok' | 'error'; text: string }, status = 200) => {
    const s = settingsOf(ctx, user);
    const site = ctx.thresholds;
    const thr = (k: 'tag' | 'junk' | 'reject') => (s[k] === undefined ? '' : s[k] === null ? 'never' : String(s[k]));
    return ctx.render(req, reply, { title: 'Spam settings', notice, quarantine: ctx.quarantineEnabled }, html`
<form method="post" action="/settings">
  ${csrfField(req.consoleSession)}
  <fieldset>
    <legend>Filtering for ${user}</legend>
    <label><input type="checkbox" name="spam_filter" value="on"${s.spam_filter ? html` checked` : ''}> Filter spam in my mail (viruses are refused either way)</label>
  </fieldset>
  <fieldset>
    <legend>Thresholds (empty: the site's)</legend>
    <label>Tag the subject from score <input type="text" name="tag" value="${thr('tag')}" placeholder="${site.tag}" size="6"></label>
    <label>Move to Junk from score <input type="text" name="junk" value="${thr('junk')}" placeholder="${site.junk}" size="6"></label>
    <label>Refuse from score (or "never") <input type="text" name="reject" value="${thr('reject')}" placeholder="${site.reject}" size="6"></label>
  </fieldset>
  <fieldset>
    <legend>Senders</legend>
    <label>Always accept (one per line: address, @domain or domain; only counts when the sender is authenticated)
      <textarea name="allow">${s.allow.join('\n')}</textarea></label>
    <label>Always treat as spam
      <textarea name="block">${s.block.join('\n')}</textarea></label>
  </fieldset>
  <button type="submit">Save</button>
</form>`, status);
  };

  app.get('/settings', (req, reply) => {
    const user = ctx.user(req, reply);
    if (user) return settingsPage(req, reply, user);
  });
  app.post('/settings', async (req, reply) => {
    const user = ctx.user(req, reply);
    if (!user) return;
    const current = settingsOf(ctx, user);
    try {
      const next = applyAssignments(current, assignmentsFromForm(current, req.body as Record<string, unknown>));
      await ctx.accounts.putSettingsJson(user, JSON.stringify(next));
      ctx.log.info({ event: 'console_settings', user }, 'spam settings changed in the console');
      return settingsPage(req, reply, user, { kind: 'ok', text: 'Saved. The next message to you follows these settings.' });
    } catch (err) {
      if (err instanceof SettingsError || err instanceof AccountError) return settingsPage(req, reply, user, { kind: 'error', text: err.message }, 400);
      throw err;
    }
  });

  const passwordPage = (req: Parameters<ConsoleContext['render']>[0], reply: Parameters<ConsoleContext['render']>[1], notice?: { kind: 'ok' | 'error'; text: string }, score?: number, status = 200) =>
    ctx.render(req, reply, { title: 'Password', notice, quarantine: ctx.quarantineEnabled }, html`
${score !== undefined ? html`<p>Strength of the password you entered: ${strengthMeter(score)}</p>` : ''}
<form method="post" action="/password">
  ${csrfField(req.consoleSession)}
  <label>Current password <input type="password" name="current" autocomplete="current-password" required></label>
  <label>New password <input type="password" name="password" autocomplete="new-password" required></label>
  <label>New password again <input type="password" name="again" autocomplete="new-password" required></label>
  <p class="muted">At least 10 characters, not your address, not a common password, and hard to guess (strength 3 of 4 or more):
  several uncommon words make a good one.</p>
  <button type="submit">Change the password</button>
</form>`, status);

  app.get('/password', (req, reply) => {
    if (ctx.user(req, reply)) return passwordPage(req, reply);
  });
  app.post('/password', async (req, reply) => {
    const user = ctx.user(req, reply);
    if (!user) return;
    const body = req.body as Record<string, unknown>;
    const [current, next, again] = [str(body.current), str(body.password), str(body.again)];
    const score = next ? passwordStrength(next, user) : undefined;
    // Through the brute-force defence too: a stolen session must not become a password oracle.
    if (!(await checkLogin(ctx, clientAddress(req.socket.remoteAddress), user, current)).ok) {
      return passwordPage(req, reply, { kind: 'error', text: 'The current password is wrong.' }, score, 400);
    }
    if (next !== again) return passwordPage(req, reply, { kind: 'error', text: 'The two new passwords differ.' }, score, 400);
    try {
      await ctx.accounts.setPassword(user, next);
    } catch (err) {
      if (err instanceof AccountError) return passwordPage(req, reply, { kind: 'error', text: err.message }, score, 400);
      throw err;
    }
    // Other sessions of this user end: whoever knew the old password is out.
    ctx.sessions.destroyUser(user, req.consoleSession.id);
    ctx.log.info({ event: 'console_password', user }, 'password changed in the console');
    return passwordPage(req, reply, { kind: 'ok', text: 'Your password was changed. Mail clients need the new one too.' }, score);
  });
}
