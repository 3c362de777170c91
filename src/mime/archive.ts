// Archive inspection: look inside an attachment that is an archive (zip natively, gzip and tar
// natively, 7z/rar/cab/iso/cpio/xz/bzip2 through bsdtar), recursively to a depth, and report
// findings as symbols: executables inside, bombs, too deep, encrypted (opened or not), corrupt,
// path traversal. Every walk shares one budget (entries, bytes, time), so nothing is ever
// unpacked without bounds; a hostile archive costs at most the budget and is reported, never a
// crash. Detection only: what to do about a finding (strip, reject, score) is policy, applied by
// the caller (the attachment policy, or the AV check for encrypted archives).
import zlib from 'node:zlib';
import type { Readable } from 'node:stream';
import {
  BSDTAR_FORMATS, archiveFormatFromName, displayName, executableKind, isTraversalName, sniffArchive, type ArchiveFormat,
} from './archive-types.js';
import { ZipArchive, ZipCorruptError, ZipOverlapError, ZipPasswordError, smallestEncrypted, tryZipPasswords } from './archive-zip.js';
import { TarError, TarParser, type TarEntry } from './archive-tar.js';
import { readWithBsdtar } from './archive-bsdtar.js';

export type { ArchiveFormat } from './archive-types.js';

export type ArchiveSymbol =
  | 'ARCHIVE_EXE'
  | 'ARCHIVE_BOMB'
  | 'ARCHIVE_TOO_DEEP'
  | 'ARCHIVE_ENCRYPTED'
  | 'ARCHIVE_ENCRYPTED_OPENED'
  | 'ARCHIVE_CORRUPT'
  | 'ARCHIVE_PATH_TRAVERSAL';

export interface ArchiveFinding {
  readonly symbol: ArchiveSymbol;
  /** Where: the chain of names from the attachment down ("a.zip/inner.zip/x.exe"). */
  readonly path: string;
  readonly reason: string;
}

export interface ArchiveEntry {
  /** Chain of names from the attachment ("a.zip/inner.zip/x.exe"). */
  readonly path: string;
  /** The name inside its own archive. */
  readonly name: string;
  /** 1 for entries of the attachment itself, 2 for entries of an archive inside it, … */
  readonly depth: number;
  /** Uncompressed size (declared by the archive, or produced by the reader). */
  readonly size: number;
  readonly directory: boolean;
  readonly encrypted: boolean;
  /** Its content was read with a password found in the message. */
  readonly decrypted: boolean;
  /** Why it is an executable, when it is one. */
  readonly executable?: string;
  /** Only the first maxEntrySize bytes were read. */
  readonly truncated: boolean;
}

export interface ArchiveLimits {
  /** Nesting levels opened: 1 = the attachment's own entries only. */
  readonly maxDepth: number;
  /** Entries over the whole walk (every level). */
  readonly maxEntries: number;
  /** Uncompressed bytes over the whole walk (declared or produced, whichever is larger). */
  readonly maxTotalSize: number;
  /** Uncompressed : compressed ratio above which an archive (or entry) is a bomb… */
  readonly maxRatio: number;
  /** …when it also expands to at least this many bytes (tiny text compresses well too). */
  readonly ratioMinSize: number;
  /** Content read per entry for inspection (magic bytes, nested archives, scanning). */
  readonly maxEntrySize: number;
  /** Wall-clock budget of the whole walk. */
  readonly timeLimitMs: number;
  /** Candidate passwords tried per encrypted archive. */
  readonly maxPasswords: number;
}

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = Object.freeze({
  maxDepth: 4,
  maxEntries: 1000,
  maxTotalSize: 100 * 1024 * 1024,
  maxRatio: 100,
  ratioMinSize: 1024 * 1024,
  maxEntrySize: 10 * 1024 * 1024,
  timeLimitMs: 10_000,
  maxPasswords: 20,
});

export interface InspectOptions {
  readonly limits?: Partial<ArchiveLimits>;
  /** Candidate passwords for encrypted archives (e.g. from passwordCandidates()). */
  readonly passwords?: readonly string[];
  /**
   * Called with each file entry whose content was read (up to maxEntrySize), in walk order, e.g.
   * to scan decrypted content with clamd. The walk waits for it (its time counts).
   */
  readonly onEntry?: (entry: ArchiveEntry, data: Buffer) => void | Promise<void>;
  /** bsdtar binary for 7z/rar/cab/iso/cpio/xz/bzip2; false: do not open those. Default /usr/bin/bsdtar. */
  readonly bsdtar?: string | false;
  /** Address-space limit of bsdtar in MiB (default 512). */
  readonly bsdtarMemoryMiB?: number;
  /** Where bsdtar's input file is written (default os.tmpdir()). */
  readonly tmpDir?: string;
  /** The caller's own budget: aborting it ends the walk like the time limit does. */
  readonly signal?: AbortSignal;
}

export interface ArchiveReport {
  /** The attachment's name. */
  readonly name: string;
  /** Its format by magic bytes; undefined when it is not an archive we know. */
  readonly format?: ArchiveFormat;
  /** Entries seen, every level (at most maxEntries). */
  readonly entries: ArchiveEntry[];
  /** One per problem, in walk order (several of a kind are possible: the caller dedupes). */
  readonly findings: ArchiveFinding[];
  /** The password that opened an encrypted zip, when one did. */
  readonly password?: string;
  /** Things that could not be looked at and are not findings (bsdtar missing, entry too large). */
  readonly notes: string[];
  /** False when a bound (entries, bytes, time, depth) stopped the walk somewhere. */
  readonly complete: boolean;
  readonly elapsedMs: number;
}

/** Whether the bytes are an archive this module opens (magic bytes only). */
export function isArchive(buf: Uint8Array): boolean {
  return sniffArchive(buf) !== undefined;
}

interface Walk {
  readonly limits: ArchiveLimits;
  readonly options: InspectOptions;
  readonly deadline: number;
  readonly signal: AbortSignal;
  entries: number;
  bytes: number;
  complete: boolean;
  password?: string;
  readonly report: { entries: ArchiveEntry[]; findings: ArchiveFinding[]; notes: string[] };
}

/**
 * Inspects an archive attachment. Never throws for hostile or broken input: problems are
 * findings. `input` may be a stream: it is read up to maxTotalSize (beyond that, not inspected).
 */
export async function inspectArchive(input: Buffer | Uint8Array | Readable, name: string, options: InspectOptions = {}): Promise<ArchiveReport> {
  const started = Date.now();
  const limits: ArchiveLimits = { ...DEFAULT_ARCHIVE_LIMITS, ...options.limits };
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), limits.timeLimitMs);
  const stop = () => controller.abort();
  options.signal?.addEventListener('abort', stop, { once: true });
  if (options.signal?.aborted) controller.abort();
  const walk: Walk = {
    limits, options, deadline: started + limits.timeLimitMs, signal: controller.signal,
    entries: 0, bytes: 0, complete: true, report: { entries: [], findings: [], notes: [] },
  };
  let format: ArchiveFormat | undefined;
  try {
    const buf = Buffer.isBuffer(input) ? input : input instanceof Uint8Array ? Buffer.from(input.buffer, input.byteOffset, input.byteLength) : await readBounded(input, limits.maxTotalSize);
    if (!buf) {
      walk.complete = false;
      walk.report.notes.push(`${displayName(name)}: larger than ${limits.maxTotalSize} bytes, not inspected`);
    } else {
      format = sniffArchive(buf);
      await walkArchive(walk, buf, name, displayName(name), 1);
    }
  } catch (err) {
    // A bug here must not take the message down with it: report it and carry on.
    walk.complete = false;
    walk.report.notes.push(`inspection failed: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', stop);
  }
  return {
    name, format, entries: walk.report.entries, findings: walk.report.findings, password: walk.password,
    notes: walk.report.notes, complete: walk.complete, elapsedMs: Date.now() - started,
  };
}

/**
 * The first of `candidates` (at most `limit`) that opens the encrypted entries of a zip, or
 * undefined. Only zip: libarchive 3.6 cannot decrypt 7z or rar.
 */
export async function tryPasswords(archive: Uint8Array, candidates: readonly string[], limit = DEFAULT_ARCHIVE_LIMITS.maxPasswords): Promise<string | undefined> {
  if (sniffArchive(archive) !== 'zip') return undefined;
  return tryZipPasswords(archive, candidates, limit);
}

/** Findings kept at most: past that the archive is plainly hostile and more detail helps nobody. */
const MAX_FINDINGS = 1000;

function find(w: Walk, symbol: ArchiveSymbol, path: string, reason: string): void {
  if (w.report.findings.length < MAX_FINDINGS) w.report.findings.push({ symbol, path, reason });
  else w.complete = false;
}

const TIME_LIMIT = 'inspection exceeded the time limit';

function timeUp(w: Walk, path: string): boolean {
  if (Date.now() < w.deadline && !w.signal.aborted) return false;
  if (!w.report.findings.some((f) => f.reason.startsWith(TIME_LIMIT))) {
    find(w, 'ARCHIVE_BOMB', path, `${TIME_LIMIT} of ${w.limits.timeLimitMs} ms`);
  }
  w.complete = false;
  return true;
}

/** Entries of `buf` (an attachment or an entry) at nesting level `depth`. */
async function walkArchive(w: Walk, buf: Buffer, name: string, path: string, depth: number): Promise<void> {
  const format = sniffArchive(buf);
  if (!format) {
    const claimed = archiveFormatFromName(name);
    if (claimed) find(w, 'ARCHIVE_CORRUPT', path, `named like a ${claimed} archive but is not one`);
    return;
  }
  if (depth > w.limits.maxDepth) {
    find(w, 'ARCHIVE_TOO_DEEP', path, `archive nested deeper than ${w.limits.maxDepth} levels, not opened`);
    w.complete = false;
    return;
  }
  if (timeUp(w, path)) return;
  if (format === 'zip') return walkZip(w, buf, path, depth);
  if (format === 'gzip') return walkGzip(w, buf, name, path, depth);
  if (format === 'tar') return walkTar(w, buf, path, depth);
  if (BSDTAR_FORMATS.has(format)) return walkBsdtar(w, buf, format, path, depth);
}

/** Counts an entry against the budget; false (and a finding) once the budget is spent. */
function admit(w: Walk, path: string, declaredSize: number): boolean {
  if (w.entries >= w.limits.maxEntries) {
    bomb(w, path, `more than ${w.limits.maxEntries} entries`);
    return false;
  }
  if (w.bytes + declaredSize > w.limits.maxTotalSize) {
    bomb(w, path, `expands to more than ${w.limits.maxTotalSize} bytes`);
    return false;
  }
  w.entries++;
  w.bytes += declaredSize;
  return true;
}

function bomb(w: Walk, path: string, reason: string): void {
  w.complete = false;
  find(w, 'ARCHIVE_BOMB', path, reason);
}

function ratioBomb(w: Walk, expanded: number, compressed: number): boolean {
  return expanded >= w.limits.ratioMinSize && expanded > w.limits.maxRatio * Math.max(1, compressed);
}

/** What every entry goes through once its metadata (and maybe content) is known. */
async function visitEntry(
  w: Walk, e: { name: string; path: string; depth: number; size: number; directory: boolean; encrypted: boolean; decrypted: boolean; truncated: boolean },
  data: Buffer | undefined,
): Promise<void> {
  const executable = e.directory ? undefined : executableKind(e.name, data?.subarray(0, 8));
  const entry: ArchiveEntry = { ...e, executable };
  if (w.report.entries.length < w.limits.maxEntries) w.report.entries.push(entry);
  if (isTraversalName(e.name)) find(w, 'ARCHIVE_PATH_TRAVERSAL', e.path, `entry name leaves the extraction directory: ${displayName(e.name)}`);
  if (executable) find(w, 'ARCHIVE_EXE', e.path, `${executable} inside an archive`);
  if (!data || e.directory) return;
  if (w.options.onEntry) await w.options.onEntry(entry, data);
  const nested = sniffArchive(data);
  if (nested) {
    if (e.truncated) {
      // A cut archive cannot be opened (zip keeps its index at the end): say so, do not guess.
      w.report.notes.push(`${e.path}: nested ${nested} archive larger than ${w.limits.maxEntrySize} bytes, not opened`);
      w.complete = false;
    } else {
      await walkArchive(w, data, e.name, e.path, e.depth + 1);
    }
  } else if (!e.truncated && archiveFormatFromName(e.name) && !e.encrypted) {
    find(w, 'ARCHIVE_CORRUPT', e.path, `named like a ${archiveFormatFromName(e.name)} archive but is not one`);
  }
}

const join = (parent: string, name: string) => `${parent}/${displayName(name)}`;

async function walkZip(w: Walk, buf: Buffer, path: string, depth: number): Promise<void> {
  let z: ZipArchive;
  try {
    z = await ZipArchive.open(buf, Math.max(0, w.limits.maxEntries - w.entries) + 1);
  } catch (err) {
    find(w, 'ARCHIVE_CORRUPT', path, `unreadable zip: ${(err as Error).message}`);
    return;
  }
  try {
    const list = z.entries;
    const declared = list.reduce((s, e) => s + e.size, 0);
    // Metadata first: a bomb is recognised from the index, before anything is inflated.
    let bombed = false;
    if (z.tooMany || w.entries + list.length > w.limits.maxEntries) {
      bomb(w, path, `more than ${w.limits.maxEntries} entries`);
      bombed = true;
    } else if (w.bytes + declared > w.limits.maxTotalSize) {
      bomb(w, path, `declares ${declared} bytes uncompressed, more than ${w.limits.maxTotalSize}`);
      bombed = true;
    } else if (ratioBomb(w, declared, buf.length)) {
      bomb(w, path, `expands ${Math.round(declared / Math.max(1, buf.length))}:1 (${declared} bytes from ${buf.length})`);
      bombed = true;
    } else {
      const e = list.find((x) => ratioBomb(w, x.size, x.compressedSize));
      if (e) {
        bomb(w, join(path, e.name), `entry expands ${Math.round(e.size / Math.max(1, e.compressedSize))}:1`);
        bombed = true;
      }
    }
    const encrypted = list.filter((e) => e.encrypted && !e.directory);
    let password: string | undefined;
    if (encrypted.length && !bombed) {
      const probe = smallestEncrypted(list)!;
      const candidates = w.options.passwords ?? [];
      password = candidates.length
        ? await z.findPassword(probe, candidates, w.limits.maxPasswords, { keep: w.limits.maxEntrySize, signal: w.signal })
        : undefined;
      if (password !== undefined) {
        w.password ??= password;
        find(w, 'ARCHIVE_ENCRYPTED_OPENED', path, `encrypted archive opened with a password found in the message (${encrypted.length} encrypted entr${encrypted.length === 1 ? 'y' : 'ies'})`);
      } else {
        find(w, 'ARCHIVE_ENCRYPTED', path, candidates.length
          ? `encrypted archive; none of ${Math.min(candidates.length, w.limits.maxPasswords)} candidate passwords from the message opens it`
          : 'encrypted archive and no candidate password in the message');
      }
    } else if (encrypted.length) {
      find(w, 'ARCHIVE_ENCRYPTED', path, 'encrypted archive (not opened: it is a bomb)');
    }
    for (const e of list) {
      const epath = join(path, e.name);
      const base = { name: e.name, path: epath, depth, size: e.size, directory: e.directory, encrypted: e.encrypted };
      // Names are never encrypted: executables and traversal are found even in a closed archive.
      if (bombed || (e.encrypted && password === undefined) || e.directory) {
        await visitEntry(w, { ...base, decrypted: false, truncated: false }, undefined);
        continue;
      }
      if (timeUp(w, path)) return;
      if (!admit(w, epath, e.size)) return;
      let r;
      try {
        r = await z.read(e, { keep: w.limits.maxEntrySize, password: e.encrypted ? password : undefined, signal: w.signal });
      } catch (err) {
        if (err instanceof ZipOverlapError) {
          bomb(w, epath, 'entries overlap (one compressed stream counted several times)');
          return;
        }
        if (err instanceof ZipPasswordError) {
          find(w, 'ARCHIVE_ENCRYPTED', epath, 'encrypted entry that the archive password does not open');
          await visitEntry(w, { ...base, decrypted: false, truncated: false }, undefined);
          continue;
        }
        if (timeUp(w, path)) return;
        find(w, 'ARCHIVE_CORRUPT', epath, `unreadable entry: ${(err as ZipCorruptError).message}`);
        await visitEntry(w, { ...base, decrypted: false, truncated: false }, undefined);
        continue;
      }
      if (r.overflow) {
        bomb(w, epath, `inflates past its declared size of ${e.size} bytes`);
        return;
      }
      await visitEntry(w, { ...base, decrypted: e.encrypted, truncated: r.truncated }, r.data);
    }
  } finally {
    await z.close();
  }
}

async function walkGzip(w: Walk, buf: Buffer, name: string, path: string, depth: number): Promise<void> {
  // gzip is a wrapper, not a level: "x.tar.gz" shows the tar's entries at this depth. Inflated
  // as a stream: a tar inside goes through TarParser entry by entry, anything else is one entry
  // of which maxEntrySize bytes are kept; either way the output is counted and cut at the budget.
  const remaining = w.limits.maxTotalSize - w.bytes;
  const ratioCap = Math.max(w.limits.ratioMinSize, w.limits.maxRatio * buf.length);
  const gz = zlib.createGunzip();
  gz.on('error', () => undefined); // reported through the iterator below
  gz.end(buf);
  let produced = 0;
  let head: Buffer[] = [];
  let headLen = 0;
  const st: { mode: 'sniff' | 'tar' | 'single' } = { mode: 'sniff' };
  const tar = new TarParser(w.limits.maxEntrySize);
  const kept: Buffer[] = [];
  let keptLen = 0;
  const feed = async (chunk: Buffer): Promise<boolean> => {
    if (st.mode === 'sniff') {
      head.push(chunk);
      headLen += chunk.length;
      if (headLen < 512) return true;
      chunk = Buffer.concat(head);
      head = [];
      st.mode = sniffArchive(chunk) === 'tar' ? 'tar' : 'single';
    }
    if (st.mode === 'tar') {
      for (const e of tar.push(chunk)) {
        if (timeUp(w, path)) return false;
        if (!admit(w, join(path, e.name), e.size)) return false;
        await visitTarEntry(w, e, path, depth);
      }
    } else if (keptLen < w.limits.maxEntrySize) {
      const take = chunk.subarray(0, w.limits.maxEntrySize - keptLen);
      kept.push(take);
      keptLen += take.length;
    }
    return true;
  };
  try {
    for await (const chunk of gz as AsyncIterable<Buffer>) {
      produced += chunk.length;
      if (produced > remaining) {
        bomb(w, path, `gzip expands to more than ${remaining} bytes`);
        return;
      }
      if (produced > ratioCap) {
        bomb(w, path, `gzip expands more than ${w.limits.maxRatio}:1 (over ${produced} bytes from ${buf.length})`);
        return;
      }
      if (!(await feed(chunk))) return;
    }
    if (st.mode === 'sniff') {
      // Under 512 bytes: too short to be a tar (a header and the end blocks take 1 KiB).
      st.mode = 'single';
      if (headLen) await feed(Buffer.concat(head));
    }
    if (st.mode === 'tar') tar.finish();
  } catch (err) {
    find(w, 'ARCHIVE_CORRUPT', path, `unreadable gzip: ${err instanceof TarError ? err.message : (err as Error).message}`);
    return;
  } finally {
    gz.destroy();
  }
  if (st.mode !== 'single') return;
  const innerName = name.replace(/\.t?gz$/i, (m) => (m.toLowerCase() === '.tgz' ? '.tar' : '')) || 'content';
  if (!admit(w, path, produced)) return;
  await visitEntry(w, {
    name: innerName, path: join(path, innerName), depth, size: produced, directory: false, encrypted: false, decrypted: false,
    truncated: produced > keptLen,
  }, Buffer.concat(kept));
}

async function walkTar(w: Walk, buf: Buffer, path: string, depth: number): Promise<void> {
  const parser = new TarParser(w.limits.maxEntrySize);
  let entries: TarEntry[];
  try {
    entries = parser.push(buf);
    parser.finish();
  } catch (err) {
    find(w, 'ARCHIVE_CORRUPT', path, `unreadable tar: ${err instanceof TarError ? err.message : String(err)}`);
    return;
  }
  for (const e of entries) {
    if (timeUp(w, path)) return;
    if (!admit(w, join(path, e.name), e.size)) return;
    await visitTarEntry(w, e, path, depth);
  }
}

async function visitTarEntry(w: Walk, e: TarEntry, path: string, depth: number): Promise<void> {
  await visitEntry(w, {
    name: e.name, path: join(path, e.name), depth, size: e.size, directory: e.type === 'directory',
    encrypted: false, decrypted: false, truncated: e.truncated,
  }, e.type === 'file' ? e.data : undefined);
}

async function walkBsdtar(w: Walk, buf: Buffer, format: ArchiveFormat, path: string, depth: number): Promise<void> {
  if (w.options.bsdtar === false) {
    w.report.notes.push(`${path}: ${format} archive not opened (bsdtar disabled)`);
    w.complete = false;
    return;
  }
  const remaining = w.limits.maxTotalSize - w.bytes;
  const ratioCap = Math.max(w.limits.ratioMinSize, w.limits.maxRatio * buf.length);
  let admitted = true;
  let result;
  try {
    result = await readWithBsdtar(buf, {
      bsdtar: w.options.bsdtar ?? '/usr/bin/bsdtar',
      keep: w.limits.maxEntrySize,
      // The pax stream carries headers and padding too: allow a little more than the content budget.
      maxBytes: Math.min(remaining, ratioCap) + 1024 * Math.max(1, w.limits.maxEntries - w.entries) + 10240,
      maxEntries: Math.max(0, w.limits.maxEntries - w.entries),
      timeoutMs: Math.max(1, w.deadline - Date.now()),
      memoryMiB: w.options.bsdtarMemoryMiB,
      tmpDir: w.options.tmpDir,
      signal: w.signal,
    }, async (e) => {
      if (!admitted) return;
      if (!admit(w, join(path, e.name), e.size)) {
        admitted = false;
        return;
      }
      await visitTarEntry(w, e, path, depth);
    });
  } catch (err) {
    w.report.notes.push(`${path}: ${format} archive not opened: ${(err as Error).message}`);
    w.complete = false;
    return;
  }
  if (result.stopped === 'bytes') {
    bomb(w, path, ratioCap < remaining
      ? `expands more than ${w.limits.maxRatio}:1 (over ${result.bytes} bytes from ${buf.length})`
      : `expands to more than ${w.limits.maxTotalSize} bytes`);
  }
  else if (result.stopped === 'entries') bomb(w, path, `more than ${w.limits.maxEntries} entries`);
  else if (result.stopped === 'time') timeUp(w, path);
  if (result.encrypted) {
    find(w, 'ARCHIVE_ENCRYPTED', path, `encrypted ${format} archive (libarchive cannot decrypt ${format})`);
    // Names are readable unless the index is encrypted too: executables still show.
    for (const n of result.names ?? []) {
      if (!admit(w, join(path, n), 0)) break;
      await visitEntry(w, { name: n, path: join(path, n), depth, size: 0, directory: n.endsWith('/'), encrypted: true, decrypted: false, truncated: false }, undefined);
    }
  }
  if (result.error) find(w, 'ARCHIVE_CORRUPT', path, `unreadable ${format} archive: ${result.error.slice(0, 200)}`);
  if (!result.stopped && ratioBomb(w, result.bytes, buf.length)) {
    bomb(w, path, `expands ${Math.round(result.bytes / buf.length)}:1 (${result.bytes} bytes from ${buf.length})`);
  }
}

/** Reads a stream into one buffer, or undefined when it is longer than `max` bytes. */
async function readBounded(stream: Readable, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    n += b.length;
    if (n > max) {
      stream.destroy();
      return undefined;
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
