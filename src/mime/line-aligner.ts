// Feeds the MIME splitter whole lines only, and bounds line length.
//
// mailsplit (5.4.x) re-joins its output exactly when every chunk it is given ends at a line end,
// but loses bytes when a chunk ends inside certain lines (seen with the mime4j and Perl MIME-tools
// corpus cut into small chunks); and it buffers a partial line by concatenation, so a 100 MB
// line would cost 100 MB and quadratic copying. This transform hands it chunks that end at LF,
// and cuts lines longer than `maxLine`: the first `maxLine` bytes and the line end are kept,
// the rest is dropped and counted, so positions seen downstream can be mapped back to the
// original stream (`toOriginal`). A cut line is a finding (MIME_LONG_LINE): no standard mail
// has one (RFC 5322 allows 998 characters).
import { Transform, type TransformCallback } from 'node:stream';

const CRLF = Buffer.from('\r\n');
const LF = Buffer.from('\n');

export class LineAligner extends Transform {
  private carry: Buffer[] = [];
  private carryLen = 0;
  private dropping = false;
  private pendingCr = false;
  private droppedTotal = 0;
  /** Drop points in output coordinates: positions >= at map to position + total. */
  private readonly drops: { at: number; total: number }[] = [];
  /** Bytes read from the source and bytes handed on. */
  inputBytes = 0;
  outputBytes = 0;
  /** Lines cut because they were longer than maxLine. */
  longLines = 0;

  constructor(private readonly maxLine: number) {
    super();
  }

  /** Maps a position in the aligned output to the same position in the original input. */
  toOriginal(pos: number): number {
    const d = this.drops;
    if (!d.length || pos < d[0]!.at) return pos;
    let lo = 0;
    let hi = d.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (d[mid]!.at <= pos) lo = mid;
      else hi = mid - 1;
    }
    return pos + d[lo]!.total;
  }

  private out(buf: Buffer): void {
    if (!buf.length) return;
    this.outputBytes += buf.length;
    this.push(buf);
  }

  private takeCarry(tail: Buffer): Buffer {
    const b = this.carry.length ? Buffer.concat([...this.carry, tail]) : tail;
    this.carry = [];
    this.carryLen = 0;
    return b;
  }

  private keep(part: Buffer): void {
    if (!part.length) return;
    this.carry.push(part);
    this.carryLen += part.length;
    // Many tiny chunks: keep the array short (and stop pinning the chunks' memory).
    if (this.carry.length > 32) this.carry = [Buffer.concat(this.carry)];
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.inputBytes += chunk.length;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.dropping) {
        const lf = chunk.indexOf(0x0a, i);
        if (lf < 0) {
          if (this.pendingCr) this.droppedTotal++;
          this.pendingCr = chunk[n - 1] === 0x0d;
          this.droppedTotal += n - i - (this.pendingCr ? 1 : 0);
          return callback();
        }
        let crKept = false;
        if (lf > i && chunk[lf - 1] === 0x0d) {
          crKept = true;
          if (this.pendingCr) this.droppedTotal++;
          this.droppedTotal += lf - 1 - i;
        } else if (lf === i && this.pendingCr) {
          crKept = true;
        } else {
          if (this.pendingCr) this.droppedTotal++;
          this.droppedTotal += lf - i;
        }
        this.pendingCr = false;
        this.drops.push({ at: this.outputBytes + this.carryLen, total: this.droppedTotal });
        this.out(this.takeCarry(crKept ? CRLF : LF));
        this.dropping = false;
        i = lf + 1;
        continue;
      }
      if (this.carryLen + (n - i) <= this.maxLine) {
        // Fast path: no line in here can be too long; hand on everything up to the last LF.
        const last = chunk.lastIndexOf(0x0a);
        if (last < i) {
          this.keep(chunk.subarray(i));
        } else {
          this.out(this.takeCarry(chunk.subarray(i, last + 1)));
          this.keep(chunk.subarray(last + 1));
        }
        return callback();
      }
      const lf = chunk.indexOf(0x0a, i);
      const lineLen = this.carryLen + (lf < 0 ? n : lf) - i;
      if (lineLen <= this.maxLine) {
        if (lf < 0) {
          this.keep(chunk.subarray(i));
          return callback();
        }
        this.out(this.takeCarry(chunk.subarray(i, lf + 1)));
        i = lf + 1;
        continue;
      }
      // Too long: keep the head of the line, drop the rest up to its end.
      const room = this.maxLine - this.carryLen;
      this.keep(chunk.subarray(i, i + room));
      i += room;
      this.dropping = true;
      this.longLines++;
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.dropping) {
      this.drops.push({ at: this.outputBytes + this.carryLen, total: this.droppedTotal });
      this.out(this.takeCarry(this.pendingCr ? Buffer.from('\r') : Buffer.alloc(0)));
      this.pendingCr = false;
    } else if (this.carryLen) {
      this.out(this.takeCarry(Buffer.alloc(0)));
    }
    callback();
  }
}
