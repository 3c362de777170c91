// A stored message as POP3 puts it on the wire (RFC 1939 s3): every line ends in CRLF whatever
// the file holds (Maildir files may use LF or CRLF: the SMTP path stores CRLF, files written by
// other tools often LF), a line that starts with "." gets a second one (byte-stuffing), and TOP
// stops after the header and the first n body lines. A byte-level state machine over chunks,
// so a message of any size streams through in bounded memory and a CR or LF split across two
// chunks is still seen as one line end.

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

export interface WireEncoderOptions {
  /** Byte-stuff lines starting with "." (on for the wire, off to count the message size). */
  readonly stuff: boolean;
  /** TOP: body lines to send after the header; undefined sends the whole message. */
  readonly bodyLines?: number;
}

export class WireEncoder {
  private atLineStart = true;
  private lastCR = false;
  /** The current line has held nothing but an optional CR so far (to spot the blank line ending the header). */
  private lineEmpty = true;
  private inHeader = true;
  private bodyLinesSent = 0;
  private finished = false;
  /** Octets produced so far, not counting stuffing: the message size as RFC 1939 means it. */
  octets = 0;

  private readonly bodyLimit: number | undefined;

  constructor(private readonly opts: WireEncoderOptions) {
    this.bodyLimit = opts.bodyLines;
  }

  /** True once TOP has sent all it should: the caller can stop reading the file. */
  get done(): boolean {
    return this.finished;
  }

  push(chunk: Buffer): Buffer {
    if (this.finished) return Buffer.alloc(0);
    // Worst case every byte is a LF that becomes CRLF, or a "." that is doubled.
    const out = Buffer.allocUnsafe(chunk.length * 2 + 1);
    let o = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === LF) {
        if (!this.lastCR) {
          out[o++] = CR;
          this.octets++;
        }
        out[o++] = LF;
        this.octets++;
        this.endLine();
        if (this.finished) break;
        continue;
      }
      if (this.atLineStart && b === DOT && this.opts.stuff) out[o++] = DOT;
      out[o++] = b;
      this.octets++;
      if (b !== CR || this.lastCR) this.lineEmpty = false;
      this.lastCR = b === CR;
      this.atLineStart = false;
    }
    return out.subarray(0, o);
  }

  /**
   * After the last chunk: a message that does not end with a line break gets one, so the
   * terminating "." stands on its own line (not counted in `octets`).
   */
  end(): Buffer {
    if (this.finished || this.atLineStart) return Buffer.alloc(0);
    this.finished = true;
    return Buffer.from(this.lastCR ? '\n' : '\r\n');
  }

  private endLine(): void {
    const wasEmpty = this.lineEmpty;
    this.atLineStart = true;
    this.lastCR = false;
    this.lineEmpty = true;
    if (this.bodyLimit === undefined) return;
    if (this.inHeader) {
      if (wasEmpty) {
        this.inHeader = false;
        if (this.bodyLimit === 0) this.finished = true;
      }
      return;
    }
    this.bodyLinesSent++;
    if (this.bodyLinesSent >= this.bodyLimit) this.finished = true;
  }
}

/** The whole message through one encoder (tests and small messages). */
export function encodeForWire(message: Buffer, opts: WireEncoderOptions): Buffer {
  const enc = new WireEncoder(opts);
  return Buffer.concat([enc.push(message), enc.end()]);
}
