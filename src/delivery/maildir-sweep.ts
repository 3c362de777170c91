// Sweeps stale files out of the Maildirs' tmp/ folders. A delivery writes its file in tmp/ and
// renames it into new/ once it is complete and fsynced (maildir.ts); a process killed in
// between (SIGKILL, power loss) leaves the half-written file in tmp/. The queue still holds the
// message and delivers it again after the restart, so the leftover is garbage: nobody reads
// tmp/, but it takes space and quota for ever. Dovecot deletes tmp/ files older than 36 hours
// when it scans a Maildir; we do the same from the gateway, at start and then periodically
// (maildir.tmp_max_age, maildir.tmp_sweep_interval; docs/reliability.md). The age is what makes
// this safe beside a running delivery or another program writing into the same Maildir: no
// delivery takes hours.
//
// Layout swept: <mail root>/<domain>/<local>/tmp/ and each Maildir++ folder's .<name>/tmp/.
import type { Dirent } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.js';

export interface SweepResult {
  /** tmp/ folders looked at. */
  readonly folders: number;
  /** Files removed, and their bytes. */
  readonly removed: number;
  readonly bytes: number;
  /** Files that could not be looked at or removed (logged, never fatal). */
  readonly errors: number;
}

async function entries(dir: string): Promise<Dirent[]> {
  try {
    return await fsp.readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

/** Removes the files in every tmp/ under `mailRoot` last modified more than `maxAgeMs` ago. */
export async function sweepMaildirTmp(mailRoot: string, maxAgeMs: number, now: number = Date.now()): Promise<SweepResult> {
  let folders = 0;
  let removed = 0;
  let bytes = 0;
  let errors = 0;
  const cutoff = now - maxAgeMs;
  const sweepTmp = async (tmp: string) => {
    folders++;
    for (const e of await entries(tmp)) {
      if (!e.isFile()) continue;
      const file = path.join(tmp, e.name);
      try {
        const st = await fsp.stat(file);
        if (st.mtimeMs >= cutoff) continue;
        await fsp.unlink(file);
        removed++;
        bytes += st.size;
      } catch (err) {
        // Renamed into new/ meanwhile: not ours to count.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') errors++;
      }
    }
  };
  for (const domain of await entries(mailRoot)) {
    if (!domain.isDirectory()) continue;
    for (const box of await entries(path.join(mailRoot, domain.name))) {
      if (!box.isDirectory()) continue;
      const dir = path.join(mailRoot, domain.name, box.name);
      for (const sub of await entries(dir)) {
        if (!sub.isDirectory()) continue;
        if (sub.name === 'tmp') await sweepTmp(path.join(dir, 'tmp'));
        else if (sub.name.startsWith('.') && sub.name !== '..' && sub.name !== '.') await sweepTmp(path.join(dir, sub.name, 'tmp'));
      }
    }
  }
  return { folders, removed, bytes, errors };
}

export interface TmpSweeper {
  /** The sweep at start (awaited by the gateway before it takes mail) or any later one. */
  run(): Promise<SweepResult>;
  stop(): void;
}

/** Sweeps now and every `intervalMs`; each sweep that removed something is logged. */
export function startTmpSweeper(opts: { mailRoot: string; maxAgeMs: number; intervalMs: number; logger: Logger }): TmpSweeper {
  let running: Promise<SweepResult> | undefined;
  const run = () => {
    running ??= sweepMaildirTmp(opts.mailRoot, opts.maxAgeMs).then((r) => {
      if (r.removed || r.errors) {
        opts.logger.info({ event: 'maildir_tmp_swept', removed: r.removed, bytes: r.bytes, errors: r.errors, folders: r.folders, max_age_ms: opts.maxAgeMs },
          `removed ${r.removed} stale file(s) from Maildir tmp/ folders`);
      }
      return r;
    }).finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer = setInterval(() => void run().catch(() => undefined), opts.intervalMs);
  timer.unref();
  return { run, stop: () => clearInterval(timer) };
}
