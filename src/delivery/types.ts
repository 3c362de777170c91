// What the queue hands to a delivery agent, and what it gets back.
import type { Readable } from 'node:stream';

/** A queued message's bytes: the headers the gateway prepends, then the message as received. */
export interface Content {
  /** Total size in bytes (prefix + body). */
  readonly size: number;
  /** A fresh stream of the whole message, CRLF line endings, not dot-stuffed. */
  stream(): Readable;
  /** The same bytes when the whole message is in memory: lets an agent write them in one call. */
  readonly buffers?: readonly Buffer[];
}

/** Outcome for one recipient: delivered, try again later, or never (recorded, not bounced). */
export type RecipientOutcome =
  | { status: 'delivered'; reply: string }
  | { status: 'deferred'; reply: string }
  | { status: 'failed'; reply: string };

export type MailFolder = 'INBOX' | 'Junk';
