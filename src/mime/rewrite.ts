// THE one rewriter. It runs once, after every check has given its verdict on the message as
// received, and only when the attachment policy (or an inspector) asked for a change. It does not
// parse: the walk recorded each part's byte range, and a plan is a list of ranges to replace
// (a defanged part's header section; a stripped part's header and body). Every other byte is
// copied as it came, so untouched parts stay byte-identical, and a plan with no edits means no
// rewriting at all.
//
// The output goes to a temporary file that is fsynced and renamed over the destination only when
// complete: a message is never half-rewritten. Each edit carries the bytes it expects at its
// start (the part header as walked) and the plan its source size: a source that differs from the
// one walked is refused rather than mangled.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Readable, Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { showName } from './filenames.js';

interface Libmime {
  encodeWords(s: string, encoding: 'Q' | 'B', maxLength: number): string;
}
const require = createRequire(import.meta.url);
const libmime = require('libmime') as Libmime;

/** Replace bytes [start, end) of the original message with `replacement`. */
export interface RewriteEdit {
  readonly start: number;
  readonly end: number;
  readonly replacement: Buffer;
  /** The bytes the original has at `start` (the part's header section as walked). */
  readonly expect: Buffer;
}

/** One change, for the summary header, the log line and `scan`. */
export interface AttachmentChange {
  readonly path: string;
  readonly action: 'defang' | 'strip';
  /** The name as shown in reports (bidi and invisible characters escaped). */
  readonly name: string;
  /** Defang: the new file name. */
  readonly newName?: string;
  readonly reason: string;
}

export interface RewritePlan {
  /** Size of the message the plan was made for. */
  readonly sourceSize: number;
  /** Sorted by start, not overlapping. */
  readonly edits: readonly RewriteEdit[];
  readonly changes: readonly AttachmentChange[];
  /** "X-Portcullis-Attachments: …" unfolded, without CRLF; the caller adds it to the header. */
  readonly summaryHeader: string;
}

export const SUMMARY_HEADER = 'X-Portcullis-Attachments';

// ---- building edits ---------------------------------------------------------------------------

interface Field {
  readonly key: string;
  readonly raw: string;
}

/** Splits a header section (latin1 string) into fields (with their folded lines) and the tail (blank line). */
function splitFields(header: string): { fields: Field[]; tail: string; eol: string } {
  const eol = /\r\n/.test(header.slice(0, header.indexOf('\n') + 1)) ? '\r\n' : '\n';
  let body = header;
  let tail = '';
  const m = /(\r?\n)(\r?\n)$/.exec(header);
  if (m) {
    body = header.slice(0, m.index + m[1]!.length);
    tail = m[2]!;
  } else if (/^\r?\n$/.test(header)) {
    return { fields: [], tail: header, eol };
  }
  const lines = body.split(/(?<=\n)/);
  const fields: Field[] = [];
  for (const line of lines) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length) {
      const last = fields.pop()!;
      fields.push({ key: last.key, raw: last.raw + line });
    } else {
      const colon = line.indexOf(':');
      fields.push({ key: colon > 0 ? line.slice(0, colon).trim().toLowerCase() : '', raw: line });
    }
  }
  return { fields, tail, eol };
}

const ATTR_CHAR = /^[A-Za-z0-9!#$&+.^_`|~-]$/;

/** A file-name parameter: quoted when plain ASCII, else RFC 2231 (UTF-8, continuations of ≤ 60 characters). */
function nameParam(key: string, name: string): string[] {
  if (/^[\x20-\x7e]*$/.test(name) && !/["\\]/.test(name) && name.length <= 60) return [`${key}="${name}"`];
  const enc: string[] = [];
  for (const byte of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(byte);
    enc.push(ATTR_CHAR.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`);
  }
  const segments: string[] = [];
  let cur = '';
  for (const e of enc) {
    if (cur.length + e.length > 60) {
      segments.push(cur);
      cur = '';
    }
    cur += e;
  }
  segments.push(cur);
  return segments.map((s, i) => `${key}*${i}*=${i === 0 ? "utf-8''" : ''}${s}`);
}

/** A header field with parameters, folded between parameters when a line would pass 76 characters. */
function field(name: string, value: string, params: string[], eol: string): string {
  let out = `${name}: ${value}`;
  let line = out.length;
  for (const p of params) {
    if (line + 2 + p.length > 76) {
      out += `;${eol} ${p}`;
      line = 1 + p.length;
    } else {
      out += `; ${p}`;
      line += 2 + p.length;
    }
  }
  return out + eol;
}

/** Replaces the fields with these keys by `added`, at the place of the first one removed. */
function replaceFields(header: Buffer, remove: ReadonlySet<string>, added: (eol: string) => string): Buffer {
  const { fields, tail, eol } = splitFields(header.toString('latin1'));
  let out = '';
  let placed = false;
  for (const f of fields) {
    if (remove.has(f.key)) {
      if (!placed) out += added(eol);
      placed = true;
      continue;
    }
    out += f.raw;
  }
  if (!placed) out += added(eol);
  return Buffer.from(out + (tail || eol), 'latin1');
}

export interface PartLocation {
  readonly range?: { readonly start: number; readonly bodyStart: number; readonly end: number };
  readonly rawHeader: Buffer;
}

/** Defang: Content-Type application/octet-stream with the new name, Content-Disposition attachment; body untouched. */
export function defangEdit(part: PartLocation, newName: string): RewriteEdit {
  const r = part.range!;
  const header = replaceFields(part.rawHeader, new Set(['content-type', 'content-disposition']), (eol) =>
    field('Content-Type', 'application/octet-stream', nameParam('name', newName), eol) +
    field('Content-Disposition', 'attachment', nameParam('filename', newName), eol));
  return { start: r.start, end: r.bodyStart, replacement: header, expect: part.rawHeader };
}

/** Strip: the part's content fields replaced by a text/plain notice, its body by the notice text. */
export function stripEdit(part: PartLocation, notice: string): RewriteEdit {
  const r = part.range!;
  const { eol } = splitFields(part.rawHeader.toString('latin1'));
  const text = notice.replace(/\r?\n/g, eol);
  const plain = /^[\x20-\x7e\r\n\t]*$/.test(text);
  const body = plain ? text : Buffer.from(text, 'utf8').toString('base64').replace(/.{76}/g, `$&${eol}`);
  const header = replaceFields(part.rawHeader,
    new Set(['content-type', 'content-disposition', 'content-transfer-encoding', 'content-description', 'content-length']), (e) =>
      field('Content-Type', 'text/plain', ['charset=utf-8'], e) +
      `Content-Transfer-Encoding: ${plain ? '7bit' : 'base64'}${e}` +
      'Content-Disposition: inline' + e +
      `Content-Description: attachment removed by the mail gateway${e}`);
  const replacement = Buffer.concat([header, Buffer.from(body.endsWith(eol) ? body : body + eol, 'latin1')]);
  return { start: r.start, end: r.end, replacement, expect: part.rawHeader };
}

/** Fills the notice template. */
export function noticeText(template: string, name: string, reason: string): string {
  return template.replace(/\{filename\}/g, `"${name}"`).replace(/\{reason\}/g, reason);
}

/** "X-Portcullis-Attachments: stripped "x.scr" (…); defanged "a.js" as "a.js.txt" (…)". */
export function summaryHeader(changes: readonly AttachmentChange[]): string {
  const items = changes.slice(0, 20).map((c) =>
    c.action === 'strip' ? `stripped "${c.name}" (${c.reason})` : `defanged "${c.name}" as "${showName(c.newName ?? '')}" (${c.reason})`);
  if (changes.length > 20) items.push(`and ${changes.length - 20} more`);
  let value = items.join('; ').replace(/[\r\n\t]+/g, ' ');
  if (value.length > 2000) value = `${value.slice(0, 1997)}...`;
  if (/[^\x20-\x7e]/.test(value)) value = libmime.encodeWords(value, 'Q', 52);
  return `${SUMMARY_HEADER}: ${value}`;
}

/** A plan from edits and changes; undefined when there is nothing to change. */
export function makePlan(sourceSize: number, edits: RewriteEdit[], changes: AttachmentChange[]): RewritePlan | undefined {
  if (!edits.length) return undefined;
  const sorted = [...edits].sort((a, b) => a.start - b.start || b.end - a.end);
  const kept: RewriteEdit[] = [];
  for (const e of sorted) {
    const last = kept[kept.length - 1];
    if (last && e.start < last.end) continue; // inside a wider edit (a strip covers a defang of the same part)
    kept.push(e);
  }
  return { sourceSize, edits: kept, changes, summaryHeader: summaryHeader(changes) };
}

/** Two plans for the same message as one (for several checks that rewrite). */
export function mergePlans(a: RewritePlan, b: RewritePlan): RewritePlan {
  if (a.sourceSize !== b.sourceSize) throw new Error('cannot merge rewrite plans made for different messages');
  const byPath = new Map<string, AttachmentChange>();
  for (const c of [...a.changes, ...b.changes]) {
    const old = byPath.get(c.path);
    if (!old || (old.action === 'defang' && c.action === 'strip')) byPath.set(c.path, c);
  }
  return makePlan(a.sourceSize, [...a.edits, ...b.edits], [...byPath.values()])!;
}

// ---- applying a plan --------------------------------------------------------------------------

class Splice extends Transform {
  private pos = 0;
  private k = 0;

  constructor(private readonly plan: RewritePlan) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    const edits = this.plan.edits;
    let i = 0;
    while (i < chunk.length) {
      const edit = edits[this.k];
      if (!edit) {
        this.push(i ? chunk.subarray(i) : chunk);
        this.pos += chunk.length - i;
        break;
      }
      if (this.pos < edit.start) {
        const n = Math.min(chunk.length - i, edit.start - this.pos);
        this.push(chunk.subarray(i, i + n));
        i += n;
        this.pos += n;
        continue;
      }
      // Inside the edit's range: check the expected bytes, skip the rest.
      const n = Math.min(chunk.length - i, edit.end - this.pos);
      const off = this.pos - edit.start;
      if (off < edit.expect.length) {
        const m = Math.min(n, edit.expect.length - off);
        if (!chunk.subarray(i, i + m).equals(edit.expect.subarray(off, off + m))) {
          return callback(new Error(`rewrite refused: the message differs from the one analysed at byte ${this.pos}`));
        }
      }
      i += n;
      this.pos += n;
      if (this.pos === edit.end) {
        this.push(edit.replacement);
        this.k++;
      }
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    // An edit at the very end with an empty range, or a source shorter than planned.
    while (this.k < this.plan.edits.length && this.plan.edits[this.k]!.start === this.pos && this.plan.edits[this.k]!.end === this.pos) {
      this.push(this.plan.edits[this.k++]!.replacement);
    }
    if (this.k < this.plan.edits.length || this.pos !== this.plan.sourceSize) {
      return callback(new Error(`rewrite refused: the message has ${this.pos} bytes, the plan was made for ${this.plan.sourceSize}`));
    }
    callback();
  }
}

/** The rewritten message as a stream; the source itself when the plan changes nothing. */
export function rewriteStream(source: Readable, plan: RewritePlan | undefined): Readable {
  if (!plan?.edits.length) return source;
  const splice = new Splice(plan);
  source.on('error', (err) => splice.destroy(err));
  return source.pipe(splice);
}

export interface RewriteResult {
  readonly path: string;
  readonly size: number;
  /** The new top-level header section, up to and including the blank line (as the spool keeps it). */
  readonly headerBlock: Buffer;
}

/** Keeps the header section (to the first CRLF CRLF, or a leading CRLF) of what passes through. */
class HeaderCapture extends Transform {
  private parts: Buffer[] = [];
  private len = 0;
  private m = 2;
  private done = false;
  size = 0;

  constructor(private readonly max: number) {
    super();
  }

  get header(): Buffer {
    return Buffer.concat(this.parts, this.len);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (!this.done) {
      let end = -1;
      let m = this.m;
      for (let i = 0; i < chunk.length; i++) {
        const c = chunk[i];
        if (c === 0x0d) m = m === 0 || m === 2 ? m + 1 : 1;
        else if (c === 0x0a && (m === 1 || m === 3)) m++;
        else m = 0;
        if (m === 4) {
          end = i + 1;
          break;
        }
      }
      this.m = m;
      const take = end < 0 ? chunk : chunk.subarray(0, end);
      if (this.len + take.length <= this.max) {
        this.parts.push(Buffer.from(take));
        this.len += take.length;
      }
      if (end >= 0 || this.len >= this.max) this.done = true;
    }
    callback(null, chunk);
  }
}

/**
 * Writes the rewritten message to `dest`: to a temporary file beside it, fsynced, then renamed
 * over `dest`. On any failure the temporary file is removed, `dest` is left as it was, and the
 * error is thrown (the caller answers 4xx: nothing half-rewritten is ever committed).
 */
export async function writeRewritten(
  source: Readable,
  plan: RewritePlan,
  dest: string,
  options: { fsync?: boolean; maxHeader?: number; /** Bytes written before the message (e.g. a header field). */ prefix?: Buffer } = {},
): Promise<RewriteResult> {
  const temp = path.join(path.dirname(dest), `.${path.basename(dest)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.rewrite`);
  const capture = new HeaderCapture(options.maxHeader ?? 16 * 1024 * 1024);
  try {
    const out = fs.createWriteStream(temp, { mode: 0o600 });
    if (options.prefix?.length) out.write(options.prefix);
    await pipeline(rewriteStream(source, plan), capture, out);
    if (options.fsync !== false) {
      const fd = await fsp.open(temp, 'r');
      try {
        await fd.sync();
      } finally {
        await fd.close();
      }
    }
    await fsp.rename(temp, dest);
  } catch (err) {
    await fsp.rm(temp, { force: true });
    throw err;
  }
  return { path: dest, size: capture.size + (options.prefix?.length ?? 0), headerBlock: Buffer.concat([options.prefix ?? Buffer.alloc(0), capture.header]) };
}

/** Collects a rewritten message in memory (tests, `scan` of small files). */
export async function rewriteToBuffer(source: Readable, plan: RewritePlan | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(rewriteStream(source, plan), new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  }));
  return Buffer.concat(chunks);
}
