// Symbols → one action per recipient (DESIGN.md). Detection lives in checks; this is the only
// place that turns a score into reject / quarantine / junk / tag / deliver.
import type { ScoredSymbol } from '../checks/types.js';
import type { Floor } from './actions.js';

/** `quarantine` comes only from a symbol's action (the floor), never from the score: held, not delivered. */
export type Action = 'deliver' | 'tag' | 'junk' | 'quarantine' | 'reject';

export interface Thresholds {
  readonly tag: number;
  readonly junk: number;
  readonly reject: number;
}

export interface RecipientPolicy {
  /** Role addresses (postmaster@, abuse@) must always be reachable: never rejected, never junked. */
  readonly exempt: boolean;
  /** The user's own thresholds (`portcullis user set`), else the site's. */
  readonly thresholds?: Thresholds;
  /** The user opted out of spam filtering: delivered to INBOX whatever the score. */
  readonly optOut?: boolean;
  /** The sender is on the user's allow list (deliver) or block list (reject / junk). */
  readonly list?: 'allow' | 'block';
}

export interface Verdict {
  readonly score: number;
  /** Same order as the recipients given. */
  readonly actions: Action[];
  /** Rejected only when every recipient's policy says reject (DESIGN.md). */
  readonly rejectAll: boolean;
  /** Observe mode: what would have happened. */
  readonly wouldReject: boolean;
}

export function totalScore(symbols: readonly ScoredSymbol[]): number {
  return Math.round(symbols.reduce((sum, s) => sum + s.score, 0) * 100) / 100;
}

export function actionFor(score: number, t: Thresholds): Action {
  if (score >= t.reject) return 'reject';
  if (score >= t.junk) return 'junk';
  if (score >= t.tag) return 'tag';
  return 'deliver';
}

const RANK: Record<Action, number> = { deliver: 0, tag: 1, junk: 2, quarantine: 3, reject: 4 };

/**
 * The verdict per recipient. `floor` is what the actions layer asked for beyond the score (a
 * symbol whose action is tag or junk): the message gets at least that, for every recipient whose
 * own policy (role address, opt-out, allow list) does not say otherwise.
 */
export function decide(symbols: readonly ScoredSymbol[], recipients: readonly RecipientPolicy[], defaults: Thresholds, observe: boolean, asked?: Floor): Verdict {
  const floor = asked;
  const score = totalScore(symbols);
  const actions = recipients.map((r): Action => {
    if (r.optOut || r.list === 'allow') return 'deliver';
    let a = r.list === 'block' ? 'reject' : actionFor(score, r.thresholds ?? defaults);
    if (floor && RANK[floor] > RANK[a]) a = floor;
    return r.exempt && (a === 'reject' || a === 'junk' || a === 'quarantine') ? 'tag' : a;
  });
  const allReject = actions.length > 0 && actions.every((a) => a === 'reject');
  if (observe) {
    return { score, actions: actions.map((a) => (a === 'reject' ? 'tag' : a)), rejectAll: false, wouldReject: allReject };
  }
  // A recipient whose policy says reject while others accept gets the message in Junk (held
  // in the quarantine when a symbol asked for that): the SMTP transaction can only answer once
  // for the whole message.
  const instead: Action = floor === 'quarantine' ? 'quarantine' : 'junk';
  return { score, actions: allReject ? actions : actions.map((a) => (a === 'reject' ? instead : a)), rejectAll: allReject, wouldReject: allReject };
}
