// One FolderIndex per Maildir folder in this process, shared by every session that uses the
// folder, so a flag set or a message expunged by one session reaches the others at once (the
// index notifies its listeners). Changes made by other processes (SMTP delivery, the POP3
// server, Dovecot, a user's shell) are found by watching new/ and cur/ (inotify) and, because
// a watch can miss events or be unavailable, by a periodic rescan while the folder is in use.
import type fs from 'node:fs';
import path from 'node:path';
import { FolderIndex, safeWatch } from './maildir-index.js';

export interface RegistryOptions {
  /** Rescan period of folders in use, ms (the fallback for missed watch events). */
  rescanMs?: number;
  /** Called when a background scan fails (logged by the caller; never thrown). */
  onError?: (dir: string, err: unknown) => void;
}

interface Entry {
  index: FolderIndex;
  refs: number;
  watchers: fs.FSWatcher[];
  timer: NodeJS.Timeout | undefined;
  debounce: NodeJS.Timeout | undefined;
}

export class MaildirRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly rescanMs: number;

  constructor(private readonly opts: RegistryOptions = {}) {
    this.rescanMs = opts.rescanMs ?? 5_000;
  }

  /** The shared index of the folder at `dir`, kept (and watched) until release(). */
  acquire(dir: string): FolderIndex {
    const key = path.resolve(dir);
    let e = this.entries.get(key);
    if (!e) {
      e = { index: new FolderIndex(key), refs: 0, watchers: [], timer: undefined, debounce: undefined };
      this.entries.set(key, e);
    }
    e.refs += 1;
    return e.index;
  }

  /** Starts watching a folder that a session has selected (IDLE and untagged updates need it). */
  watch(index: FolderIndex): void {
    const e = this.entries.get(index.dir);
    if (!e || e.watchers.length || e.timer) return;
    const scan = () => {
      if (e.debounce) return;
      // Deliveries come in bursts (tmp → new rename, then our own renames): one scan per burst.
      e.debounce = setTimeout(() => {
        e.debounce = undefined;
        index.sync().catch((err) => this.opts.onError?.(index.dir, err));
      }, 25);
      e.debounce.unref();
    };
    for (const sub of ['new', 'cur']) {
      const w = safeWatch(path.join(index.dir, sub), scan);
      if (w) e.watchers.push(w);
    }
    e.timer = setInterval(scan, this.rescanMs);
    e.timer.unref();
  }

  release(index: FolderIndex): void {
    const e = this.entries.get(index.dir);
    if (!e || e.index !== index) return;
    e.refs -= 1;
    if (e.refs > 0) return;
    this.stop(e);
    this.entries.delete(index.dir);
  }

  /** Stops every watcher and timer (server shutdown). */
  close(): void {
    for (const e of this.entries.values()) this.stop(e);
    this.entries.clear();
  }

  private stop(e: Entry): void {
    for (const w of e.watchers) w.close();
    e.watchers = [];
    if (e.timer) clearInterval(e.timer);
    if (e.debounce) clearTimeout(e.debounce);
    e.timer = undefined;
    e.debounce = undefined;
  }
}
