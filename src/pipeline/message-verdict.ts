// The end-of-message answer, shared by every path that answers for a whole message in one reply
// (the SMTP session's end of DATA, the milter's end of body): whom the allow lists may trust,
// and when decide()'s verdict refuses the message, with which reply.
import type { Facts, ScoredSymbol } from '../checks/types.js';
import type { HeaderField } from '../protocol/headers.js';
import { R, reply, type Reply } from '../protocol/reply.js';
import { addressesOf } from '../checks/sender/from-ownership.js';
import type { RecipientPolicy, Verdict } from './policy.js';
import type { SenderFacts } from './user-settings.js';

/** The sender as the allow lists see it: an address counts only when SPF or DMARC proved it. */
export function senderFacts(envelope: string, headers: readonly HeaderField[], facts: Facts): SenderFacts {
  return {
    envelope,
    from: headers.filter((h) => h.key === 'from').flatMap((h) => addressesOf(h.value)).slice(0, 10),
    envelopeAuthenticated: facts.spf?.result === 'pass',
    fromAuthenticated: facts.dmarc?.result === 'pass',
  };
}

/** The content refusal: the score and the three symbols that weighed most. */
export function contentRefusal(score: number, symbols: readonly ScoredSymbol[]): Reply {
  const top = [...symbols].sort((a, b) => b.score - a.score).slice(0, 3).map((s) => s.name).join(', ');
  return R.policyReject(`Error: message refused by content policy (score ${score}: ${top})`);
}

/**
 * The reply refusing the message for everyone, or undefined when it goes on: refused only when
 * every recipient's policy says reject, in the words of the recipients' block lists when that is
 * why, else the content refusal.
 */
export function messageRefusal(verdict: Verdict, policies: readonly RecipientPolicy[], symbols: readonly ScoredSymbol[]): Reply | undefined {
  if (!verdict.rejectAll) return undefined;
  if (policies.every((r) => r.list === 'block')) return reply(550, '5.7.1', 'Error: message refused: the recipient does not accept mail from this sender');
  return contentRefusal(verdict.score, symbols);
}
