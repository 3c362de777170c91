// The quarantine's public vocabulary: what goes in (QuarantineEntry), what comes out
// (QuarantineItem, one per held message, with one row per recipient so that a user sees only
// their own), the list query and its cursor, and the catalogued errors. The console
// (src/web/) and the CLI build on these; keep them stable.
import type { Readable } from 'node:stream';
import type { Destination } from '../queue/queue.js';

/** Why a message is held. `outbound_hold` is reserved for mail held by the outbound limits. */
export const QUARANTINE_REASONS = ['attachment_stripped', 'attachment_defanged', 'virus', 'policy_band', 'outbound_hold'] as const;
export type QuarantineReason = (typeof QUARANTINE_REASONS)[number];

export const QUARANTINE_STATES = ['held', 'released', 'deleted'] as const;
export type QuarantineState = (typeof QUARANTINE_STATES)[number];

export interface QuarantineSymbol {
  readonly name: string;
  readonly score?: number;
  readonly reason: string;
}

/**
 * One recipient of a held message. `destination` says where a release sends it (a local
 * mailbox's INBOX, or the relay/MX path through the queue); absent: resolved as local when the
 * releaser knows the address, else relayed.
 */
export interface QuarantineRecipientInput {
  readonly address: string;
  readonly destination?: Destination;
}

/** What a caller hands to Quarantine.add() beside the original bytes. */
export interface QuarantineEntry {
  readonly reason: QuarantineReason;
  /** Envelope sender ('' for the null sender). */
  readonly sender: string;
  readonly recipients: readonly (string | QuarantineRecipientInput)[];
  /** Decoded subject; absent: read (RFC 2047 decoded) from the original's header. */
  readonly subject?: string;
  /** Absent: read from the original's header. */
  readonly messageId?: string;
  /** The queue id of the transaction (the SMTP "250 queued as" id). */
  readonly queueId?: string;
  readonly score?: number;
  readonly symbols?: readonly QuarantineSymbol[];
  /** A short why beyond the symbols: the virus signature, the attachments changed. */
  readonly detail?: string;
  /** Epoch ms; default now. */
  readonly time?: number;
}

export interface QuarantineRecipient {
  readonly address: string;
  readonly state: QuarantineState;
  /** Who released or deleted it for this recipient, and when (ISO 8601). */
  readonly by?: string;
  readonly at?: string;
  readonly destination?: Destination;
}

export interface QuarantineItem {
  /** Random and URL-safe (base64url, 16 characters). */
  readonly id: string;
  /** When it was held (ISO 8601). */
  readonly time: string;
  readonly reason: QuarantineReason;
  readonly sender: string;
  readonly subject: string;
  readonly messageId?: string;
  readonly queueId?: string;
  readonly score?: number;
  readonly symbols: readonly QuarantineSymbol[];
  readonly detail?: string;
  /** Bytes of the original. */
  readonly size: number;
  /**
   * held while any (shown) recipient's copy is held, else released when any was released, else
   * deleted. With list({ recipient }) / get(id, recipient), only that recipient is shown.
   */
  readonly state: QuarantineState;
  readonly recipients: readonly QuarantineRecipient[];
  /**
   * The node that holds the original, when it is another gateway node sharing the index through
   * Redis (src/quarantine/shared-index.ts); absent: this node. Release and reading the original
   * are done there.
   */
  readonly node?: string;
}

/** An opaque position in a listing (newest first); pass `next` back as `before`. */
export type QuarantineCursor = string;

export interface QuarantineQuery {
  /** Only this recipient's rows (a user's own view). */
  readonly recipient?: string;
  /** Words in the subject, sender, recipient or Message-ID (substring, case-insensitive). */
  readonly search?: string;
  readonly reason?: QuarantineReason | string;
  readonly state?: QuarantineState | string;
  readonly before?: QuarantineCursor;
  /** Default 50, at most 500. */
  readonly limit?: number;
}

export interface QuarantinePage {
  readonly items: QuarantineItem[];
  /** Present when there may be more: the cursor for the next page. */
  readonly next?: QuarantineCursor;
}

export interface QuarantineStats {
  /** Entries whose original is still kept. */
  readonly count: number;
  readonly bytes: number;
  readonly byReason: Partial<Record<QuarantineReason, number>>;
}

/** The outcome of releasing one recipient's copy. */
export interface ReleaseOutcome {
  readonly address: string;
  /** delivered: in the mailbox now; queued: handed to the queue (relay/MX); failed: still held. */
  readonly status: 'delivered' | 'queued' | 'failed';
  readonly reply: string;
}

export interface ReleaseResult {
  readonly id: string;
  readonly recipients: readonly ReleaseOutcome[];
}

export interface DeleteResult {
  readonly id: string;
  /** The recipients whose copy was deleted by this call. */
  readonly recipients: readonly string[];
}

/**
 * Sends the ORIGINAL (byte-identical) to the recipients being released: a local mailbox's INBOX
 * directly, anything else through the queue. The gateway (or the offline CLI) provides it.
 */
export type Releaser = (release: {
  readonly item: QuarantineItem;
  readonly recipients: readonly QuarantineRecipient[];
  readonly size: number;
  /** A fresh stream of the original, each call. */
  readonly original: () => Readable;
}) => Promise<ReleaseOutcome[]>;

export type QuarantineErrorCode =
  | 'NOT_FOUND' // no such id (or not this recipient's)
  | 'NOT_HELD' // nothing held to release for the recipients asked
  | 'GONE' // the original file is missing
  | 'NO_RELEASER' // opened without a way to deliver
  | 'INVALID' // a bad query, cursor or entry
  | 'DISABLED' // quarantine.enabled is false
  | 'UNAVAILABLE' // held on another node that did not answer (or the shared index is down)
  | 'NOT_YET'; // not implemented yet

/** Catalogued quarantine errors; `message` says what is wrong. */
export class QuarantineError extends Error {
  constructor(readonly code: QuarantineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QuarantineError';
  }
}
