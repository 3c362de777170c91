// Moving messages between a user's Maildir folders and the Junk training that goes with it:
// into Junk teaches spam, out of Junk (not to Trash) teaches ham. IMAP COPY/MOVE
// (imap/selected-commands.ts) and the console's Junk page (src/web/junk-pages.ts) both go
// through these functions, so a message is trained the same way whichever way it was moved.
import fs from 'node:fs/promises';
import type { Logger } from '../log.js';
import { folderDir } from './folder-names.js';
import type { FolderIndex, MessageRecord } from './maildir-index.js';
import type { MaildirRegistry } from './maildir-registry.js';
import type { JunkTrainHook } from './imap/services.js';

/** What a move from `from` to `to` teaches: into Junk → spam; out of Junk (not to Trash) → ham. */
export function junkClass(from: string, to: string): 'spam' | 'ham' | undefined {
  return to === 'Junk' && from !== 'Junk' ? 'spam' : from === 'Junk' && to !== 'Junk' && to !== 'Trash' ? 'ham' : undefined;
}

const errCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

/** Puts a copy (hard link, else a byte copy) or the file itself (move) into `dest`. */
export async function transfer(src: FolderIndex, uid: number, dest: FolderIndex, move: boolean): Promise<MessageRecord | undefined> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const rec = src.get(uid);
    if (!rec) return undefined;
    const from = src.filePath(rec);
    const tmp = await dest.tmpFile();
    try {
      if (move) await fs.rename(from, tmp);
      else {
        try {
          await fs.link(from, tmp);
        } catch (err) {
          if (errCode(err) === 'ENOENT') throw err;
          await fs.copyFile(from, tmp);
        }
      }
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw err;
      await src.sync(); // renamed by a flag change elsewhere, or gone
      continue;
    }
    const size = rec.size ?? (await fs.stat(tmp)).size;
    try {
      return await dest.add(tmp, rec.flags, new Date(rec.mtime), size);
    } catch (err) {
      // Never lose a moved message: put it back where it was.
      if (move) await fs.rename(tmp, from).catch(() => {});
      else await fs.unlink(tmp).catch(() => {});
      throw err;
    }
  }
  return undefined;
}

/**
 * Junk training for messages just put into `to` (records of `dest`): logged, then each file is
 * read and handed to the hook in the background. Never throws; a failing hook is logged.
 */
export function trainJunk(o: { user: string; from: string; to: string; dest: FolderIndex; recs: readonly MessageRecord[]; hook?: JunkTrainHook; log: Logger }): 'spam' | 'ham' | undefined {
  const { user, from, to, dest, recs, hook, log } = o;
  const cls = junkClass(from, to);
  if (!cls || !recs.length) return cls;
  log.info({ event: 'junk_train', user, cls, from, to, messages: recs.length }, `messages moved ${cls === 'spam' ? 'into' : 'out of'} Junk`);
  if (!hook) return cls;
  void (async () => {
    for (const rec of recs) {
      const file = dest.filePath(rec);
      try {
        const message = await fs.readFile(file);
        await hook({ user, cls, message, mailbox: to, file });
      } catch (err) {
        log.warn({ event: 'junk_train_failed', user, cls, file, err: (err as Error).message }, 'junk training hook failed');
      }
    }
  })();
  return cls;
}

/**
 * Moves messages (by UID) from one folder of a user's Maildir to another, as IMAP MOVE does,
 * and trains Junk the same way. Returns the UIDs that were moved (a message gone meanwhile is skipped).
 */
export async function moveMessages(o: {
  registry: MaildirRegistry; root: string; user: string; from: string; to: string; uids: readonly number[]; hook?: JunkTrainHook; log: Logger;
}): Promise<number[]> {
  const src = o.registry.acquire(folderDir(o.root, o.from));
  const dest = o.registry.acquire(folderDir(o.root, o.to));
  const moved: number[] = [];
  const recs: MessageRecord[] = [];
  try {
    await src.sync();
    if (dest !== src) await dest.sync();
    for (const u of o.uids) {
      const rec = await transfer(src, u, dest, true);
      if (!rec) continue;
      moved.push(u);
      recs.push(rec);
    }
    await src.expunge(moved);
  } finally {
    o.registry.release(src);
    o.registry.release(dest);
  }
  trainJunk({ user: o.user, from: o.from, to: o.to, dest, recs, hook: o.hook, log: o.log });
  return moved;
}
