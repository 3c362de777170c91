// Room in the queue's file system, checked before a client may send a message, as Postfix's
// smtpd does at MAIL FROM (queue_minfree): a message is refused with 452 4.3.1 "Insufficient
// system storage" while there is still room to say so, instead of being read in full and then
// failing its fsync. Postfix wants 1.5 × the message (the declared SIZE, else the size limit)
// free above queue_minfree; we ask the same, and a number of free inodes too, since a spilled
// message and a new journal segment each need a file.
//
// The check is an estimate taken ahead of time: the disk can still fill between MAIL and the
// end of DATA. That case is covered where the write happens (the spool, the journal): a failed
// write leaves nothing behind and the client gets 452 4.3.1 too (isOutOfSpace below).
import fsp from 'node:fs/promises';

export interface StorageLimits {
  /** Bytes that must stay free in the queue's file system (Postfix queue_minfree). */
  readonly minFreeBytes: number;
  /** Inodes that must stay free (file systems that count them; 0 = do not check). */
  readonly minFreeInodes: number;
}

export type Room = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Postfix's margin: a message needs 1.5 times its size free (smtpd_check_size). */
const MARGIN = 1.5;
/** statfs is cheap but a busy listener asks at every MAIL: one answer serves this long. */
const CACHE_MS = 500;

interface Sample {
  readonly at: number;
  readonly freeBytes: number;
  /** Free inodes; undefined where the file system does not count them (btrfs reports 0 of 0). */
  readonly freeInodes: number | undefined;
}

export class StorageGuard {
  private sample: Sample | undefined;
  private pending: Promise<Sample | undefined> | undefined;

  constructor(
    private readonly dir: string,
    private readonly limits: StorageLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether a message of `bytes` fits now, with the margins; a failed statfs never refuses. */
  async room(bytes: number): Promise<Room> {
    const s = await this.current();
    if (!s) return { ok: true };
    const needBytes = this.limits.minFreeBytes + Math.ceil(MARGIN * bytes);
    if (s.freeBytes < needBytes) {
      return { ok: false, reason: `${s.freeBytes} bytes free in ${this.dir}, ${needBytes} needed (queue.min_free + 1.5 × ${bytes})` };
    }
    if (s.freeInodes !== undefined && this.limits.minFreeInodes > 0 && s.freeInodes < this.limits.minFreeInodes) {
      return { ok: false, reason: `${s.freeInodes} inodes free in ${this.dir}, ${this.limits.minFreeInodes} needed (queue.min_free_inodes)` };
    }
    return { ok: true };
  }

  /** Forgets the cached sample (after a write failed for want of space: the next MAIL looks again). */
  invalidate(): void {
    this.sample = undefined;
  }

  private async current(): Promise<Sample | undefined> {
    const t = this.now();
    if (this.sample && t - this.sample.at < CACHE_MS) return this.sample;
    this.pending ??= fsp.statfs(this.dir).then(
      (st) => {
        const sample: Sample = { at: this.now(), freeBytes: st.bavail * st.bsize, freeInodes: st.files > 0 ? st.ffree : undefined };
        this.sample = sample;
        return sample;
      },
      () => undefined,
    ).finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }
}

/** A write that failed because the file system (or the user's quota) is full: ENOSPC, EDQUOT. */
export function isOutOfSpace(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
