// The plug-in point for content inspection (archives, ClamAV, …). For each message the walker
// (walk.ts) calls every inspector's begin() once, then decodes every leaf part once and offers
// it: the inspection says from the part's descriptor and sniffed type whether it wants the
// content, then reads the decoded bytes as a stream, with backpressure, bounded by the configured
// max_part_scan_size. At the end its finish() may add findings that needed the whole message.
// What it finds comes back as symbols and, optionally, an action on a part (defang, strip) or on
// the message (reject, tempfail), which the attachment check folds into its verdict and its one
// rewrite. docs/attachments.md shows an example.
import type { Readable } from 'node:stream';
import type { SymbolHit } from '../protocol/symbols.js';
import type { FileType } from './filetype.js';
import type { ArchiveFinding } from './archive.js';

/** What the walker knows about a part before its content is read. */
export interface PartInfo {
  /** IMAP-like section number: "1", "2.1", "3.2.1"; "0" is a multipart message's root. */
  readonly path: string;
  /** 0 for the message itself, +1 per enclosing multipart or message. */
  readonly depth: number;
  /** Declared media type, lower case ("text/plain" when none was declared). */
  readonly contentType: string;
  /** "attachment", "inline", another token, or undefined when there is no Content-Disposition. */
  readonly disposition?: string;
  /** Content-Transfer-Encoding, lower case ("" when none). */
  readonly encoding: string;
  /**
   * Every file name the headers give, decoded (Content-Disposition filename, filename*= RFC 2231
   * with continuations, Content-Type name, name*=, encoded-words), raw: may hold NUL, bidi
   * controls or path separators. Clients pick different ones, so policy looks at all.
   */
  readonly filenames: readonly string[];
  /** The name a mail client would most likely show (the first of `filenames`). */
  readonly filename?: string;
  /** Whether a mail client would offer this part as an attachment (a name, "attachment", or non-text content). */
  readonly isAttachment: boolean;
  /**
   * When the part lives inside an attached message that is itself encoded (base64 message/rfc822,
   * or one marked "attachment"), the path of that message part: this part cannot be rewritten
   * alone, only its container can.
   */
  readonly container?: string;
}

export interface InspectContext {
  /** Aborted when the walk is over its time budget or stopped: stop reading and settle. */
  readonly signal: AbortSignal;
  /** The first decoded bytes (up to SNIFF_BYTES), also the start of `content`. */
  readonly head: Buffer;
  /** After `content` ended: whether the part was longer than max_part_scan_size (content cut short). */
  truncated(): boolean;
}

/** What an inspector found. Every field is optional: {} means "nothing found". */
export interface InspectorFinding {
  readonly symbols?: readonly SymbolHit[];
  /** An action on the part; the strongest of the policy's and all inspectors' wins. */
  readonly action?: 'defang' | 'strip' | 'reject';
  /** Why (goes into the notice, the summary header and the log): "archive holds invoice.exe". */
  readonly reason?: string;
  /** A dependency is down (clamd unreachable): the message gets a 4xx, the sender retries. */
  readonly tempfail?: string;
  /**
   * Only in findings from finish(): the part (PartInfo.path) the action applies to. Without it
   * a finish() finding concerns the message (symbols, tempfail, reject).
   */
  readonly path?: string;
  /**
   * What the archive inspection found, as data (the attachment policy reads the symbols above;
   * the AV check words its own from these when it reports archives alone).
   */
  readonly archive?: readonly ArchiveFinding[];
  /**
   * Content only this inspector could reach (entries of an archive opened with a password from
   * the message), scanned by the virus scanner it was given: each scan's result and duration,
   * the first virus, the first scanner failure. The AV check reads these from the walk.
   */
  readonly scans?: readonly { readonly result: 'clean' | 'virus' | 'unavailable' | 'error' | 'too-large'; readonly seconds: number }[];
  readonly virus?: { readonly signature: string; readonly where: string };
  readonly scanFailure?: { readonly reason: string; readonly where: string };
}

/** What an inspector learns when a message starts (before its first part). */
export interface MessageStart {
  /** The message's Subject, encoded-words decoded (archive passwords are often given there). */
  readonly subject: string;
  /** The addresses of To and Cc (at most 50): links and codes that carry the reader's own address. */
  readonly recipients?: readonly string[];
}

/**
 * An inspector's work on one message: created by Inspector.begin() for each message walked, so
 * per-message state (passwords seen in text parts, archives kept for later) lives here and
 * nowhere else.
 */
export interface MessageInspection {
  /** Whether to read this part; decided from the descriptor and the sniffed type. Text parts can be wanted too. */
  wants(part: PartInfo, type: FileType): boolean;
  /**
   * Reads the part's decoded content from `content` (at most max_part_scan_size bytes) and
   * settles with what it found. It must consume or destroy `content`; once the returned promise
   * settles the walker stops feeding it, so an inspector may stop early (e.g. after a ZIP's
   * local headers). A rejection becomes an INSPECTOR_FAILED symbol, never a crash.
   */
  inspect(part: PartInfo, type: FileType, content: Readable, ctx: InspectContext): Promise<InspectorFinding>;
  /**
   * After the last part: findings that needed the whole message (an encrypted archive tried
   * with passwords from a text part that came after it). Give `path` to act on a part.
   */
  finish?(signal: AbortSignal): Promise<readonly InspectorFinding[]>;
}

export interface Inspector {
  /** Short name, for logs and failure symbols ("archive", "clamav"). */
  readonly name: string;
  /** Starts the inspection of one message. */
  begin(message: MessageStart): MessageInspection;
}

/**
 * Reads a stream into one buffer of at most `max` bytes (for inspectors that need random
 * access, such as a ZIP central directory): the rest is drained and dropped; `truncated` says so.
 */
export async function readBounded(content: Readable, max: number): Promise<{ buffer: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of content as AsyncIterable<Buffer>) {
    if (size >= max) {
      truncated = true;
      continue;
    }
    const take = chunk.length > max - size ? chunk.subarray(0, max - size) : chunk;
    if (take.length < chunk.length) truncated = true;
    chunks.push(take);
    size += take.length;
  }
  return { buffer: Buffer.concat(chunks, size), truncated };
}
