// mailsplit (Andris Reinman's streaming MIME splitter), typed as far as the walk uses it, with
// one repair: the header lines of a part cut short by a boundary line are kept, so the byte
// positions the walk computes from the splitter's output stay exact.
import { createRequire } from 'node:module';
import type { Transform } from 'node:stream';

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
export type MsObject = MsNode | { readonly type: 'data' | 'body'; readonly node: MsNode; readonly value?: Buffer };

interface SplitterInternals {
  node?: MsNode & { _headerlen: number; _headersLines: Buffer[]; headers: MsHeaders | false };
  state: number;
}
type SplitterClass = new (options: object) => Transform & { newNode(parent: unknown): void };
const require = createRequire(import.meta.url);
const { Splitter } = require('mailsplit') as { Splitter: SplitterClass };
const HEAD_STATE = 0x01;

/**
 * mailsplit drops the header lines of a part when a boundary line arrives before the blank
 * line that should end them (a "header cut short"). Keep them, so byte positions stay exact.
 */
export class TrackingSplitter extends Splitter {
  override newNode(parent: unknown): void {
    const self = this as unknown as SplitterInternals;
    const old = self.node;
    const orphan = old && self.state === HEAD_STATE && old._headerlen && !old.headers ? Buffer.concat(old._headersLines, old._headerlen) : undefined;
    super.newNode(parent);
    if (orphan && self.node) self.node._orphan = orphan;
  }
}
