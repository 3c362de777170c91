// Zip reading for archive inspection, on @zip.js/zip.js (it reads ZipCrypto and WinZip AES
// entries with a password; yauzl lists encrypted entries but cannot decrypt them). What this
// file adds: bounds. The listing stops at a maximum entry count; every read goes into a writer
// that keeps at most `keep` bytes and aborts the inflater as soon as the output passes what the
// header declared or what we are willing to keep, so a lying header or a bomb costs bounded time
// and memory. Overlapping entries (the "better zip bomb") are refused by zip.js's overlap check.
import * as zip from '@zip.js/zip.js';

zip.configure({ useWebWorkers: false });

export interface ZipEntryMeta {
  readonly name: string;
  readonly directory: boolean;
  readonly encrypted: boolean;
  /** Declared uncompressed size (central directory). */
  readonly size: number;
  readonly compressedSize: number;
  readonly offset: number;
  /** The zip.js entry, for reading. */
  readonly raw: zip.Entry;
}

/** A zip that could not be read at all, or an entry that could not (not: a wrong password). */
export class ZipCorruptError extends Error {
  override readonly name = 'ZipCorruptError';
}

/** The data of an entry read with a wrong password (or without one). */
export class ZipPasswordError extends Error {
  override readonly name = 'ZipPasswordError';
}

/** The zip.js entries overlap: one compressed stream counted several times (a zip bomb). */
export class ZipOverlapError extends Error {
  override readonly name = 'ZipOverlapError';
}

export interface ZipRead {
  /** The content, up to `keep` bytes. */
  readonly data: Buffer;
  /** Bytes the inflater produced before we stopped it. */
  readonly produced: number;
  /** The content is longer than `keep`: `data` is its beginning. */
  readonly truncated: boolean;
  /** The inflater produced more than the header declared (a lying header). */
  readonly overflow: boolean;
}

class StopReading extends Error {}

export class ZipArchive {
  private constructor(
    private readonly reader: zip.ZipReader<unknown>,
    readonly entries: readonly ZipEntryMeta[],
    /** The archive has more entries than the listing limit. */
    readonly tooMany: boolean,
  ) {}

  /** Lists up to `maxEntries` entries. Throws ZipCorruptError when the zip cannot be read. */
  static async open(buf: Uint8Array, maxEntries: number): Promise<ZipArchive> {
    // Names are judged by us (isTraversalName → ARCHIVE_PATH_TRAVERSAL), never refused by the reader.
    const reader = new zip.ZipReader(new zip.Uint8ArrayReader(buf), { useWebWorkers: false, filenameValidation: 'tolerant' });
    const entries: ZipEntryMeta[] = [];
    let tooMany = false;
    try {
      for await (const e of reader.getEntriesGenerator()) {
        if (entries.length >= maxEntries) {
          tooMany = true;
          break;
        }
        entries.push({
          name: e.filename, directory: e.directory, encrypted: e.encrypted,
          size: e.uncompressedSize, compressedSize: e.compressedSize, offset: e.offset, raw: e,
        });
      }
    } catch (err) {
      await reader.close().catch(() => undefined);
      throw new ZipCorruptError(zipMessage(err));
    }
    return new ZipArchive(reader, entries, tooMany);
  }

  /**
   * Reads one entry: at most `keep` bytes are kept; the inflater is stopped as soon as it passes
   * min(keep, declared size). Throws ZipPasswordError, ZipOverlapError or ZipCorruptError.
   */
  async read(entry: ZipEntryMeta, opts: { keep: number; password?: string; signal?: AbortSignal }): Promise<ZipRead> {
    if (entry.directory || entry.raw.directory) return { data: Buffer.alloc(0), produced: 0, truncated: false, overflow: false };
    const fileEntry = entry.raw as zip.FileEntry;
    const stopAt = Math.min(opts.keep, entry.size);
    const chunks: Buffer[] = [];
    let kept = 0;
    let produced = 0;
    let stopped: 'keep' | 'overflow' | undefined;
    const writable = new WritableStream<Uint8Array>({
      write(chunk) {
        produced += chunk.length;
        if (kept < opts.keep) {
          const take = chunk.subarray(0, Math.min(chunk.length, opts.keep - kept));
          chunks.push(Buffer.from(take));
          kept += take.length;
        }
        if (produced > entry.size) {
          stopped = 'overflow';
          throw new StopReading();
        }
        if (produced > stopAt && stopAt < entry.size) {
          stopped = 'keep';
          throw new StopReading();
        }
      },
    });
    try {
      await fileEntry.getData!({ writable }, {
        password: opts.password, checkCrc32: stopAt >= entry.size, checkOverlappingEntry: true,
        signal: opts.signal, useWebWorkers: false,
      });
    } catch (err) {
      if (!stopped) {
        const msg = zipMessage(err);
        if (msg === zip.ERR_INVALID_PASSWORD || msg === zip.ERR_ENCRYPTED) throw new ZipPasswordError(msg);
        if (msg === zip.ERR_OVERLAPPING_ENTRY) throw new ZipOverlapError(msg);
        if (msg === zip.ERR_INVALID_UNCOMPRESSED_SIZE) {
          return { data: Buffer.concat(chunks), produced, truncated: produced > kept, overflow: true };
        }
        if (opts.signal?.aborted) throw new ZipCorruptError('inspection time limit reached');
        throw new ZipCorruptError(msg);
      }
    }
    return { data: Buffer.concat(chunks), produced, truncated: stopped === 'keep' || produced > kept, overflow: stopped === 'overflow' };
  }

  /**
   * The first of `candidates` (at most `limit` of them) that decrypts `probe` (an encrypted
   * entry; pick a small one) with a valid checksum, or undefined.
   */
  async findPassword(probe: ZipEntryMeta, candidates: readonly string[], limit: number, opts: { keep: number; signal?: AbortSignal }): Promise<string | undefined> {
    for (const password of candidates.slice(0, limit)) {
      if (opts.signal?.aborted) return undefined;
      try {
        // checkPasswordOnly is a cheap first filter (1 byte for ZipCrypto: 1 in 256 wrong passwords
        // pass it), the CRC of the whole (small) entry confirms.
        await (probe.raw as zip.FileEntry).getData!({ writable: new WritableStream() }, { password, checkPasswordOnly: true, useWebWorkers: false });
        const r = await this.read(probe, { ...opts, password });
        if (!r.overflow) return password;
      } catch {
        // wrong password, or the entry is broken either way: next candidate
      }
    }
    return undefined;
  }

  async close(): Promise<void> {
    await this.reader.close().catch(() => undefined);
  }
}

/**
 * The first password among `candidates` (at most `limit`) that opens the encrypted entries of
 * `archive` (a zip), or undefined (not a zip, not encrypted, or no candidate fits).
 */
export async function tryZipPasswords(archive: Uint8Array, candidates: readonly string[], limit = 20, keep = 1 << 20): Promise<string | undefined> {
  let z: ZipArchive | undefined;
  try {
    z = await ZipArchive.open(archive, 10_000);
    const probe = smallestEncrypted(z.entries);
    if (!probe) return undefined;
    return await z.findPassword(probe, candidates, limit, { keep });
  } catch {
    return undefined;
  } finally {
    await z?.close();
  }
}

/** The smallest encrypted file entry: the cheapest one to test passwords on. */
export function smallestEncrypted(entries: readonly ZipEntryMeta[]): ZipEntryMeta | undefined {
  let best: ZipEntryMeta | undefined;
  for (const e of entries) if (e.encrypted && !e.directory && (!best || e.size < best.size)) best = e;
  return best;
}

function zipMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
