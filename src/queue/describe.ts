// The public view of a queued message: what `portcullis queue list --json` and `queue show` print.
import type { QueuedMessage } from './queue.js';
import { queueState } from './hold.js';

export function describeQueued(m: QueuedMessage) {
  return {
    id: m.id,
    arrived: new Date(m.arrived).toISOString(),
    sender: m.sender,
    size: m.size,
    attempts: m.attempts,
    next_attempt: m.nextAttempt ? new Date(m.nextAttempt).toISOString() : undefined,
    active: m.active,
    state: queueState(m),
    ...(m.held ? { held: { reason: m.held.reason, since: new Date(m.held.since).toISOString() } } : {}),
    recipients: m.recipients.map((r) => ({
      address: r.address,
      via: r.destination.kind === 'local' ? `maildir:${r.destination.mailbox}/${r.destination.folder}` : `relay:${r.destination.domain}`,
      status: r.status,
      attempts: r.attempts,
      last_reply: r.lastReply,
    })),
    meta: m.meta,
  };
}

export type QueuedView = ReturnType<typeof describeQueued>;
