// The queue: what is waiting for delivery, when to try again, and the record of every outcome.
// Messages live in the journal (journal.ts); this keeps the live index in memory, rebuilt from
// the journal at start-up, and schedules delivery with exponential backoff.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { Journal, syncDir, type RecordLocation } from './journal.js';
import type { Content, MailFolder, RecipientOutcome } from '../delivery/types.js';
import type { Logger } from '../log.js';
import type { HoldInfo } from './hold.js';
import { StorageGuard, isOutOfSpace, type Room } from './storage.js';

/** Where one recipient's copy goes. */
export type Destination =
  | { kind: 'local'; mailbox: string; folder: MailFolder }
  | { kind: 'relay'; domain: string; /** An alias's outside target: mail we forward (ARC-sealed). */ forwarded?: true };

export type RecipientStatus = 'pending' | 'deferred' | 'delivered' | 'failed';

export interface QueuedRecipient {
  readonly address: string;
  readonly destination: Destination;
  status: RecipientStatus;
  attempts: number;
  lastReply?: string;
}

/** What the SMTP session hands over at end of data. */
export interface NewMessage {
  readonly id: string;
  readonly sender: string;
  readonly recipients: { address: string; destination: Destination }[];
  /** Facts kept for `queue show` and logs: client, helo, auth user, score, symbols. */
  readonly meta: Record<string, unknown>;
  /** The message: prefix headers, then the message as received (or the head of it). */
  readonly inline: Buffer[];
  /** A spilled large message: file in the queue's large/ folder and where to start reading. */
  readonly file?: { name: string; offset: number };
  readonly size: number;
  /** Whether the sender authenticated (bounces are allowed only to authenticated senders). */
  readonly authenticated: boolean;
  /** Committed straight into the hold queue (outbound spam, a locked account): see hold.ts. */
  readonly held?: HoldInfo;
}

export interface QueuedMessage {
  readonly id: string;
  readonly arrived: number;
  readonly sender: string;
  readonly recipients: QueuedRecipient[];
  readonly meta: Record<string, unknown>;
  readonly size: number;
  readonly authenticated: boolean;
  readonly file?: { name: string; offset: number };
  location: RecordLocation;
  /** The inline bytes, kept after commit until the first delivery attempt so it needs no read. */
  cache?: Buffer[];
  attempts: number;
  nextAttempt: number;
  active: boolean;
  /** In the hold queue: kept, listed, never delivered nor expired until released (hold.ts). */
  held?: HoldInfo;
  /** When it was last released from hold: queue.lifetime counts from here, not from arrival. */
  released?: number;
}

export interface Deliverer {
  /** Delivers a message's pending recipients; returns one outcome per recipient given. */
  deliver(msg: QueuedMessage, recipients: QueuedRecipient[], content: Content): Promise<RecipientOutcome[]>;
}

export interface QueueOptions {
  readonly dir: string;
  readonly fsync: boolean;
  readonly segmentSize: number;
  readonly concurrency: number;
  readonly retryInitial: number;
  readonly retryMax: number;
  readonly lifetime: number;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly events?: QueueEvents;
  /** Room kept free in the queue's file system (storage.ts); no check when absent. */
  readonly minFree?: { readonly bytes: number; readonly inodes: number };
}

export interface QueueEvents {
  delivered?(msg: QueuedMessage, rcpt: QueuedRecipient, ms: number): void;
  deferred?(msg: QueuedMessage, rcpt: QueuedRecipient): void;
  failed?(msg: QueuedMessage, rcpt: QueuedRecipient): void;
  /** A message left the queue; the failed recipients (if any) could not be delivered. */
  finished?(msg: QueuedMessage, failed: QueuedRecipient[]): void | Promise<void>;
}

interface MRecord {
  id: string;
  arrived: number;
  sender: string;
  recipients: { address: string; destination: Destination; status?: RecipientStatus; attempts?: number; lastReply?: string }[];
  meta: Record<string, unknown>;
  size: number;
  authenticated: boolean;
  file?: { name: string; offset: number };
  attempts?: number;
  nextAttempt?: number;
  held?: HoldInfo;
  released?: number;
}

interface SRecord { id: string; rcpt: number; status: RecipientStatus; attempts: number; reply?: string; next?: number }
interface XRecord { id: string; reason?: string }

export class Queue {
  private readonly messages = new Map<string, QueuedMessage>();
  private readonly liveBySegment = new Map<number, number>();
  private running = 0;
  private timer: NodeJS.Timeout | undefined;
  private deliverer: Deliverer | undefined;
  private stopping = false;
  private sweeping = false;
  private sweepAgain = false;
  private readonly idle: (() => void)[] = [];
  private readonly now: () => number;
  readonly largeDir: string;
  private readonly storage: StorageGuard | undefined;

  private constructor(private readonly journal: Journal, private readonly opts: QueueOptions) {
    this.now = opts.now ?? Date.now;
    this.largeDir = path.join(opts.dir, 'large');
    this.storage = opts.minFree ? new StorageGuard(opts.dir, { minFreeBytes: opts.minFree.bytes, minFreeInodes: opts.minFree.inodes }, this.now) : undefined;
  }

  static async open(opts: QueueOptions): Promise<{ queue: Queue; recovered: number; report: string[] }> {
    let q: Queue | undefined;
    const { journal, recovery } = await Journal.open({ dir: opts.dir, fsync: opts.fsync, segmentSize: opts.segmentSize, onRotate: () => q?.sweep() });
    q = new Queue(journal, opts);
    await fsp.mkdir(q.largeDir, { recursive: true, mode: 0o700 });
    const report: string[] = [...recovery.corrupt];
    if (recovery.tornTail) report.push('cut a torn record at the end of the newest segment (a message that never got 250)');
    for (const rec of recovery.records) {
      if (rec.type === 'M') {
        const m = rec.json as MRecord;
        q.add({
          id: m.id, arrived: m.arrived, sender: m.sender, meta: m.meta, size: m.size, authenticated: m.authenticated, file: m.file,
          recipients: m.recipients.map((r) => ({ address: r.address, destination: r.destination, status: r.status ?? 'pending', attempts: r.attempts ?? 0, lastReply: r.lastReply })),
          location: rec.location, attempts: m.attempts ?? 0, nextAttempt: 0, active: false, held: m.held, released: m.released,
        });
      } else if (rec.type === 'S') {
        const s = rec.json as SRecord;
        const msg = q.messages.get(s.id);
        const r = msg?.recipients[s.rcpt];
        if (msg && r) {
          r.status = s.status;
          r.attempts = s.attempts;
          r.lastReply = s.reply;
          msg.attempts = Math.max(msg.attempts, s.attempts);
          if (s.next !== undefined) msg.nextAttempt = s.next;
        }
      } else {
        const x = rec.json as XRecord;
        const msg = q.messages.get(x.id);
        if (msg) q.remove(msg);
      }
    }
    // A recovered message whose every recipient is final was done but its X record was lost.
    for (const msg of [...q.messages.values()]) {
      if (msg.recipients.every((r) => r.status === 'delivered' || r.status === 'failed')) q.remove(msg);
    }
    // A spilled message whose file is gone cannot be delivered; say so loudly, once.
    for (const msg of [...q.messages.values()]) {
      if (msg.file && !fs.existsSync(path.join(q.largeDir, msg.file.name))) {
        report.push(`message ${msg.id}: its file queue/large/${msg.file.name} is missing; dropped (it may have been delivered already)`);
        q.remove(msg);
        await journal.append('X', { id: msg.id, reason: 'spill file missing' } satisfies XRecord, [], true);
      }
    }
    await q.dropDeadSegments();
    await q.removeOrphanFiles();
    return { queue: q, recovered: q.messages.size, report };
  }

  get size(): number {
    return this.messages.size;
  }

  get inFlight(): number {
    return this.running;
  }

  list(): QueuedMessage[] {
    return [...this.messages.values()].sort((a, b) => a.arrived - b.arrived);
  }

  get(id: string): QueuedMessage | undefined {
    return this.messages.get(id);
  }

  /**
   * Whether a message of `bytes` can be taken now (free space and inodes in the queue's file
   * system, storage.ts). The SMTP session asks at MAIL and answers 452 4.3.1 when not.
   */
  room(bytes: number): Promise<Room> {
    return this.storage?.room(bytes) ?? Promise.resolve({ ok: true });
  }

  /** A file name in large/ for a message that is too big to hold in memory. */
  largeFile(id: string): string {
    return path.join(this.largeDir, `${id}.eml`);
  }

  /**
   * Commits a message durably. When this resolves, the message is on disk and the client may
   * be told "250". A spilled file must have been written; it is fsynced here.
   */
  async commit(m: NewMessage): Promise<QueuedMessage> {
    try {
      return await this.commitRecord(m);
    } catch (err) {
      // Out of space: the next MAIL must look at the disk again rather than trust a cached "room".
      if (isOutOfSpace(err)) this.storage?.invalidate();
      throw err;
    }
  }

  private async commitRecord(m: NewMessage): Promise<QueuedMessage> {
    if (m.file) {
      const fd = await fsp.open(path.join(this.largeDir, m.file.name), 'r');
      try {
        if (this.opts.fsync) await fd.sync();
        // The spill file must hold every byte the message claims: a write that failed unseen
        // (a full disk) must end in a refusal now, not in a "250" for a message cut short.
        const inline = m.inline.reduce((n, b) => n + b.length, 0);
        const want = m.file.offset + m.size - inline;
        const { size } = await fd.stat();
        if (size !== want) {
          throw Object.assign(new Error(`spill file ${m.file.name} is ${size} bytes, ${want} expected`), { code: 'ESHORTSPILL' });
        }
      } finally {
        await fd.close();
      }
      if (this.opts.fsync) await syncDir(this.largeDir);
    }
    const arrived = this.now();
    const rec: MRecord = {
      id: m.id, arrived, sender: m.sender, meta: m.meta, size: m.size, authenticated: m.authenticated, file: m.file,
      recipients: m.recipients.map((r) => ({ address: r.address, destination: r.destination })),
      ...(m.held ? { held: m.held } : {}),
    };
    const location = await this.journal.append('M', rec, m.inline, true);
    const msg: QueuedMessage = {
      id: m.id, arrived, sender: m.sender, meta: m.meta, size: m.size, authenticated: m.authenticated, file: m.file,
      recipients: m.recipients.map((r) => ({ address: r.address, destination: r.destination, status: 'pending', attempts: 0 })),
      location, cache: m.inline, attempts: 0, nextAttempt: arrived, active: false, held: m.held,
    };
    this.add(msg);
    this.pump();
    return msg;
  }

  private add(msg: QueuedMessage): void {
    // A copy relocated forward before a crash appears twice at recovery: the newer one wins.
    const old = this.messages.get(msg.id);
    if (old) this.remove(old);
    this.messages.set(msg.id, msg);
    const seg = msg.location.segment;
    this.liveBySegment.set(seg, (this.liveBySegment.get(seg) ?? 0) + 1);
  }

  private remove(msg: QueuedMessage): void {
    if (!this.messages.delete(msg.id)) return;
    const seg = msg.location.segment;
    const left = (this.liveBySegment.get(seg) ?? 1) - 1;
    if (left > 0) this.liveBySegment.set(seg, left);
    else this.liveBySegment.delete(seg);
  }

  /**
   * Segments can be dropped oldest-first only: an X record in a newer segment is what tells a
   * restart that a message in an older one is done, so a newer segment must outlive every
   * older segment that still holds a live message. A long-deferred message would then pin
   * every newer segment; it is copied forward into the current segment instead.
   */
  private async dropDeadSegments(): Promise<void> {
    const segs = [...this.journal.segments].sort((a, b) => a - b);
    for (const seg of segs) {
      if (seg === this.journal.currentSegment) break;
      const live = this.liveBySegment.get(seg) ?? 0;
      if (live > 0) {
        if (segs.length <= 2) break;
        await this.relocate(seg);
        if ((this.liveBySegment.get(seg) ?? 0) > 0) break;
      }
      await this.journal.dropSegment(seg);
    }
  }

  /** Copies the live messages of an old segment into the current one, with their state. */
  private async relocate(seg: number): Promise<void> {
    for (const msg of [...this.messages.values()]) {
      if (msg.location.segment !== seg || msg.active) continue;
      const inline = msg.cache ?? [await this.journal.read(msg.location)];
      const rec: MRecord = {
        id: msg.id, arrived: msg.arrived, sender: msg.sender, meta: msg.meta, size: msg.size, authenticated: msg.authenticated, file: msg.file,
        recipients: msg.recipients.map((r) => ({ address: r.address, destination: r.destination, status: r.status, attempts: r.attempts, lastReply: r.lastReply })),
        attempts: msg.attempts, nextAttempt: msg.nextAttempt, held: msg.held, released: msg.released,
      };
      const location = await this.journal.append('M', rec, inline, true);
      this.remove(msg);
      msg.location = location;
      this.add(msg);
    }
  }

  /** Runs dropDeadSegments once at a time; called when a segment empties or the journal rotates. */
  private sweep(): void {
    if (this.stopping) return;
    if (this.sweeping) {
      this.sweepAgain = true;
      return;
    }
    this.sweeping = true;
    void (async () => {
      do {
        this.sweepAgain = false;
        try {
          await this.dropDeadSegments();
        } catch (err) {
          this.opts.logger.error({ event: 'queue_sweep_failed', err: (err as Error).message }, 'cannot reclaim queue segments');
        }
      } while (this.sweepAgain && !this.stopping);
      this.sweeping = false;
    })();
  }

  private async removeOrphanFiles(): Promise<void> {
    const wanted = new Set([...this.messages.values()].flatMap((m) => (m.file ? [m.file.name] : [])));
    for (const name of await fsp.readdir(this.largeDir)) {
      if (!wanted.has(name)) await fsp.rm(path.join(this.largeDir, name), { force: true });
    }
  }

  /** The message's bytes, from memory when still cached, else from the journal and its file. */
  content(msg: QueuedMessage): Content {
    const journal = this.journal;
    const file = msg.file ? path.join(this.largeDir, msg.file.name) : undefined;
    const cache = msg.cache;
    return {
      size: msg.size,
      buffers: cache && !file ? cache : undefined,
      stream(): Readable {
        if (cache && !file) return Readable.from(cache, { objectMode: false });
        const out = new PassThrough();
        void (async () => {
          try {
            const inline = cache ?? [await journal.read(msg.location)];
            for (const b of inline) if (!out.write(b)) await new Promise((r) => out.once('drain', r));
            if (file) {
              const rs = fs.createReadStream(file, { start: msg.file!.offset });
              rs.on('error', (e) => out.destroy(e));
              rs.pipe(out);
            } else out.end();
          } catch (err) {
            out.destroy(err as Error);
          }
        })();
        return out;
      },
    };
  }

  start(deliverer: Deliverer): void {
    this.deliverer = deliverer;
    this.pump();
  }

  /** Makes every deferred message due now (`portcullis queue flush`). */
  flush(): number {
    let n = 0;
    for (const msg of this.messages.values()) {
      if (!msg.active && msg.nextAttempt > this.now()) {
        msg.nextAttempt = this.now();
        n++;
      }
    }
    this.pump();
    return n;
  }

  /** Deletes a message (`portcullis queue delete`); refused while a delivery is running. */
  async delete(id: string): Promise<'deleted' | 'busy' | 'unknown'> {
    const msg = this.messages.get(id);
    if (!msg) return 'unknown';
    if (msg.active) return 'busy';
    this.remove(msg);
    await this.journal.append('X', { id, reason: 'deleted by administrator' } satisfies XRecord, [], true);
    await this.cleanup(msg);
    return 'deleted';
  }

  private pump(): void {
    if (!this.deliverer || this.stopping) return;
    const now = this.now();
    let earliest = Infinity;
    for (const msg of this.messages.values()) {
      if (this.running >= this.opts.concurrency) return;
      if (msg.active || msg.held) continue;
      if (msg.nextAttempt <= now) void this.attempt(msg);
      else earliest = Math.min(earliest, msg.nextAttempt);
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (earliest < Infinity) {
      this.timer = setTimeout(() => this.pump(), Math.min(Math.max(earliest - now, 10), 60_000));
      this.timer.unref();
    }
  }

  private async attempt(msg: QueuedMessage): Promise<void> {
    msg.active = true;
    this.running++;
    const started = this.now();
    const todo = msg.recipients.filter((r) => r.status === 'pending' || r.status === 'deferred');
    let outcomes: RecipientOutcome[];
    try {
      outcomes = await this.deliverer!.deliver(msg, todo, this.content(msg));
    } catch (err) {
      outcomes = todo.map(() => ({ status: 'deferred' as const, reply: `local error: ${(err as Error).message}` }));
    }
    msg.cache = undefined;
    msg.attempts++;
    const expired = this.now() - (msg.released ?? msg.arrived) >= this.opts.lifetime;
    const backoff = Math.min(this.opts.retryMax, this.opts.retryInitial * 2 ** Math.max(0, msg.attempts - 1));
    const next = this.now() + backoff;
    todo.forEach((r, k) => {
      const o = outcomes[k] ?? { status: 'deferred', reply: 'no outcome from delivery agent' };
      r.attempts++;
      r.lastReply = o.reply;
      if (o.status === 'deferred' && expired) {
        r.status = 'failed';
        r.lastReply = `${o.reply} (gave up: in queue longer than the configured lifetime)`;
      } else r.status = o.status;
      const rec: SRecord = { id: msg.id, rcpt: msg.recipients.indexOf(r), status: r.status, attempts: r.attempts, reply: r.lastReply, next: r.status === 'deferred' ? next : undefined };
      this.journal.appendLazy('S', rec, (e) => this.opts.logger.error({ event: 'queue_write_failed', err: e.message }, 'queue status write failed'));
      if (r.status === 'delivered') this.opts.events?.delivered?.(msg, r, this.now() - started);
      else if (r.status === 'deferred') this.opts.events?.deferred?.(msg, r);
      else this.opts.events?.failed?.(msg, r);
    });
    if (msg.recipients.some((r) => r.status === 'pending' || r.status === 'deferred')) {
      msg.nextAttempt = next;
    } else {
      const failed = msg.recipients.filter((r) => r.status === 'failed');
      // Before removal: the content must still be readable for the record of a failure.
      await this.opts.events?.finished?.(msg, failed);
      this.remove(msg);
      if (msg.file) {
        // The spill file may go only once "done" is on disk: a restart that still saw the
        // message as pending would find no file to deliver.
        try {
          await this.journal.append('X', { id: msg.id } satisfies XRecord, [], true);
          await this.cleanup(msg);
        } catch (err) {
          this.opts.logger.error({ event: 'queue_write_failed', id: msg.id, err: (err as Error).message }, 'queue done write failed; spill file kept');
        }
      } else {
        this.journal.appendLazy('X', { id: msg.id } satisfies XRecord, (e) => this.opts.logger.error({ event: 'queue_write_failed', err: e.message }, 'queue done write failed'));
      }
    }
    msg.active = false;
    this.running--;
    if (this.stopping && this.running === 0) this.idle.splice(0).forEach((f) => f());
    this.pump();
    if (!this.liveBySegment.has(msg.location.segment)) this.sweep();
  }

  private async cleanup(msg: QueuedMessage): Promise<void> {
    if (msg.file) await fsp.rm(path.join(this.largeDir, msg.file.name), { force: true });
  }

  // ---- the hold queue (hold.ts; Postfix's postsuper -h / -H) --------------------------------

  /**
   * Puts messages into hold: kept, listed, never delivered until released. The state is
   * written as a fresh copy of the message record (the newer copy wins at recovery, as for
   * relocate()), so a restart keeps it. A message being delivered right now is held for the
   * recipients that attempt leaves pending. Returns the ids newly held.
   */
  async holdWhere(match: (m: QueuedMessage) => boolean, reason: string): Promise<string[]> {
    const ids: string[] = [];
    for (const msg of [...this.messages.values()]) {
      if (msg.held || !match(msg)) continue;
      msg.held = { reason, since: this.now() };
      await this.rerecord(msg);
      ids.push(msg.id);
    }
    return ids;
  }

  /** Releases held messages: due at once, and queue.lifetime starts again from now. Returns the ids released. */
  async releaseWhere(match: (m: QueuedMessage) => boolean): Promise<string[]> {
    const ids: string[] = [];
    for (const msg of [...this.messages.values()]) {
      if (!msg.held || !match(msg)) continue;
      msg.held = undefined;
      msg.released = this.now();
      msg.nextAttempt = this.now();
      await this.rerecord(msg);
      ids.push(msg.id);
    }
    this.pump();
    return ids;
  }

  /** Appends the message's record again with its current state (hold, statuses, attempts). */
  private async rerecord(msg: QueuedMessage): Promise<void> {
    const inline = msg.cache ?? [await this.journal.read(msg.location)];
    // Finished while its bytes were read: a new record would bring a delivered message back.
    if (this.messages.get(msg.id) !== msg) return;
    const rec: MRecord = {
      id: msg.id, arrived: msg.arrived, sender: msg.sender, meta: msg.meta, size: msg.size, authenticated: msg.authenticated, file: msg.file,
      recipients: msg.recipients.map((r) => ({ address: r.address, destination: r.destination, status: r.status, attempts: r.attempts, lastReply: r.lastReply })),
      attempts: msg.attempts, nextAttempt: msg.nextAttempt, held: msg.held, released: msg.released,
    };
    // No await between the check above and this append: journal order is call order, so an X
    // record of a delivery that ends now comes after this copy.
    const location = await this.journal.append('M', rec, inline, true);
    // Removed meanwhile (delivered while the record was written): nothing to re-index.
    if (this.messages.get(msg.id) !== msg) return;
    const old = msg.location.segment;
    this.remove(msg);
    msg.location = location;
    this.add(msg);
    if (!this.liveBySegment.has(old)) this.sweep();
  }

  /** Stops starting deliveries, waits for running ones (up to graceMs), flushes the journal. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.running > 0) {
      await Promise.race([
        new Promise<void>((r) => this.idle.push(r)),
        new Promise<void>((r) => setTimeout(r, graceMs).unref()),
      ]);
    }
    await this.journal.close();
  }
}
