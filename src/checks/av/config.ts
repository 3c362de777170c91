// Configuration of the antivirus check (`antivirus:`) and of archive inspection (`archives:`),
// as zod schemas for src/config/schema.ts to plug in. Sizes and durations are written the way
// the rest of the configuration writes them ("25MiB", "30s"), see src/config/units.ts.
import { z } from 'zod';
import { duration, size } from '../../config/fields.js';
import { parseClamdAddress } from './clamd.js';

const clamdAddress = z.string().min(1).refine((v) => {
  try {
    parseClamdAddress(v);
    return true;
  } catch {
    return false;
  }
}, 'must be a unix socket path (/run/clamav/clamd.ctl) or host:port (127.0.0.1:3310)');

export const avConfigSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** clamd's LocalSocket path, or TCPAddr:TCPSocket. Debian's default socket is /run/clamav/clamd.ctl. */
  clamd: clamdAddress.default('/run/clamav/clamd.ctl'),
  /** Deadline of one scan: connect, send, clamd's verdict. */
  timeout: duration('30s'),
  /** Largest stream sent to clamd; keep it at or under clamd's StreamMaxLength (default 25M there). */
  max_stream: size('25MiB'),
  /** Scans in flight at once (clamd's MaxThreads defaults to 10). */
  max_concurrency: z.number().int().min(1).max(256).default(8),
  /**
   * Also keep each refused infected message in the quarantine (docs/quarantine.md). A folder
   * path (the old meaning) still means on, with a warning at start: the folder is not used.
   */
  quarantine: z.union([z.boolean(), z.string().min(1)]).default(false),
}).prefault({});

export const archiveConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Nesting levels opened: 1 = only the entries of the attachment itself. */
  max_depth: z.number().int().min(1).max(16).default(4),
  /** Entries over the whole walk, every level. */
  max_entries: z.number().int().min(1).max(1_000_000).default(1000),
  /** Uncompressed bytes over the whole walk. */
  max_total_size: size('100MiB'),
  /** Uncompressed : compressed ratio above which an archive of 1 MiB or more expanded is a bomb. */
  max_ratio: z.number().min(2).max(100_000).default(100),
  /** Content read from each entry for inspection (magic bytes, nested archives, scanning). */
  max_entry_size: size('10MiB'),
  /** Candidate passwords tried per encrypted archive. */
  max_passwords: z.number().int().min(0).max(1000).default(20),
  /** Wall-clock budget for inspecting the archives of one message. */
  time_limit: duration('10s'),
  /** What happens to an encrypted archive that no password from the message opens (refusing it: policy.actions ARCHIVE_ENCRYPTED: reject). */
  encrypted: z.enum(['score', 'strip']).default('score'),
  /** What happens to an archive holding an executable, at any depth (refusing it: policy.actions ARCHIVE_EXE: reject). */
  executable_inside: z.enum(['strip', 'score']).default('strip'),
  /** bsdtar (libarchive-tools) for 7z, rar, cab, iso, cpio, tar.xz, tar.bz2; "" = do not open those. */
  bsdtar: z.string().default('/usr/bin/bsdtar'),
}).prefault({});

export type AvConfig = z.output<typeof avConfigSchema>;
export type ArchiveConfig = z.output<typeof archiveConfigSchema>;

/** The archive limits of src/mime/archive.ts from the configuration. */
export function archiveLimits(c: ArchiveConfig) {
  return {
    maxDepth: c.max_depth, maxEntries: c.max_entries, maxTotalSize: c.max_total_size, maxRatio: c.max_ratio,
    maxEntrySize: c.max_entry_size, maxPasswords: c.max_passwords, timeLimitMs: c.time_limit,
  };
}
