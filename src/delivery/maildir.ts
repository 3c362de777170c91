// Local delivery into Maildir++ (the layout Dovecot reads). The mailbox directory holds INBOX
// (tmp/ new/ cur/) and the Junk folder in .Junk/ (its own tmp/ new/ cur/ and a maildirfolder
// file). A message is written to tmp/ under a unique name, fsynced, renamed into new/, and the
// new/ directory is fsynced: only then does the queue forget its copy. A failure at any step
// removes the file, so new/ never holds half a message.
import fs from 'node:fs';
import { appendFile, mkdir, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Content, MailFolder } from './types.js';

export interface MaildirOptions {
  /** fsync the message file and the new/ directory before reporting success. */
  readonly fsync: boolean;
  /** Host name put in the file names (Dovecot escapes '/' and ':' in it). */
  readonly hostname: string;
}

/** A delivery that did not happen; `temporary` tells the queue whether to try again. */
export class MaildirDeliveryError extends Error {
  override readonly name = 'MaildirDeliveryError';
  constructor(
    message: string,
    readonly temporary: boolean,
    readonly code: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// Errors that will be the same on the next attempt: the path itself is wrong. Everything else
// (ENOSPC, EDQUOT, EIO, EMFILE, EACCES that an admin can fix, ...) is worth another try.
const PERMANENT_CODES = new Set(['ENOTDIR', 'EISDIR', 'ENAMETOOLONG', 'ELOOP', 'EINVAL', 'ESIZEMISMATCH']);

/** Whether a file-system error code is worth retrying later. */
export function isTemporaryFsError(code: string | undefined): boolean {
  return code === undefined || !PERMANENT_CODES.has(code);
}

const JUNK_DIR = '.Junk';
const SUBDIRS = ['tmp', 'new', 'cur'] as const;

// One counter per process, shared by every instance, so names stay unique within a process;
// the pid and the clock keep them apart between processes.
let deliveryCounter = 0;

const errCode = (err: unknown): string | undefined =>
  typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string'
    ? (err as { code: string }).code
    : undefined;

const ignore = () => {};

// The hot path uses plain descriptors: FileHandle adds measurable overhead per message.
const openFd = promisify(fs.open);
const writeFd = promisify(fs.write);
const closeFd = promisify(fs.close);
const fdatasync = promisify(fs.fdatasync);
const fsyncFd = promisify(fs.fsync);

/** fsync a directory so the entries just added to it survive a crash. */
async function fsyncDir(dir: string): Promise<void> {
  const fd = await openFd(dir, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    await closeFd(fd);
  }
}

export class MaildirDelivery {
  private readonly fsync: boolean;
  private readonly host: string;
  /** Folder directories known to exist with tmp/ new/ cur/: folder dir → its creation. */
  private readonly ready = new Map<string, Promise<void>>();
  /** Group commit of directory fsyncs: one in flight per directory, later callers share the next. */
  private readonly dirSyncs = new Map<string, { running?: Promise<void>; queued?: Promise<void> }>();

  constructor(opts: MaildirOptions) {
    this.fsync = opts.fsync;
    this.host = opts.hostname.replace(/\//g, '\\057').replace(/:/g, '\\072');
  }

  /**
   * Deliver one message into `folder` of the Maildir at `mailboxDir`; resolves with the file
   * name in new/. Throws a MaildirDeliveryError (with `temporary`) and leaves nothing behind.
   */
  async deliver(mailboxDir: string, folder: MailFolder, content: Content): Promise<string> {
    const dir = folder === 'Junk' ? path.join(mailboxDir, JUNK_DIR) : mailboxDir;
    const name = this.uniqueName(content.size);
    const tmpPath = path.join(dir, 'tmp', name);
    const newDir = path.join(dir, 'new');
    const newPath = path.join(newDir, name);

    let fd: number | undefined;
    let stage: 'tmp' | 'new' = 'tmp';
    try {
      await this.ensureFolder(mailboxDir, folder, dir);
      try {
        fd = await openFd(tmpPath, 'wx', 0o600);
      } catch (err) {
        // The folder was removed behind our back (an admin deleted a mailbox): create it again.
        if (errCode(err) !== 'ENOENT') throw err;
        this.ready.delete(dir);
        await this.ensureFolder(mailboxDir, folder, dir);
        fd = await openFd(tmpPath, 'wx', 0o600);
      }
      const written = await writeAll(fd, content);
      if (written !== content.size) {
        throw Object.assign(new Error(`message is ${written} bytes, the queue said ${content.size}`), {
          code: 'ESIZEMISMATCH',
        });
      }
      if (this.fsync) await fdatasync(fd);
      const closing = fd;
      fd = undefined;
      await closeFd(closing);
      await rename(tmpPath, newPath);
      stage = 'new';
      if (this.fsync) await this.syncDir(newDir);
      return name;
    } catch (err) {
      if (fd !== undefined) await closeFd(fd).catch(ignore);
      // After the rename the file is visible but not yet durable: take it back, the queue
      // still holds the message and will try again.
      await unlink(stage === 'new' ? newPath : tmpPath).catch(ignore);
      throw toDeliveryError(err, mailboxDir, folder);
    }
  }

  /** `<sec>.M<usec>P<pid>Q<counter>.<hostname>,S=<size>`, as Dovecot names its files. */
  private uniqueName(size: number): string {
    const ms = Date.now();
    const sec = Math.floor(ms / 1000);
    const usec = (ms % 1000) * 1000 + Number((process.hrtime.bigint() / 1000n) % 1000n);
    deliveryCounter += 1;
    return `${sec}.M${usec}P${process.pid}Q${deliveryCounter}.${this.host},S=${size}`;
  }

  private ensureFolder(mailboxDir: string, folder: MailFolder, dir: string): Promise<void> {
    let p = this.ready.get(dir);
    if (!p) {
      p = this.createFolder(mailboxDir, folder, dir);
      this.ready.set(dir, p);
      p.catch(() => this.ready.delete(dir));
    }
    return p;
  }

  private async createFolder(mailboxDir: string, folder: MailFolder, dir: string): Promise<void> {
    if (folder === 'Junk') await this.ensureFolder(mailboxDir, 'INBOX', mailboxDir);
    const firstCreated = await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const sub of SUBDIRS) {
      await mkdir(path.join(dir, sub), { mode: 0o700 }).catch((err: unknown) => {
        if (errCode(err) !== 'EEXIST') throw err;
      });
    }
    if (folder === 'Junk') {
      // Dovecot's mark of a Maildir++ sub-folder, then the subscription so clients show it.
      await appendFile(path.join(dir, 'maildirfolder'), '', { mode: 0o600 });
      await subscribe(mailboxDir, 'Junk');
    }
    if (this.fsync) {
      // Make the new directory entries durable: the folder itself and, when mkdir created
      // parents, each of them from the first one's parent down.
      const chain: string[] = [dir];
      if (firstCreated !== undefined) {
        for (let d = path.dirname(dir); ; d = path.dirname(d)) {
          chain.push(d);
          if (d === path.dirname(firstCreated) || d === path.dirname(d)) break;
        }
      }
      for (const d of chain) await fsyncDir(d);
      if (folder === 'Junk') await fsyncDir(mailboxDir);
    }
  }

  /**
   * fsync `dir` after an entry was added to it. Deliveries arriving while an fsync is in
   * flight share the next one (their rename may have come after the running one started).
   */
  private syncDir(dir: string): Promise<void> {
    let st = this.dirSyncs.get(dir);
    if (!st) {
      st = {};
      this.dirSyncs.set(dir, st);
    }
    const state = st;
    if (!state.running && !state.queued) return this.startSync(dir, state);
    if (!state.queued) {
      const running = state.running ?? Promise.resolve();
      state.queued = running.then(ignore, ignore).then(() => {
        state.queued = undefined;
        return this.startSync(dir, state);
      });
    }
    return state.queued;
  }

  private startSync(dir: string, state: { running?: Promise<void>; queued?: Promise<void> }): Promise<void> {
    const p: Promise<void> = fsyncDir(dir).finally(() => {
      if (state.running === p) state.running = undefined;
      if (!state.running && !state.queued && this.dirSyncs.get(dir) === state) this.dirSyncs.delete(dir);
    });
    state.running = p;
    return p;
  }
}

async function writeAll(fd: number, content: Content): Promise<number> {
  if (content.buffers) return writevAll(fd, content.buffers);
  let written = 0;
  for await (const chunk of content.stream()) {
    const buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await writeFd(fd, buf, off, buf.length - off);
      off += bytesWritten;
    }
    written += buf.length;
  }
  return written;
}

/** One writev for a message held in memory (the common case): a single trip to the thread pool. */
async function writevAll(fd: number, buffers: readonly Buffer[]): Promise<number> {
  let pending = buffers.filter((b) => b.length > 0);
  const total = pending.reduce((n, b) => n + b.length, 0);
  let written = 0;
  while (pending.length) {
    let n = await writevFd(fd, pending);
    written += n;
    // A short write: drop what went out and go on with the rest.
    const rest: Buffer[] = [];
    for (const b of pending) {
      if (n >= b.length) n -= b.length;
      else {
        rest.push(n > 0 ? b.subarray(n) : b);
        n = 0;
      }
    }
    pending = rest;
  }
  if (written !== total) throw new Error(`short write: ${written} of ${total} bytes`);
  return written;
}

function writevFd(fd: number, buffers: Buffer[]): Promise<number> {
  return new Promise((resolve, reject) => fs.writev(fd, buffers, (err, n) => (err ? reject(err) : resolve(n))));
}

/** Add `name` to the mailbox's Dovecot `subscriptions` file unless it is already there. */
async function subscribe(mailboxDir: string, name: string): Promise<void> {
  const file = path.join(mailboxDir, 'subscriptions');
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errCode(err) !== 'ENOENT') throw err;
  }
  // Both Dovecot formats (a bare list, or "V\t2" then a blank line then the list) hold a
  // top-level mailbox as its name alone on a line.
  if (text.split(/\r?\n/).includes(name)) return;
  const sep = text.length > 0 && !text.endsWith('\n') ? '\n' : '';
  await appendFile(file, `${sep}${name}\n`, { mode: 0o600 });
}

function toDeliveryError(err: unknown, mailboxDir: string, folder: MailFolder): MaildirDeliveryError {
  const code = errCode(err);
  const why = err instanceof Error ? err.message : String(err);
  return new MaildirDeliveryError(`delivery to ${mailboxDir} (${folder}) failed: ${why}`,
    isTemporaryFsError(code), code, { cause: err });
}
