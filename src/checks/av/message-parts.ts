// A minimal, self-contained MIME reader for the AV check: from the raw message stream it keeps
// only what the password case needs — the text of text/plain and text/html parts (for candidate
// passwords) and the decoded bytes of parts that are archives (by magic bytes, type or name).
// Streamed line by line; every kept thing is capped; other parts are skipped without being
// stored. To be replaced by the shared MIME walker (src/mime/walk.ts) once it exposes decoded
// attachments to inspectors.
import { sniffArchive, archiveFormatFromName } from '../../mime/archive-types.js';

export interface TextPart {
  readonly type: 'text/plain' | 'text/html';
  readonly text: string;
}

export interface ArchivePart {
  readonly name: string;
  readonly contentType: string;
  readonly data: Buffer;
}

export interface MessageParts {
  readonly subject: string;
  readonly texts: TextPart[];
  readonly archives: ArchivePart[];
  /** Archive parts left out because they were larger than maxArchiveSize (their names). */
  readonly oversized: string[];
}

export interface PartLimits {
  /** Decoded bytes kept per archive part (default 25 MiB); larger ones are listed in `oversized`. */
  readonly maxArchiveSize?: number;
  /** Archive parts kept (default 10). */
  readonly maxArchives?: number;
  /** Characters kept per text part (default 256 KiB) and text parts kept (default 20). */
  readonly maxTextChars?: number;
  readonly maxTexts?: number;
  /** Nesting of multiparts and message/rfc822 (default 20). */
  readonly maxDepth?: number;
}

interface Entity {
  headerLines: string[];
  headerBytes: number;
  contentType: string;
  boundary?: string;
  charset: string;
  encoding: string;
  name: string;
  kind: 'text' | 'maybe-archive' | 'skip';
  decoder?: Decoder;
}

const MAX_HEADER_BYTES = 64 * 1024;

/** Reads the parts the AV check needs from a raw message (headers and body, CRLF). */
export async function readMessageParts(stream: NodeJS.ReadableStream, limits: PartLimits = {}): Promise<MessageParts> {
  const maxArchiveSize = limits.maxArchiveSize ?? 25 * 1024 * 1024;
  const maxArchives = limits.maxArchives ?? 10;
  const maxTextChars = limits.maxTextChars ?? 256 * 1024;
  const maxTexts = limits.maxTexts ?? 20;
  const maxDepth = limits.maxDepth ?? 20;
  const out: { subject: string; texts: TextPart[]; archives: ArchivePart[]; oversized: string[] } = { subject: '', texts: [], archives: [], oversized: [] };

  const boundaries: string[] = [];
  let state = 'headers' as 'headers' | 'body' | 'ignore';
  let current: Entity = newEntity();
  let top = true;
  let depth = 0;

  const finishPart = () => {
    const e = current;
    if (state !== 'body' || !e.decoder) return;
    const data = e.decoder.end();
    if (e.kind === 'text') {
      if (out.texts.length >= maxTexts) return;
      const text = decodeText(data, e.charset).slice(0, maxTextChars);
      if (text.trim() === '') return;
      out.texts.push({ type: e.contentType === 'text/html' ? 'text/html' : 'text/plain', text });
    } else if (e.kind === 'maybe-archive') {
      if (e.decoder.discarded) return;
      if (e.decoder.overflow) {
        out.oversized.push(e.name || e.contentType);
        return;
      }
      if (out.archives.length >= maxArchives) return;
      if (sniffArchive(data) || archiveFormatFromName(e.name)) out.archives.push({ name: e.name || 'attachment', contentType: e.contentType, data });
    }
  };

  const endHeaders = () => {
    const e = current;
    parseEntityHeaders(e);
    if (top) {
      out.subject = decodeWords(Buffer.from(headerValue(e.headerLines, 'subject') ?? '', 'latin1').toString('utf8')).slice(0, 1000);
      top = false;
    }
    if (e.contentType.startsWith('multipart/') && e.boundary && depth < maxDepth) {
      boundaries.push(e.boundary);
      depth++;
      state = 'ignore'; // preamble
      return;
    }
    if (e.contentType === 'message/rfc822' && depth < maxDepth && ['7bit', '8bit', 'binary', ''].includes(e.encoding)) {
      depth++;
      current = newEntity();
      state = 'headers';
      return;
    }
    state = 'body';
    if (e.kind === 'text') e.decoder = new Decoder(e.encoding, maxTextChars * 4);
    else if (e.kind === 'maybe-archive') {
      // Keep decoding only what starts like an archive (or is named like one).
      const named = !!archiveFormatFromName(e.name);
      e.decoder = new Decoder(e.encoding, maxArchiveSize, named ? undefined : (head) => sniffArchive(head) !== undefined);
    }
  };

  for await (const line of lines(stream)) {
    // A boundary line ends the current part, at whatever depth it belongs to.
    if (line.startsWith('--') && boundaries.length) {
      const trimmed = line.replace(/[ \t]+$/, '');
      let level = -1;
      let closing = false;
      for (let i = boundaries.length - 1; i >= 0; i--) {
        const b = boundaries[i]!;
        if (trimmed === `--${b}`) { level = i; break; }
        if (trimmed === `--${b}--`) { level = i; closing = true; break; }
      }
      if (level >= 0) {
        if (state === 'headers') endHeaders();
        finishPart();
        boundaries.length = closing ? level : level + 1;
        depth = boundaries.length;
        current = newEntity();
        state = closing ? 'ignore' : 'headers';
        continue;
      }
    }
    if (state === 'headers') {
      if (line === '') {
        endHeaders();
        continue;
      }
      if (current.headerBytes < MAX_HEADER_BYTES) {
        current.headerBytes += line.length;
        if (/^[ \t]/.test(line) && current.headerLines.length) current.headerLines[current.headerLines.length - 1] += ` ${line.trim()}`;
        else current.headerLines.push(line);
      }
    } else if (state === 'body') {
      current.decoder?.line(line);
    }
  }
  if (state === 'headers') endHeaders();
  finishPart();
  return out;
}

function newEntity(): Entity {
  return { headerLines: [], headerBytes: 0, contentType: 'text/plain', charset: 'us-ascii', encoding: '', name: '', kind: 'text' };
}

function headerValue(lines: readonly string[], key: string): string | undefined {
  const k = `${key}:`;
  const l = lines.find((x) => x.slice(0, k.length).toLowerCase() === k);
  return l?.slice(k.length).trim();
}

/** A parameter of a structured header (RFC 2045 quoted strings, RFC 2231 name*=charset''value and continuations). */
export function headerParam(value: string, param: string): string | undefined {
  const re = new RegExp(String.raw`;\s*${param}(\*\d+)?(\*)?\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)`, 'gi');
  const parts: { idx: number; ext: boolean; v: string }[] = [];
  for (const m of value.matchAll(re)) {
    let v = m[3]!;
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    parts.push({ idx: m[1] ? Number(m[1].slice(1)) : -1, ext: !!m[2], v });
  }
  if (!parts.length) return undefined;
  parts.sort((a, b) => a.idx - b.idx);
  const first = parts[0]!;
  if (!first.ext) return parts.map((p) => p.v).join('');
  // RFC 2231: charset'lang'percent-encoded
  const joined = parts.map((p) => p.v).join('');
  const m = /^([^']*)'[^']*'(.*)$/.exec(joined);
  const charset = m ? m[1]! : 'utf-8';
  const bytes = Buffer.from((m ? m[2]! : joined).replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  return decodeText(bytes, charset || 'utf-8');
}

function parseEntityHeaders(e: Entity): void {
  const ct = headerValue(e.headerLines, 'content-type') ?? 'text/plain';
  const type = (/^\s*([^;\s]+)/.exec(ct)?.[1] ?? 'text/plain').toLowerCase();
  e.contentType = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type) ? type : 'text/plain';
  e.boundary = headerParam(ct, 'boundary');
  e.charset = (headerParam(ct, 'charset') ?? 'us-ascii').toLowerCase();
  e.encoding = (headerValue(e.headerLines, 'content-transfer-encoding') ?? '').toLowerCase().trim();
  const cd = headerValue(e.headerLines, 'content-disposition') ?? '';
  e.name = decodeWords(headerParam(cd, 'filename') ?? headerParam(ct, 'name') ?? '').slice(0, 255);
  const attachment = /^\s*attachment/i.test(cd);
  if ((e.contentType === 'text/plain' || e.contentType === 'text/html') && !attachment && !e.name) e.kind = 'text';
  else if (e.contentType.startsWith('multipart/') || e.contentType === 'message/rfc822') e.kind = 'skip';
  else if (e.contentType.startsWith('text/') || e.contentType.startsWith('image/') || e.contentType.startsWith('audio/') || e.contentType.startsWith('video/')) {
    // An image or text "attachment" named .zip is still worth a look.
    e.kind = archiveFormatFromName(e.name) ? 'maybe-archive' : 'skip';
  } else e.kind = 'maybe-archive';
}

/** Enough for every archive signature (ISO 9660 puts its own at 0x8001). */
const PROBE_BYTES = 0x8010;

/** Body decoding, line by line, with a cap on the decoded size. */
class Decoder {
  private chunks: Buffer[] = [];
  private size = 0;
  private b64carry = '';
  private decided: boolean;
  overflow = false;
  /** Dropped: the first bytes said it is not worth keeping. */
  discarded = false;

  /** `keep`, when given, decides from the first PROBE_BYTES whether the rest is kept. */
  constructor(private readonly encoding: string, private readonly max: number, private readonly keep?: (head: Buffer) => boolean) {
    this.decided = !keep;
  }

  line(line: string): void {
    if (this.overflow || this.discarded) return;
    let bytes: Buffer;
    if (this.encoding === 'base64') {
      const s = this.b64carry + line.replace(/[^A-Za-z0-9+/]/g, '');
      const usable = s.length - (s.length % 4);
      bytes = Buffer.from(s.slice(0, usable), 'base64');
      this.b64carry = s.slice(usable);
    } else if (this.encoding === 'quoted-printable') {
      const soft = line.endsWith('=');
      const body = soft ? line.slice(0, -1) : line;
      bytes = Buffer.from(body.replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
      if (!soft) bytes = Buffer.concat([bytes, Buffer.from('\r\n')]);
    } else {
      bytes = Buffer.from(`${line}\r\n`, 'latin1');
    }
    this.push(bytes);
  }

  end(): Buffer {
    if (this.b64carry && !this.overflow && !this.discarded) this.push(Buffer.from(this.b64carry, 'base64'));
    this.b64carry = '';
    if (!this.decided && !this.discarded) this.decide();
    return this.discarded ? Buffer.alloc(0) : Buffer.concat(this.chunks);
  }

  private decide(): void {
    this.decided = true;
    if (!this.keep!(Buffer.concat(this.chunks))) {
      this.discarded = true;
      this.chunks = [];
    }
  }

  private push(b: Buffer): void {
    if (this.discarded) return;
    if (!this.decided && this.size + b.length >= PROBE_BYTES) {
      this.chunks.push(b);
      this.size += b.length;
      this.decide();
      if (this.discarded || this.size <= this.max) return;
      this.overflow = true;
      this.chunks = [];
      return;
    }
    if (this.size + b.length > this.max) {
      this.overflow = true;
      this.chunks = [];
      return;
    }
    this.chunks.push(b);
    this.size += b.length;
  }
}

function decodeText(data: Buffer, charset: string): string {
  const cs = charset.toLowerCase();
  if (cs === 'us-ascii' || cs === 'ascii' || cs === 'utf8') return data.toString('utf8');
  try {
    return new TextDecoder(cs).decode(data);
  } catch {
    return data.toString('latin1');
  }
}

/** RFC 2047 encoded words (=?charset?B|Q?…?=). */
function decodeWords(value: string): string {
  return value.replace(/=\?([^?\s]+)\?([bq])\?([^?\s]*)\?=(\s+(?==\?))?/gi, (_, charset: string, enc: string, text: string) => {
    const bytes = enc.toLowerCase() === 'b'
      ? Buffer.from(text, 'base64')
      : Buffer.from(text.replace(/_/g, ' ').replace(/=([0-9a-f]{2})/gi, (__, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
    return decodeText(bytes, charset.split('*')[0]!);
  });
}

/** The stream as lines without their CRLF (a bare LF ends a line too). Lines are latin1 strings (bytes 1:1). */
async function* lines(stream: NodeJS.ReadableStream): AsyncGenerator<string> {
  let carry = '';
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const s = carry + (typeof chunk === 'string' ? chunk : chunk.toString('latin1'));
    const parts = s.split('\n');
    carry = parts.pop()!;
    // A line without end longer than 1 MiB is cut (nothing legitimate does that).
    if (carry.length > 1 << 20) carry = carry.slice(0, 1 << 20);
    for (const p of parts) yield p.endsWith('\r') ? p.slice(0, -1) : p;
  }
  if (carry) yield carry.endsWith('\r') ? carry.slice(0, -1) : carry;
}
