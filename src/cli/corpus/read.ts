// Reading training mail from what people have on disk: one message file (.eml, or anything that
// looks like a message), a directory of them (recursive, sorted, dotfiles skipped), an mbox
// (mboxo/mboxrd: split on "From " lines, ">From " unquoted), or a tarball (.tar, .tar.gz, .tgz,
// streamed through node:zlib and the attachment scanner's tar parser, never loaded whole).
// Symbolic links to files and folders are read like what they point to (each real folder once,
// so a link loop ends); a Maildir (a folder with cur/ and new/) is read from cur/ and new/ and
// its Maildir++ subfolders (.Junk/cur …), never from tmp/, where deliveries are half written.
//
// Bounded: a message larger than `maxBytes` is skipped with a notice (its bytes are counted and
// dropped, never accumulated); an mbox or tarball of any size streams through in small chunks.
// Unreadable inputs (permissions, a broken tar header, a truncated gzip) are notices too: the
// caller counts them, nothing throws out of the iterator for a bad file.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { TarParser, TarError } from '../../mime/archive-tar.js';

export interface CorpusMessage {
  /** Where it came from: a file path, "mbox#N" for the Nth message of an mbox, "tarball:entry". */
  readonly name: string;
  readonly raw: Buffer;
}

export interface CorpusNotice {
  readonly name: string;
  readonly reason: string;
}

export interface ReadOptions {
  /** Messages larger than this are skipped (onSkip). Default 10 MiB. */
  readonly maxBytes?: number;
  /** Called for each message or input that was skipped, with why. */
  readonly onSkip?: (notice: CorpusNotice) => void;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024;
const CHUNK = 64 * 1024;

/** Every message under `input`, in a deterministic order. */
export async function* readMessages(input: string, options: ReadOptions = {}): AsyncGenerator<CorpusMessage> {
  const opts = { maxBytes: options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES, onSkip: options.onSkip ?? (() => {}) };
  for await (const f of listFiles(input, opts.onSkip)) yield* readFile(f.path, f.size, opts);
}

type Opts = { maxBytes: number; onSkip: (n: CorpusNotice) => void };

export interface CorpusFile {
  readonly path: string;
  readonly size: number;
}

/**
 * The files `readMessages` would open under `input` (links followed, Maildir tmp/ left out),
 * with their sizes: what a progress display needs to estimate the time left.
 */
export async function* listFiles(input: string, onSkip: (n: CorpusNotice) => void = () => {}): AsyncGenerator<CorpusFile> {
  let st: fs.Stats;
  try {
    st = fs.statSync(input);
  } catch (err) {
    onSkip({ name: input, reason: errText(err) });
    return;
  }
  if (st.isDirectory()) yield* walkDirectory(input, onSkip, new Set());
  else if (st.isFile()) yield { path: input, size: st.size };
  else onSkip({ name: input, reason: 'not a file or directory' });
}

/** A Maildir: a folder holding both cur/ and new/ (tmp/ may be missing in a copied one). */
async function isMaildir(dir: string): Promise<boolean> {
  const sub = async (n: string) => (await fs.promises.stat(path.join(dir, n)).catch(() => undefined))?.isDirectory() ?? false;
  return (await sub('cur')) && (await sub('new'));
}

async function* walkDirectory(dir: string, onSkip: (n: CorpusNotice) => void, seen: Set<string>): AsyncGenerator<CorpusFile> {
  // Each real folder once: a link back up the tree (or two links to one folder) ends here.
  let real: string;
  try {
    real = await fs.promises.realpath(dir);
  } catch (err) {
    onSkip({ name: dir, reason: errText(err) });
    return;
  }
  if (seen.has(real)) return;
  seen.add(real);
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(dir, { withFileTypes: true });
  } catch (err) {
    onSkip({ name: dir, reason: errText(err) });
    return;
  }
  const maildir = await isMaildir(dir);
  // Byte order, not locale order: the same tree gives the same sequence on every machine.
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (maildir && e.name === 'tmp') continue; // deliveries in progress, not messages yet
    let kind: 'dir' | 'file' | 'other' = e.isDirectory() ? 'dir' : e.isFile() ? 'file' : 'other';
    let size = -1;
    if (e.isSymbolicLink()) {
      const st = await fs.promises.stat(p).catch((err: unknown) => err as Error);
      if (st instanceof Error) {
        onSkip({ name: p, reason: `broken symbolic link: ${errText(st)}` });
        continue;
      }
      kind = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
      size = st.size;
    }
    // Dotfiles and dot-folders are skipped (editor and indexer files), except a Maildir++
    // subfolder (".Junk") of a Maildir.
    if (e.name.startsWith('.') && !(maildir && kind === 'dir' && e.name.length > 1 && e.name !== '..' && (await isMaildir(p)))) continue;
    if (kind === 'dir') yield* walkDirectory(p, onSkip, seen);
    else if (kind === 'file') {
      if (size < 0) {
        const st = statOrError(p);
        if (st instanceof Error) {
          onSkip({ name: p, reason: errText(st) });
          continue;
        }
        size = st.size;
      }
      yield { path: p, size };
    }
    // Sockets, FIFOs, devices: not messages (a FIFO would block the read).
  }
}

async function* readFile(file: string, size: number, opts: Opts): AsyncGenerator<CorpusMessage> {
  // A file of message size is read whole, once, and sniffed in memory; bigger files (an mbox, a
  // tarball) stream. Synchronously, on purpose: this is command-line code, a message file takes
  // ≈30 µs to read, and the promise API's open/read/close round trips through the thread pool
  // cost more CPU than judging the message (measured: 0.44 ms per file before, 0.06 after).
  let whole: Buffer | undefined;
  let head: Buffer;
  try {
    if (size >= 0 && size <= WHOLE_READ_BYTES) {
      whole = fs.readFileSync(file);
      head = whole.subarray(0, 512);
    } else {
      head = await readHead(file, 512);
    }
  } catch (err) {
    opts.onSkip({ name: file, reason: errText(err) });
    return;
  }
  // What the mbox and tar readers take: the bytes already read, or the file streamed.
  async function* source(): AsyncGenerator<Buffer> {
    if (whole) yield whole;
    else yield* fs.createReadStream(file, { highWaterMark: CHUNK }) as AsyncIterable<Buffer>;
  }
  const lower = file.toLowerCase();
  if (head[0] === 0x1f && head[1] === 0x8b) {
    yield* readGzip(file, opts);
  } else if (isTarHeader(head)) {
    yield* readTar(file, source(), opts);
  } else if (head.subarray(0, 5).toString('latin1') === 'From ' && !/\.(eml|msg)$/.test(lower)) {
    yield* splitMbox(file, source(), opts);
  } else if (!looksLikeMessage(head)) {
    // Mail folders hold other files too (dovecot.index, dovecot-uidlist, subscriptions…).
    opts.onSkip({ name: file, reason: 'not a message (no header field at the start)' });
  } else if ((whole?.length ?? size) > opts.maxBytes) {
    opts.onSkip({ name: file, reason: `${whole?.length ?? size} bytes, over the ${opts.maxBytes}-byte limit` });
  } else {
    try {
      yield { name: file, raw: stripEnvelope(whole ?? (await fs.promises.readFile(file))) };
    } catch (err) {
      opts.onSkip({ name: file, reason: errText(err) });
    }
  }
}

/** Files up to this size are read in one call (see readFile). */
const WHOLE_READ_BYTES = 1024 * 1024;

/** A gzip file holds a tarball, an mbox, or one message: look at what it unpacks to. */
async function* readGzip(file: string, opts: Opts): AsyncGenerator<CorpusMessage> {
  const gunzip = fs.createReadStream(file, { highWaterMark: CHUNK }).pipe(zlib.createGunzip({ chunkSize: CHUNK }));
  const it = gunzip[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  // Sniff the first 512 unpacked bytes, then hand the rest on as one stream.
  const first: Buffer[] = [];
  let got = 0;
  try {
    while (got < 512) {
      const r = await it.next();
      if (r.done) break;
      first.push(r.value);
      got += r.value.length;
    }
  } catch (err) {
    opts.onSkip({ name: file, reason: `gzip: ${errText(err)}` });
    return;
  }
  const head = Buffer.concat(first);
  async function* rest(): AsyncGenerator<Buffer> {
    try {
      yield head;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    } catch (err) {
      throw new Error(`gzip: ${errText(err)}`);
    } finally {
      // Stopped early (an error, or the caller broke off): release the file and the inflater.
      gunzip.destroy();
    }
  }
  const base = file.replace(/\.(gz|tgz)$/i, '');
  if (isTarHeader(head)) yield* readTar(file, rest(), opts);
  else if (head.subarray(0, 5).toString('latin1') === 'From ' && !/\.(eml|msg)$/i.test(base)) yield* splitMbox(file, rest(), opts);
  else {
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of rest()) {
        n += c.length;
        if (n > opts.maxBytes) {
          opts.onSkip({ name: file, reason: `over the ${opts.maxBytes}-byte limit unpacked` });
          gunzip.destroy();
          return;
        }
        chunks.push(c);
      }
    } catch (err) {
      opts.onSkip({ name: file, reason: `gzip: ${errText(err)}` });
      return;
    }
    const raw = Buffer.concat(chunks);
    if (looksLikeMessage(raw.subarray(0, 512))) yield { name: file, raw: stripEnvelope(raw) };
    else opts.onSkip({ name: file, reason: 'not a message (no header field at the start)' });
  }
}

async function* readTar(file: string, source: AsyncIterable<Buffer>, opts: Opts): AsyncGenerator<CorpusMessage> {
  // keepBytes one past the limit tells "exactly maxBytes" from "more".
  const parser = new TarParser(opts.maxBytes + 1);
  try {
    for await (const chunk of source) {
      for (const e of parser.push(chunk)) {
        if (e.type !== 'file') continue;
        const base = path.posix.basename(e.name);
        if (!base || base.startsWith('.')) continue;
        const name = `${file}:${e.name.replace(/^\.\//, '')}`;
        if (e.truncated || e.size > opts.maxBytes) opts.onSkip({ name, reason: `${e.size} bytes, over the ${opts.maxBytes}-byte limit` });
        else if (/\.(tsv|csv|md|txt\.sig|sha256|json)$/i.test(base)) continue; // corpus metadata (index.tsv, MANIFEST.md)
        else if (!looksLikeMessage(e.data.subarray(0, 512))) opts.onSkip({ name, reason: 'not a message (no header field at the start)' });
        else yield { name, raw: stripEnvelope(e.data) };
      }
      if (parser.ended) break;
    }
    parser.finish();
  } catch (err) {
    opts.onSkip({ name: file, reason: err instanceof TarError ? `tar: ${err.message}` : errText(err) });
  }
}

// An mbox separator: "From " at the start of the file or after a blank line, followed by an
// envelope sender and a date with a time of day. Requiring both keeps an unquoted "From here
// on…" in a sloppy mboxo body from cutting a message in two.
const FROM_LINE = /^From \S+ +.*\d\d?:\d\d/;

/** Splits an mbox stream line by line; each message is capped, oversized ones are dropped. */
async function* splitMbox(file: string, source: AsyncIterable<Buffer>, opts: Opts): AsyncGenerator<CorpusMessage> {
  let index = 0;
  let lines: Buffer[] = [];
  let bytes = 0;
  let oversized = false;
  let started = false;
  let prevBlank = true;
  function* flush(): Generator<CorpusMessage> {
    if (!started) return;
    index++;
    const name = `${file}#${index}`;
    if (oversized) opts.onSkip({ name, reason: `over the ${opts.maxBytes}-byte limit` });
    else {
      // The blank line before the next "From " belongs to the mbox format, not the message.
      let raw = Buffer.concat(lines);
      if (raw.length && raw[raw.length - 1] === 0x0a) {
        const cut = raw.length >= 2 && raw[raw.length - 2] === 0x0d ? 2 : 1;
        const before = raw.length - cut;
        if (before > 0 && raw[before - 1] === 0x0a) raw = raw.subarray(0, before);
      }
      if (raw.length) yield { name, raw };
    }
    lines = [];
    bytes = 0;
    oversized = false;
  }
  const onLine = function* (line: Buffer): Generator<CorpusMessage> {
    if (prevBlank && line.length >= 5 && line[0] === 0x46 && FROM_LINE.test(line.subarray(0, 200).toString('latin1'))) {
      yield* flush();
      started = true;
      prevBlank = false;
      return;
    }
    prevBlank = line.length <= 2 && (line[0] === 0x0a || (line[0] === 0x0d && line[1] === 0x0a));
    if (!started) return; // bytes before the first separator are not a message
    if (oversized) return;
    // mboxrd: ">From ", ">>From "… lose one ">" (also right for mboxo's single level).
    let out = line;
    if (line[0] === 0x3e) {
      let i = 0;
      while (i < line.length && line[i] === 0x3e) i++;
      if (line.subarray(i, i + 5).toString('latin1') === 'From ') out = line.subarray(1);
    }
    bytes += out.length;
    if (bytes > opts.maxBytes) {
      oversized = true;
      lines = [];
      return;
    }
    lines.push(out);
  };
  let carry: Buffer = Buffer.alloc(0);
  try {
    for await (const chunk of source) {
      let buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      let start = 0;
      for (;;) {
        const nl = buf.indexOf(0x0a, start);
        if (nl < 0) break;
        yield* onLine(Buffer.from(buf.subarray(start, nl + 1)));
        start = nl + 1;
      }
      buf = buf.subarray(start);
      // A line with no end in sight (hostile single-line body) is cut in pieces: the pieces
      // cannot start with "From " after a blank line, so splitting is unaffected.
      if (buf.length > CHUNK * 4) {
        yield* onLine(Buffer.from(buf));
        prevBlank = false;
        buf = Buffer.alloc(0);
      }
      carry = Buffer.from(buf);
    }
  } catch (err) {
    opts.onSkip({ name: file, reason: errText(err) });
    return;
  }
  if (carry.length) yield* onLine(carry);
  yield* flush();
}

/** Drops a leading mbox envelope line ("From sender date"): it is not a header field. */
export function stripEnvelope(raw: Buffer): Buffer {
  if (raw.length < 5 || raw.subarray(0, 5).toString('latin1') !== 'From ') return raw;
  const nl = raw.indexOf(0x0a);
  return nl < 0 ? raw : raw.subarray(nl + 1);
}

/** A message starts with a header field ("Name: value"), maybe after an mbox envelope line. */
export function looksLikeMessage(head: Buffer): boolean {
  if (head.includes(0)) return false;
  const text = stripEnvelope(head).toString('latin1');
  return /^[\x21-\x39\x3b-\x7e]{1,100}[ \t]*:/.test(text);
}

function isTarHeader(head: Buffer): boolean {
  return head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
}

async function readHead(file: string, n: number): Promise<Buffer> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Metadata synchronously, like the small reads in readFile (command-line code). */
function statOrError(p: string): fs.Stats | Error {
  try {
    return fs.statSync(p);
  } catch (err) {
    return err as Error;
  }
}

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ? `${e.code}: ${e.message}` : String((err as Error)?.message ?? err);
}
