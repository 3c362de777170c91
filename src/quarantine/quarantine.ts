// The quarantine: a durable, bounded store of what was held and why (docs/quarantine.md).
//
// Each original is a file `<data_dir>/quarantine/messages/<c>/<id>.eml`, byte-identical to what we
// received: written to tmp/ under its id, fsynced, renamed, its directory fsynced — only then is
// it indexed (index-db.ts). So a crash leaves at worst a file in tmp/ (removed at the next open),
// never an index row without its original.
//
// Bounded by age, total size and count: the oldest entries are dropped first (each drop logged,
// event `quarantine_dropped`), from a timer, at open, and after each add. A full quarantine makes
// room; it never refuses an entry, so it never holds up mail flow.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type Database from 'better-sqlite3';
import libmime from 'libmime';
import { parseHeaderBlock } from '../protocol/headers.js';
import type { Logger } from '../log.js';
import type { Destination } from '../queue/queue.js';
import type { QuarantineConfig } from './config.js';
import { openIndex } from './index-db.js';
import {
  QUARANTINE_REASONS, QUARANTINE_STATES, QuarantineError,
  type DeleteResult, type QuarantineEntry, type QuarantineItem, type QuarantinePage, type QuarantineQuery,
  type QuarantineReason, type QuarantineRecipient, type QuarantineState, type QuarantineStats, type QuarantineSymbol,
  type ReleaseResult, type Releaser,
} from './types.js';

export * from './types.js';

/** A message row as the nodes sharing the index hand it on. */
export interface SharedRow {
  time: number;
  reason: string;
  sender: string;
  subject: string;
  message_id: string | null;
  queue_id: string | null;
  score: number | null;
  symbols: string;
  detail: string | null;
  size: number;
  state: string;
  stored: number;
}

/** A change of the index that the other nodes sharing it apply (src/quarantine/shared-index.ts). */
export type SharedEvent =
  | { op: 'add'; id: string; row: SharedRow; recipients: { address: string; state: string; by: string | null; at: number | null; destination: string | null }[] }
  | { op: 'state'; id: string; addresses: string[]; state: QuarantineState; by: string; at: number }
  | { op: 'drop'; id: string };

/** What the holder of an original does for another node. */
export type PeerCall =
  | { method: 'release'; id: string; by: string; recipient?: string }
  | { method: 'headers'; id: string }
  | { method: 'original'; id: string };

/** How a quarantine whose index is shared reaches the other nodes (src/quarantine/shared-index.ts). */
export interface QuarantinePeers {
  /** Asks `node`, which holds the original, to act on it; rejects with QuarantineError UNAVAILABLE when it does not answer. */
  call(node: string, call: PeerCall): Promise<unknown>;
  /** Events were written to the outbox: hand them on (soon). */
  flush(): void;
}

export interface QuarantineOptions {
  /** The gateway's data_dir: the store is `<dataDir>/quarantine/`. */
  readonly dataDir: string;
  readonly config: Pick<QuarantineConfig, 'max_age' | 'max_size' | 'max_messages'>;
  readonly logger: Logger;
  /** Delivers released originals (the gateway's, or the offline CLI's); absent: release throws NO_RELEASER. */
  readonly releaser?: Releaser;
  /** Clock in epoch ms (tests inject one). */
  readonly now?: () => number;
  /** fsync each original and its directory (default true; tests may turn it off for speed). */
  readonly fsync?: boolean;
  /** Period of the expiry sweep; 0: no timer (the CLI). Default 10 minutes. */
  readonly expireIntervalMs?: number;
  /**
   * The index is shared with other nodes through Redis (store.backend: redis): every change also
   * goes to the outbox, also in a process that does not reach Redis itself (the offline CLI; the
   * next gateway start hands them on). false on an index that was shared: this node left — the
   * other nodes' entries, the outbox and the log position are forgotten.
   */
  readonly shared?: boolean;
}

/** The quarantine folder inside the data directory. */
export function quarantineDir(dataDir: string): string {
  return path.join(dataDir, 'quarantine');
}

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 500;
/** The header section read for headers() and for the subject/Message-ID of an entry. */
const HEAD_BYTES = 256 * 1024;
const DROP_BATCH = 200;
/** Below this many full-text matches a search starts from them; above, from the time index. */
const RARE_MATCHES = 1000;

interface MessageRow extends SharedRow {
  seq: number;
  id: string;
  node: string | null;
}

interface RecipientRow {
  id: string;
  address: string;
  time: number;
  state: string;
  by: string | null;
  at: number | null;
  destination: string | null;
}

export class Quarantine {
  readonly dir: string;
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly fsync: boolean;
  private readonly log: Logger;
  private releaser: Releaser | undefined;
  private peers: QuarantinePeers | undefined;
  /**
   * Changes go to the outbox too: once the index was ever shared, also when this process (the
   * offline CLI) does not reach Redis itself — the next gateway start hands them on.
   */
  private shared: boolean;
  private timer: NodeJS.Timeout | undefined;
  private count = 0;
  private bytes = 0;
  private closed = false;

  private constructor(private readonly opts: QuarantineOptions) {
    this.dir = quarantineDir(opts.dataDir);
    this.now = opts.now ?? Date.now;
    this.fsync = opts.fsync ?? true;
    this.log = opts.logger;
    this.releaser = opts.releaser;
    fs.mkdirSync(path.join(this.dir, 'tmp'), { recursive: true, mode: 0o700 });
    fs.mkdirSync(path.join(this.dir, 'messages'), { recursive: true, mode: 0o700 });
    this.db = openIndex(path.join(this.dir, 'index.db'));
    // The index of held mail, not a cache: a committed entry survives power loss.
    this.db.pragma('synchronous = FULL');
    this.shared = !!opts.shared;
    if (!this.shared && this.db.prepare('SELECT 1 FROM shared_meta LIMIT 1').get()) {
      const gone = this.db.transaction(() => {
        const ids = (this.db.prepare('SELECT id FROM messages WHERE node IS NOT NULL').all() as { id: string }[]).map((r) => r.id);
        for (const id of ids) this.forget(id);
        this.db.exec('DELETE FROM outbox; DELETE FROM shared_meta;');
        return ids.length;
      })();
      this.log.warn({ event: 'quarantine_unshared', forgotten: gone }, `the quarantine index is no longer shared (store.backend is not redis): forgot the ${gone} entries held on other nodes`);
    }
  }

  /** Opens (creating) the store, removes torn writes, applies the bounds once, starts the expiry timer. */
  static open(opts: QuarantineOptions): Quarantine {
    const q = new Quarantine(opts);
    for (const name of fs.readdirSync(path.join(q.dir, 'tmp'))) fs.rmSync(path.join(q.dir, 'tmp', name), { force: true });
    q.recount();
    q.expire();
    const every = opts.expireIntervalMs ?? 10 * 60_000;
    if (every > 0) {
      q.timer = setInterval(() => {
        try {
          q.expire();
        } catch (err) {
          q.log.error({ event: 'quarantine_expire_failed', err: (err as Error).message }, 'quarantine expiry failed');
        }
      }, every);
      q.timer.unref();
    }
    return q;
  }

  /**
   * Shares the index with the other nodes on one Redis: from now on every change is also written
   * to the outbox (in the same transaction), and entries held elsewhere are acted on through `peers`.
   */
  share(peers: QuarantinePeers): void {
    this.peers = peers;
    this.shared = true;
  }

  /** Late wiring: the gateway builds its delivery after the quarantine. */
  setReleaser(releaser: Releaser): void {
    this.releaser = releaser;
  }

  /**
   * Keeps `original` (byte-identical) with its entry; resolves with the new id once the file and
   * the index are durable. Rejects (and leaves nothing behind) when the write fails: callers log
   * it and let the message go on where the policy sends it.
   */
  async add(entry: QuarantineEntry, original: Buffer | Readable | NodeJS.ReadableStream): Promise<string> {
    this.checkOpen();
    const e = validEntry(entry);
    const id = newId();
    const tmp = path.join(this.dir, 'tmp', `${id}.eml`);
    const shard = path.join(this.dir, 'messages', id[0]!);
    const final = path.join(shard, `${id}.eml`);
    let size = 0;
    let head = Buffer.alloc(0);
    const fh = await fsp.open(tmp, 'wx', 0o600);
    try {
      const write = async (chunk: Buffer) => {
        if (head.length < HEAD_BYTES) head = Buffer.concat([head, chunk.subarray(0, HEAD_BYTES - head.length)]);
        size += chunk.length;
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      };
      if (Buffer.isBuffer(original)) await write(original);
      else for await (const chunk of original as AsyncIterable<Buffer | string>) await write(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
      if (this.fsync) await fh.sync();
      await fh.close();
      if (!fs.existsSync(shard)) {
        await fsp.mkdir(shard, { recursive: true, mode: 0o700 });
        if (this.fsync) await syncDir(path.dirname(shard));
      }
      await fsp.rename(tmp, final);
      if (this.fsync) await syncDir(shard);
    } catch (err) {
      await fh.close().catch(() => undefined);
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
    const fields = parseHeaderBlock(headerBlock(head));
    const subject = e.subject ?? decodeField(fields.find((f) => f.key === 'subject')?.value ?? '');
    const messageId = e.messageId ?? (fields.find((f) => f.key === 'message-id')?.value.trim() || undefined);
    const time = e.time ?? this.now();
    const recipients = e.recipients;
    try {
      this.db.transaction(() => {
        const info = this.db.prepare(`INSERT INTO messages (id, time, reason, sender, subject, message_id, queue_id, score, symbols, detail, size, state, stored)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'held', 1)`).run(
          id, time, e.reason, e.sender, subject, messageId ?? null, e.queueId ?? null, e.score ?? null,
          JSON.stringify(e.symbols ?? []), e.detail ?? null, size,
        );
        const ins = this.db.prepare(`INSERT OR IGNORE INTO recipients (id, address, time, state, destination) VALUES (?, ?, ?, 'held', ?)`);
        for (const r of recipients) ins.run(id, r.address, time, r.destination ? JSON.stringify(r.destination) : null);
        this.db.prepare('INSERT INTO search (rowid, text) VALUES (?, ?)').run(
          info.lastInsertRowid, [subject, e.sender, messageId ?? '', ...recipients.map((r) => r.address)].join('\n'),
        );
        if (this.shared) this.emit(this.addEvent(id));
      })();
      this.peers?.flush();
    } catch (err) {
      await fsp.rm(final, { force: true }).catch(() => undefined);
      throw err;
    }
    this.count++;
    this.bytes += size;
    this.log.info({ event: 'quarantined', quarantine_id: id, reason: e.reason, queue_id: e.queueId, sender: e.sender, recipients: recipients.map((r) => r.address), size }, 'message quarantined');
    this.enforceBounds();
    return id;
  }

  /** A page of entries, newest first; every filter is an index range (EXPLAIN QUERY PLAN in the tests). */
  list(q: QuarantineQuery = {}): QuarantinePage {
    this.checkOpen();
    const { sql, args, limit, recipient } = listQuery(q, this.searchIsRare(q.search));
    const rows = this.db.prepare(sql).all(...args) as MessageRow[];
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    const items = page.map((row) => this.item(row, recipient));
    const last = page[page.length - 1];
    return { items, ...(more && last ? { next: cursorOf(last.time, last.id) } : {}) };
  }

  /** The SQLite plan of a listing (EXPLAIN QUERY PLAN details), for the tests that keep it on the indexes. */
  explain(q: QuarantineQuery = {}): string[] {
    const { sql, args } = listQuery(q, this.searchIsRare(q.search));
    return (this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[]).map((r) => r.detail);
  }

  /**
   * Whether a search term matches few entries: then the listing starts from the full-text matches
   * (and sorts them); a common term walks the time index instead and stops at a page.
   */
  private searchIsRare(search: string | undefined): boolean {
    const term = ftsTerm(search);
    if (!term) return false;
    const { n } = this.db.prepare('SELECT count(*) AS n FROM (SELECT rowid FROM search WHERE search MATCH ? LIMIT ?)').get(term, RARE_MATCHES) as { n: number };
    return n < RARE_MATCHES;
  }

  /** One entry; with `recipient`, only when it is theirs, and only their row shown. */
  get(id: string, recipient?: string): QuarantineItem | undefined {
    this.checkOpen();
    const row = this.db.prepare('SELECT * FROM messages WHERE id = ?').get(id) as MessageRow | undefined;
    if (!row) return undefined;
    const item = this.item(row, recipient?.trim().toLowerCase());
    return item.recipients.length ? item : undefined;
  }

  /** A fresh stream of the original as received. */
  original(id: string): Readable {
    const node = this.holderOf(id);
    if (node) {
      const peers = this.peerOf({ id, node });
      return Readable.from((async function* () {
        yield (await peers.call(node, { method: 'original', id })) as Buffer;
      })());
    }
    return fs.createReadStream(this.fileOf(id));
  }

  /** The header fields of the original, RFC 2047 encoded-words decoded (for the console and `show`). */
  async headers(id: string): Promise<{ name: string; value: string }[]> {
    const node = this.holderOf(id);
    if (node) return (await this.peerOf({ id, node }).call(node, { method: 'headers', id })) as { name: string; value: string }[];
    const file = this.fileOf(id);
    const fh = await fsp.open(file, 'r');
    try {
      const buf = Buffer.alloc(HEAD_BYTES);
      const { bytesRead } = await fh.read(buf, 0, HEAD_BYTES, 0);
      return parseHeaderBlock(headerBlock(buf.subarray(0, bytesRead))).map((f) => ({ name: f.name, value: decodeField(f.value) }));
    } finally {
      await fh.close();
    }
  }

  /**
   * Delivers the original to the held recipients (one, or all still held) through the releaser;
   * those delivered or queued are recorded as released by `by`. A failed one stays held.
   */
  async release(id: string, opts: { by: string; recipient?: string }): Promise<ReleaseResult> {
    this.checkOpen();
    const item = this.get(id, opts.recipient);
    if (!item) throw new QuarantineError('NOT_FOUND', opts.recipient ? `no quarantined message ${id} for ${opts.recipient}` : `no quarantined message ${id}`);
    const held = item.recipients.filter((r) => r.state === 'held');
    if (!held.length) throw new QuarantineError('NOT_HELD', `message ${id} is not held for ${opts.recipient ?? 'anyone'} (${item.state})`);
    if (item.node) {
      // The holder releases it (and records it, which reaches this index before its answer).
      const result = (await this.peerOf(item).call(item.node, { method: 'release', id, by: opts.by, ...(opts.recipient ? { recipient: opts.recipient } : {}) })) as ReleaseResult;
      this.log.info({ event: 'quarantine_released', quarantine_id: id, by: opts.by, node: item.node, recipients: result.recipients }, 'quarantined message released by the node holding it');
      return result;
    }
    if (!this.releaser) throw new QuarantineError('NO_RELEASER', 'this quarantine was opened without a way to deliver (release it through the running gateway)');
    const file = this.fileOf(id);
    const outcomes = await this.releaser({ item, recipients: held, size: item.size, original: () => fs.createReadStream(file) });
    const at = this.now();
    const done = outcomes.filter((o) => o.status !== 'failed').map((o) => o.address);
    this.setState(id, done, 'released', opts.by, at);
    this.log.info({ event: 'quarantine_released', quarantine_id: id, by: opts.by, recipients: outcomes }, 'quarantined message released');
    return { id, recipients: outcomes };
  }

  /** Deletes one recipient's copy (or every one); the original goes when no recipient needs it. */
  async delete(id: string, opts: { by: string; recipient?: string }): Promise<DeleteResult> {
    this.checkOpen();
    const item = this.get(id, opts.recipient);
    if (!item) throw new QuarantineError('NOT_FOUND', opts.recipient ? `no quarantined message ${id} for ${opts.recipient}` : `no quarantined message ${id}`);
    const targets = item.recipients.filter((r) => r.state !== 'deleted').map((r) => r.address);
    // On another node's entry only the index changes here; the holder removes the original when
    // the change reaches it.
    this.setState(id, targets, 'deleted', opts.by, this.now());
    this.log.info({ event: 'quarantine_deleted', quarantine_id: id, by: opts.by, recipients: targets }, 'quarantined message deleted');
    return { id, recipients: targets };
  }

  /** How many originals are kept and their bytes, from the running totals (no query: the console's list shows it on every page). */
  totals(): { count: number; bytes: number } {
    this.checkOpen();
    return { count: this.count, bytes: this.bytes };
  }

  stats(): QuarantineStats {
    this.checkOpen();
    const byReason: Partial<Record<QuarantineReason, number>> = {};
    for (const r of this.db.prepare('SELECT reason, COUNT(*) AS n FROM messages WHERE stored = 1 AND node IS NULL GROUP BY reason').all() as { reason: QuarantineReason; n: number }[]) byReason[r.reason] = r.n;
    return { count: this.count, bytes: this.bytes, byReason };
  }

  /**
   * The held entries of each recipient that arrived after `since(address)` and no later than
   * `until` (for the digests): address → items (their own row only), oldest first.
   */
  heldSince(until: number, since: (address: string) => number): Map<string, QuarantineItem[]> {
    this.checkOpen();
    const out = new Map<string, QuarantineItem[]>();
    // Each node sends the digests of what it holds (its own rows), so a shared index never mails
    // one entry twice.
    const rows = this.db.prepare(`SELECT DISTINCT r.address FROM recipients r JOIN messages m ON m.id = r.id
      WHERE r.state = 'held' AND r.time <= ? AND m.node IS NULL`).all(until) as { address: string }[];
    for (const { address } of rows) {
      const msgs = this.db.prepare(`SELECT m.* FROM recipients r JOIN messages m ON m.id = r.id
        WHERE r.address = ? AND r.state = 'held' AND r.time > ? AND r.time <= ? AND m.node IS NULL ORDER BY r.time, r.id LIMIT 1000`).all(address, since(address), until) as MessageRow[];
      if (msgs.length) out.set(address, msgs.map((m) => this.item(m, address)));
    }
    return out;
  }

  /** When `address` last got a digest (epoch ms; 0: never). */
  lastDigest(address: string): number {
    const row = this.db.prepare('SELECT sent_at FROM digests WHERE address = ?').get(address) as { sent_at: number } | undefined;
    return row?.sent_at ?? 0;
  }

  markDigest(address: string, at: number): void {
    this.db.prepare('INSERT INTO digests (address, sent_at) VALUES (?, ?) ON CONFLICT (address) DO UPDATE SET sent_at = excluded.sent_at').run(address, at);
  }

  /** Drops entries older than max_age, then the oldest while over max_messages / max_size. */
  expire(): void {
    if (this.closed) return;
    const cutoff = this.now() - this.opts.config.max_age;
    for (;;) {
      const old = this.db.prepare('SELECT id, size, stored, reason, node FROM messages WHERE time < ? ORDER BY time, id LIMIT ?').all(cutoff, DROP_BATCH) as DropRow[];
      if (!old.length) break;
      for (const o of old) this.drop(o, 'max_age');
    }
    this.enforceBounds();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.db.close();
  }

  // ---- inside ------------------------------------------------------------------------------

  private enforceBounds(): void {
    const { max_messages: maxMessages, max_size: maxSize } = this.opts.config;
    const over = () => (maxMessages !== undefined && this.count > maxMessages) || this.bytes > maxSize;
    while (over()) {
      // The bounds are this node's disk: only the originals it holds count.
      const oldest = this.db.prepare('SELECT id, size, stored, reason, node FROM messages WHERE stored = 1 AND node IS NULL ORDER BY time, id LIMIT ?').all(DROP_BATCH) as DropRow[];
      if (!oldest.length) break;
      for (const o of oldest) {
        if (!over()) break;
        this.drop(o, maxMessages !== undefined && this.count > maxMessages ? 'max_messages' : 'max_size');
      }
    }
  }

  /**
   * Removes an entry and its original; logged, whatever its state. Another node's entry (past
   * max_age here too) only leaves this index: its holder drops it by the same rule.
   */
  private drop(o: DropRow, cause: 'max_age' | 'max_messages' | 'max_size'): void {
    this.db.transaction(() => {
      this.forget(o.id);
      if (this.shared && !o.node) this.emit({ op: 'drop', id: o.id });
    })();
    if (o.node) return;
    this.peers?.flush();
    if (o.stored) {
      this.count--;
      this.bytes -= o.size;
      fs.rmSync(this.pathOf(o.id), { force: true });
    }
    this.log.info({ event: 'quarantine_dropped', quarantine_id: o.id, cause, reason: o.reason, size: o.size }, 'quarantine entry dropped');
  }

  private setState(id: string, addresses: readonly string[], state: QuarantineState, by: string, at: number): void {
    const unstored = this.db.transaction(() => {
      const upd = this.db.prepare('UPDATE recipients SET state = ?, by = ?, at = ? WHERE id = ? AND address = ?');
      for (const a of addresses) upd.run(state, by, at, id, a);
      if (this.shared) this.emit({ op: 'state', id, addresses: [...addresses], state, by, at });
      return this.settle(id);
    })();
    this.peers?.flush();
    this.removeOriginal(unstored);
  }

  /**
   * After recipients changed: the message's state from theirs, and, once nobody needs the
   * original, `stored = 0`. Returns the local original to remove (after the transaction).
   */
  private settle(id: string): { id: string; size: number } | undefined {
    const states = (this.db.prepare('SELECT state FROM recipients WHERE id = ?').all(id) as { state: string }[]).map((r) => r.state);
    const state = aggregate(states);
    this.db.prepare('UPDATE messages SET state = ? WHERE id = ?').run(state, id);
    if (state !== 'deleted') return undefined;
    const row = this.db.prepare('SELECT stored, size, node FROM messages WHERE id = ?').get(id) as { stored: number; size: number; node: string | null } | undefined;
    if (!row?.stored) return undefined;
    this.db.prepare('UPDATE messages SET stored = 0 WHERE id = ?').run(id);
    return row.node ? undefined : { id, size: row.size };
  }

  private removeOriginal(o: { id: string; size: number } | undefined): void {
    if (!o) return;
    this.count--;
    this.bytes -= o.size;
    fs.rmSync(this.pathOf(o.id), { force: true });
  }

  /** An entry leaves the index (its rows and its full-text row). */
  private forget(id: string): void {
    const seq = this.db.prepare('SELECT seq FROM messages WHERE id = ?').get(id) as { seq: number } | undefined;
    if (seq) this.db.prepare('DELETE FROM search WHERE rowid = ?').run(seq.seq);
    this.db.prepare('DELETE FROM recipients WHERE id = ?').run(id);
    this.db.prepare('DELETE FROM messages WHERE id = ?').run(id);
  }

  private emit(e: SharedEvent): void {
    this.db.prepare('INSERT INTO outbox (event) VALUES (?)').run(JSON.stringify(e));
  }

  private addEvent(id: string): SharedEvent {
    const { seq: _seq, id: _id, node: _node, ...row } = this.db.prepare('SELECT * FROM messages WHERE id = ?').get(id) as MessageRow;
    const recipients = (this.db.prepare('SELECT address, state, by, at, destination FROM recipients WHERE id = ?').all(id) as RecipientRow[]);
    return { op: 'add', id, row, recipients };
  }

  /** The other node holding `id`'s original; undefined when it is this one (or no such entry). */
  private holderOf(id: string): string | undefined {
    this.checkOpen();
    const row = this.db.prepare('SELECT node, stored FROM messages WHERE id = ?').get(id) as { node: string | null; stored: number } | undefined;
    if (!row?.node) return undefined;
    if (!row.stored) throw new QuarantineError('GONE', `the original of ${id} is no longer kept`);
    return row.node;
  }

  private peerOf(item: { id: string; node?: string }): QuarantinePeers {
    if (!this.peers) throw new QuarantineError('UNAVAILABLE', `message ${item.id} is held on node ${item.node}: do this through a running gateway node, which reaches the holder through the shared index`);
    return this.peers;
  }

  // ---- the shared index (src/quarantine/shared-index.ts) -------------------------------------

  /** The changes not yet handed on, oldest first. */
  outbox(limit = 200): { seq: number; event: string }[] {
    return this.db.prepare('SELECT seq, event FROM outbox ORDER BY seq LIMIT ?').all(limit) as { seq: number; event: string }[];
  }

  /** The outbox entries up to `seq` were handed on. */
  outboxDone(seq: number): void {
    this.db.prepare('DELETE FROM outbox WHERE seq <= ?').run(seq);
  }

  /** How far the shared log was read (its last entry id), undefined before the first read. */
  sharedCursor(log: string): string | undefined {
    return (this.db.prepare('SELECT value FROM shared_meta WHERE key = ?').get(`cursor:${log}`) as { value: string } | undefined)?.value;
  }

  /**
   * Puts every entry this node holds into the outbox (a node joining the shared index, or a
   * shared log that was lost): the others insert those they lack.
   */
  announce(log: string): number {
    const ids = (this.db.prepare('SELECT id FROM messages WHERE node IS NULL ORDER BY time, id').all() as { id: string }[]).map((r) => r.id);
    this.db.transaction(() => {
      for (const id of ids) this.emit(this.addEvent(id));
      this.db.prepare("INSERT INTO shared_meta (key, value) VALUES (?, '0-0') ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(`cursor:${log}`);
    })();
    this.peers?.flush();
    return ids.length;
  }

  /**
   * Applies other nodes' changes, read from the shared log up to `cursor`, in one transaction
   * with the cursor. Recipient states are last-writer-wins on their time, so that every node
   * ends with the same state whatever order two concurrent changes reached it in.
   */
  applyShared(log: string, events: readonly { origin: string; event: SharedEvent }[], cursor: string): void {
    const unstored: { id: string; size: number }[] = [];
    this.db.transaction(() => {
      for (const { origin, event: e } of events) {
        if (e.op === 'add') {
          const r = e.row;
          const info = this.db.prepare(`INSERT OR IGNORE INTO messages (id, time, reason, sender, subject, message_id, queue_id, score, symbols, detail, size, state, stored, node)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
            e.id, r.time, r.reason, r.sender, r.subject, r.message_id, r.queue_id, r.score, r.symbols, r.detail, r.size, r.state, r.stored, origin,
          );
          if (!info.changes) continue;
          const ins = this.db.prepare('INSERT OR IGNORE INTO recipients (id, address, time, state, by, at, destination) VALUES (?, ?, ?, ?, ?, ?, ?)');
          for (const x of e.recipients) ins.run(e.id, x.address, r.time, x.state, x.by, x.at, x.destination);
          this.db.prepare('INSERT INTO search (rowid, text) VALUES (?, ?)').run(
            info.lastInsertRowid, [r.subject, r.sender, r.message_id ?? '', ...e.recipients.map((x) => x.address)].join('\n'),
          );
        } else if (e.op === 'state') {
          const upd = this.db.prepare('UPDATE recipients SET state = ?, by = ?, at = ? WHERE id = ? AND address = ? AND (at IS NULL OR at <= ?)');
          for (const a of e.addresses) upd.run(e.state, e.by, e.at, e.id, a, e.at);
          const gone = this.settle(e.id);
          if (gone) unstored.push(gone);
        } else if (e.op === 'drop') {
          // Only the holder drops an entry; a node never loses its own through another's word.
          const row = this.db.prepare('SELECT node FROM messages WHERE id = ?').get(e.id) as { node: string | null } | undefined;
          if (row?.node === origin) this.forget(e.id);
        }
      }
      this.db.prepare('INSERT INTO shared_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(`cursor:${log}`, cursor);
    })();
    for (const o of unstored) this.removeOriginal(o);
  }

  private recount(): void {
    const r = this.db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM messages WHERE stored = 1 AND node IS NULL').get() as { n: number; b: number };
    this.count = r.n;
    this.bytes = r.b;
  }

  private item(row: MessageRow, recipient?: string): QuarantineItem {
    const rrows = (recipient
      ? this.db.prepare('SELECT * FROM recipients WHERE id = ? AND address = ?').all(row.id, recipient)
      : this.db.prepare('SELECT * FROM recipients WHERE id = ? ORDER BY address').all(row.id)) as RecipientRow[];
    const recipients: QuarantineRecipient[] = rrows.map((r) => ({
      address: r.address,
      state: r.state as QuarantineState,
      ...(r.by ? { by: r.by } : {}),
      ...(r.at ? { at: new Date(r.at).toISOString() } : {}),
      ...(r.destination ? { destination: JSON.parse(r.destination) as Destination } : {}),
    }));
    return {
      id: row.id,
      time: new Date(row.time).toISOString(),
      reason: row.reason as QuarantineReason,
      sender: row.sender,
      subject: row.subject,
      ...(row.message_id ? { messageId: row.message_id } : {}),
      ...(row.queue_id ? { queueId: row.queue_id } : {}),
      ...(row.score !== null ? { score: row.score } : {}),
      symbols: JSON.parse(row.symbols) as QuarantineSymbol[],
      ...(row.detail ? { detail: row.detail } : {}),
      size: row.size,
      state: recipient ? (recipients[0]?.state ?? (row.state as QuarantineState)) : (row.state as QuarantineState),
      recipients,
      ...(row.node ? { node: row.node } : {}),
    };
  }

  private pathOf(id: string): string {
    return path.join(this.dir, 'messages', id[0]!, `${id}.eml`);
  }

  /** The original's path; NOT_FOUND for an unknown id, GONE when it is no longer kept. */
  private fileOf(id: string): string {
    this.checkOpen();
    if (!/^[A-Za-z0-9_-]{16}$/.test(id)) throw new QuarantineError('NOT_FOUND', `no quarantined message ${JSON.stringify(id)}`);
    const row = this.db.prepare('SELECT stored FROM messages WHERE id = ?').get(id) as { stored: number } | undefined;
    if (!row) throw new QuarantineError('NOT_FOUND', `no quarantined message ${id}`);
    const file = this.pathOf(id);
    if (!row.stored || !fs.existsSync(file)) throw new QuarantineError('GONE', `the original of ${id} is no longer kept`);
    return file;
  }

  private checkOpen(): void {
    if (this.closed) throw new QuarantineError('INVALID', 'the quarantine is closed');
  }
}

/** The SQL of a listing (validated): a user's view walks their own rows (recipients_address), else the messages' indexes. */
function listQuery(q: QuarantineQuery, rareSearch = false): { sql: string; args: unknown[]; limit: number; recipient?: string } {
  const limit = q.limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new QuarantineError('INVALID', `limit must be an integer between 1 and ${MAX_LIMIT}, got ${String(q.limit)}`);
  if (q.reason !== undefined && !QUARANTINE_REASONS.includes(q.reason as QuarantineReason)) {
    throw new QuarantineError('INVALID', `reason must be one of ${QUARANTINE_REASONS.join(', ')}, got ${JSON.stringify(q.reason)}`);
  }
  if (q.state !== undefined && !QUARANTINE_STATES.includes(q.state as QuarantineState)) {
    throw new QuarantineError('INVALID', `state must be one of ${QUARANTINE_STATES.join(', ')}, got ${JSON.stringify(q.state)}`);
  }
  const before = q.before === undefined ? undefined : parseCursor(q.before);
  const recipient = q.recipient?.trim().toLowerCase() || undefined;
  const t = recipient ? 'r' : 'm';
  const where: string[] = [];
  const args: unknown[] = [];
  if (recipient) {
    where.push('r.address = ?');
    args.push(recipient);
  }
  if (q.state) {
    where.push(`${t}.state = ?`);
    args.push(q.state);
  } else where.push(`${t}.state != 'deleted'`);
  if (q.reason) {
    where.push('m.reason = ?');
    args.push(q.reason);
  }
  const search = q.search?.trim();
  if (search) {
    const term = ftsTerm(search);
    if (term) {
      // "+": not through the rowid, so that the planner walks the time index (a common term).
      where.push(`${rareSearch ? '' : '+'}m.seq IN (SELECT rowid FROM search WHERE search MATCH ?)`);
      args.push(term);
    } else {
      // Too short for trigrams: a scan, bounded by the LIMIT along the time index.
      const like = `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      where.push("(m.subject LIKE ? ESCAPE '\\' OR m.sender LIKE ? ESCAPE '\\' OR m.message_id LIKE ? ESCAPE '\\')");
      args.push(like, like, like);
    }
  }
  if (before) {
    where.push(`(${t}.time, ${t}.id) < (?, ?)`);
    args.push(before.time, before.id);
  }
  const from = recipient ? 'recipients r JOIN messages m ON m.id = r.id' : 'messages m';
  const sql = `SELECT m.* FROM ${from} WHERE ${where.join(' AND ')} ORDER BY ${t}.time DESC, ${t}.id DESC LIMIT ?`;
  return { sql, args: [...args, limit + 1], limit, ...(recipient ? { recipient } : {}) };
}

/** The full-text query for a search of 3+ characters (one quoted trigram phrase); undefined for shorter ones. */
function ftsTerm(search: string | undefined): string | undefined {
  const s = search?.trim();
  return s && [...s].length >= 3 ? `"${s.replace(/"/g, '""')}"` : undefined;
}

function validEntry(e: QuarantineEntry): Omit<QuarantineEntry, 'recipients'> & { recipients: { address: string; destination?: Destination }[] } {
  if (!QUARANTINE_REASONS.includes(e.reason)) throw new QuarantineError('INVALID', `reason must be one of ${QUARANTINE_REASONS.join(', ')}, got ${JSON.stringify(e.reason)}`);
  if (typeof e.sender !== 'string') throw new QuarantineError('INVALID', 'sender must be a string');
  const recipients = e.recipients.map((r) => (typeof r === 'string' ? { address: r } : r)).map((r) => ({ ...r, address: r.address.trim().toLowerCase() }));
  if (!recipients.length || recipients.some((r) => !r.address)) throw new QuarantineError('INVALID', 'an entry needs at least one recipient, none empty');
  return { ...e, recipients };
}

interface DropRow {
  id: string;
  size: number;
  stored: number;
  reason: string;
  node: string | null;
}

function aggregate(states: readonly string[]): QuarantineState {
  if (states.includes('held')) return 'held';
  if (states.includes('released')) return 'released';
  return 'deleted';
}

/** The header section of a message head (up to the first empty line). */
function headerBlock(head: Buffer): Buffer {
  const end = head.indexOf('\r\n\r\n');
  if (end >= 0) return head.subarray(0, end + 2);
  const lf = head.indexOf('\n\n');
  return lf >= 0 ? head.subarray(0, lf + 1) : head;
}

/** A header value as a person reads it: 8-bit UTF-8 as such, RFC 2047 decoded, no control characters. */
function decodeField(latin1: string): string {
  const bytes = Buffer.from(latin1, 'latin1');
  const utf8 = bytes.toString('utf8');
  let text = utf8.includes('\uFFFD') ? latin1 : utf8;
  try {
    text = libmime.decodeWords(text);
  } catch {
    // A malformed encoded-word stays as written.
  }
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '').replace(/\s+/g, ' ').trim().slice(0, 998);
}

function cursorOf(time: number, id: string): string {
  return Buffer.from(`${time}.${id}`).toString('base64url');
}

function parseCursor(c: string): { time: number; id: string } {
  const m = /^(\d{1,16})\.([A-Za-z0-9_-]{16})$/.exec(Buffer.from(String(c), 'base64url').toString('latin1'));
  if (!m) throw new QuarantineError('INVALID', `not a quarantine cursor: ${JSON.stringify(String(c).slice(0, 40))}`);
  return { time: Number(m[1]), id: m[2]! };
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * A new entry id: 16 base64url characters that never begin with "-" or "_", so an id typed on a
 * command line is never taken for an option (`quarantine release -Fav…`) and sorts with the rest.
 */
export function newId(): string {
  for (;;) {
    const id = crypto.randomBytes(12).toString('base64url');
    if (/^[A-Za-z0-9]/.test(id)) return id;
  }
}
