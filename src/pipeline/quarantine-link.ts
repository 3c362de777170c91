// What a digest link does once the console has it (GET /q/link shows a confirmation, POST calls
// this): spends the token (src/quarantine/links.ts — refused when altered, expired or reused),
// then releases that message to that user's INBOX, or adds its sender to that user's allow list
// (the same settings `portcullis user set … allow+=X` writes). Only that message, only that user.
import type { AccountStore } from '../auth/accounts.js';
import type { Links, LinkClaim } from '../quarantine/links.js';
import type { Quarantine, ReleaseResult } from '../quarantine/quarantine.js';
import { QuarantineError } from '../quarantine/types.js';
import { applyAssignments, DEFAULT_SETTINGS, userSettingsSchema } from './user-settings.js';

export type LinkOutcome =
  | { readonly action: 'release'; readonly claim: LinkClaim; readonly result: ReleaseResult }
  | { readonly action: 'allow_sender'; readonly claim: LinkClaim; readonly sender: string };

export interface FollowLinkDeps {
  readonly links: Links;
  readonly quarantine: Quarantine;
  readonly accounts: AccountStore;
}

/** Spends `token` and does what it says; throws LinkError (the token) or QuarantineError (the message). */
export async function followLink(token: string, deps: FollowLinkDeps): Promise<LinkOutcome> {
  const claim = await deps.links.consumeLink(token);
  const item = deps.quarantine.get(claim.id, claim.recipient);
  if (!item) throw new QuarantineError('NOT_FOUND', 'that message is no longer in the quarantine');
  if (claim.action === 'release') {
    const result = await deps.quarantine.release(claim.id, { by: `link:${claim.recipient}`, recipient: claim.recipient });
    return { action: 'release', claim, result };
  }
  if (!item.sender) throw new QuarantineError('INVALID', 'the message has no sender address to allow');
  const stored = deps.accounts.getSettingsJson(claim.recipient);
  const current = stored === undefined ? DEFAULT_SETTINGS : userSettingsSchema.parse(JSON.parse(stored));
  const next = current.allow.some((a) => a.toLowerCase() === item.sender.toLowerCase()) ? current : applyAssignments(current, [`allow+=${item.sender}`]);
  await deps.accounts.putSettingsJson(claim.recipient, JSON.stringify(next));
  return { action: 'allow_sender', claim, sender: item.sender };
}
