// The DATA phase as a byte-level state machine.
//
// Only <CR><LF>.<CR><LF> ends the message (RFC 5321 s4.1.1.4). A "." line that follows a bare
// <LF> or a bare <CR> is message content, never the end: this is what defeats SMTP smuggling
// (CVE-2023-51764 and kin), where an outbound server passes "\n.\r\n" through and an inbound
// server that accepts it would read the rest as a second, forged message.
//
// Bare <LF> and bare <CR> are either normalised to <CR><LF> inside the same message (the
// default, as Postfix's smtpd_forbid_bare_newline=normalize) or make the message fail with 550
// after the real end of data ("reject"). Either way the output is CRLF-clean, so nothing we
// store or relay can carry an ambiguous line ending onward. Dot-stuffing is undone only on
// lines that began after a proper <CR><LF>, the lines a conforming client stuffed.
//
// Written by hand rather than taken from smtp-server because its data stream ends a message on
// "\n.\r\n" as well, and the smuggling defence must live exactly here.

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const LF_ONLY = Buffer.from('\n');
const DOT_ONLY = Buffer.from('.');

const enum S {
  /** At the start of a line that followed CRLF (or the start of data). */
  LineStart,
  /** At the start of a line that followed a bare LF or CR: no end-of-data, no unstuffing. */
  WeakLineStart,
  /** Inside a line. */
  Mid,
  /** Saw CR inside a line (or at a line start). */
  Cr,
  /** Saw "." at LineStart. */
  Dot,
  /** Saw ".\r" at LineStart. */
  DotCr,
  Done,
}

export interface DataReaderResult {
  /** Bytes of the chunk consumed; the rest belongs to the command stream (pipelining). */
  consumed: number;
  done: boolean;
}

export class DataReader {
  private state: S = S.LineStart;
  /** Message bytes produced (after unstuffing and normalising). */
  size = 0;
  /** Bare LF or CR seen in the data. */
  bareNewlines = 0;
  /** Size limit exceeded: output stopped, reading goes on to the end of data. */
  overflow = false;

  constructor(
    private readonly maxSize: number,
    private readonly emit: (chunk: Buffer) => void,
    private readonly onBareNewline: 'normalize' | 'reject' = 'normalize',
  ) {}

  get finished(): boolean {
    return this.state === S.Done;
  }

  private out(buf: Buffer): void {
    if (buf.length === 0 || this.overflow) return;
    if (this.size + buf.length > this.maxSize) {
      this.overflow = true;
      return;
    }
    this.size += buf.length;
    this.emit(buf);
  }

  /** A bare line ending: count it and write what completes it to CRLF. */
  private bare(completion: Buffer): void {
    this.bareNewlines++;
    this.out(completion);
  }

  push(chunk: Buffer): DataReaderResult {
    // Bytes are copied through in spans (subarrays, no copy); only the places where the output
    // differs from the input (a stuffed dot, a bare line ending) break a span.
    let i = 0;
    let spanStart = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.state) {
        case S.LineStart:
          if (chunk[i] === DOT) {
            this.flush(chunk, spanStart, i);
            this.state = S.Dot;
            spanStart = ++i;
          } else this.state = S.Mid;
          continue;
        case S.WeakLineStart:
          this.state = S.Mid;
          continue;
        case S.Mid: {
          let j = i;
          while (j < n && chunk[j] !== CR && chunk[j] !== LF) j++;
          if (j >= n) {
            i = n;
          } else if (chunk[j] === CR) {
            this.state = S.Cr;
            i = j + 1;
          } else {
            this.flush(chunk, spanStart, j);
            this.bare(CRLF);
            this.state = S.WeakLineStart;
            spanStart = i = j + 1;
          }
          continue;
        }
        case S.Cr:
          if (chunk[i] === LF) {
            this.state = S.LineStart;
            i++;
          } else {
            // A lone CR (already passed through): complete it to CRLF; this byte starts a weak line.
            this.flush(chunk, spanStart, i);
            this.bare(LF_ONLY);
            this.state = S.WeakLineStart;
            spanStart = i;
          }
          continue;
        case S.Dot: {
          const c = chunk[i];
          if (c === CR) {
            this.state = S.DotCr;
            spanStart = ++i;
          } else if (c === LF) {
            // ".\n": a lone dot ended by a bare LF is content ".", never the end of data.
            this.out(DOT_ONLY);
            this.bare(CRLF);
            this.state = S.WeakLineStart;
            spanStart = ++i;
          } else {
            // The dot was stuffing: it is dropped and the line goes on ("..x" gives ".x").
            this.state = S.Mid;
            spanStart = i;
          }
          continue;
        }
        case S.DotCr:
          if (chunk[i] === LF) {
            this.state = S.Done;
            return { consumed: i + 1, done: true };
          }
          // ".\r" then something else: content "." and a bare CR.
          this.out(DOT_ONLY);
          this.bare(CRLF);
          this.state = S.WeakLineStart;
          spanStart = i;
          continue;
        case S.Done:
          return { consumed: i, done: true };
      }
    }
    if (this.state !== S.Dot && this.state !== S.DotCr) this.flush(chunk, spanStart, n);
    return { consumed: n, done: false };
  }

  private flush(chunk: Buffer, from: number, to: number): void {
    if (to > from) this.out(chunk.subarray(from, to));
  }

  /** Whether the message must be refused for bare line endings under the "reject" setting. */
  get rejectBareNewline(): boolean {
    return this.onBareNewline === 'reject' && this.bareNewlines > 0;
  }
}
