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

export const deferred = (reply: string): RecipientOutcome => ({ status: 'deferred', reply });
export const failed = (reply: string): RecipientOutcome => ({ status: 'failed', reply });

/** What an SMTP/LMTP reply code means for a recipient, `text` being the reply as recorded. */
export function outcomeOf(code: number, text: string): RecipientOutcome {
  if (code >= 200 && code < 300) return { status: 'delivered', reply: text };
  return code >= 500 ? failed(text) : deferred(text);
}

/** What could not be written on a command line: CR, LF, angle brackets; an empty recipient. */
export function isSendable(address: string, isSender: boolean): boolean {
  return !/[\r\n<>]/.test(address) && (isSender || address.trim().length > 0);
}

export type MailFolder = 'INBOX' | 'Junk';
