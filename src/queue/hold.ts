// The hold queue, modelled on Postfix's (postsuper -h / -H): a held message stays in the queue
// with its state, is listed by `queue list`, and is neither delivered nor expired until an
// administrator releases (or deletes) it. Time spent on hold does not count towards
// queue.lifetime: a released message gets the whole lifetime again from its release (Postfix
// counts from the release too). The state lives in the message's journal record (Queue.holdWhere
// / releaseWhere), so a restart keeps it.

export interface HoldInfo {
  /** Why, in words (`account locked: 312 recipients in the last hour exceed the limit of 200`). */
  readonly reason: string;
  /** Epoch ms when it was held. */
  readonly since: number;
}

/** What these helpers read of a queued message (QueuedMessage fits; queue.ts imports this file). */
export interface HoldCandidate {
  readonly id: string;
  readonly authenticated: boolean;
  readonly meta: Record<string, unknown>;
  readonly held?: HoldInfo;
  readonly active: boolean;
  readonly nextAttempt: number;
}

/** Who a hold or release is about: one message, every message of an authenticated user, or of a client address. */
export type HoldSelector = { id: string } | { user: string } | { client: string };

/** Whether a queued message is one the selector names (users and addresses compare case-blind). */
export function selects(sel: HoldSelector, m: HoldCandidate): boolean {
  if ('id' in sel) return m.id === sel.id;
  if (!m.authenticated) return false;
  if ('user' in sel) return typeof m.meta.user === 'string' && m.meta.user.toLowerCase() === sel.user.toLowerCase();
  return typeof m.meta.client === 'string' && m.meta.client.toLowerCase() === sel.client.toLowerCase();
}

/** The state `queue list` shows: held, being delivered, waiting for a retry, or due. */
export function queueState(m: HoldCandidate, now = Date.now()): 'held' | 'active' | 'deferred' | 'queued' {
  if (m.held) return 'held';
  if (m.active) return 'active';
  return m.nextAttempt > now ? 'deferred' : 'queued';
}
