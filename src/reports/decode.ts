// The payload of an aggregate report, as it arrives attached: plain, gzip (RFC 7489 7.2.1.1 and
// RFC 8460 5.3 name gzip) or zip (what most DMARC reporters send). Decompression is bounded: a
// report that inflates past `maxBytes` is a decompression bomb and is refused with that reason,
// after at most `maxBytes` of output (zlib stops at maxOutputLength; the zip reader stops too).
import zlib from 'node:zlib';
import { ZipArchive, ZipCorruptError } from '../mime/archive-zip.js';

export class ReportDecodeError extends Error {
  override readonly name = 'ReportDecodeError';
}

/** Most entries looked at in a zip: a report zip holds one XML file. */
const MAX_ZIP_ENTRIES = 16;

const isGzip = (b: Uint8Array) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
const isZip = (b: Uint8Array) => b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;

/**
 * The report's bytes, decompressed when they are gzip or zip (recognised by their magic bytes,
 * not by the declared type, which reporters get wrong). For a zip: its first entry whose name
 * ends in `suffix` (".xml" for DMARC, ".json" for TLS-RPT), else its only file.
 */
export async function decodePayload(data: Uint8Array, maxBytes: number, suffix: string): Promise<Buffer> {
  if (isGzip(data)) {
    try {
      return zlib.gunzipSync(data, { maxOutputLength: maxBytes });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
        throw new ReportDecodeError(`gzip inflates to more than ${maxBytes} bytes (decompression bomb?)`);
      }
      throw new ReportDecodeError(`corrupt gzip: ${(err as Error).message}`);
    }
  }
  if (isZip(data)) {
    let archive: ZipArchive;
    try {
      archive = await ZipArchive.open(data, MAX_ZIP_ENTRIES);
    } catch (err) {
      throw new ReportDecodeError(`corrupt zip: ${(err as Error).message}`);
    }
    try {
      const files = archive.entries.filter((e) => !e.directory);
      const entry = files.find((e) => e.name.toLowerCase().endsWith(suffix)) ?? (files.length === 1 ? files[0] : undefined);
      if (!entry) throw new ReportDecodeError(`zip holds no ${suffix} file (${files.length} files)`);
      if (entry.encrypted) throw new ReportDecodeError(`zip entry ${JSON.stringify(entry.name)} is encrypted`);
      if (entry.size > maxBytes) throw new ReportDecodeError(`zip entry ${JSON.stringify(entry.name)} declares ${entry.size} bytes, more than ${maxBytes} (decompression bomb?)`);
      const read = await archive.read(entry, { keep: maxBytes });
      if (read.overflow || read.truncated) throw new ReportDecodeError(`zip entry ${JSON.stringify(entry.name)} inflates past its declared size or ${maxBytes} bytes (decompression bomb?)`);
      return read.data;
    } catch (err) {
      if (err instanceof ReportDecodeError) throw err;
      throw new ReportDecodeError(err instanceof ZipCorruptError ? `corrupt zip: ${err.message}` : (err as Error).message);
    } finally {
      await archive.close();
    }
  }
  if (data.length > maxBytes) throw new ReportDecodeError(`report is ${data.length} bytes, more than ${maxBytes}`);
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
