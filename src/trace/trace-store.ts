// The message trace: one row per decision at the end of DATA (what src/smtp/session.ts logs as
// the "message" event), kept for the console's dashboard and its search by queue id,
// Message-ID, sender or recipient (docs/console.md). SQLite under the data directory
// (`<dataDir>/trace.db`), rows older than the retention dropped by prune().
//
// Recording is on the SMTP path, after the reply is decided: it must never throw into the
// session and must stay cheap (one prepared insert per table, in one transaction).
import type Database from 'better-sqlite3';
import path from 'node:path';
import { openSqliteFile } from '../store/sqlite-file.js';

export interface TraceSymbol {
  readonly name: string;
  readonly score: number;
  readonly reason?: string;
}

/** What the session knows of a message when its fate is decided. */
export interface TraceEntry {
  readonly queueId: string;
  readonly messageId?: string;
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly action: string;
  readonly reply: string;
  readonly score: number;
  readonly size: number;
  readonly client?: string;
  readonly user?: string;
  readonly symbols: readonly TraceSymbol[];
  readonly attachments?: readonly string[];
  /** Milliseconds since the epoch; now when absent. */
  readonly time?: number;
}

export interface TraceRow extends Required<Omit<TraceEntry, 'messageId' | 'client' | 'user' | 'attachments'>> {
  readonly id: number;
  readonly messageId?: string;
  readonly client?: string;
  readonly user?: string;
  readonly attachments: readonly string[];
}

export type TraceQuery =
  | { readonly kind: 'queue-id'; readonly value: string }
  | { readonly kind: 'message-id'; readonly value: string }
  | { readonly kind: 'address'; readonly value: string }
  | { readonly kind: 'recent' };

/** What a search box holds: `<…>` a Message-ID, an address (with "@") the sender or a recipient, else a queue id. */
export function parseTraceQuery(input: string): TraceQuery {
  const q = input.trim();
  if (q === '') return { kind: 'recent' };
  if (q.startsWith('<') && q.endsWith('>')) return { kind: 'message-id', value: q.slice(1, -1) };
  if (q.includes('@')) return { kind: 'address', value: q.toLowerCase() };
  return { kind: 'queue-id', value: q.toUpperCase() };
}

const MIGRATIONS: Record<number, string> = {
  1: `
    CREATE TABLE trace (
      id         INTEGER PRIMARY KEY,
      time       INTEGER NOT NULL,
      queue_id   TEXT NOT NULL,
      message_id TEXT,
      sender     TEXT NOT NULL,
      action     TEXT NOT NULL,
      score      REAL NOT NULL,
      size       INTEGER NOT NULL,
      reply      TEXT NOT NULL,
      client     TEXT,
      user       TEXT,
      detail     TEXT NOT NULL          -- JSON: recipients, symbols (with reasons), attachments
    );
    CREATE INDEX trace_time ON trace (time);
    CREATE INDEX trace_queue_id ON trace (queue_id);
    CREATE INDEX trace_message_id ON trace (message_id);
    CREATE INDEX trace_sender ON trace (sender, time);
    CREATE TABLE trace_rcpt (
      trace   INTEGER NOT NULL REFERENCES trace (id) ON DELETE CASCADE,
      address TEXT NOT NULL,
      time    INTEGER NOT NULL
    );
    CREATE INDEX trace_rcpt_address ON trace_rcpt (address, time);
    CREATE INDEX trace_rcpt_trace ON trace_rcpt (trace);
    -- One row per symbol, for the dashboard's "top symbols" without parsing JSON.
    CREATE TABLE trace_symbol (
      trace INTEGER NOT NULL REFERENCES trace (id) ON DELETE CASCADE,
      name  TEXT NOT NULL,
      time  INTEGER NOT NULL
    );
    CREATE INDEX trace_symbol_time ON trace_symbol (time, name);
    CREATE INDEX trace_symbol_trace ON trace_symbol (trace);
  `,
};

interface Row {
  id: number; time: number; queue_id: string; message_id: string | null; sender: string; action: string;
  score: number; size: number; reply: string; client: string | null; user: string | null; detail: string;
}

const HOUR = 3_600_000;

export class TraceStore {
  private readonly q;

  private constructor(private readonly db: Database.Database, private readonly now: () => number) {
    db.pragma('foreign_keys = ON');
    const cols = 'id, time, queue_id, message_id, sender, action, score, size, reply, client, user, detail';
    this.q = {
      insert: db.prepare<[number, string, string | null, string, string, number, number, string, string | null, string | null, string]>(
        'INSERT INTO trace (time, queue_id, message_id, sender, action, score, size, reply, client, user, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      insertRcpt: db.prepare<[number | bigint, string, number]>('INSERT INTO trace_rcpt (trace, address, time) VALUES (?, ?, ?)'),
      insertSymbol: db.prepare<[number | bigint, string, number]>('INSERT INTO trace_symbol (trace, name, time) VALUES (?, ?, ?)'),
      byId: db.prepare<[number], Row>(`SELECT ${cols} FROM trace WHERE id = ?`),
      byQueueId: db.prepare<[string, number], Row>(`SELECT ${cols} FROM trace WHERE queue_id = ? ORDER BY time DESC LIMIT ?`),
      byMessageId: db.prepare<[string, number], Row>(`SELECT ${cols} FROM trace WHERE message_id = ? ORDER BY time DESC LIMIT ?`),
      byAddress: db.prepare<[string, string, number], Row>(
        `SELECT ${cols} FROM trace WHERE id IN (SELECT id FROM trace WHERE sender = ? UNION SELECT trace FROM trace_rcpt WHERE address = ?) ORDER BY time DESC LIMIT ?`),
      recent: db.prepare<[number], Row>(`SELECT ${cols} FROM trace ORDER BY time DESC LIMIT ?`),
      hourly: db.prepare<[number], { hour: number; action: string; n: number }>(
        `SELECT (time / ${HOUR}) AS hour, action, count(*) AS n FROM trace WHERE time >= ? GROUP BY hour, action`),
      topSymbols: db.prepare<[number, number], { name: string; n: number }>(
        'SELECT name, count(*) AS n FROM trace_symbol WHERE time >= ? GROUP BY name ORDER BY n DESC, name LIMIT ?'),
      symbolCount: db.prepare<[number, string], { n: number }>('SELECT count(*) AS n FROM trace_symbol WHERE time >= ? AND name = ?'),
      prune: db.prepare<[number]>('DELETE FROM trace WHERE time < ?'),
      count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM trace'),
    };
  }

  static open(file: string, options: { now?: () => number } = {}): TraceStore {
    const db = openSqliteFile(file, { migrations: MIGRATIONS, tooNew: (m) => new Error(m) });
    return new TraceStore(db, options.now ?? Date.now);
  }

  static fileIn(dataDir: string): string {
    return path.join(dataDir, 'trace.db');
  }

  close(): void {
    if (!this.db.open) return;
    try {
      this.flush();
    } finally {
      this.db.close();
    }
  }

  private pending: TraceEntry[] = [];
  private flushTimer: NodeJS.Timeout | undefined;

  private insertOne(e: TraceEntry): number {
    const time = e.time ?? this.now();
    const symbols = e.symbols.map((s) => ({ name: s.name, score: s.score, reason: s.reason }));
    const detail = JSON.stringify({ recipients: e.recipients, symbols, attachments: e.attachments ?? [] });
    const id = this.q.insert.run(time, e.queueId, e.messageId ?? null, e.sender.toLowerCase(), e.action, e.score, e.size, e.reply, e.client ?? null, e.user ?? null, detail).lastInsertRowid;
    for (const r of new Set(e.recipients.map((x) => x.toLowerCase()))) this.q.insertRcpt.run(id, r, time);
    for (const s of new Set(e.symbols.map((x) => x.name))) this.q.insertSymbol.run(id, s, time);
    return Number(id);
  }

  /** Records one decision now; returns its row id. Throws only on a database fault (the caller logs it). */
  record(entry: TraceEntry): number {
    this.flush();
    return this.db.transaction(() => this.insertOne(entry))();
  }

  /**
   * Records one decision in the next batch: one transaction per `batchMs` instead of one per
   * message keeps the SMTP path's cost to a push (a commit costs far more than the inserts).
   * Every read flushes first, so the console always sees what was decided.
   */
  enqueue(entry: TraceEntry, onError: (err: Error) => void, batchMs = 200): void {
    this.pending.push({ ...entry, time: entry.time ?? this.now() });
    const flush = () => {
      try {
        this.flush();
      } catch (err) {
        onError(err as Error);
      }
    };
    if (this.pending.length >= 500) flush();
    else this.flushTimer ??= setTimeout(flush, batchMs).unref();
  }

  /** Writes the pending batch. Throws on a database fault (the batch is dropped: the trace is not mail). */
  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.pending.length) return;
    const batch = this.pending;
    this.pending = [];
    this.db.transaction(() => {
      for (const e of batch) this.insertOne(e);
    })();
  }

  get(id: number): TraceRow | undefined {
    this.flush();
    const r = this.q.byId.get(id);
    return r && toRow(r);
  }

  find(query: TraceQuery, limit = 100): TraceRow[] {
    this.flush();
    const rows = query.kind === 'queue-id' ? this.q.byQueueId.all(query.value, limit)
      : query.kind === 'message-id' ? this.q.byMessageId.all(query.value, limit)
        : query.kind === 'address' ? this.q.byAddress.all(query.value, query.value, limit)
          : this.q.recent.all(limit);
    return rows.map(toRow);
  }

  /** Messages per hour and action over the last `hours` hours (oldest first, every hour present). */
  hourly(hours = 24): { hour: number; counts: Record<string, number> }[] {
    this.flush();
    const nowHour = Math.floor(this.now() / HOUR);
    const first = nowHour - hours + 1;
    const out = Array.from({ length: hours }, (_, i) => ({ hour: (first + i) * HOUR, counts: {} as Record<string, number> }));
    for (const r of this.q.hourly.all(first * HOUR)) {
      const slot = out[r.hour - first];
      if (slot) slot.counts[r.action] = (slot.counts[r.action] ?? 0) + r.n;
    }
    return out;
  }

  topSymbols(sinceMs: number, limit = 10): { name: string; count: number }[] {
    this.flush();
    return this.q.topSymbols.all(sinceMs, limit).map((r) => ({ name: r.name, count: r.n }));
  }

  symbolCount(sinceMs: number, name: string): number {
    this.flush();
    return this.q.symbolCount.get(sinceMs, name)?.n ?? 0;
  }

  /** Drops rows older than `retentionMs`; returns how many. */
  prune(retentionMs: number): number {
    this.flush();
    return this.q.prune.run(this.now() - retentionMs).changes;
  }

  get size(): number {
    this.flush();
    return this.q.count.get()?.n ?? 0;
  }
}

function toRow(r: Row): TraceRow {
  const d = JSON.parse(r.detail) as { recipients: string[]; symbols: TraceSymbol[]; attachments: string[] };
  return {
    id: r.id, time: r.time, queueId: r.queue_id, messageId: r.message_id ?? undefined, sender: r.sender, action: r.action,
    score: r.score, size: r.size, reply: r.reply, client: r.client ?? undefined, user: r.user ?? undefined,
    recipients: d.recipients, symbols: d.symbols, attachments: d.attachments,
  };
}

/**
 * The session's hook (SessionDeps.trace): batches (enqueue), and reports a failed batch to
 * `onError` instead of throwing, so mail flow never depends on the trace.
 */
export function traceRecorder(store: TraceStore, onError: (err: Error) => void): (entry: TraceEntry) => void {
  return (entry) => {
    try {
      store.enqueue(entry, onError);
    } catch (err) {
      onError(err as Error);
    }
  };
}
