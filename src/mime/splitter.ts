// mailsplit (Andris Reinman's streaming MIME splitter), typed as far as the walk uses it, with
// two repairs:
// - the header lines of a part cut short by a boundary line are kept, so the byte positions the
//   walk computes from the splitter's output stay exact;
// - a chunk is split in one synchronous pass. mailsplit 5.4 hands on one line per event-loop
//   turn (a setImmediate after every line), which made the walk of a 5 KB message cost a
//   hundred macrotasks; its line processing (processLine) is synchronous, so the loop below
//   runs it line after line and yields only between chunks. The chunk is as large as the
//   caller's (the spool's 64 KiB reads, or a whole message in memory), so a large message still
//   yields to the event loop between slices, and memory stays bounded by the chunk.
import { createRequire } from 'node:module';
import type { Transform, TransformCallback } from 'node:stream';

export interface MsHeaders {
  get(key: string): string[];
}
export interface MsNode {
  readonly type: 'node';
  readonly parentNode: MsNode | false;
  readonly contentType: string | false;
  readonly multipart: string | false;
  readonly encoding: string | false;
  readonly disposition: string | false;
  readonly messageNode?: boolean;
  readonly _boundary: Buffer | false;
  readonly _parentBoundary: Buffer | false;
  readonly headers: MsHeaders;
  getHeaders(): Buffer;
  /** Set by TrackingSplitter: header lines of a node that a boundary cut short (never emitted). */
  _orphan?: Buffer;
}
export type MsObject = MsNode | { readonly type: 'data' | 'body'; readonly node: MsNode; value?: Buffer };

type Group = { type: 'none' | 'node' | 'data' | 'body'; node: MsNode; value?: Buffer };
type LineResult = (err: Error | null, data?: Group | false, flush?: boolean) => void;
interface SplitterInternals {
  node?: MsNode & { _headerlen: number; _headersLines: Buffer[]; headers: MsHeaders | false };
  state: number;
  line: Buffer | false;
  hasFailed: boolean;
  processLine(line: Buffer | false, final: boolean, next: LineResult): void;
  push(obj: unknown): boolean;
}
type SplitterClass = new (options: object) => Transform & { newNode(parent: unknown): void };
const require = createRequire(import.meta.url);
const { Splitter } = require('mailsplit') as { Splitter: SplitterClass };
const HEAD_STATE = 0x01;
/** Bytes split in one go before the event loop gets a turn. */
const SLICE_BYTES = 256 * 1024;

/**
 * mailsplit's Splitter with a synchronous chunk loop and exact positions (see the top of the file).
 */
export class TrackingSplitter extends Splitter {
  override newNode(parent: unknown): void {
    const self = this as unknown as SplitterInternals;
    const old = self.node;
    const orphan = old && self.state === HEAD_STATE && old._headerlen && !old.headers ? Buffer.concat(old._headersLines, old._headerlen) : undefined;
    super.newNode(parent);
    if (orphan && self.node) self.node._orphan = orphan;
  }

  /**
   * mailsplit 5.4.6's _transform (lib/message-splitter.js, MIT licence), the same grouping of
   * lines into body and data slices, with `setImmediate(iterateData)` turned into a loop: the
   * per-line callback of processLine is always called synchronously.
   */
  override _transform(chunk: Buffer, encoding: BufferEncoding, callback: TransformCallback): void {
    // A large chunk (a whole message in memory) is split in slices that end at a line end, with
    // a turn of the event loop between them: the walk's time budget can stop it there.
    if (chunk.length > SLICE_BYTES) {
      const lf = chunk.indexOf(0x0a, SLICE_BYTES - 1);
      if (lf >= 0 && lf + 1 < chunk.length) {
        return this.splitSlice(chunk.subarray(0, lf + 1), (err) => {
          if (err) return callback(err);
          setImmediate(() => this._transform(chunk.subarray(lf + 1), encoding, callback));
        });
      }
    }
    this.splitSlice(chunk, callback);
  }

  private splitSlice(chunk: Buffer, callback: TransformCallback): void {
    const self = this as unknown as SplitterInternals;
    let pos = 0;
    let i = 0;
    let group: Group = { type: 'none' } as Group;
    let groupstart = self.line ? -self.line.length : 0;
    let groupend = 0;
    let failure: Error | undefined;

    const checkTrailingLinebreak = (data: Group) => {
      if (data.type === 'body' && data.node.parentNode && data.value && data.value.length) {
        if (data.value[data.value.length - 1] === 0x0a) {
          groupstart--;
          groupend--;
          pos--;
          if (data.value.length > 1 && data.value[data.value.length - 2] === 0x0d) {
            groupstart--;
            groupend--;
            pos--;
            if (groupstart < 0 && !self.line) {
              // store only <CR> as <LF> should be on the positive side
              self.line = Buffer.from([0x0d]);
            }
            data.value = data.value.subarray(0, data.value.length - 2);
          } else {
            data.value = data.value.subarray(0, data.value.length - 1);
          }
        } else if (data.value[data.value.length - 1] === 0x0d) {
          groupstart--;
          groupend--;
          pos--;
          data.value = data.value.subarray(0, data.value.length - 1);
        }
      }
    };
    /** Leaves the last line ending out of a body slice (it belongs to the next boundary). */
    const trimBodyEnd = () => {
      if (group.type === 'body' && groupend >= groupstart && group.node.parentNode) {
        if (chunk[groupend - 1] === 0x0a) {
          groupend--;
          if (groupend >= groupstart && chunk[groupend - 1] === 0x0d) groupend--;
        }
      }
    };

    const onLine: LineResult = (err, data, flush) => {
      if (err) {
        self.hasFailed = true;
        failure = err;
        return;
      }
      if (!data) return;
      if (flush) {
        if (group && group.type !== 'none') {
          trimBodyEnd();
          if (groupstart !== groupend) {
            group.value = chunk.subarray(groupstart, groupend);
            if (groupend < i) data.value = chunk.subarray(groupend, i);
          }
          self.push(group);
          group = { type: 'none' } as Group;
          groupstart = groupend = i;
        }
        self.push(data);
        groupend = i;
        return;
      }
      if (data.type === group.type) {
        groupend = i; // shift slice end position forward
        return;
      }
      trimBodyEnd();
      if (group.type !== 'none' && group.type !== 'node' && groupstart !== groupend) {
        // a previous data/body slice to hand on
        group.value = chunk.subarray(groupstart, groupend);
        if (group.value && group.value.length) {
          self.push(group);
          group = { type: 'none' } as Group;
        }
      }
      if (data.type === 'node') {
        self.push(data);
        groupstart = i;
        groupend = i;
      } else if (groupstart < 0) {
        groupstart = i;
        groupend = i;
        checkTrailingLinebreak(data);
        if (data.value && data.value.length) self.push(data);
      } else {
        // start a new body/data slice
        group = data;
        groupstart = groupend;
        groupend = i;
      }
    };

    for (let len = chunk.length; i < len;) {
      // find the next <LF>
      const lf = chunk.indexOf(0x0a, i);
      if (lf < 0) break;
      const start = Math.max(pos, 0);
      pos = i = lf + 1;
      self.processLine(chunk.subarray(start, i), false, onLine);
      if (failure) return callback(failure);
    }

    // skip the last line break of a body
    if (pos >= groupstart + 1 && group.type === 'body' && group.node.parentNode) {
      if (chunk[pos - 1] === 0x0a) {
        pos--;
        if (pos >= groupstart && chunk[pos - 1] === 0x0d) pos--;
      }
    }
    if (group.type !== 'none' && group.type !== 'node' && pos > groupstart) {
      // a leftover data/body slice to hand on
      group.value = chunk.subarray(groupstart, pos);
      if (group.value && group.value.length) self.push(group);
    }
    if (pos < chunk.length) self.line = self.line ? Buffer.concat([self.line, chunk.subarray(pos)]) : chunk.subarray(pos);
    callback();
  }
}
