// Streaming walk of a message: one pass over the bytes, parts found with mailsplit, each leaf
// part's content decoded chunk by chunk, sniffed, and offered to inspectors. Memory is bounded
// whatever the message size: a line (max_line_size), a part header (max_header_size), the sniff
// window and the inspectors' stream buffers; nothing holds a whole part.
//
// The walk never throws on bad MIME: truncated base64, missing or confusing boundaries,
// too-deep nesting, huge headers become issues (MIME_* symbols). Issues marked `fatal` mean the
// walk could not see the whole message as a mail client would: the caller decides (by default
// the message is refused, since something unseen may hide there).
//
// For the one rewriter (rewrite.ts), every leaf part carries its byte range in the original
// stream (header start, body start, body end), so a rewrite splices only what changes and
// copies every other byte as it came.
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setMaxListeners } from 'node:events';
import { decoderFor, type Decoder } from './decoders.js';
import { decodeHeaderWords, fieldValue, fileNames } from './filenames.js';
import { SNIFF_BYTES, sniff, type FileType } from './filetype.js';
import type { InspectContext, Inspector, InspectorFinding, MessageInspection, PartInfo } from './inspector.js';
import { LineAligner } from './line-aligner.js';
import { TrackingSplitter, type MsNode, type MsObject } from './splitter.js';

export interface WalkLimits {
  /** Deeper nesting stops the walk (MIME_TOO_DEEP, fatal). */
  readonly maxDepth: number;
  /** More parts stop the walk (MIME_TOO_MANY_PARTS, fatal). */
  readonly maxParts: number;
  /** Largest header section of one part (MIME_HEADER_TOO_BIG, fatal). */
  readonly maxHeaderBytes: number;
  /** Largest sum of all part headers (MIME_HEADER_TOO_BIG, fatal). */
  readonly maxTotalHeaderBytes: number;
  /** Longer lines are cut for parsing (MIME_LONG_LINE, fatal). */
  readonly maxLineBytes: number;
  /** Decoded bytes of one part given to each inspector; the rest is not shown to them. */
  readonly maxScanBytes: number;
  /** Time budget of the whole walk (MIME_SCAN_TIMEOUT, fatal). */
  readonly timeoutMs: number;
}

export const DEFAULT_LIMITS: WalkLimits = {
  maxDepth: 100,
  maxParts: 1000,
  maxHeaderBytes: 1024 * 1024,
  maxTotalHeaderBytes: 4 * 1024 * 1024,
  maxLineBytes: 1024 * 1024,
  maxScanBytes: 32 * 1024 * 1024,
  timeoutMs: 30_000,
};

/** Something wrong with the MIME structure or encoding. */
export interface MimeIssue {
  readonly symbol: string;
  readonly reason: string;
  /** The walk could not see the message as a client would (the rest is unseen or ambiguous). */
  readonly fatal: boolean;
  readonly path?: string;
}

/** Where a part's bytes are in the original message (absent for parts of an encoded attached message). */
export interface ByteRange {
  /** First byte of the part's header section. */
  readonly start: number;
  /** First byte of the body (just after the blank line). */
  readonly bodyStart: number;
  /** Just past the body (before the CRLF that precedes the next boundary line). */
  readonly end: number;
}

export interface PartReport extends PartInfo {
  readonly fileType: FileType;
  /** Decoded bytes. */
  readonly size: number;
  /** Bytes as transmitted (encoded body). */
  readonly encodedSize: number;
  /** Longer than maxScanBytes: inspectors saw only the head. */
  readonly truncated: boolean;
  readonly range?: ByteRange;
  /** Whether the transfer encoding was one we decode (7bit, 8bit, binary, base64, quoted-printable). */
  readonly decoded: boolean;
  /** What inspectors found, with the inspector's name. */
  readonly findings: readonly (InspectorFinding & { readonly inspector: string })[];
}

/** A finished leaf part, as handed to onPart: with its raw header section (for rewriting). */
export interface WalkedPart extends PartReport {
  /** The part's header section as received, blank line included. */
  readonly rawHeader: Buffer;
}

export interface WalkOptions {
  readonly limits?: Partial<WalkLimits>;
  readonly inspectors?: readonly Inspector[];
  /** Called once per leaf part when it ends, in message order. */
  onPart?(part: WalkedPart): void | Promise<void>;
}

export interface WalkResult {
  /** Leaf parts, in message order (attached messages' parts after their container's inner walk). */
  readonly parts: readonly PartReport[];
  readonly issues: readonly MimeIssue[];
  /** No fatal issue: every byte was seen the way a mail client would see it. */
  readonly complete: boolean;
  /** Bytes read from the input. */
  readonly bytes: number;
  /** The parts' byte ranges are exact (false: the rewriter must not use them). */
  readonly mapped: boolean;
  /** Findings of inspectors' finish() (and failures of their begin()), after the last part. */
  readonly late: readonly (InspectorFinding & { readonly inspector: string })[];
}

// ---- the walk ---------------------------------------------------------------------------------

interface MultipartMeta {
  readonly boundary?: string;
  closed: boolean;
  delimiters: number;
}
interface NodeMeta {
  readonly path: string;
  readonly depth: number;
  children: number;
  readonly multipart?: MultipartMeta;
}

interface Feed {
  readonly inspector: { readonly name: string; readonly inspection: MessageInspection };
  readonly stream: PassThrough;
  written: number;
  settled: boolean;
  result?: InspectorFinding & { inspector: string };
  readonly done: Promise<void>;
}

interface Leaf {
  readonly node: MsNode;
  readonly info: PartInfo;
  readonly start: number;
  readonly bodyStart: number;
  readonly rawHeader: Buffer;
  readonly decoder: Decoder;
  readonly known: boolean;
  head: Buffer[];
  headLen: number;
  fileType?: FileType;
  size: number;
  encodedSize: number;
  feeds: Feed[];
  nested?: { input: PassThrough; done: Promise<WalkResult> };
}

class StopWalk extends Error {}

/** Counters shared by a walk and the walks of attached messages inside it. */
interface Budget {
  parts: number;
  headerBytes: number;
  readonly signal: AbortSignal;
  /** The inspectors' work on this message, begun at its first header. */
  inspections?: { readonly name: string; readonly inspection: MessageInspection }[];
  readonly late: (InspectorFinding & { inspector: string })[];
}

const SYMBOL_FOR_SPLITTER_ERROR: [RegExp, string][] = [
  [/header size/i, 'MIME_HEADER_TOO_BIG'],
  [/child nodes/i, 'MIME_TOO_MANY_PARTS'],
];

class Walk {
  private readonly metas = new WeakMap<MsNode, NodeMeta>();
  private readonly seenOrphans = new WeakSet<MsNode>();
  private readonly issues: MimeIssue[] = [];
  private readonly parts: PartReport[] = [];
  private readonly multiparts: MultipartMeta[] = [];
  private pos = 0;
  private stopped = false;
  /** run() has returned (after a stop): late part endings are dropped. */
  private over = false;
  private mapped = true;
  private leaf: Leaf | undefined;
  private readonly aligner: LineAligner;

  constructor(
    private readonly limits: WalkLimits,
    private readonly options: WalkOptions,
    private readonly budget: Budget,
    /** Path of the attached message this walk is inside, and its depth. */
    private readonly container?: { path: string; depth: number },
  ) {
    this.aligner = new LineAligner(limits.maxLineBytes);
  }

  async run(input: Readable): Promise<WalkResult> {
    const splitter = new TrackingSplitter({
      defaultInlineEmbedded: true,
      maxHeadSize: this.limits.maxHeaderBytes,
      maxChildNodes: this.limits.maxParts + 1,
    });
    const consume = async (source: AsyncIterable<MsObject>) => {
      for await (const obj of source) {
        if (this.budget.signal.aborted) throw new StopWalk('timeout');
        await this.handle(obj);
      }
      await this.closeLeaf();
      this.finish();
    };
    // Streams destroyed on a stop can emit a late error (an AbortError from the iterator's
    // clean-up) after the pipeline settled: it must not become an uncaught exception.
    const ignore = () => undefined;
    splitter.on('error', ignore);
    this.aligner.on('error', ignore);
    input.on('error', ignore);
    try {
      await pipeline(input, this.aligner, splitter, consume, { signal: this.budget.signal });
    } catch (err) {
      this.over = true;
      await this.abandonLeaf();
      const e = err as Error & { code?: string };
      if (this.budget.signal.aborted) {
        this.issue('MIME_SCAN_TIMEOUT', `MIME walk stopped after ${this.limits.timeoutMs} ms`, true);
      } else if (this.stopped || e instanceof StopWalk) {
        // An issue already says why (the pipeline may report its own AbortError instead of ours).
      } else if (e.code === 'EMAXLEN') {
        const symbol = SYMBOL_FOR_SPLITTER_ERROR.find(([re]) => re.test(e.message))?.[1] ?? 'MIME_MALFORMED';
        this.issue(symbol, symbol === 'MIME_HEADER_TOO_BIG' ? `a part header is larger than ${this.limits.maxHeaderBytes} bytes` : `more than ${this.limits.maxParts} MIME parts`, true);
      } else {
        // A read error of the source is not a MIME problem: the caller must know.
        throw err;
      }
    }
    if (this.aligner.longLines) this.issue('MIME_LONG_LINE', `${this.aligner.longLines} line(s) longer than ${this.limits.maxLineBytes} bytes`, true);
    if (!this.container) await this.end();
    return {
      parts: this.parts, issues: this.issues, complete: !this.issues.some((i) => i.fatal), bytes: this.aligner.inputBytes,
      mapped: this.mapped, late: this.container ? [] : this.budget.late,
    };
  }

  private issue(symbol: string, reason: string, fatal: boolean, path?: string): void {
    if (this.issues.some((i) => i.symbol === symbol && i.fatal === fatal)) return;
    this.issues.push({ symbol, reason: path !== undefined ? `${reason} (part ${path})` : reason, fatal, path });
  }

  private stop(symbol: string, reason: string, path?: string): never {
    this.issue(symbol, reason, true, path);
    this.stopped = true;
    throw new StopWalk();
  }

  private orig(p: number): number {
    return this.aligner.toOriginal(p);
  }

  private account(node: MsNode): void {
    if (node._orphan && !this.seenOrphans.has(node)) {
      this.seenOrphans.add(node);
      this.pos += node._orphan.length;
      this.issue('MIME_MALFORMED', 'a part header cut short by a boundary line', false);
    }
  }

  private async handle(obj: MsObject): Promise<void> {
    if (obj.type === 'node') {
      await this.closeLeaf();
      this.account(obj);
      return this.onNode(obj);
    }
    if (obj.type === 'body' && this.leaf && obj.node === this.leaf.node) {
      const value = obj.value;
      if (!value?.length) return;
      this.scanLines(value, obj.node, false);
      this.pos += value.length;
      return this.onBody(this.leaf, value);
    }
    await this.closeLeaf();
    this.account(obj.node);
    const value = obj.value;
    if (!value?.length) return;
    this.scanLines(value, obj.node, obj.type === 'data');
    this.pos += value.length;
  }

  private async onNode(node: MsNode): Promise<void> {
    const header = node.getHeaders();
    const start = this.pos;
    this.pos += header.length;
    const parent = node.parentNode || undefined;
    const parentMeta = parent ? this.metas.get(parent) : undefined;
    const base = this.container;
    let path: string;
    let depth: number;
    if (!parent || !parentMeta) {
      depth = base ? base.depth + 1 : 0;
      path = node.multipart ? (base?.path ?? '') : base ? `${base.path}.1` : '1';
    } else if (parent.messageNode) {
      // The root of an attached message shown inline: section numbers continue below it.
      depth = parentMeta.depth + 1;
      path = node.multipart ? parentMeta.path : `${parentMeta.path}.1`;
    } else {
      depth = parentMeta.depth + 1;
      const n = ++parentMeta.children;
      path = parentMeta.path ? `${parentMeta.path}.${n}` : String(n);
    }
    if (depth > this.limits.maxDepth) this.stop('MIME_TOO_DEEP', `MIME nesting deeper than ${this.limits.maxDepth}`, path || '0');
    if (++this.budget.parts > this.limits.maxParts) this.stop('MIME_TOO_MANY_PARTS', `more than ${this.limits.maxParts} MIME parts`);
    this.budget.headerBytes += header.length;
    if (this.budget.headerBytes > this.limits.maxTotalHeaderBytes) {
      this.stop('MIME_HEADER_TOO_BIG', `part headers add up to more than ${this.limits.maxTotalHeaderBytes} bytes`);
    }
    let multipart: MultipartMeta | undefined;
    if (node.multipart) {
      const boundary = node._boundary ? node._boundary.toString('latin1') : undefined;
      if (!boundary) this.issue('MIME_NO_BOUNDARY', `${node.contentType} without a boundary parameter`, false, path || '0');
      multipart = { boundary, closed: false, delimiters: 0 };
      this.multiparts.push(multipart);
    }
    this.metas.set(node, { path, depth, children: 0, multipart });
    if (!this.budget.inspections) this.begin(node);
    if (node.multipart || node.messageNode) return;
    this.openLeaf(node, path, depth, start, header);
  }

  /** Starts every inspector's work on this message, telling it the Subject. */
  private begin(root: MsNode): void {
    const subject = root.headers.get('subject').map(fieldValue).map(decodeHeaderWords)[0] ?? '';
    const recipients = [...root.headers.get('to'), ...root.headers.get('cc')].map(fieldValue)
      .flatMap((v) => v.match(/[^\s<>"(),;:]+@[^\s<>"(),;:]+/g) ?? []).slice(0, 50);
    this.budget.inspections = [];
    for (const inspector of this.options.inspectors ?? []) {
      try {
        this.budget.inspections.push({ name: inspector.name, inspection: inspector.begin({ subject: subject.slice(0, 1000), recipients }) });
      } catch (err) {
        this.budget.late.push({ inspector: inspector.name, symbols: [{ name: 'INSPECTOR_FAILED', reason: `${inspector.name}: ${(err as Error)?.message ?? err}` }] });
      }
    }
  }

  /** After the message: the inspectors' finish(), bounded by the walk's time budget. */
  async end(): Promise<void> {
    for (const { name, inspection } of this.budget.inspections ?? []) {
      if (!inspection.finish || this.budget.signal.aborted) continue;
      try {
        const found = await Promise.race([
          inspection.finish(this.budget.signal),
          new Promise<never>((_, reject) => this.budget.signal.addEventListener('abort', () => reject(new Error('timed out')), { once: true })),
        ]);
        for (const f of found ?? []) this.budget.late.push({ ...f, inspector: name });
      } catch (err) {
        this.budget.late.push({ inspector: name, symbols: [{ name: 'INSPECTOR_FAILED', reason: `${name}: ${(err as Error)?.message ?? err}` }] });
      }
    }
  }

  private openLeaf(node: MsNode, path: string, depth: number, start: number, rawHeader: Buffer): void {
    const contentType = node.contentType || 'text/plain';
    const encoding = (node.encoding || '').toLowerCase();
    const disposition = node.disposition || undefined;
    const filenames = fileNames(node.headers.get('content-disposition').map(fieldValue), node.headers.get('content-type').map(fieldValue));
    const isAttachment = filenames.length > 0 || disposition === 'attachment' || !/^(text|multipart)\//.test(contentType);
    const info: PartInfo = {
      path, depth, contentType, disposition, encoding, filenames, filename: filenames[0], isAttachment,
      container: this.container?.path,
    };
    const { decoder, known } = decoderFor(encoding);
    if (!known) this.issue('MIME_UNKNOWN_ENCODING', `unknown Content-Transfer-Encoding "${encoding.slice(0, 40)}"`, false, path);
    this.leaf = {
      node, info, start, bodyStart: this.pos, rawHeader, decoder, known,
      head: [], headLen: 0, size: 0, encodedSize: 0, feeds: [],
    };
    if (contentType === 'message/rfc822' || contentType === 'message/global') {
      // An attached message the splitter did not open (marked "attachment", or encoded): walk
      // its decoded content as a message of its own, one level down.
      const input = new PassThrough({ highWaterMark: 64 * 1024 });
      const inner = new Walk(this.limits, this.options, this.budget, { path, depth });
      const done = inner.run(input).catch((err: Error): WalkResult => ({
        parts: [], bytes: 0, complete: false, mapped: false, late: [],
        issues: [{ symbol: 'MIME_MALFORMED', reason: `attached message ${path}: ${err.message}`, fatal: true, path }],
      }));
      this.leaf.nested = { input, done };
    }
  }

  private async onBody(leaf: Leaf, value: Buffer): Promise<void> {
    leaf.encodedSize += value.length;
    await this.deliver(leaf, leaf.decoder.write(value));
  }

  private async deliver(leaf: Leaf, buf: Buffer): Promise<void> {
    if (!buf.length) return;
    leaf.size += buf.length;
    if (!leaf.fileType) {
      leaf.head.push(buf);
      leaf.headLen += buf.length;
      if (leaf.headLen < SNIFF_BYTES) return;
      const all = Buffer.concat(leaf.head, leaf.headLen);
      leaf.head = [];
      return this.startConsumers(leaf, all);
    }
    return this.feed(leaf, buf);
  }

  /** Sniffs the head, starts the inspectors that want the part, and gives them the head. */
  private async startConsumers(leaf: Leaf, head: Buffer): Promise<void> {
    leaf.fileType = sniff(head.subarray(0, SNIFF_BYTES));
    const type = leaf.fileType;
    for (const inspector of this.budget.inspections ?? []) {
      let wanted = false;
      try {
        wanted = inspector.inspection.wants(leaf.info, type);
      } catch {
        wanted = false;
      }
      if (!wanted) continue;
      const stream = new PassThrough({ highWaterMark: 64 * 1024 });
      stream.on('error', () => undefined);
      const sniffHead = head.subarray(0, SNIFF_BYTES);
      const ctx: InspectContext = {
        signal: this.budget.signal,
        head: sniffHead,
        truncated: () => leaf.size > this.limits.maxScanBytes,
      };
      const feed: Feed = {
        inspector, stream, written: 0, settled: false,
        done: Promise.resolve()
          .then(() => inspector.inspection.inspect(leaf.info, type, stream, ctx))
          .then(
            (r) => ({ ...(r ?? {}), inspector: inspector.name }),
            (err: Error) => ({ inspector: inspector.name, symbols: [{ name: 'INSPECTOR_FAILED', reason: `${inspector.name}: ${err?.message ?? err}` }] }),
          )
          .then((r) => {
            feed.result = r;
            feed.settled = true;
            if (!stream.writableEnded) stream.destroy();
          }),
      };
      leaf.feeds.push(feed);
    }
    await this.feed(leaf, head);
  }

  /** Writes decoded bytes to every consumer, waiting while one is full (backpressure). */
  private async feed(leaf: Leaf, buf: Buffer): Promise<void> {
    for (const f of leaf.feeds) {
      if (f.settled || f.stream.destroyed || f.stream.writableEnded) continue;
      const room = this.limits.maxScanBytes - f.written;
      if (room <= 0) {
        f.stream.end();
        continue;
      }
      const part = buf.length > room ? buf.subarray(0, room) : buf;
      f.written += part.length;
      if (!f.stream.write(part)) await waitDrain(f.stream, f.done, this.budget.signal);
    }
    const nested = leaf.nested;
    if (nested && !nested.input.destroyed) {
      if (!nested.input.write(buf)) await waitDrain(nested.input, nested.done, this.budget.signal);
    }
  }

  private async closeLeaf(): Promise<void> {
    const leaf = this.leaf;
    if (!leaf) return;
    this.leaf = undefined;
    const end = this.pos;
    await this.deliver(leaf, leaf.decoder.end());
    if (!leaf.fileType) await this.startConsumers(leaf, Buffer.concat(leaf.head, leaf.headLen));
    for (const p of leaf.decoder.problems) {
      const symbol = leaf.info.encoding === 'base64' ? 'MIME_BAD_BASE64' : 'MIME_BAD_QP';
      this.issue(symbol, p, false, leaf.info.path);
    }
    for (const f of leaf.feeds) if (!f.stream.writableEnded && !f.stream.destroyed) f.stream.end();
    await settle(leaf.feeds.map((f) => f.done), this.budget.signal);
    let innerParts: readonly PartReport[] = [];
    if (leaf.nested) {
      leaf.nested.input.end();
      const inner = await leaf.nested.done;
      innerParts = inner.parts;
      for (const i of inner.issues) this.issues.push(i);
    }
    const report: PartReport = {
      ...leaf.info,
      fileType: leaf.fileType!,
      size: leaf.size,
      encodedSize: leaf.encodedSize,
      truncated: leaf.size > this.limits.maxScanBytes,
      range: this.container ? undefined : { start: this.orig(leaf.start), bodyStart: this.orig(leaf.bodyStart), end: this.orig(end) },
      decoded: leaf.known,
      findings: leaf.feeds.map((f) => f.result ?? { inspector: f.inspector.name, symbols: [{ name: 'INSPECTOR_FAILED', reason: `${f.inspector.name}: no answer in time` }] })
        .filter((r) => r.symbols?.length || r.action || r.tempfail || r.archive?.length || r.scans?.length || r.virus || r.scanFailure),
    };
    // A walk that was stopped has returned already: what is still finishing is not reported.
    if (this.over) return;
    this.parts.push(...innerParts, report);
    await this.options.onPart?.({ ...report, rawHeader: leaf.rawHeader });
  }

  /** On a stop: release the inspectors and an inner walk without waiting for more content. */
  private async abandonLeaf(): Promise<void> {
    const leaf = this.leaf;
    if (!leaf) return;
    this.leaf = undefined;
    for (const f of leaf.feeds) if (!f.stream.destroyed) f.stream.destroy();
    if (leaf.nested) {
      leaf.nested.input.destroy();
      const inner = await leaf.nested.done.catch(() => undefined);
      for (const i of inner?.issues ?? []) this.issues.push(i);
    }
    await settle(leaf.feeds.map((f) => f.done), this.budget.signal);
  }

  private finish(): void {
    // Multiparts never closed (common in cut-off mail), or whose boundary never appeared (their
    // content is invisible to us and to clients alike).
    const unclosed = this.multiparts.filter((m) => m.boundary && m.delimiters > 0 && !m.closed).length;
    if (unclosed) this.issue('MIME_UNCLOSED', `${unclosed} multipart(s) without a closing boundary`, false);
    const empty = this.multiparts.filter((m) => m.boundary && m.delimiters === 0).length;
    if (empty) this.issue('MIME_NO_BOUNDARY', `${empty} multipart(s) whose boundary never appears`, false);
    const total = this.pos;
    if (total !== this.aligner.outputBytes) {
      // The parts' byte ranges cannot be trusted: the rewriter must not use them.
      this.mapped = false;
      this.issue('MIME_MALFORMED', `MIME structure could not be mapped onto the message bytes (${total} of ${this.aligner.outputBytes})`, true);
    }
  }

  /** Delimiter-like lines: closes, and lines a client may take for a boundary but mailsplit did not. */
  private scanLines(value: Buffer, node: MsNode, isData: boolean): void {
    if (value.indexOf('--') < 0) return;
    let from = 0;
    // Lines start at 0 (after a carried CRLF) and after every LF.
    while (from < value.length) {
      let s = from;
      while (s < value.length && (value[s] === 0x0d || value[s] === 0x0a) && s - from < 2) s++;
      let eol = value.indexOf(0x0a, s);
      if (eol < 0) eol = value.length;
      if (value[s] === 0x2d && value[s + 1] === 0x2d) {
        this.checkDelimiter(value.subarray(s, eol).toString('latin1').replace(/\r$/, ''), node, isData);
      }
      const next = value.indexOf('\n--', eol);
      if (next < 0) break;
      from = next + 1;
    }
  }

  private checkDelimiter(line: string, node: MsNode, isData: boolean): void {
    const own = node._boundary ? node._boundary.toString('latin1') : undefined;
    const parentB = node._parentBoundary ? node._parentBoundary.toString('latin1') : undefined;
    for (let n: MsNode | false = node; n; n = n.parentNode) {
      const m = this.metas.get(n)?.multipart;
      const b = m?.boundary;
      if (!m || !b || !line.startsWith(`--${b}`)) continue;
      const rest = line.slice(b.length + 2);
      const close = rest.startsWith('--');
      const tail = close ? rest.slice(2) : rest;
      if (tail !== '' && !/^[ \t]+$/.test(tail)) continue;
      if (close) {
        // A close delimiter ends what follows for clients too (it becomes an epilogue), so even
        // when mailsplit misses it nothing is hidden from us; a later delimiter is checked itself.
        m.closed = true;
        return;
      }
      if (isData && tail === '' && (b === own || b === parentB)) {
        m.delimiters++;
        return;
      }
      const path = this.metas.get(n)?.path || '0';
      this.stop('MIME_BAD_BOUNDARY', tail !== ''
        ? 'a boundary line with trailing blanks (clients disagree on it)'
        : 'a boundary of an enclosing multipart inside a part that was not closed (clients disagree on it)', path);
    }
  }

}

/** Waits for promises, or for the abort of the walk, whichever comes first. */
function settle(promises: Promise<unknown>[], signal: AbortSignal): Promise<unknown> {
  if (!promises.length || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      signal.removeEventListener('abort', done);
      resolve(undefined);
    };
    signal.addEventListener('abort', done, { once: true });
    Promise.all(promises).then(done, done);
  });
}

function waitDrain(stream: PassThrough, settled: Promise<unknown>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
    signal.addEventListener('abort', done, { once: true });
    settled.then(done, done);
  });
}

/** Walks a message (a stream of its bytes, as received) within limits; never throws on bad MIME. */
export async function walkMessage(input: Readable, options: WalkOptions = {}): Promise<WalkResult> {
  const limits: WalkLimits = { ...DEFAULT_LIMITS, ...options.limits };
  // A timer of our own (AbortSignal.timeout's is unref'd: a stalled walk would let the process exit).
  const controller = new AbortController();
  // Each nested walk's pipeline and each waiting write listen to it: at most about maxDepth.
  setMaxListeners(limits.maxDepth + 50, controller.signal);
  const timer = setTimeout(() => controller.abort(), limits.timeoutMs);
  try {
    return await new Walk(limits, options, { parts: 0, headerBytes: 0, signal: controller.signal, late: [] }).run(input);
  } finally {
    clearTimeout(timer);
  }
}
