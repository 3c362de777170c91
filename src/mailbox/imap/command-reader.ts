// Splits the client's byte stream into IMAP commands: a command is one or more lines joined by
// literals ({n} synchronising, {n+} non-synchronising: RFC 3501 4.3, RFC 7888). Everything is
// bounded: a line longer than max_line, a literal larger than allowed (APPEND: the message size
// limit; any other command: max_line), or too many literals in one command is refused without
// buffering it. Protocol code is written here because no maintained standalone IMAP server
// library exists on npm (wildduck's imap-core ships only inside wildduck, tied to MongoDB).

export interface ReaderLimits {
  maxLine: number;
  maxLiteral: number;
  /** Literals one command may carry (APPEND with MULTIAPPEND is not offered). */
  maxLiterals: number;
}

/** A complete command: its lines, and the literal after each line but the last. */
export interface RawCommand {
  readonly lines: string[];
  readonly literals: Buffer[];
  /** Bytes in all. */
  readonly size: number;
}

export type ReaderEvent =
  | { kind: 'command'; command: RawCommand }
  /** A synchronising literal the server will take: send "+ ..." now. */
  | { kind: 'continue' }
  /** A fault: answer `BAD`/`NO` with the text (tag when known); `close` ends the connection. */
  | { kind: 'error'; tag: string | undefined; text: string; code?: string; close: boolean };

const LITERAL_RE = /\{(\d{1,12})(\+?)\}$/;

export class CommandReader {
  private buf: Buffer = Buffer.alloc(0);
  private lines: string[] = [];
  private literals: Buffer[] = [];
  private size = 0;
  private mode: 'line' | 'literal' | 'skipline' | 'discard' = 'line';
  private need = 0;
  private chunks: Buffer[] = [];
  private discardError: ReaderEvent | undefined;

  constructor(private readonly limits: ReaderLimits, private readonly emit: (e: ReaderEvent) => void) {}

  /** Forgets buffered input (after STARTTLS: plaintext pipelined behind it must never run). */
  reset(): number {
    const dropped = this.buf.length;
    this.buf = Buffer.alloc(0);
    this.lines = [];
    this.literals = [];
    this.size = 0;
    this.mode = 'line';
    this.chunks = [];
    return dropped;
  }

  get buffered(): number {
    return this.buf.length;
  }

  feed(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.mode === 'literal' || this.mode === 'discard') {
        if (this.need > 0) {
          if (!this.buf.length) return;
          const take = Math.min(this.need, this.buf.length);
          if (this.mode === 'literal') this.chunks.push(this.buf.subarray(0, take));
          this.buf = this.buf.subarray(take);
          this.need -= take;
          if (this.need > 0) return;
        }
        if (this.mode === 'literal') {
          this.literals.push(Buffer.concat(this.chunks));
          this.chunks = [];
          this.mode = 'line';
        } else {
          // The refused literal is consumed; the rest of its command line follows: skip it.
          this.mode = 'skipline';
          if (this.discardError) this.emit(this.discardError);
          this.discardError = undefined;
        }
        continue;
      }
      const nl = this.buf.indexOf(10);
      if (nl < 0) {
        if (this.mode === 'line' && this.buf.length > this.limits.maxLine) {
          this.emit({ kind: 'error', tag: tagOf(this.lines[0] ?? this.buf.toString('latin1', 0, 64)), text: `Line longer than ${this.limits.maxLine} bytes`, close: false });
          this.mode = 'skipline';
          this.lines = [];
          this.literals = [];
          this.size = 0;
        }
        if (this.mode === 'skipline') this.buf = Buffer.alloc(0);
        return;
      }
      const end = nl > 0 && this.buf[nl - 1] === 13 ? nl - 1 : nl;
      const line = this.buf.toString('latin1', 0, end);
      this.buf = this.buf.subarray(nl + 1);
      if (this.mode === 'skipline') {
        this.mode = 'line';
        continue;
      }
      if (line.length > this.limits.maxLine) {
        this.fail(`Line longer than ${this.limits.maxLine} bytes`, false);
        continue;
      }
      this.lines.push(line);
      this.size += line.length + 2;
      const lit = LITERAL_RE.exec(line);
      if (!lit) {
        const command: RawCommand = { lines: this.lines, literals: this.literals, size: this.size };
        this.lines = [];
        this.literals = [];
        this.size = 0;
        this.emit({ kind: 'command', command });
        continue;
      }
      const n = Number(lit[1]);
      const nonSync = lit[2] === '+';
      const isAppend = /^\S+ APPEND /i.test(this.lines[0]!);
      const max = isAppend ? this.limits.maxLiteral : this.limits.maxLine;
      const tag = tagOf(this.lines[0]!);
      if (this.literals.length >= this.limits.maxLiterals) {
        this.refuse(tag, n, nonSync, 'Too many literals in one command', undefined);
        continue;
      }
      if (n > max || this.size + n > max + 16 * this.limits.maxLine) {
        this.refuse(tag, n, nonSync, isAppend ? `Message larger than ${max} bytes` : `Literal larger than ${max} bytes`, isAppend ? 'TOOBIG' : undefined);
        continue;
      }
      this.size += n;
      this.need = n;
      this.mode = 'literal';
      this.chunks = [];
      if (!nonSync) this.emit({ kind: 'continue' });
    }
  }

  private refuse(tag: string | undefined, n: number, nonSync: boolean, text: string, code: string | undefined): void {
    this.lines = [];
    this.literals = [];
    this.size = 0;
    const error: ReaderEvent = { kind: 'error', tag, text, code, close: false };
    if (!nonSync) {
      // The client waits for "+" before sending: it will not send the literal.
      this.emit(error);
      this.mode = 'line';
      return;
    }
    // A non-synchronising literal is on its way: consume it without keeping it (bounded
    // memory), then answer. RFC 7888 allows closing; discarding keeps a client that guessed
    // the limit wrong connected.
    this.mode = 'discard';
    this.need = n;
    this.discardError = error;
  }

  private fail(text: string, close: boolean): void {
    const tag = tagOf(this.lines[0] ?? '');
    this.lines = [];
    this.literals = [];
    this.size = 0;
    this.emit({ kind: 'error', tag, text, close });
  }
}

function tagOf(line: string): string | undefined {
  const m = /^([\x21-\x7e]+?)(?: |$)/.exec(line);
  if (!m || /[(){%*"\\+]/.test(m[1]!)) return undefined;
  return m[1];
}
