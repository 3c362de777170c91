// The POP3 maildrop: INBOX of a Maildir++ mailbox (the root's new/ and cur/; sub-folders such
// as .Junk/ are not part of it), snapshotted at login as RFC 1939 wants — the message list and
// sizes stay fixed for the session, mail delivered meanwhile waits for the next one.
//
// Other writers share the folder while a session runs: SMTP delivery adds files to new/, the
// IMAP server renames files (new/ → cur/, flag changes rewrite the ":2,<flags>" suffix) and
// expunges them. So a message is known by its Maildir *base name* (the part before ":"), which
// never changes, and its path is looked up again whenever the last known one is gone. A message
// that is no longer anywhere was expunged: RETR answers -ERR and the UPDATE state skips it.
//
// Choices, as Dovecot makes them:
//  - at login, messages in new/ are moved to cur/ with an empty info suffix (":2,"), so an IMAP
//    client sees them as no longer \Recent — what Dovecot's POP3 does when it opens INBOX;
//  - UIDL is the base name (Dovecot's `pop3_uidl_format = %f`), see uidlFor();
//  - message flags are not changed by RETR (Dovecot's `pop3_no_flag_updates = yes`): a message
//    read over POP3 does not become \Seen for IMAP, which avoids renaming files under IMAP.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { WireEncoder } from './wire-encoder.js';

export interface MaildropMessage {
  /** 1-based message number for this session. */
  readonly number: number;
  readonly uidl: string;
  /** Maildir base name (file name up to the ":" info separator). */
  readonly base: string;
  /** Octets as sent on the wire: CRLF line ends, without byte-stuffing (RFC 1939 s5 "exact size"). */
  readonly size: number;
  /** Path where the file was last seen. */
  path: string;
  deleted: boolean;
}

export interface UpdateResult {
  readonly removed: number;
  /** Marked messages already gone (expunged by another client): nothing to do. */
  readonly vanished: number;
  readonly failed: readonly { readonly uidl: string; readonly error: string }[];
}

/**
 * Sizes on the wire of Maildir messages already measured, by folder and base name. Maildir
 * files never change once delivered, so the size of a base name stays true; bounded (oldest
 * first out) so it cannot grow with the number of messages the gateway ever saw.
 */
export class SizeCache {
  private readonly map = new Map<string, number>();
  constructor(private readonly max = 100_000) {}

  get(dir: string, base: string): number | undefined {
    return this.map.get(`${dir}\0${base}`);
  }

  set(dir: string, base: string, size: number): void {
    const key = `${dir}\0${base}`;
    this.map.delete(key);
    this.map.set(key, size);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
}

const VALID_UIDL = /^[\x21-\x7e]{1,70}$/;

/**
 * The unique-id listing of a message (RFC 1939 s7: 1 to 70 characters in 0x21–0x7E, stable
 * across sessions). The Maildir base name, as Dovecot's `pop3_uidl_format = %f`, so a site can
 * move between Dovecot and Portcullis without clients downloading everything again. A base name
 * outside those rules (a long host name, bytes a foreign tool put there) gets "h" and 40 hex
 * digits of its SHA-256 instead: still stable, still unique in practice.
 */
export function uidlFor(base: string): string {
  if (VALID_UIDL.test(base)) return base;
  return `h${crypto.createHash('sha256').update(base, 'latin1').digest('hex').slice(0, 40)}`;
}

/** `,W=<n>` in a Maildir name is Dovecot's record of the CRLF size: trusted as Dovecot trusts it. */
function sizeFromName(base: string): number | undefined {
  const m = /,W=(\d{1,15})(?:,|$)/.exec(base);
  return m ? Number(m[1]) : undefined;
}

const baseOf = (name: string) => {
  const i = name.indexOf(':');
  return i < 0 ? name : name.slice(0, i);
};

/** Delivery order: `<seconds>.M<microseconds>...` as our delivery and Dovecot name files; others by name. */
function orderKey(base: string): [number, number] {
  const m = /^(\d{1,12})\.(?:M(\d{1,7}))?/.exec(base);
  return m ? [Number(m[1]), Number(m[2] ?? 0)] : [Number.MAX_SAFE_INTEGER, 0];
}

const errCode = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;

/** Regular files of a Maildir sub-directory (no dot-files, no symlinks, no directories). */
async function listFiles(dir: string): Promise<string[]> {
  let entries: fs.Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (errCode(err) === 'ENOENT') return [];
    throw err;
  }
  return entries.filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name);
}

/** Opens a message file for reading; never follows a symlink (one could point at another user's mail). */
export async function openMessageFile(file: string): Promise<fsp.FileHandle> {
  const fh = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw Object.assign(new Error(`${file} is not a regular file`), { code: 'EINVAL' });
    return fh;
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Reads a message file to the end through `encoder`, calling `write` for every piece. */
export async function pumpMessage(fh: fsp.FileHandle, encoder: WireEncoder, write: (b: Buffer) => Promise<boolean>): Promise<void> {
  const buf = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, null);
    if (bytesRead === 0) break;
    const out = encoder.push(buf.subarray(0, bytesRead));
    if (out.length && !(await write(out))) return;
    if (encoder.done) return;
  }
  const tail = encoder.end();
  if (tail.length) await write(tail);
}

async function measure(file: string): Promise<number> {
  const fh = await openMessageFile(file);
  try {
    const enc = new WireEncoder({ stuff: false });
    await pumpMessage(fh, enc, async () => true);
    return enc.octets;
  } finally {
    await fh.close();
  }
}

export class Maildrop {
  private constructor(readonly dir: string, readonly messages: readonly MaildropMessage[]) {}

  /**
   * Takes the snapshot of the INBOX at `dir` (the user's Maildir root). A mailbox that does not
   * exist yet (nothing delivered) is an empty maildrop.
   */
  static async open(dir: string, sizes: SizeCache): Promise<Maildrop> {
    const newDir = path.join(dir, 'new');
    const curDir = path.join(dir, 'cur');
    // new/ first, then cur/: a file moved from new/ to cur/ between the two listings is then
    // still seen (in cur/), never missed.
    for (const name of await listFiles(newDir)) {
      const base = baseOf(name);
      await fsp.rename(path.join(newDir, name), path.join(curDir, `${base}:2,`)).catch((err: unknown) => {
        // ENOENT: another client moved or expunged it first; cur/ listing below decides.
        if (errCode(err) !== 'ENOENT' && errCode(err) !== 'ENOTDIR') throw err;
      });
    }
    const found = new Map<string, string>();
    for (const name of await listFiles(newDir)) found.set(baseOf(name), path.join(newDir, name));
    for (const name of await listFiles(curDir)) found.set(baseOf(name), path.join(curDir, name));
    const bases = [...found.keys()].sort((a, b) => {
      const [as, au] = orderKey(a);
      const [bs, bu] = orderKey(b);
      return as - bs || au - bu || (a < b ? -1 : a > b ? 1 : 0);
    });
    const messages: MaildropMessage[] = [];
    for (const base of bases) {
      let file = found.get(base)!;
      let size = sizeFromName(base) ?? sizes.get(dir, base);
      if (size === undefined) {
        try {
          size = await measure(file);
        } catch (err) {
          if (errCode(err) !== 'ENOENT' && errCode(err) !== 'ELOOP' && errCode(err) !== 'EINVAL') throw err;
          // Renamed (flags changed) or expunged since the listing: look once more.
          const again = await locate(dir, base);
          if (!again) continue;
          file = again;
          try {
            size = await measure(file);
          } catch (err2) {
            if (errCode(err2) === 'ENOENT' || errCode(err2) === 'ELOOP' || errCode(err2) === 'EINVAL') continue;
            throw err2;
          }
        }
        sizes.set(dir, base, size);
      }
      messages.push({ number: messages.length + 1, uidl: uidlFor(base), base, size, path: file, deleted: false });
    }
    return new Maildrop(dir, messages);
  }

  get(n: number): MaildropMessage | undefined {
    return Number.isSafeInteger(n) && n >= 1 ? this.messages[n - 1] : undefined;
  }

  /** Messages not marked deleted, and their total size (STAT). */
  stat(): { count: number; size: number } {
    let count = 0;
    let size = 0;
    for (const m of this.messages) {
      if (m.deleted) continue;
      count++;
      size += m.size;
    }
    return { count, size };
  }

  reset(): void {
    for (const m of this.messages) m.deleted = false;
  }

  /** Opens the message's file wherever it is now; undefined when it is gone (expunged). */
  async open(m: MaildropMessage): Promise<fsp.FileHandle | undefined> {
    try {
      return await openMessageFile(m.path);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw err;
    }
    const now = await locate(this.dir, m.base);
    if (!now) return undefined;
    m.path = now;
    try {
      return await openMessageFile(now);
    } catch (err) {
      if (errCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** The UPDATE state (RFC 1939 s6): removes the messages marked deleted. */
  async update(): Promise<UpdateResult> {
    let removed = 0;
    let vanished = 0;
    const failed: { uidl: string; error: string }[] = [];
    for (const m of this.messages) {
      if (!m.deleted) continue;
      try {
        if (await unlinkIfPresent(m.path)) {
          removed++;
          continue;
        }
        // Renamed since we last saw it (a flag change): find it and try once more.
        const now = await locate(this.dir, m.base);
        if (now && (await unlinkIfPresent(now))) removed++;
        else vanished++;
      } catch (err) {
        failed.push({ uidl: m.uidl, error: (err as Error).message });
      }
    }
    return { removed, vanished, failed };
  }
}

async function unlinkIfPresent(file: string): Promise<boolean> {
  try {
    await fsp.unlink(file);
    return true;
  } catch (err) {
    if (errCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/** Where the message with this base name is now (cur/ first, then new/), or undefined. */
async function locate(dir: string, base: string): Promise<string | undefined> {
  for (const sub of ['cur', 'new']) {
    const d = path.join(dir, sub);
    for (const name of await listFiles(d)) {
      if (name === base || name.startsWith(`${base}:`)) return path.join(d, name);
    }
  }
  return undefined;
}
