// The text facet of the message model (model.ts) for the content checks (rules, Bayes, URI
// lists): the decoded header, the text parts decoded and rendered, the links, within a size cap
// (spam.max_scan_bytes, passed in by whoever builds the model). Every content check reads the
// same ParsedMessage, kept on the message's model, so a message is parsed once.
//
// Why not a library: mailsplit streams line by line through the event loop (too slow to run
// on every message before "250"), postal-mime and mailparser are asynchronous, keep every
// attachment's bytes and give no per-part charset/raw text. Here the parse is synchronous
// over one capped buffer, skips attachment content and reuses the project's own decoders
// (src/mime) for what the malware walk already handles.
import { decodeHeaderWords, fileNames, headerText, splitParams } from './filenames.js';
import { QuotedPrintableDecoder } from './decoders.js';
import { collapse, renderHtml, type Link } from './html-text.js';
import type { DecodedHeaderField as HeaderField } from '../protocol/headers.js';

export type { Link } from './html-text.js';

export type { DecodedHeaderField } from '../protocol/headers.js';

export interface TextPart {
  /** e.g. text/plain, text/html */
  readonly type: string;
  readonly charset: string;
  /** Transfer- and charset-decoded, HTML not rendered. */
  readonly raw: string;
  /** Rendered (HTML → text), whitespace collapsed. */
  readonly text: string;
}

export interface ParsedMessage {
  readonly size: number;
  /** The message was longer than the scan cap; only the first maxBytes were examined. */
  readonly truncated: boolean;
  readonly headers: readonly HeaderField[];
  header(name: string): string[];
  rawHeader(name: string): string[];
  /** The header block as received, without the blank line. */
  readonly headerText: string;
  readonly subject: string;
  /** text/plain and text/html parts in order (named attachments excluded). */
  readonly parts: readonly TextPart[];
  /** SpamAssassin's "body": subject, newline, the rendered text (HTML preferred in alternatives). */
  readonly bodyText: string;
  /** SpamAssassin's "rawbody": decoded text parts, HTML tags kept. */
  readonly rawBody: string;
  /** SpamAssassin's "full": the message as received (latin1 string of the bytes, capped). */
  readonly full: string;
  readonly links: readonly Link[];
  readonly html: { readonly parts: number; readonly bytes: number; readonly images: number; readonly invisibleChars: number };
  readonly attachments: readonly { readonly filename: string; readonly contentType: string; readonly size: number }[];
}

/** Default scan cap: spam is small; a large message is judged on its first megabyte. */
export const DEFAULT_SCAN_BYTES = 1 << 20;
const MAX_DEPTH = 20;
const MAX_PARTS = 250;
const MAX_HEADERS = 1000;

interface Node {
  headers: HeaderField[];
  body: string; // latin1 "binary" string of the part's body
}

interface Collect {
  parts: TextPart[];
  /** Rendered texts that make up "body" (alternatives keep one). */
  bodyPieces: string[];
  links: Link[];
  html: { parts: number; bytes: number; images: number; invisibleChars: number };
  attachments: { filename: string; contentType: string; size: number }[];
  count: number;
}

/** Splits a header block (LF or CRLF) into fields; lines that are not fields are skipped. */
function parseHeaders(block: string): HeaderField[] {
  const out: HeaderField[] = [];
  const lines = block.split(/\r?\n/);
  let current: string | undefined;
  const flush = () => {
    if (current === undefined || out.length >= MAX_HEADERS) return;
    const colon = current.indexOf(':');
    if (colon > 0) {
      const name = current.slice(0, colon).trimEnd();
      if (/^[\x21-\x39\x3b-\x7e]+$/.test(name)) {
        const raw = current.slice(colon + 1).trim();
        const text = headerText(raw);
        out.push({ name, key: name.toLowerCase(), value: text, decoded: text.includes('=?') ? decodeHeaderWords(text) : text });
      }
    }
    current = undefined;
  };
  for (const line of lines) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && current !== undefined) current += ` ${line.trim()}`;
    else {
      flush();
      current = line;
    }
  }
  flush();
  return out;
}

/** Splits a part (binary string) at its header/body boundary. */
function splitPart(s: string): Node {
  let end = -1;
  let sep = 0;
  // A part that starts with a blank line has an empty header.
  if (s.startsWith('\r\n')) return { headers: [], body: s.slice(2) };
  if (s.startsWith('\n')) return { headers: [], body: s.slice(1) };
  const crlf = s.indexOf('\r\n\r\n');
  const lf = s.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) [end, sep] = [crlf, 4];
  else if (lf >= 0) [end, sep] = [lf, 2];
  if (end < 0) return { headers: parseHeaders(s), body: '' };
  return { headers: parseHeaders(s.slice(0, end)), body: s.slice(end + sep) };
}

function first(headers: readonly HeaderField[], lname: string): string | undefined {
  return headers.find((h) => h.key === lname)?.value;
}

// Windows-1252's 0x80–0x9F (curly quotes, dashes, €): Node 20's TextDecoder reads them as C1
// controls (fixed in later Node), and mail labelled iso-8859-1 is Windows-1252 in practice
// (WHATWG Encoding maps the label so).
const CP1252_HIGH = '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f' +
  '\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';
const LATIN1_LABELS = new Set(['windows-1252', 'cp1252', 'iso-8859-1', 'iso8859-1', 'latin1', 'l1', 'us-ascii', 'ascii', 'x-cp1252', 'iso_8859-1']);
const cp1252 = { decode(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 8192) {
    out += Buffer.from(bytes.subarray(i, i + 8192)).toString('latin1').replace(/[\x80-\x9f]/g, (ch) => CP1252_HIGH[ch.charCodeAt(0) - 0x80]);
  }
  return out;
} };

const decoders = new Map<string, { decode(bytes: Uint8Array): string }>();
function decoderFor(charset: string): { decode(bytes: Uint8Array): string } {
  if (LATIN1_LABELS.has(charset)) return cp1252;
  let d = decoders.get(charset);
  if (!d) {
    try {
      d = new TextDecoder(charset, { fatal: false });
    } catch {
      // Unknown label: Windows-1252 is what mail clients fall back to for 8-bit text.
      d = cp1252;
    }
    decoders.set(charset, d);
  }
  return d;
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Transfer-decodes a body (binary string) and decodes its charset. */
function decodeText(body: string, encoding: string, charset: string): string {
  let bytes: Buffer;
  if (encoding === 'base64') bytes = Buffer.from(body, 'base64');
  else if (encoding === 'quoted-printable') {
    const qp = new QuotedPrintableDecoder();
    const src = Buffer.from(body, 'latin1');
    bytes = Buffer.concat([qp.write(src), qp.end()]);
  } else bytes = Buffer.from(body, 'latin1');
  if (charset === '' || charset === 'us-ascii') {
    // Undeclared 8-bit text: UTF-8 when it is valid, else the usual Windows-1252.
    if (!bytes.some((b) => b > 0x7f)) return bytes.toString('latin1');
    try {
      return utf8Strict.decode(bytes);
    } catch {
      return decoderFor('windows-1252').decode(bytes);
    }
  }
  return decoderFor(charset).decode(bytes);
}

/** Body of a multipart, split at its boundary lines; the preamble and epilogue are dropped. */
function splitMultipart(body: string, boundary: string): string[] {
  const delimiter = `--${boundary}`;
  const parts: string[] = [];
  let pos = body.startsWith(delimiter) ? 0 : body.indexOf(`\n${delimiter}`);
  if (pos < 0) return parts;
  if (pos > 0) pos += 1;
  while (pos >= 0 && parts.length < MAX_PARTS) {
    let lineEnd = body.indexOf('\n', pos);
    if (lineEnd < 0) break;
    const after = body.slice(pos + delimiter.length, pos + delimiter.length + 2);
    if (after === '--') break; // closing delimiter
    const start = lineEnd + 1;
    let next = body.indexOf(`\n${delimiter}`, start);
    const stop = next < 0 ? body.length : next;
    // The CRLF before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
    let content = body.slice(start, stop);
    if (content.endsWith('\r')) content = content.slice(0, -1);
    parts.push(content);
    if (next < 0) break;
    pos = next + 1;
  }
  return parts;
}

function walk(node: Node, c: Collect, depth: number): void {
  if (++c.count > MAX_PARTS || depth > MAX_DEPTH) return;
  const ctField = first(node.headers, 'content-type') ?? 'text/plain';
  const ct = splitParams(ctField);
  const type = ct.value.toLowerCase() || 'text/plain';
  const param = (k: string) => ct.params.find(([key]) => key === k)?.[1] ?? '';
  if (type.startsWith('multipart/')) {
    const boundary = param('boundary');
    if (!boundary) return;
    const children = splitMultipart(node.body, boundary).map(splitPart);
    if (type === 'multipart/alternative') {
      // Every part's text is kept for rules and Bayes; "body" takes the HTML rendering when
      // there is one, as SpamAssassin does.
      const start = c.bodyPieces.length;
      const pieces: { html: boolean; text: string }[] = [];
      for (const child of children) {
        const before = c.bodyPieces.length;
        const htmlBefore = c.html.parts;
        walk(child, c, depth + 1);
        const added = c.bodyPieces.splice(before);
        // multipart/related around the HTML counts as the HTML alternative.
        if (added.length) pieces.push({ html: c.html.parts > htmlBefore, text: added.join('\n') });
      }
      const chosen = pieces.find((p) => p.html) ?? pieces[pieces.length - 1];
      c.bodyPieces.splice(start, 0, ...(chosen ? [chosen.text] : []));
      return;
    }
    for (const child of children) walk(child, c, depth + 1);
    return;
  }
  const encoding = (first(node.headers, 'content-transfer-encoding') ?? '').trim().toLowerCase();
  if (type === 'message/rfc822' && (encoding === '' || /^(7bit|8bit|binary)$/.test(encoding))) {
    walk(splitPart(node.body), c, depth + 1);
    return;
  }
  const disposition = node.headers.filter((h) => h.key === 'content-disposition').map((h) => h.value);
  const names = fileNames(disposition, node.headers.filter((h) => h.key === 'content-type').map((h) => h.value));
  const isText = type === 'text/plain' || type === 'text/html' || type === 'text' || (type === 'text/enriched');
  if (!isText || names.length) {
    const approx = encoding === 'base64' ? Math.floor((node.body.replace(/\s+/g, '').length * 3) / 4) : node.body.length;
    c.attachments.push({ filename: names[0] ?? '', contentType: type, size: approx });
    return;
  }
  const charset = param('charset').trim().toLowerCase();
  const raw = decodeText(node.body, encoding, charset);
  if (type === 'text/html') {
    const r = renderHtml(raw);
    c.html.parts++;
    c.html.bytes += raw.length;
    c.html.images += r.images;
    c.html.invisibleChars += r.invisibleChars;
    c.links.push(...r.links.slice(0, Math.max(0, 2000 - c.links.length)));
    c.parts.push({ type, charset, raw, text: r.text });
    c.bodyPieces.push(r.text);
  } else {
    const text = collapse(raw);
    c.parts.push({ type, charset, raw, text });
    c.bodyPieces.push(text);
  }
}

/** Parses a message (synchronous; never throws: a broken structure yields what could be read). */
export function parseMessage(raw: Buffer, options: { maxBytes?: number } = {}): ParsedMessage {
  const maxBytes = options.maxBytes ?? DEFAULT_SCAN_BYTES;
  const truncated = raw.length > maxBytes;
  let full = raw.subarray(0, maxBytes).toString('latin1');
  // An mbox envelope line ("From addr date") is not part of the message.
  if (full.startsWith('From ')) {
    const nl = full.indexOf('\n');
    full = nl < 0 ? '' : full.slice(nl + 1);
  }
  const top = splitPart(full);
  const headerEnd = full.length - top.body.length;
  const headerBlock = full.slice(0, headerEnd).replace(/\r?\n\r?\n$/, '');
  const c: Collect = {
    parts: [],
    bodyPieces: [],
    links: [],
    html: { parts: 0, bytes: 0, images: 0, invisibleChars: 0 },
    attachments: [],
    count: 0,
  };
  try {
    walk(top, c, 0);
  } catch {
    // Only a bug can land here (the walk bounds itself); the header is still worth scanning.
  }
  const headers = top.headers;
  const byName = (name: string, pick: (h: HeaderField) => string) => {
    const l = name.toLowerCase();
    return headers.filter((h) => h.key === l).map(pick);
  };
  const subject = byName('subject', (h) => h.decoded)[0] ?? '';
  return {
    size: raw.length,
    truncated,
    headers,
    header: (name) => byName(name, (h) => h.decoded),
    rawHeader: (name) => byName(name, (h) => h.value),
    headerText: headerText(headerBlock),
    subject,
    parts: c.parts,
    bodyText: `${subject}\n${c.bodyPieces.join('\n')}`,
    rawBody: c.parts.map((p) => p.raw).join('\n'),
    full,
    links: c.links,
    html: c.html,
    attachments: c.attachments,
  };
}

/**
 * Reads at most `maxBytes` (+1 chunk) of a message stream: the text facets never hold more of a
 * large message than the scan cap.
 */
export async function readCapped(stream: NodeJS.ReadableStream, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let have = 0;
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    chunks.push(b);
    have += b.length;
    if (have > maxBytes) break;
  }
  (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
  return Buffer.concat(chunks);
}

/**
 * The text facet of a message that is `size` bytes long, of which `head` holds the first
 * bytes (at least maxBytes of them when it is longer): parsed within the cap, with the real
 * size and the truncation recorded.
 */
export function parseHead(head: Buffer, size: number, maxBytes: number): ParsedMessage {
  const parsed = parseMessage(head, { maxBytes });
  return size > head.length ? { ...parsed, size, truncated: true } : parsed;
}
