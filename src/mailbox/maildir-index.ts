// The IMAP view of one Maildir folder: which messages it holds, their UIDs, flags, sizes and
// dates. The files stay the truth (Dovecot, the SMTP delivery and the POP3 server all work on
// them directly); this index adds what Maildir itself lacks, a stable UIDVALIDITY and UIDs,
// persisted in `portcullis-uidlist` beside new/ and cur/:
//
//   PORTCULLIS-UIDLIST 1 <uidvalidity> <uidnext>
//   <uid> <imap size or -> <base name>
//
// The base name is the file name up to ":2," (flags change the rest). The list is rewritten
// under `portcullis-uidlist.lock` (O_EXCL, taken over when stale), after reading it again, so
// two processes never give one file two UIDs or two files one UID. A file that appears in new/
// or cur/ gets the next UID at the next scan; scans run when a directory watcher fires, on a
// timer (fs.watch can miss events), and when a client asks (NOOP, SELECT, STATUS).
//
// Every operation of this process on a folder goes through one FolderIndex (see
// maildir-registry.ts) and one queue (`exclusive`), so flags, expunges and new UIDs are seen
// by every session in the same order.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const UIDLIST_FILE = 'portcullis-uidlist';
const LOCK_FILE = 'portcullis-uidlist.lock';
const HEADER = 'PORTCULLIS-UIDLIST 1';
/** A lock older than this was left by a crash and is taken over. */
const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 10_000;

/** A message as the index knows it. */
export interface MessageRecord {
  readonly uid: number;
  /** File name without the ":2,<flags>" info part: stable across flag changes. */
  readonly base: string;
  /** Where the file is now. */
  sub: 'new' | 'cur';
  /** Current file name in `sub`. */
  name: string;
  /** Maildir info letters, sorted (e.g. "FS"); unknown letters (keywords) are kept. */
  flags: string;
  /** Size as served over IMAP (CRLF line ends), once known. */
  size: number | undefined;
  /** Internal date (ms): the file's mtime, as Dovecot takes it. */
  mtime: number;
  /** Found in new/ by this process: \Recent for the first session that sees it. */
  recent: boolean;
}

export interface ChangeSet {
  added: number;
  expunged: number;
  flagged: number;
}

// IMAP system flags ↔ Maildir info letters (the letters Dovecot uses).
const FLAG_LETTERS: Readonly<Record<string, string>> = {
  '\\Draft': 'D',
  '\\Flagged': 'F',
  '\\Answered': 'R',
  '\\Seen': 'S',
  '\\Deleted': 'T',
};
const LETTER_FLAGS: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(FLAG_LETTERS).map(([f, l]) => [l, f]));
export const SYSTEM_FLAGS = Object.keys(FLAG_LETTERS);

/** IMAP flags of a Maildir info string ("FS" → ["\\Flagged", "\\Seen"]). */
export function imapFlags(letters: string): string[] {
  const out: string[] = [];
  for (const l of letters) if (LETTER_FLAGS[l]) out.push(LETTER_FLAGS[l]);
  return out;
}

/** The canonical (case-fixed) system flag for a client's spelling, or undefined for keywords. */
export function systemFlag(flag: string): string | undefined {
  const lower = flag.toLowerCase();
  return SYSTEM_FLAGS.find((f) => f.toLowerCase() === lower);
}

/** Applies an IMAP flag change to Maildir letters; keeps letters IMAP does not map. */
export function applyFlags(letters: string, mode: 'set' | 'add' | 'remove', flags: readonly string[]): string {
  const wanted = new Set(flags.map((f) => FLAG_LETTERS[f]).filter((l): l is string => !!l));
  const set = new Set(letters);
  if (mode === 'set') for (const l of Object.values(FLAG_LETTERS)) set.delete(l);
  for (const l of wanted) (mode === 'remove' ? set.delete(l) : set.add(l));
  return [...set].sort().join('');
}

/** Splits a Maildir file name into its base and info letters. */
export function parseFileName(name: string): { base: string; flags: string } {
  const i = name.indexOf(':2,');
  if (i >= 0) return { base: name.slice(0, i), flags: [...new Set(name.slice(i + 3))].sort().join('') };
  const colon = name.indexOf(':');
  return { base: colon >= 0 ? name.slice(0, colon) : name, flags: '' };
}

const errCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let nameCounter = 0;
/** A new unique base name, in Dovecot's form `<sec>.M<usec>P<pid>Q<n>.<host>`. */
export function uniqueBaseName(): string {
  const ms = Date.now();
  nameCounter += 1;
  const host = os.hostname().replace(/\//g, '\\057').replace(/:/g, '\\072');
  return `${Math.floor(ms / 1000)}.M${(ms % 1000) * 1000}P${process.pid}Q${nameCounter}I.${host}`;
}

interface Persisted {
  uidValidity: number;
  uidNext: number;
  byBase: Map<string, { uid: number; size: number | undefined }>;
}

export class FolderIndex {
  /** Messages in UID order. */
  private list: MessageRecord[] = [];
  private byBase = new Map<string, MessageRecord>();
  private byUid = new Map<number, MessageRecord>();
  uidValidity = 0;
  uidNext = 1;
  /** Bumped at every change: a session whose view has this version has nothing to learn. */
  version = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private loaded = false;
  private readonly listeners = new Set<() => void>();

  constructor(readonly dir: string) {}

  get messages(): readonly MessageRecord[] {
    return this.list;
  }

  get(uid: number): MessageRecord | undefined {
    return this.byUid.get(uid);
  }

  filePath(m: MessageRecord): string {
    return path.join(this.dir, m.sub, m.name);
  }

  /** Called after each change (sessions then compute their untagged updates). */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    this.version += 1;
    for (const fn of this.listeners) fn();
  }

  /** Runs `fn` after every operation queued before it: one at a time per folder. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Reads the directories again and applies what changed on disk. */
  sync(): Promise<ChangeSet> {
    return this.exclusive(() => this.syncNow());
  }

  private async readDirs(): Promise<Map<string, { sub: 'new' | 'cur'; name: string; flags: string }>> {
    const found = new Map<string, { sub: 'new' | 'cur'; name: string; flags: string }>();
    for (const sub of ['new', 'cur'] as const) {
      let entries: string[];
      try {
        entries = await fsp.readdir(path.join(this.dir, sub));
      } catch (err) {
        if (errCode(err) === 'ENOENT') continue;
        throw err;
      }
      for (const name of entries) {
        if (name.startsWith('.')) continue;
        const { base, flags } = parseFileName(name);
        // A message moved new/ → cur/ between the two readdirs shows up twice: cur/ wins.
        found.set(base, { sub, name, flags: sub === 'new' ? '' : flags });
      }
    }
    return found;
  }

  private async syncNow(): Promise<ChangeSet> {
    await fsp.mkdir(path.join(this.dir, 'cur'), { recursive: true }).catch(() => {});
    let found = await this.readDirs();
    const missing = this.list.filter((m) => !found.has(m.base));
    // Another process may have renamed a file between our readdirs of new/ and cur/: look
    // again before calling anything expunged.
    if (missing.length) found = await this.readDirs();
    const changes: ChangeSet = { added: 0, expunged: 0, flagged: 0 };

    const keep: MessageRecord[] = [];
    for (const m of this.list) {
      const f = found.get(m.base);
      if (!f) {
        changes.expunged++;
        this.byBase.delete(m.base);
        this.byUid.delete(m.uid);
        continue;
      }
      if (f.name !== m.name || f.sub !== m.sub) {
        if (f.flags !== m.flags) changes.flagged++;
        m.sub = f.sub;
        m.name = f.name;
        m.flags = f.flags;
      }
      keep.push(m);
    }
    this.list = keep;

    const fresh = [...found.entries()].filter(([base]) => !this.byBase.has(base));
    if (fresh.length || !this.loaded) {
      await this.withLock(async () => {
        const stored = await this.readUidlist();
        if (!this.loaded || stored.uidValidity !== this.uidValidity) {
          if (this.loaded && stored.uidValidity !== this.uidValidity) {
            // The list was replaced behind us (restored from backup, removed): start over.
            this.list = [];
            this.byBase.clear();
            this.byUid.clear();
            changes.expunged += keep.length;
          }
          this.uidValidity = stored.uidValidity;
        }
        this.uidNext = Math.max(this.uidNext, stored.uidNext);
        const pending = [...found.entries()].filter(([base]) => !this.byBase.has(base));
        // Files named by time sort in arrival order: give UIDs in that order.
        pending.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        const added: MessageRecord[] = [];
        for (const [base, f] of pending) {
          const known = stored.byBase.get(base);
          const uid = known?.uid ?? this.uidNext++;
          let mtime = 0;
          try {
            mtime = (await fsp.stat(path.join(this.dir, f.sub, f.name))).mtimeMs;
          } catch {
            continue; // gone meanwhile
          }
          const rec: MessageRecord = { uid, base, sub: f.sub, name: f.name, flags: f.flags, size: known?.size, mtime, recent: f.sub === 'new' };
          added.push(rec);
        }
        for (const rec of added) {
          this.byBase.set(rec.base, rec);
          this.byUid.set(rec.uid, rec);
        }
        this.list.push(...added);
        this.list.sort((a, b) => a.uid - b.uid);
        this.uidNext = Math.max(this.uidNext, (this.list.at(-1)?.uid ?? 0) + 1);
        changes.added += this.loaded ? added.length : 0;
        await this.writeUidlist();
      });
      this.loaded = true;
    }
    if (changes.added || changes.expunged || changes.flagged) this.changed();
    return changes;
  }

  // --- the uid list -------------------------------------------------------------------------

  private async readUidlist(): Promise<Persisted> {
    const out: Persisted = { uidValidity: 0, uidNext: 1, byBase: new Map() };
    let text: string;
    try {
      text = await fsp.readFile(path.join(this.dir, UIDLIST_FILE), 'utf8');
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw err;
      text = '';
    }
    const lines = text.split('\n');
    const head = /^PORTCULLIS-UIDLIST 1 (\d+) (\d+)$/.exec(lines[0] ?? '');
    if (head) {
      out.uidValidity = Number(head[1]);
      out.uidNext = Number(head[2]);
      for (const line of lines.slice(1)) {
        const m = /^(\d+) (\d+|-) (\S+)$/.exec(line);
        if (!m) continue;
        const uid = Number(m[1]);
        out.byBase.set(m[3]!, { uid, size: m[2] === '-' ? undefined : Number(m[2]) });
        if (uid >= out.uidNext) out.uidNext = uid + 1;
      }
    }
    if (!out.uidValidity) {
      // A new (or unreadable) list: a fresh UIDVALIDITY, never one a client may have cached.
      out.uidValidity = Math.max(1, Math.floor(Date.now() / 1000) % 0xffffffff);
    }
    return out;
  }

  private async writeUidlist(): Promise<void> {
    const lines = [`${HEADER} ${this.uidValidity} ${this.uidNext}`];
    for (const m of this.list) lines.push(`${m.uid} ${m.size ?? '-'} ${m.base}`);
    const file = path.join(this.dir, UIDLIST_FILE);
    const tmp = `${file}.${process.pid}.tmp`;
    await fsp.writeFile(tmp, lines.join('\n') + '\n', { mode: 0o600 });
    await fsp.rename(tmp, file);
  }

  private async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const lock = path.join(this.dir, LOCK_FILE);
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        const fd = await fsp.open(lock, 'wx', 0o600);
        await fd.close();
        break;
      } catch (err) {
        if (errCode(err) === 'ENOENT') {
          await fsp.mkdir(this.dir, { recursive: true });
          continue;
        }
        if (errCode(err) !== 'EEXIST') throw err;
        const st = await fsp.stat(lock).catch(() => undefined);
        if (st && Date.now() - st.mtimeMs > LOCK_STALE_MS) {
          await fsp.unlink(lock).catch(() => {});
          continue;
        }
        if (Date.now() > deadline) throw new Error(`${lock}: held by another process for more than ${LOCK_WAIT_MS / 1000}s`);
        await sleep(10);
      }
    }
    try {
      return await fn();
    } finally {
      await fsp.unlink(lock).catch(() => {});
    }
  }

  /** Remembers a message's IMAP size (written with the next list update). */
  rememberSize(m: MessageRecord, size: number): void {
    m.size = size;
  }

  /** Writes the list now if sizes were learnt (cheap to lose: they are computed again). */
  flushSizes(): Promise<void> {
    return this.exclusive(() => this.withLock(async () => {
      const stored = await this.readUidlist();
      if (stored.uidValidity !== this.uidValidity) return;
      this.uidNext = Math.max(this.uidNext, stored.uidNext);
      await this.writeUidlist();
    }));
  }

  // --- changes made by this process ---------------------------------------------------------

  /**
   * Sets the flags of messages (Maildir: renames the file, moving it to cur/). Returns the
   * records changed; messages whose file disappeared are skipped (a rescan reports them).
   */
  setFlags(uids: readonly number[], mode: 'set' | 'add' | 'remove', flags: readonly string[]): Promise<MessageRecord[]> {
    return this.exclusive(async () => {
      const changed: MessageRecord[] = [];
      let lost = false;
      for (const uid of uids) {
        const m = this.byUid.get(uid);
        if (!m) continue;
        const next = applyFlags(m.flags, mode, flags);
        if (next === m.flags && m.sub === 'cur') continue;
        const name = `${m.base}:2,${next}`;
        try {
          await fsp.rename(path.join(this.dir, m.sub, m.name), path.join(this.dir, 'cur', name));
        } catch (err) {
          if (errCode(err) === 'ENOENT') {
            lost = true;
            continue;
          }
          throw err;
        }
        const flagsChanged = next !== m.flags;
        m.sub = 'cur';
        m.name = name;
        m.flags = next;
        if (flagsChanged) changed.push(m);
      }
      if (changed.length) this.changed();
      if (lost) await this.syncNow();
      return changed;
    });
  }

  /** Moves the messages found in new/ into cur/ (done when a session selects read-write). */
  claimNew(): Promise<void> {
    return this.exclusive(async () => {
      for (const m of this.list) {
        if (m.sub !== 'new') continue;
        const name = `${m.base}:2,${m.flags}`;
        try {
          await fsp.rename(path.join(this.dir, 'new', m.name), path.join(this.dir, 'cur', name));
          m.sub = 'cur';
          m.name = name;
        } catch (err) {
          if (errCode(err) !== 'ENOENT') throw err;
        }
      }
    });
  }

  /** Removes messages (unlinks their files); returns the UIDs removed. */
  expunge(uids: readonly number[]): Promise<number[]> {
    return this.exclusive(async () => {
      const gone: number[] = [];
      for (const uid of uids) {
        const m = this.byUid.get(uid);
        if (!m) continue;
        try {
          await fsp.unlink(path.join(this.dir, m.sub, m.name));
        } catch (err) {
          if (errCode(err) !== 'ENOENT') throw err;
        }
        gone.push(uid);
        this.byUid.delete(uid);
        this.byBase.delete(m.base);
      }
      if (gone.length) {
        const set = new Set(gone);
        this.list = this.list.filter((m) => !set.has(m.uid));
        this.changed();
      }
      return gone;
    });
  }

  /**
   * Adds a message file (already complete, in `tmpPath` on the same file system) to cur/ with
   * the given flags and internal date; returns its UID. The rename makes it visible at once.
   */
  add(tmpPath: string, flags: string, date: Date | undefined, size: number): Promise<MessageRecord> {
    return this.exclusive(async () => {
      if (!this.loaded) await this.syncNow();
      await fsp.mkdir(path.join(this.dir, 'cur'), { recursive: true });
      const base = `${uniqueBaseName()},S=${size}`;
      const name = `${base}:2,${flags}`;
      const target = path.join(this.dir, 'cur', name);
      if (date) await fsp.utimes(tmpPath, date, date);
      await fsp.rename(tmpPath, target);
      const st = await fsp.stat(target);
      let rec!: MessageRecord;
      await this.withLock(async () => {
        const stored = await this.readUidlist();
        this.uidNext = Math.max(this.uidNext, stored.uidNext);
        // Our files are ours alone, but another process may have taken UIDs meanwhile.
        for (const [b, v] of stored.byBase) {
          if (!this.byBase.has(b) && v.uid >= this.uidNext) this.uidNext = v.uid + 1;
        }
        rec = { uid: this.uidNext++, base, sub: 'cur', name, flags, size, mtime: st.mtimeMs, recent: true };
        this.list.push(rec);
        this.byBase.set(base, rec);
        this.byUid.set(rec.uid, rec);
        await this.writeUidlist();
      });
      this.changed();
      return rec;
    });
  }

  /** A temporary file in this folder's tmp/ (same file system as cur/). */
  async tmpFile(): Promise<string> {
    const tmpDir = path.join(this.dir, 'tmp');
    await fsp.mkdir(tmpDir, { recursive: true, mode: 0o700 });
    return path.join(tmpDir, `${uniqueBaseName()}.imap`);
  }
}

/** Writes `data` to a new file and fsyncs it (APPEND, COPY). */
export async function writeDurably(file: string, data: Buffer): Promise<void> {
  const fh = await fsp.open(file, 'wx', 0o600);
  try {
    await fh.writeFile(data);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/** fs.watch that never throws (a missing directory or an exhausted inotify table just means polling). */
export function safeWatch(dir: string, onEvent: () => void): fs.FSWatcher | undefined {
  try {
    const w = fs.watch(dir, { persistent: false }, onEvent);
    w.on('error', () => w.close());
    return w;
  } catch {
    return undefined;
  }
}
