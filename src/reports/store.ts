// What the gateway keeps of reports about its mail: one SQLite file, `<data_dir>/reports.db`,
// written by the gateway and read by `portcullis complaints` / `portcullis reports` (WAL: the CLI
// reads while the gateway writes). Besides the reports it keeps a short record of the mail our
// users sent out (queue id, Message-ID, user, client address), which is what a complaint is
// attributed by. Every table is pruned to `retention`.
import path from 'node:path';
import type Database from 'better-sqlite3';
import { openSqliteFile } from '../store/sqlite-file.js';
import type { Complaint, Reporter } from './classify.js';
import type { DmarcAggregate } from './dmarc-xml.js';
import type { TlsRptReport } from './tlsrpt-json.js';
import { DMARC_OUT_MIGRATION, DmarcReporter, type DmarcOutConfig } from './dmarc-out.js';
import type { Resolver } from '../dns/types.js';
import type { Logger } from '../log.js';

export class ReportsStoreError extends Error {
  override readonly name = 'ReportsStoreError';
}

export function reportsFile(dataDir: string): string {
  return path.join(dataDir, 'reports.db');
}

const MIGRATIONS: Record<number, string> = {
  1: `
    CREATE TABLE sent (
      queue_id   TEXT PRIMARY KEY,
      message_id TEXT,
      user       TEXT,
      client     TEXT,
      sender     TEXT NOT NULL,
      at         INTEGER NOT NULL            -- epoch ms
    ) WITHOUT ROWID;
    CREATE INDEX sent_message_id ON sent (message_id);
    CREATE INDEX sent_at ON sent (at);
    CREATE TABLE complaints (
      id            INTEGER PRIMARY KEY,
      at            INTEGER NOT NULL,
      reporter      TEXT NOT NULL,
      reporter_domain TEXT NOT NULL,
      verified      INTEGER NOT NULL,
      format        TEXT NOT NULL,
      feedback_type TEXT NOT NULL,
      user          TEXT,
      attributed_by TEXT,
      client        TEXT,
      source_ip     TEXT,
      queue_id      TEXT,
      message_id    TEXT,
      original      TEXT NOT NULL            -- JSON: from, subject, date, rcpt, reported domains, user agent
    );
    CREATE INDEX complaints_user ON complaints (user, at);
    CREATE INDEX complaints_at ON complaints (at);
    CREATE TABLE reports (
      id         INTEGER PRIMARY KEY,
      at         INTEGER NOT NULL,
      kind       TEXT NOT NULL,               -- dmarc | tlsrpt
      org        TEXT NOT NULL,
      report_id  TEXT NOT NULL,
      reporter   TEXT NOT NULL,
      verified   INTEGER NOT NULL,
      domain     TEXT NOT NULL,               -- DMARC: policy domain; TLS-RPT: the policy domains, comma-separated
      begin      INTEGER NOT NULL,            -- epoch s
      end        INTEGER NOT NULL,
      messages   INTEGER NOT NULL,            -- DMARC: messages; TLS-RPT: sessions
      failed     INTEGER NOT NULL,            -- DMARC: not passing; TLS-RPT: failed sessions
      detail     TEXT NOT NULL,               -- JSON: the policy and, for TLS-RPT, the policies
      UNIQUE (kind, org, report_id)
    );
    CREATE INDEX reports_at ON reports (kind, at);
    CREATE TABLE dmarc_records (
      report       INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
      source_ip    TEXT NOT NULL,
      count        INTEGER NOT NULL,
      disposition  TEXT NOT NULL,
      dkim         TEXT NOT NULL,
      spf          TEXT NOT NULL,
      header_from  TEXT NOT NULL,
      auth         TEXT NOT NULL              -- JSON: raw DKIM and SPF results
    );
    CREATE INDEX dmarc_records_report ON dmarc_records (report);
    CREATE INDEX dmarc_records_ip ON dmarc_records (source_ip);
    CREATE TABLE unparsed (
      id       INTEGER PRIMARY KEY,
      at       INTEGER NOT NULL,
      type     TEXT NOT NULL,
      reporter TEXT NOT NULL,
      verified INTEGER NOT NULL,
      subject  TEXT NOT NULL,
      size     INTEGER NOT NULL,
      reason   TEXT NOT NULL
    );
    CREATE INDEX unparsed_at ON unparsed (at);
  `,
  2: DMARC_OUT_MIGRATION,
  // Complaints about list mail: the list and the member the reported copy went to.
  3: `
    ALTER TABLE complaints ADD COLUMN list TEXT;
    ALTER TABLE complaints ADD COLUMN member TEXT;
    ALTER TABLE complaints ADD COLUMN list_by TEXT;
  `,
};

export interface SentRecord {
  readonly queueId: string;
  readonly messageId?: string;
  readonly user?: string;
  readonly client?: string;
  readonly sender: string;
  readonly at: number;
}

export interface ComplaintRow {
  readonly id: number;
  readonly at: string;
  readonly reporter: string;
  readonly reporterDomain: string;
  readonly verified: boolean;
  readonly format: string;
  readonly feedbackType: string;
  /** The local user the complaint is about, when it could be attributed. */
  readonly user?: string;
  /** How: "queue-id" (our Received trail), "message-id", or "sender" (a local envelope/From address). */
  readonly attributedBy?: string;
  /** The address our user submitted from, from the record of sent mail. */
  readonly client?: string;
  readonly sourceIp?: string;
  readonly queueId?: string;
  readonly messageId?: string;
  /** List mail: the list the reported copy came from, and the member it went to (the complainant). */
  readonly list?: string;
  readonly member?: string;
  /** How the member was found: "unsubscribe-token", "verp" or "rcpt-to". */
  readonly listBy?: string;
  readonly original: Record<string, unknown>;
}

export interface ReportRow {
  readonly id: number;
  readonly at: string;
  readonly kind: 'dmarc' | 'tlsrpt' | 'unparsed';
  readonly org: string;
  readonly reportId?: string;
  readonly reporter: string;
  readonly verified: boolean;
  readonly domain?: string;
  readonly begin?: string;
  readonly end?: string;
  readonly messages?: number;
  readonly failed?: number;
  readonly reason?: string;
  readonly detail?: unknown;
}

export interface DmarcRecordRow {
  readonly sourceIp: string;
  readonly count: number;
  readonly disposition: string;
  readonly dkim: string;
  readonly spf: string;
  readonly headerFrom: string;
  readonly auth: { dkim: string[]; spf: string[] };
}

export interface Attribution {
  readonly user?: string;
  readonly attributedBy?: string;
  readonly client?: string;
  readonly queueId?: string;
  readonly list?: string;
  readonly member?: string;
  readonly listBy?: string;
}

const iso = (ms: number) => new Date(ms).toISOString();
const isoS = (s: number) => (s > 0 ? new Date(s * 1000).toISOString() : '');
const opt = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);

export class ReportsStore {
  private readonly stmts;

  private constructor(private readonly db: Database.Database, private readonly now: () => number) {
    db.pragma('foreign_keys = ON');
    this.stmts = {
      sent: db.prepare('INSERT OR IGNORE INTO sent (queue_id, message_id, user, client, sender, at) VALUES (?, ?, ?, ?, ?, ?)'),
      sentById: db.prepare('SELECT queue_id, user, client FROM sent WHERE queue_id = ?'),
      sentByMessageId: db.prepare('SELECT queue_id, user, client FROM sent WHERE message_id = ? ORDER BY at DESC LIMIT 1'),
      complaint: db.prepare(`INSERT INTO complaints (at, reporter, reporter_domain, verified, format, feedback_type, user, attributed_by, client, source_ip, queue_id, message_id, list, member, list_by, original)
        VALUES (@at, @reporter, @reporterDomain, @verified, @format, @feedbackType, @user, @attributedBy, @client, @sourceIp, @queueId, @messageId, @list, @member, @listBy, @original)`),
      report: db.prepare(`INSERT OR IGNORE INTO reports (at, kind, org, report_id, reporter, verified, domain, begin, end, messages, failed, detail)
        VALUES (@at, @kind, @org, @reportId, @reporter, @verified, @domain, @begin, @end, @messages, @failed, @detail)`),
      record: db.prepare('INSERT INTO dmarc_records (report, source_ip, count, disposition, dkim, spf, header_from, auth) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      unparsed: db.prepare('INSERT INTO unparsed (at, type, reporter, verified, subject, size, reason) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    };
  }

  static open(file: string, options: { now?: () => number } = {}): ReportsStore {
    const db = openSqliteFile(file, { migrations: MIGRATIONS, tooNew: (m) => new ReportsStoreError(m) });
    return new ReportsStore(db, options.now ?? Date.now);
  }

  recordSent(r: SentRecord): void {
    this.stmts.sent.run(r.queueId, r.messageId ?? null, r.user ?? null, r.client ?? null, r.sender, r.at);
  }

  /**
   * Who sent the reported message: our queue id in its Received trail (exact), else its
   * Message-ID in our record of sent mail, else a local sender address the caller recognises.
   */
  attribute(c: Complaint, localSender: (address: string) => string | undefined): Attribution {
    for (const id of c.original.queueIds) {
      const row = this.stmts.sentById.get(id) as { queue_id: string; user: string | null; client: string | null } | undefined;
      if (row) return { user: opt(row.user), attributedBy: 'queue-id', client: opt(row.client), queueId: row.queue_id };
    }
    if (c.original.messageId) {
      const row = this.stmts.sentByMessageId.get(c.original.messageId) as { queue_id: string; user: string | null; client: string | null } | undefined;
      if (row) return { user: opt(row.user), attributedBy: 'message-id', client: opt(row.client), queueId: row.queue_id };
    }
    for (const a of [c.original.mailFrom, fromAddress(c.original.from)]) {
      const user = a ? localSender(a) : undefined;
      if (user) return { user, attributedBy: 'sender', ...(c.original.queueIds[0] ? { queueId: c.original.queueIds[0] } : {}) };
    }
    return c.original.queueIds[0] ? { queueId: c.original.queueIds[0] } : {};
  }

  addComplaint(reporter: Reporter, c: Complaint, who: Attribution): number {
    const original = {
      ...(c.original.from ? { from: c.original.from } : {}),
      ...(c.original.to ? { to: c.original.to } : {}),
      ...(c.original.subject ? { subject: c.original.subject } : {}),
      ...(c.original.date ? { date: c.original.date } : {}),
      ...(c.original.mailFrom ? { mail_from: c.original.mailFrom } : {}),
      ...(c.originalRcptTo.length ? { rcpt_to: c.originalRcptTo } : {}),
      ...(c.reportedDomains.length ? { reported_domains: c.reportedDomains } : {}),
      ...(c.userAgent ? { user_agent: c.userAgent } : {}),
      ...(c.arrivalDate ? { arrival_date: c.arrivalDate } : {}),
      report_subject: reporter.subject,
    };
    return Number(this.stmts.complaint.run({
      at: this.now(), reporter: reporter.address, reporterDomain: reporter.domain, verified: reporter.verified ? 1 : 0,
      format: c.format, feedbackType: c.feedbackType, user: who.user ?? null, attributedBy: who.attributedBy ?? null,
      client: who.client ?? null, sourceIp: c.sourceIp ?? null, queueId: who.queueId ?? null, messageId: c.original.messageId ?? null,
      list: who.list ?? null, member: who.member ?? null, listBy: who.listBy ?? null,
      original: JSON.stringify(original),
    }).lastInsertRowid);
  }

  /** Stores a DMARC aggregate report; undefined when the same (org, report id) was stored before. */
  addDmarc(reporter: Reporter, r: DmarcAggregate, truncated: boolean): number | undefined {
    return this.db.transaction(() => {
      const messages = r.records.reduce((n, x) => n + x.count, 0);
      const failed = r.records.reduce((n, x) => n + (x.dkim === 'pass' || x.spf === 'pass' ? 0 : x.count), 0);
      const res = this.stmts.report.run({
        at: this.now(), kind: 'dmarc', org: r.orgName, reportId: r.reportId, reporter: reporter.address, verified: reporter.verified ? 1 : 0,
        domain: r.domain, begin: r.begin, end: r.end, messages, failed,
        detail: JSON.stringify({ format: r.format, policy: r.policy, ...(r.email ? { email: r.email } : {}), records: r.records.length, ...(truncated ? { truncated: true } : {}) }),
      });
      if (res.changes === 0) return undefined;
      const id = Number(res.lastInsertRowid);
      for (const x of r.records) {
        this.stmts.record.run(id, x.sourceIp, x.count, x.disposition, x.dkim, x.spf, x.headerFrom, JSON.stringify({ dkim: x.authDkim, spf: x.authSpf }));
      }
      return id;
    })();
  }

  addTlsRpt(reporter: Reporter, r: TlsRptReport): number | undefined {
    const res = this.stmts.report.run({
      at: this.now(), kind: 'tlsrpt', org: r.orgName, reportId: r.reportId, reporter: reporter.address, verified: reporter.verified ? 1 : 0,
      domain: [...new Set(r.policies.map((p) => p.policyDomain))].join(','), begin: r.begin, end: r.end,
      messages: r.policies.reduce((n, p) => n + p.success + p.failure, 0), failed: r.policies.reduce((n, p) => n + p.failure, 0),
      detail: JSON.stringify({ ...(r.contact ? { contact: r.contact } : {}), policies: r.policies }),
    });
    return res.changes ? Number(res.lastInsertRowid) : undefined;
  }

  addUnparsed(reporter: Reporter, type: string, size: number, reason: string): number {
    return Number(this.stmts.unparsed.run(this.now(), type, reporter.address, reporter.verified ? 1 : 0, reporter.subject, size, reason.slice(0, 500)).lastInsertRowid);
  }

  complaints(q: { user?: string; since?: number; limit?: number } = {}): ComplaintRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.user) {
      where.push('user = ?');
      args.push(q.user.toLowerCase());
    }
    if (q.since !== undefined) {
      where.push('at >= ?');
      args.push(q.since);
    }
    const sql = `SELECT * FROM complaints ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at DESC, id DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, q.limit ?? 100) as Record<string, unknown>[]).map(complaintRow);
  }

  complaint(id: number): ComplaintRow | undefined {
    const row = this.db.prepare('SELECT * FROM complaints WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return row && complaintRow(row);
  }

  /** Complaints about a user's mail since a time (epoch ms), for the outbound limits. */
  complaintCount(user: string, since: number): number {
    return (this.db.prepare('SELECT count(*) AS n FROM complaints WHERE user = ? AND at >= ?').get(user.toLowerCase(), since) as { n: number }).n;
  }

  reports(q: { kind?: 'dmarc' | 'tlsrpt' | 'unparsed'; limit?: number } = {}): ReportRow[] {
    const limit = q.limit ?? 100;
    const rows: ReportRow[] = [];
    if (q.kind !== 'unparsed') {
      const r = (q.kind
        ? this.db.prepare('SELECT * FROM reports WHERE kind = ? ORDER BY at DESC, id DESC LIMIT ?').all(q.kind, limit)
        : this.db.prepare('SELECT * FROM reports ORDER BY at DESC, id DESC LIMIT ?').all(limit)) as Record<string, unknown>[];
      rows.push(...r.map(reportRow));
    }
    if (!q.kind || q.kind === 'unparsed') {
      const u = this.db.prepare('SELECT * FROM unparsed ORDER BY at DESC, id DESC LIMIT ?').all(limit) as Record<string, unknown>[];
      rows.push(...u.map((x) => ({
        id: x.id as number, at: iso(x.at as number), kind: 'unparsed' as const, org: '', reporter: x.reporter as string,
        verified: x.verified === 1, reason: `${x.type as string}: ${x.reason as string}`, detail: { subject: x.subject, size: x.size },
      })));
    }
    return rows.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0)).slice(0, limit);
  }

  report(id: number): (ReportRow & { records?: DmarcRecordRow[] }) | undefined {
    const row = this.db.prepare('SELECT * FROM reports WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    if (!row) return undefined;
    const out = reportRow(row);
    if (out.kind !== 'dmarc') return out;
    const records = (this.db.prepare('SELECT * FROM dmarc_records WHERE report = ? ORDER BY count DESC').all(id) as Record<string, unknown>[]).map((r) => ({
      sourceIp: r.source_ip as string, count: r.count as number, disposition: r.disposition as string, dkim: r.dkim as string, spf: r.spf as string,
      headerFrom: r.header_from as string, auth: JSON.parse(r.auth as string) as { dkim: string[]; spf: string[] },
    }));
    return { ...out, records };
  }

  /** Deletes what is older than `retentionMs`; returns the rows deleted. */
  purge(retentionMs: number): number {
    const cut = this.now() - retentionMs;
    return this.db.transaction(() => {
      let n = 0;
      for (const t of ['sent', 'complaints', 'reports', 'unparsed']) n += this.db.prepare(`DELETE FROM ${t} WHERE at < ?`).run(cut).changes;
      return n;
    })();
  }

  /** The DMARC aggregate reports we send, counted in this file. */
  dmarcReporter(o: { config: DmarcOutConfig; hostname: string; resolver: Resolver; logger: Logger }): DmarcReporter {
    return new DmarcReporter(this.db, { ...o, now: this.now });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function fromAddress(from: string | undefined): string | undefined {
  if (!from) return undefined;
  const m = /<([^<>@\s]+@[^<>@\s]+)>/.exec(from) ?? /([^\s<>"]+@[^\s<>"]+)/.exec(from);
  return m ? m[1]!.toLowerCase() : undefined;
}

function complaintRow(r: Record<string, unknown>): ComplaintRow {
  return {
    id: r.id as number, at: iso(r.at as number), reporter: r.reporter as string, reporterDomain: r.reporter_domain as string,
    verified: r.verified === 1, format: r.format as string, feedbackType: r.feedback_type as string,
    ...(r.user ? { user: r.user as string } : {}), ...(r.attributed_by ? { attributedBy: r.attributed_by as string } : {}),
    ...(r.client ? { client: r.client as string } : {}), ...(r.source_ip ? { sourceIp: r.source_ip as string } : {}),
    ...(r.queue_id ? { queueId: r.queue_id as string } : {}), ...(r.message_id ? { messageId: r.message_id as string } : {}),
    ...(r.list ? { list: r.list as string } : {}), ...(r.member ? { member: r.member as string } : {}), ...(r.list_by ? { listBy: r.list_by as string } : {}),
    original: JSON.parse(r.original as string) as Record<string, unknown>,
  };
}

function reportRow(r: Record<string, unknown>): ReportRow {
  return {
    id: r.id as number, at: iso(r.at as number), kind: r.kind as 'dmarc' | 'tlsrpt', org: r.org as string, reportId: r.report_id as string,
    reporter: r.reporter as string, verified: r.verified === 1, domain: r.domain as string, begin: isoS(r.begin as number), end: isoS(r.end as number),
    messages: r.messages as number, failed: r.failed as number, detail: JSON.parse(r.detail as string),
  };
}
