// The quarantine index shared by the gateway nodes on one Redis (`store.backend: redis`,
// docs/scaling.md): an entry held on any node is listed, searched, released and deleted from
// every node's console and CLI. The original stays on the node that holds it, as spools do; that
// node reads it and releases it when another one asks.
//
// How: each node keeps its own SQLite index (index-db.ts — searching stays a local full-text
// lookup, and the SMTP path never waits for Redis to quarantine), and the nodes exchange the
// changes through one Redis stream, the shared log:
//   <prefix>{quar}:log                 stream of { o: origin node, e: event (JSON) }
//   <prefix>{quar}:blob:<request id>   an original sent to the node that asked for it (2 min TTL)
//   <prefix>{quar}:nodes               node → when it last checked in (every few seconds)
// A change goes into the node's outbox in the same SQLite transaction as the change itself and is
// handed to the log from there, so a Redis outage or a crash delays it and loses nothing. Every
// node reads the log from where it stopped (the cursor is saved with what it applied); the log
// keeps quarantine.max_age of history, so a node that joins reads it whole and one that comes back
// reads what it missed; a node that finds itself missing from `nodes` (a new or flushed Redis)
// announces all it holds again. Requests to a holder (release, headers, original) and their answers go through
// the same log with a deadline, so a node coming back never acts on a stale request.
//
// Why a stream and not the index itself in Redis: a Redis index would need a substring search of
// its own (no full-text without modules) and would make holding a message depend on Redis being up.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { createRedisClient, describe, type RedisConnectOptions } from '../store/redis-client.js';
import { QuarantineError, type PeerCall, type Quarantine, type QuarantinePeers, type SharedEvent } from './quarantine.js';

/** Longest blocking read of the log (a closing node waits at most this long for its reader). */
const BLOCK_MS = 1000;
const READ_COUNT = 500;
const PUSH_BATCH = 200;
const BLOB_TTL_MS = 120_000;
const RETRY_MS = 1000;
/** How often a node checks that Redis still knows it (a flushed or replaced Redis lost the log). */
const CHECK_IN_MS = 5000;
const TRIM_EVERY_MS = 10 * 60_000;
/** The log keeps this much beyond max_age, for clocks that differ a little between nodes. */
const TRIM_MARGIN_MS = 3600_000;

export interface SharedIndexOptions extends RedisConnectOptions {
  /** store.prefix. */
  readonly prefix: string;
  readonly logger: Logger;
  /** quarantine.max_age: how much history the log keeps. */
  readonly maxAgeMs: number;
  /** The gateway's hostname: the start of this node's name in the log. */
  readonly hostname: string;
  /** The longest wait for the node holding an original. Default 10 s. */
  readonly callTimeoutMs?: number;
}

interface CallEvent { op: 'call'; req: string; to: string; deadline: number; call: PeerCall }
interface ReplyEvent { op: 'reply'; req: string; to: string; result?: unknown; blob?: string; error?: { code: string; message: string } }
type LogEvent = SharedEvent | CallEvent | ReplyEvent;

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export class SharedQuarantineIndex implements QuarantinePeers {
  /** This node's name in the log (and in the entries the others list): `<hostname>-<6 random>`. */
  readonly node: string;
  private readonly key: string;
  private readonly blobPrefix: string;
  private readonly nodesKey: string;
  private readonly writer: Redis | Cluster;
  private readonly reader: Redis | Cluster;
  private readonly log: Logger;
  private readonly callTimeoutMs: number;
  private readonly pending = new Map<string, Pending>();
  private cursor = '0-0';
  private pushing: Promise<void> | undefined;
  private pushAgain = false;
  private retry: NodeJS.Timeout | undefined;
  private trimTimer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private down = false;
  private closed = false;

  private constructor(private readonly q: Quarantine, private readonly options: SharedIndexOptions) {
    const p = `${options.prefix}{quar}:`;
    this.key = `${p}log`;
    this.blobPrefix = `${p}blob:`;
    this.nodesKey = `${p}nodes`;
    this.node = nodeName(q.dir, options.hostname);
    this.log = options.logger.child({ component: 'quarantine-share' });
    this.callTimeoutMs = options.callTimeoutMs ?? 10_000;
    // Originals of several MB go through `writer`: longer than the SMTP path's command budget.
    this.writer = createRedisClient({ ...options, timeoutMs: Math.max(options.timeoutMs ?? 500, 5000) });
    // A blocking read holds its connection: the reader has its own, with room for BLOCK_MS.
    this.reader = createRedisClient({ ...options, timeoutMs: (options.timeoutMs ?? 500) + BLOCK_MS + 1000 });
    for (const c of [this.writer, this.reader]) c.on('error', () => undefined); // reported by the loops
  }

  /** Shares `q`'s index from now on (the outbox fills at once; Redis may come later). */
  static start(q: Quarantine, options: SharedIndexOptions): SharedQuarantineIndex {
    const s = new SharedQuarantineIndex(q, options);
    q.share(s);
    s.reading = s.readLoop();
    s.trimTimer = setInterval(() => void s.trim(), TRIM_EVERY_MS);
    s.trimTimer.unref();
    s.log.info({ event: 'quarantine_shared', node: s.node, store: describe(options) }, `quarantine index shared through ${describe(options)} as node ${s.node}`);
    return s;
  }

  /** Hands the outbox to the log, in order; resolves when it is empty (or fails, to be retried). */
  flush(): void {
    this.push().catch(() => undefined);
  }

  async call(node: string, call: PeerCall): Promise<unknown> {
    if (this.closed) throw new QuarantineError('UNAVAILABLE', 'the shared quarantine index is closed');
    const req = crypto.randomBytes(9).toString('base64url');
    const event: CallEvent = { op: 'call', req, to: node, deadline: Date.now() + this.callTimeoutMs, call };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(req);
        reject(new QuarantineError('UNAVAILABLE', `node ${node}, which holds message ${call.id}, did not answer within ${this.callTimeoutMs / 1000} s`));
      }, this.callTimeoutMs);
      this.pending.set(req, { resolve, reject, timer });
      this.writer.xadd(this.key, '*', 'o', this.node, 'e', JSON.stringify(event)).catch((err: Error) => {
        clearTimeout(timer);
        this.pending.delete(req);
        reject(new QuarantineError('UNAVAILABLE', `the shared quarantine index (${describe(this.options)}) cannot be reached: ${err.message}`));
      });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // What is in the outbox now is handed on if Redis answers; otherwise it waits for the next start.
    await Promise.race([this.push().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.trimTimer) clearInterval(this.trimTimer);
    for (const [req, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new QuarantineError('UNAVAILABLE', 'the gateway is stopping'));
      this.pending.delete(req);
    }
    this.reader.disconnect();
    await this.reading;
    await this.writer.quit().catch(() => this.writer.disconnect());
  }

  // ---- the outbox → the log -------------------------------------------------------------------

  private push(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.pushing) {
      this.pushAgain = true;
      return this.pushing;
    }
    this.pushing = (async () => {
      do {
        this.pushAgain = false;
        for (;;) {
          const rows = this.q.outbox(PUSH_BATCH);
          if (!rows.length) break;
          const batch = this.writer.pipeline();
          for (const r of rows) batch.xadd(this.key, '*', 'o', this.node, 'e', r.event);
          const results = (await batch.exec()) ?? [];
          const failed = results.find(([err]) => err);
          if (failed || results.length !== rows.length) throw failed?.[0] ?? new Error('the pipeline was cut');
          this.q.outboxDone(rows[rows.length - 1]!.seq);
        }
      } while (this.pushAgain);
    })().catch((err: Error) => {
      // Sent again later; what was half sent arrives twice, which applying tolerates (idempotent).
      this.lost(err);
      if (!this.closed && !this.retry) this.retry = setTimeout(() => { this.retry = undefined; this.flush(); }, RETRY_MS);
      throw err;
    }).finally(() => {
      this.pushing = undefined;
    });
    return this.pushing;
  }

  // ---- the log → this node ------------------------------------------------------------------

  private async readLoop(): Promise<void> {
    let checked = 0;
    while (!this.closed) {
      try {
        if (Date.now() - checked >= CHECK_IN_MS) {
          await this.checkLog();
          checked = Date.now();
        }
        const res = (await this.reader.xread('COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', this.key, this.cursor)) as [string, [string, string[]][]][] | null;
        this.up();
        if (!res?.length) continue;
        this.apply(res[0]![1]);
      } catch (err) {
        if (this.closed) break;
        this.lost(err as Error);
        checked = 0;
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }

  /**
   * Checks in, and decides where to read from: the saved cursor; or, for a node new to the log,
   * from the start after announcing what it holds; or, when Redis no longer knows this node
   * (flushed, or a new server), the same, since the log this node wrote to is gone.
   */
  private async checkLog(): Promise<void> {
    const saved = this.q.sharedCursor(this.key);
    const known = (await this.writer.hexists(this.nodesKey, this.node)) === 1;
    if (saved === undefined) {
      const n = this.q.announce(this.key);
      this.log.info({ event: 'quarantine_announced', entries: n }, `announced the ${n} quarantined messages this node holds to the shared index`);
    } else if (!known) {
      const n = this.q.announce(this.key);
      this.log.warn({ event: 'quarantine_log_lost', entries: n }, `Redis no longer has the shared quarantine log (a new or flushed server): announced this node's ${n} entries again and reading it from the start`);
    }
    await this.writer.hset(this.nodesKey, this.node, String(Date.now()));
    this.cursor = this.q.sharedCursor(this.key) ?? '0-0';
    if (saved === undefined || !known) this.flush();
  }

  private apply(entries: [string, string[]][]): void {
    const changes: { origin: string; event: SharedEvent }[] = [];
    let last = this.cursor;
    for (const [id, fields] of entries) {
      last = id;
      let origin: string | undefined;
      let event: LogEvent;
      try {
        const f: Record<string, string> = {};
        for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
        origin = f.o;
        event = JSON.parse(f.e ?? '') as LogEvent;
        if (!origin || typeof event?.op !== 'string') throw new Error('no origin or no op');
      } catch (err) {
        this.log.warn({ event: 'quarantine_log_bad_entry', id, err: (err as Error).message }, 'skipped an unreadable entry of the shared quarantine log');
        continue;
      }
      if (event.op === 'call') {
        if (event.to === this.node && event.deadline > Date.now()) void this.serve(origin, event);
      } else if (event.op === 'reply') {
        if (event.to === this.node) void this.answer(event);
      } else if (origin !== this.node) {
        changes.push({ origin, event });
      }
    }
    this.q.applyShared(this.key, changes, last);
    this.cursor = last;
  }

  /** Does what another node asked of the original this node holds, and answers. */
  private async serve(origin: string, e: CallEvent): Promise<void> {
    let reply: Omit<ReplyEvent, 'op' | 'req' | 'to'>;
    try {
      const c = e.call;
      if (c.method === 'release') {
        const result = await this.q.release(c.id, { by: c.by, ...(c.recipient ? { recipient: c.recipient } : {}) });
        // The new states reach the log before the answer: the asking node lists them at once.
        await this.push();
        reply = { result };
      } else if (c.method === 'headers') {
        reply = { result: await this.q.headers(c.id) };
      } else if (c.method === 'original') {
        const chunks: Buffer[] = [];
        for await (const chunk of this.q.original(c.id)) chunks.push(chunk as Buffer);
        const blob = `${this.blobPrefix}${e.req}`;
        await this.writer.set(blob, Buffer.concat(chunks), 'PX', BLOB_TTL_MS);
        reply = { blob };
      } else {
        throw new QuarantineError('INVALID', `unknown request ${JSON.stringify((c as { method: unknown }).method)}`);
      }
    } catch (err) {
      const code = err instanceof QuarantineError ? err.code : 'UNAVAILABLE';
      reply = { error: { code, message: (err as Error).message } };
    }
    this.log.info({ event: 'quarantine_peer_request', from: origin, method: e.call.method, quarantine_id: e.call.id, outcome: reply.error?.code ?? 'ok' }, `${e.call.method} of ${e.call.id} for node ${origin}`);
    const answer: ReplyEvent = { op: 'reply', req: e.req, to: origin, ...reply };
    await this.writer.xadd(this.key, '*', 'o', this.node, 'e', JSON.stringify(answer)).catch((err: Error) => this.lost(err));
  }

  private async answer(e: ReplyEvent): Promise<void> {
    const p = this.pending.get(e.req);
    if (!p) return;
    this.pending.delete(e.req);
    clearTimeout(p.timer);
    if (e.error) return p.reject(new QuarantineError(e.error.code as QuarantineError['code'], e.error.message));
    if (!e.blob) return p.resolve(e.result);
    try {
      const data = await this.writer.getBuffer(e.blob);
      void this.writer.del(e.blob).catch(() => undefined);
      if (!data) throw new QuarantineError('UNAVAILABLE', 'the original sent by its holder expired before it was read');
      p.resolve(data);
    } catch (err) {
      p.reject(err instanceof QuarantineError ? err : new QuarantineError('UNAVAILABLE', (err as Error).message));
    }
  }

  /** Keeps max_age (and a margin) of history: older entries concern messages every node has dropped. */
  private async trim(): Promise<void> {
    const minId = `${Math.max(0, Date.now() - this.options.maxAgeMs - TRIM_MARGIN_MS)}-0`;
    await this.writer.xtrim(this.key, 'MINID', '~', minId).catch((err: Error) => this.lost(err));
  }

  private lost(err: Error): void {
    if (this.down || this.closed) return;
    this.down = true;
    this.log.warn({ event: 'quarantine_share_down', err: err.message }, `the shared quarantine index (${describe(this.options)}) is unreachable: changes wait in the outbox, entries held on other nodes cannot be released from here`);
  }

  private up(): void {
    if (!this.down) return;
    this.down = false;
    this.log.info({ event: 'quarantine_share_up' }, 'the shared quarantine index is reachable again');
    this.flush();
  }
}

/** This node's name, made once and kept in the quarantine directory (a hostname alone may repeat). */
function nodeName(dir: string, hostname: string): string {
  const file = path.join(dir, 'node');
  try {
    const name = fs.readFileSync(file, 'utf8').trim();
    if (/^[\w.-]{1,100}$/.test(name)) return name;
  } catch {
    // First start: made below.
  }
  const name = `${hostname.replace(/[^\w.-]/g, '_').slice(0, 80)}-${crypto.randomBytes(4).toString('hex').slice(0, 6)}`;
  fs.writeFileSync(file, `${name}\n`, { mode: 0o600 });
  return name;
}
