// Each user's control over the spam filter (issue #5): opt out entirely, own thresholds, own
// allow and block lists. Stored with the account (AccountStore, `user set`), shown by
// `user show`, applied per recipient by recipientPolicy() — message-level symbols stay the
// same for everyone; only the action differs.
import { z } from 'zod';
import type { Thresholds, RecipientPolicy } from './policy.js';
import { isAtOrUnder } from '../checks/uri/host.js';

/** An allow/block entry: a whole address, "@domain" or "domain" (the domain and its subdomains). */
const entry = z.string().trim().toLowerCase().min(1).max(254)
  .refine((s) => /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(s) || /^@?[a-z0-9_-]+(\.[a-z0-9_-]+)+\.?$/.test(s) || /^@?xn--/.test(s),
    'must be an address (user@example.org), @example.org or example.org');

export const userSettingsSchema = z.strictObject({
  /** false: this user's mail is delivered untouched by the spam filter (viruses are still refused). */
  spam_filter: z.boolean().default(true),
  /** Overrides of policy.thresholds; absent = the site's. `reject: null` = never reject for this user. */
  tag: z.number().min(-100).max(1000).optional(),
  junk: z.number().min(-100).max(1000).optional(),
  reject: z.number().min(-100).max(1000).nullable().optional(),
  allow: z.array(entry).max(1000).default([]),
  block: z.array(entry).max(1000).default([]),
});
export type UserSettings = z.infer<typeof userSettingsSchema>;

export const DEFAULT_SETTINGS: UserSettings = userSettingsSchema.parse({});

export class SettingsError extends Error {}

const BOOL: Record<string, boolean> = { on: true, yes: true, true: true, '1': true, off: false, no: false, false: false, '0': false };

/**
 * Applies `portcullis user set` assignments: `spam-filter=on|off`, `tag=N`, `junk=N`,
 * `reject=N|never`, `tag=default` (back to the site's), `allow+=X`, `allow-=X`, `block+=X`,
 * `block-=X`. Returns the new settings; throws SettingsError naming the fault.
 */
export function applyAssignments(current: UserSettings, assignments: readonly string[]): UserSettings {
  const next: Record<string, unknown> = { ...current, allow: [...current.allow], block: [...current.block] };
  for (const a of assignments) {
    const m = /^([a-z][a-z_-]*?)(\+=|-=|=)(.*)$/.exec(a);
    if (!m) throw new SettingsError(`"${a}": expected KEY=VALUE, allow+=ADDRESS or block-=ADDRESS`);
    const key = m[1]!.replace(/-/g, '_');
    const [op, value] = [m[2]!, m[3]!.trim()];
    if (key === 'allow' || key === 'block') {
      const list = next[key] as string[];
      if (op === '=') throw new SettingsError(`"${a}": use ${key}+=ADDRESS to add and ${key}-=ADDRESS to remove`);
      const parsed = entry.safeParse(value);
      if (!parsed.success) throw new SettingsError(`${key}: "${value}" ${parsed.error.issues[0]!.message}`);
      const v = parsed.data.replace(/\.$/, '');
      if (op === '+=' && !list.includes(v)) list.push(v);
      if (op === '-=') {
        const i = list.indexOf(v);
        if (i < 0) throw new SettingsError(`${key}: "${v}" is not in the list`);
        list.splice(i, 1);
      }
      continue;
    }
    if (op !== '=') throw new SettingsError(`"${a}": ${key} takes KEY=VALUE`);
    if (key === 'spam_filter') {
      if (!(value in BOOL)) throw new SettingsError(`spam-filter: "${value}" must be on or off`);
      next.spam_filter = BOOL[value];
    } else if (key === 'tag' || key === 'junk' || key === 'reject') {
      if (value === 'default') delete next[key];
      else if (key === 'reject' && value === 'never') next[key] = null;
      else {
        const n = Number(value);
        if (value === '' || !Number.isFinite(n)) throw new SettingsError(`${key}: "${value}" is not a number${key === 'reject' ? ' (or "never")' : ''} (or "default")`);
        next[key] = n;
      }
    } else throw new SettingsError(`unknown setting "${m[1]}" (spam-filter, tag, junk, reject, allow, block)`);
  }
  const parsed = userSettingsSchema.safeParse(next);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new SettingsError(`${issue.path.join('.') || 'settings'}: ${issue.message}`);
  }
  const s = parsed.data;
  const t = { tag: s.tag ?? -Infinity, junk: s.junk ?? -Infinity, reject: s.reject ?? Infinity };
  if (s.tag !== undefined && s.junk !== undefined && t.tag > t.junk) throw new SettingsError(`tag (${s.tag}) must not be above junk (${s.junk})`);
  if (s.junk !== undefined && s.reject != null && t.junk > t.reject) throw new SettingsError(`junk (${s.junk}) must not be above reject (${s.reject})`);
  return s;
}

/** True when `address` (an envelope sender or a From: address) matches a list entry. */
export function listMatches(list: readonly string[], address: string): boolean {
  const a = address.trim().toLowerCase();
  const at = a.lastIndexOf('@');
  if (at < 0 || !list.length) return false;
  const domain = a.slice(at + 1).replace(/\.$/, '');
  for (const e of list) {
    if (e.includes('@') && !e.startsWith('@')) {
      if (e === a) return true;
      continue;
    }
    if (isAtOrUnder(domain, e.replace(/^@/, ''))) return true;
  }
  return false;
}

/** What the message shows of its sender, for the user lists. */
export interface SenderFacts {
  /** Envelope sender ('' for the null sender). */
  readonly envelope: string;
  /** Addresses in From: (normally one). */
  readonly from: readonly string[];
  /**
   * The sender's domain was authenticated (SPF pass for the envelope, or DMARC pass / aligned
   * DKIM for From:). An allow entry only counts for an authenticated sender: a From: line is
   * trivially forged, and an allow list that a forger can use would be a hole (SpamAssassin's
   * whitelist_auth makes the same choice). Block entries need no proof.
   */
  readonly envelopeAuthenticated: boolean;
  readonly fromAuthenticated: boolean;
}

/** The per-recipient policy the verdict applies, from the user's settings. */
export function recipientPolicy(settings: UserSettings | undefined, site: Thresholds, sender: SenderFacts, exempt: boolean): RecipientPolicy {
  if (!settings) return { exempt };
  const thresholds: Thresholds = {
    tag: settings.tag ?? site.tag,
    junk: settings.junk ?? site.junk,
    reject: settings.reject === null ? Infinity : settings.reject ?? site.reject,
  };
  const candidates = [sender.envelope, ...sender.from].filter(Boolean);
  const blocked = candidates.some((a) => listMatches(settings.block, a));
  const allowed = (sender.envelopeAuthenticated && listMatches(settings.allow, sender.envelope)) ||
    (sender.fromAuthenticated && sender.from.some((a) => listMatches(settings.allow, a)));
  return {
    exempt,
    thresholds,
    optOut: !settings.spam_filter,
    list: allowed ? 'allow' : blocked ? 'block' : undefined,
  };
}

/** One line per setting, for `portcullis user show`. */
export function describeSettings(address: string, s: UserSettings, site: Thresholds, optOutFile?: boolean): string {
  const thr = (k: 'tag' | 'junk' | 'reject') => {
    const v = s[k];
    if (v === undefined) return `${site[k]} (site default)`;
    return v === null ? 'never' : String(v);
  };
  return [
    `user ${address}`,
    `  spam-filter ${s.spam_filter ? 'on' : 'off'}${optOutFile ? ' (but an opt-out file is present: off)' : ''}`,
    `  tag ${thr('tag')}`,
    `  junk ${thr('junk')}`,
    `  reject ${thr('reject')}`,
    `  allow ${s.allow.length ? s.allow.join(', ') : '(none)'}`,
    `  block ${s.block.length ? s.block.join(', ') : '(none)'}`,
  ].join('\n');
}
