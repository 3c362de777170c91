// The outbound content policy: mail from an authenticated user passes the same checks as inbound
// mail, but its verdict is read differently. A demand (a virus, GTUBE, any symbol whose action is
// reject) still refuses the message at DATA, as for inbound mail: the user sees it at once and
// nothing is stored. A spam *score* does not refuse it: at or above `hold_score` the message is
// held in the queue (not sent, not lost), because the sender is our own user (a false positive
// must be recoverable) or a compromised account (whose mail must not leave).
// The connect- and HELO-stage symbols (DNSBL, rDNS, HELO checks) judge the client's network path;
// for a logged-in user on a home or mobile connection they say nothing about the mail, so they
// are not part of the outbound score (they are still logged).
import type { ScoredSymbol } from '../../checks/types.js';
import type { Verdict } from '../policy.js';
import type { OutboundContentConfig } from './config.js';

export interface OutboundVerdict {
  readonly verdict: Verdict;
  /** Why the message is held for its content, when it is. */
  readonly hold?: { reason: string };
  /** Observe mode: the hold that was not made (logged by the caller). */
  readonly wouldHold?: { reason: string };
}

/** The symbols an authenticated message is scored by: those of its transaction and data stages. */
export function outboundSymbols(transaction: readonly ScoredSymbol[], data: readonly ScoredSymbol[]): ScoredSymbol[] {
  return [...transaction, ...data];
}

/**
 * Turns the inbound verdict of an authenticated message into the outbound one: a refusal by
 * score becomes a hold; a score at or above the hold threshold holds. Observe mode holds
 * nothing (the hold is logged as what would have happened by the caller).
 */
export function outboundVerdict(v: Verdict, c: OutboundContentConfig, junkThreshold: number, observe: boolean): OutboundVerdict {
  const holdScore = c.hold_score ?? junkThreshold;
  const wouldHold = v.rejectAll || v.wouldReject || v.score >= holdScore;
  // Refusals become Junk for local recipients once released (the score stays in the headers).
  const verdict: Verdict = { ...v, rejectAll: false, actions: v.actions.map((a) => (a === 'reject' ? 'junk' : a)) };
  if (!wouldHold) return { verdict };
  const reason = { reason: `spam score ${v.score} (hold at ${holdScore})` };
  return observe ? { verdict, wouldHold: reason } : { verdict, hold: reason };
}
