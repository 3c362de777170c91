// The one message model: made once per message by whoever holds the message (the SMTP data
// stage over its spool, `portcullis scan` and `train` from files, IMAP learning from a stored
// message, tests) and handed to every content check in the data-stage input. Its facets are
// computed when first asked for and kept on this object for the checks after — no memo keyed
// on messages, no module-wide setting: the scan cap, the walk's limits and its inspectors come
// in with the options.
//
//   stream()   the message as received (headers and body, CRLF), from the start on each call
//   content()  the text facet (text.ts): decoded header fields, text parts within maxScanBytes,
//              rendered HTML text, links — what rules, Bayes and the URI check read
//   mime()     the one streaming MIME walk (walk.ts): every leaf part with its byte range and
//              raw header (for the rewriter), its decoded content offered once to the
//              inspectors (archives opened there, their decrypted entries scanned there), MIME
//              issues — what the attachment policy and the AV check read
import { Readable } from 'node:stream';
import type { Inspector } from './inspector.js';
import { DEFAULT_SCAN_BYTES, parseHead, readCapped, type ParsedMessage } from './text.js';
import { walkMessage, type WalkedPart, type WalkLimits, type WalkResult } from './walk.js';

export { DEFAULT_SCAN_BYTES } from './text.js';
export type { ParsedMessage, TextPart, Link } from './text.js';

/** Where the model reads the message from. */
export interface MessageSource {
  /** Bytes of the whole message. */
  readonly size: number;
  /** The whole message as received, from the start, on each call. */
  stream(): NodeJS.ReadableStream;
  /** The message, when the holder has all of it in memory (the text facet then reads no stream). */
  readonly buffer?: Buffer;
}

export interface MessageModelOptions {
  /** spam.max_scan_bytes: how much of the message the text facet looks at. */
  readonly maxScanBytes: number;
  /** The walk's bounds (walkLimits(attachments) in checks/attachments/analyse.ts) and its inspectors (archives). */
  readonly walk?: { readonly limits?: Partial<WalkLimits>; readonly inspectors?: readonly Inspector[] };
}

/** The walk as the model keeps it: every leaf part with its raw header section, for the rewriter. */
export interface MimeWalk extends Omit<WalkResult, 'parts'> {
  readonly parts: readonly WalkedPart[];
}

export interface MessageModel {
  readonly size: number;
  stream(): NodeJS.ReadableStream;
  /** The text facet, parsed on first use within options.maxScanBytes. */
  content(): Promise<ParsedMessage>;
  /** The MIME walk, run on first use with the options' limits and inspectors. Never rejects on bad MIME. */
  mime(): Promise<MimeWalk>;
}

/** The model of one message. The default options are for tests and tools that hold no configuration. */
export function messageModel(source: MessageSource, options: MessageModelOptions = { maxScanBytes: DEFAULT_SCAN_BYTES }): MessageModel {
  let content: Promise<ParsedMessage> | undefined;
  let mime: Promise<MimeWalk> | undefined;
  const max = options.maxScanBytes;
  return {
    size: source.size,
    stream: () => source.stream(),
    content: () => (content ??= (source.buffer ? Promise.resolve(source.buffer) : readCapped(source.stream(), max))
      .then((head) => parseHead(head, source.size, max))),
    mime: () => (mime ??= walkParts(source.stream() as Readable, options.walk)),
  };
}

/** One walk of a message stream, keeping every leaf part with its raw header (what mime() holds). */
export async function walkParts(input: Readable, walk: MessageModelOptions['walk'] = {}): Promise<MimeWalk> {
  const parts: WalkedPart[] = [];
  const result = await walkMessage(input, { limits: walk.limits, inspectors: walk.inspectors, onPart: (p) => void parts.push(p) });
  return { ...result, parts };
}

/** The model of a message held in memory. */
export function bufferModel(raw: Buffer, options?: MessageModelOptions): MessageModel {
  return messageModel({ size: raw.length, buffer: raw, stream: () => Readable.from([raw]) }, options);
}
