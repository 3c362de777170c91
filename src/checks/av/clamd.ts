// A clamd client (ClamAV's daemon, clamd(8) "COMMANDS"): zPING, zVERSION and zINSTREAM over a
// unix socket or TCP. INSTREAM sends the data in chunks, each prefixed with its length as a
// 4-byte big-endian integer, and a zero-length chunk to end; clamd answers "stream: OK",
// "stream: <signature> FOUND" or "<message> ERROR" (NUL-terminated with the z prefix).
//
// Scanner failure is a result, not an exception (rspamd): scanStream() never throws. It tells a
// virus from a clean stream, from a stream too large to scan (clamd's StreamMaxLength, whose
// "INSTREAM size limit exceeded" reply can arrive while we are still sending, or our own
// maximum, past which nothing is sent), from clamd failing or being unreachable. Every call has
// a deadline (connect, send and reply together); at most maxConcurrency scans run at once, the
// others wait their turn inside their deadline.
import net from 'node:net';

export type ClamdAddress = { readonly kind: 'unix'; readonly path: string } | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

export type ScanResult =
  | { readonly kind: 'clean' }
  | { readonly kind: 'virus'; readonly signature: string }
  /** Not scanned: larger than clamd's StreamMaxLength ('clamd') or our own maximum ('client'). */
  | { readonly kind: 'too-large'; readonly limit: 'clamd' | 'client'; readonly bytes: number }
  /** clamd answered with an error (its words in `reason`). */
  | { readonly kind: 'error'; readonly reason: string }
  /** clamd could not be reached, or did not answer in time. */
  | { readonly kind: 'unavailable'; readonly reason: string };

export interface ClamdOptions {
  readonly address: ClamdAddress;
  /** Deadline of one call (waiting for a slot, connecting, sending, clamd scanning). Default 30 s. */
  readonly timeoutMs?: number;
  /** Deadline of the connection alone. Default min(timeoutMs, 5 s). */
  readonly connectTimeoutMs?: number;
  /** Bytes we send at most; a longer stream is reported too-large without being sent. Default 25 MiB. */
  readonly maxStreamBytes?: number;
  /** Scans in flight at once (clamd's own MaxThreads is 10 by default). Default 8. */
  readonly maxConcurrency?: number;
  /** INSTREAM chunk size. Default 64 KiB. */
  readonly chunkSize?: number;
}

/** Parses "/run/clamav/clamd.ctl", "unix:/path", "127.0.0.1:3310", "[::1]:3310", "tcp://host:3310", "localhost:3310". */
export function parseClamdAddress(text: string): ClamdAddress {
  const t = text.trim();
  if (t.startsWith('unix:')) return { kind: 'unix', path: t.slice(5).replace(/^\/\/(?=\/)/, '') };
  if (t.startsWith('/') || t.startsWith('./')) return { kind: 'unix', path: t };
  const hp = t.replace(/^tcp:\/\//, '');
  const m = /^\[([0-9a-f:.]+)\]:(\d{1,5})$/i.exec(hp) ?? /^([^:\s/]+):(\d{1,5})$/.exec(hp);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new Error(`"${text}" is not a clamd address (a socket path, or host:port)`);
  return { kind: 'tcp', host: m[1]!, port: Number(m[2]) };
}

export function formatClamdAddress(a: ClamdAddress): string {
  return a.kind === 'unix' ? a.path : a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Interprets one clamd reply line (NUL and newline stripped). */
export function parseScanReply(reply: string): ScanResult {
  const r = reply.replace(/[\0\r\n]+$/g, '').trim();
  // With IDSESSION the reply carries a request number: "1: stream: OK". We do not use sessions,
  // but accept it.
  const body = r.replace(/^\d+:\s*/, '');
  if (/^stream:\s*OK$/i.test(body)) return { kind: 'clean' };
  const found = /^stream:\s*(.+?)\s+FOUND$/i.exec(body);
  if (found) return { kind: 'virus', signature: found[1]!.trim() };
  if (/size limit exceeded/i.test(body)) return { kind: 'too-large', limit: 'clamd', bytes: 0 };
  if (/ERROR$/.test(body)) return { kind: 'error', reason: body.replace(/\s*ERROR$/, '') || 'ERROR' };
  return { kind: 'error', reason: `unexpected reply: ${body.slice(0, 200)}` };
}

/** A failure of ping()/version(). */
export class ClamdError extends Error {
  override readonly name = 'ClamdError';
}

/** A counting semaphore whose waiters give up at their deadline. */
class Slots {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly max: number) {}

  async acquire(deadline: number): Promise<boolean> {
    if (this.active < this.max) {
      this.active++;
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const grant = () => {
        clearTimeout(timer);
        this.active++;
        resolve(true);
      };
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1);
        resolve(false);
      }, Math.max(0, deadline - Date.now()));
      this.waiting.push(grant);
    });
  }

  release(): void {
    this.active--;
    const next = this.waiting.shift();
    if (next) next();
  }

  get inFlight(): number {
    return this.active;
  }
}

export class ClamdClient {
  readonly address: ClamdAddress;
  private readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  readonly maxStreamBytes: number;
  private readonly chunkSize: number;
  private readonly slots: Slots;

  constructor(options: ClamdOptions) {
    this.address = options.address;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.connectTimeoutMs = Math.min(options.connectTimeoutMs ?? 5_000, this.timeoutMs);
    this.maxStreamBytes = options.maxStreamBytes ?? 25 * 1024 * 1024;
    this.chunkSize = Math.max(1024, Math.min(options.chunkSize ?? 64 * 1024, 1024 * 1024));
    this.slots = new Slots(Math.max(1, options.maxConcurrency ?? 8));
  }

  /** Scans in flight now. */
  get inFlight(): number {
    return this.slots.inFlight;
  }

  /** zPING → PONG; throws ClamdError otherwise. */
  async ping(): Promise<void> {
    const r = await this.command('zPING\0');
    if (r !== 'PONG') throw new ClamdError(`clamd answered "${r}" to PING`);
  }

  /** zVERSION, e.g. "ClamAV 1.4.6/27000/Thu Nov 28 09:00:00 2024"; throws ClamdError. */
  async version(): Promise<string> {
    return this.command('zVERSION\0');
  }

  /** Scans one buffer (see scanStream). */
  scanBuffer(data: Uint8Array): Promise<ScanResult> {
    return this.scan((async function* () {
      yield data;
    })());
  }

  /**
   * Sends `stream` to clamd with zINSTREAM and returns what clamd found. Never throws. The stream
   * is consumed (or destroyed when the scan ends early).
   */
  scanStream(stream: NodeJS.ReadableStream | AsyncIterable<Uint8Array | string>): Promise<ScanResult> {
    return this.scan(stream as AsyncIterable<Uint8Array | string>, stream);
  }

  private async scan(source: AsyncIterable<Uint8Array | string>, destroyable?: unknown): Promise<ScanResult> {
    const deadline = Date.now() + this.timeoutMs;
    if (!(await this.slots.acquire(deadline))) {
      destroyQuietly(destroyable);
      return { kind: 'unavailable', reason: `no free clamd slot within ${this.timeoutMs} ms (${this.slots.inFlight} scans in flight)` };
    }
    try {
      return await this.instream(source, deadline);
    } catch (err) {
      return { kind: 'unavailable', reason: (err as Error).message };
    } finally {
      this.slots.release();
      destroyQuietly(destroyable);
    }
  }

  private async instream(source: AsyncIterable<Uint8Array | string>, deadline: number): Promise<ScanResult> {
    const conn = await this.connect(deadline);
    const { socket } = conn;
    try {
      socket.write('zINSTREAM\0');
      let sent = 0;
      for await (const piece of source) {
        const buf = typeof piece === 'string' ? Buffer.from(piece, 'latin1') : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
        for (let off = 0; off < buf.length; off += this.chunkSize) {
          // clamd may answer before the end (size limit exceeded, or an error): stop sending.
          if (conn.reply !== undefined || conn.failed) return this.settled(conn, conn.result(), sent);
          const chunk = buf.subarray(off, Math.min(off + this.chunkSize, buf.length));
          if (sent + chunk.length > this.maxStreamBytes) {
            return { kind: 'too-large', limit: 'client', bytes: sent + chunk.length };
          }
          const header = Buffer.allocUnsafe(4);
          header.writeUInt32BE(chunk.length, 0);
          sent += chunk.length;
          const ok = socket.write(Buffer.concat([header, chunk]));
          if (!ok) await conn.drained(deadline);
          // Let the event loop read: an early reply (size limit) is seen before the next write.
          else await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
      if (conn.reply === undefined && !conn.failed) socket.write(Buffer.alloc(4));
      return await this.settled(conn, await conn.answered(deadline), sent);
    } finally {
      socket.destroy();
    }
  }

  private async settled(conn: Connection, result: ScanResult, sent: number): Promise<ScanResult> {
    if (result.kind === 'too-large') return { ...result, bytes: sent };
    if (result.kind === 'unavailable' && conn.brokenPipe && sent > 0) return this.afterBrokenPipe(result, sent);
    return result;
  }

  /**
   * clamd closed the connection while we were sending, and its reply was lost with the socket.
   * It does that after "INSTREAM size limit exceeded"; if it still answers PING it is alive and
   * that was the reason, otherwise it is down.
   */
  private async afterBrokenPipe(result: ScanResult, sent: number): Promise<ScanResult> {
    try {
      await this.ping();
      return { kind: 'too-large', limit: 'clamd', bytes: sent };
    } catch {
      return result;
    }
  }

  /** One z-command with a NUL-terminated one-line answer. */
  private async command(cmd: string): Promise<string> {
    const deadline = Date.now() + this.timeoutMs;
    let conn: Connection;
    try {
      conn = await this.connect(deadline);
    } catch (err) {
      throw new ClamdError((err as Error).message);
    }
    try {
      conn.socket.write(cmd);
      await conn.answered(deadline);
      if (conn.reply === undefined) throw new ClamdError(conn.failure ?? 'no answer');
      return conn.reply;
    } finally {
      conn.socket.destroy();
    }
  }

  private connect(deadline: number): Promise<Connection> {
    const where = formatClamdAddress(this.address);
    return new Promise<Connection>((resolve, reject) => {
      const socket = this.address.kind === 'unix' ? net.createConnection({ path: this.address.path }) : net.createConnection({ host: this.address.host, port: this.address.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to clamd at ${where} timed out after ${this.connectTimeoutMs} ms`));
      }, Math.max(0, Math.min(this.connectTimeoutMs, deadline - Date.now())));
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new Error(`cannot connect to clamd at ${where}: ${err.code ?? err.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new Connection(socket, where));
      });
    });
  }
}

/** A connected socket, collecting clamd's NUL-terminated reply whenever it comes. */
class Connection {
  reply?: string;
  failure?: string;
  /** The connection broke under our writes (EPIPE/ECONNRESET). */
  brokenPipe = false;
  private buf = '';
  private waiters: Array<() => void> = [];

  constructor(readonly socket: net.Socket, private readonly where: string) {
    socket.setEncoding('latin1');
    socket.on('data', (s: string) => {
      if (this.reply !== undefined) return;
      this.buf += s;
      const nul = this.buf.indexOf('\0');
      if (nul >= 0) this.settle(this.buf.slice(0, nul).trim());
      else if (this.buf.length > 4096) this.fail('clamd reply too long');
    });
    // EPIPE/ECONNRESET after clamd answered early (size limit) is expected: the reply counts.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') this.brokenPipe = true;
      this.fail(`clamd connection error: ${err.code ?? err.message}`);
    });
    socket.on('close', () => {
      if (this.reply === undefined && this.buf.trim()) this.settle(this.buf.trim());
      else this.fail('clamd closed the connection without answering');
    });
    socket.on('drain', () => this.wake());
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  result(): ScanResult {
    if (this.reply !== undefined) return parseScanReply(this.reply);
    return { kind: 'unavailable', reason: `${this.failure ?? 'no answer'} (${this.where})` };
  }

  /** Resolves once clamd has answered or the connection failed; a timeout is a failure. */
  async answered(deadline: number): Promise<ScanResult> {
    await this.until(() => this.reply !== undefined || this.failed, deadline, 'answer');
    return this.result();
  }

  async drained(deadline: number): Promise<void> {
    let drained = false;
    const onDrain = () => {
      drained = true;
    };
    this.socket.once('drain', onDrain);
    try {
      await this.until(() => drained || this.reply !== undefined || this.failed, deadline, 'to read our data');
    } finally {
      this.socket.off('drain', onDrain);
    }
  }

  private async until(done: () => boolean, deadline: number, what: string): Promise<void> {
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        this.fail(`clamd timed out waiting for ${what}`);
        return;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private settle(reply: string): void {
    if (this.reply !== undefined || this.failure !== undefined) return;
    this.reply = reply;
    this.wake();
  }

  private fail(reason: string): void {
    if (this.reply !== undefined || this.failure !== undefined) return;
    this.failure = reason;
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

function destroyQuietly(s: unknown): void {
  const d = s as { destroy?: () => void } | undefined;
  if (d && typeof d.destroy === 'function') {
    try {
      d.destroy();
    } catch {
      // already gone
    }
  }
}
