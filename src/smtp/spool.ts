// Receives the (already CRLF-clean, unstuffed) message during DATA: the header section is kept
// in memory, bounded, for checks and rewriting; the body stays in memory while small and is
// streamed to a file in the queue's large/ folder past a threshold, so a 100 MB message costs
// a file, not 100 MB of RAM.
import fs from 'node:fs';
import { Readable } from 'node:stream';

export class MessageSpool {
  private head: Buffer[] = [];
  private headLength = 0;
  /** How many bytes of "\r\n\r\n" are matched so far; starts at 2 so a leading CRLF ends the header. */
  private match = 2;
  headerBlock: Buffer | undefined;
  headerOverflow = false;
  body: Buffer[] | undefined = [];
  private bodyLength = 0;
  private writer: fs.WriteStream | undefined;
  private writeError: Error | undefined;
  size = 0;

  constructor(
    private readonly maxHeader: number,
    private readonly memoryLimit: number,
    /** Full path of the spill file, if it comes to that. */
    readonly spillPath: string,
  ) {}

  get spilled(): boolean {
    return this.writer !== undefined;
  }

  get error(): Error | undefined {
    return this.writeError;
  }

  write(buf: Buffer): void {
    this.size += buf.length;
    if (!this.headerBlock) {
      const end = this.scanHeaderEnd(buf);
      if (end < 0) {
        if (this.headLength + buf.length > this.maxHeader) {
          this.headerOverflow = true;
          return;
        }
        this.head.push(buf);
        this.headLength += buf.length;
        return;
      }
      this.head.push(buf.subarray(0, end));
      this.headerBlock = Buffer.concat(this.head);
      this.head = [];
      if (this.headerBlock.length > this.maxHeader) this.headerOverflow = true;
      buf = buf.subarray(end);
      if (!buf.length) return;
    }
    if (this.headerOverflow) return;
    if (this.writer) {
      this.writer.write(buf);
      return;
    }
    this.body!.push(buf);
    this.bodyLength += buf.length;
    if (this.headerBlock.length + this.bodyLength > this.memoryLimit) this.spill();
  }

  /** Returns the index just past the "\r\n\r\n" that ends the header section, or -1. */
  private scanHeaderEnd(buf: Buffer): number {
    let m = this.match;
    for (let i = 0; i < buf.length; i++) {
      const c = buf[i];
      if (c === 0x0d) m = m === 0 || m === 2 ? m + 1 : 1;
      else if (c === 0x0a && (m === 1 || m === 3)) m++;
      else m = 0;
      if (m === 4) {
        this.match = 4;
        return i + 1;
      }
    }
    this.match = m;
    return -1;
  }

  private spill(): void {
    const writer = fs.createWriteStream(this.spillPath, { mode: 0o600 });
    writer.on('error', (err) => {
      this.writeError ??= err;
    });
    writer.write(this.headerBlock!);
    for (const b of this.body!) writer.write(b);
    this.body = undefined;
    this.writer = writer;
  }

  /** Ends the spool: the header section is final (a message without a body is all header). */
  async finish(): Promise<void> {
    if (!this.headerBlock) {
      this.headerBlock = Buffer.concat(this.head);
      this.head = [];
    }
    if (this.writer) {
      const w = this.writer;
      // Wait for 'close', not only end(): a failed write (ENOSPC) reaches end()'s callback before
      // the 'error' listener has run, and the caller must know of it before it answers "250".
      await new Promise<void>((resolve) => {
        if (w.closed) return resolve();
        w.once('close', () => resolve());
        if (!w.destroyed) {
          w.end((err?: Error | null) => {
            if (err) this.writeError ??= err;
          });
        }
      });
      if (w.errored) this.writeError ??= w.errored;
    }
  }

  /** The message as received (for checks). */
  stream(): Readable {
    if (this.writer) return fs.createReadStream(this.spillPath);
    return Readable.from([this.headerBlock ?? Buffer.alloc(0), ...(this.body ?? [])], { objectMode: false });
  }

  /** Removes the spill file of a message that was refused or abandoned. */
  discard(): void {
    if (this.writer) {
      this.writer.destroy();
      fs.rm(this.spillPath, { force: true }, () => undefined);
    }
    this.body = [];
    this.head = [];
  }
}
