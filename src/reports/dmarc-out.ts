// DMARC aggregate reports we send (RFC 7489 7.2, off by default: reports.dmarc_out). Each DMARC
// evaluation of received mail (dmarc-observation.ts) is counted per UTC day, policy domain and
// distinct row in reports.db; once a day the day before is reported to each domain that asks.
//
// Carefully, because careless report senders have been listed on blocklists:
// - only `mailto:` destinations from the domain's own DMARC record, looked up again when
//   sending (never an address a message chose);
// - a destination outside the policy domain's organizational domain only when it published
//   `<policy-domain>._report._dmarc.<destination-domain>` "v=DMARC1" (RFC 7489 7.1);
// - at most two destinations per domain, one report per domain and day, at most
//   `max_reports_per_day` reports per day, the rua size limit ("!10m") honoured;
// - handed to our queue like other mail of ours, so it is DKIM-signed where we sign.
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import type Database from 'better-sqlite3';
import { getDomain } from 'tldts';
import type { Resolver } from '../dns/types.js';
import type { Logger } from '../log.js';
import { rfc5322Date, utcDay } from '../protocol/date.js';
import type { DmarcObservation } from './dmarc-observation.js';

/** Distinct rows kept per policy domain and day; past it the day's report says so (truncated). */
const MAX_ROWS_PER_DOMAIN_DAY = 5000;
/** Destinations per domain at most, whatever its rua lists. */
const MAX_DESTINATIONS = 2;

export const DMARC_OUT_MIGRATION = `
  CREATE TABLE dmarc_out (
    day           TEXT NOT NULL,           -- UTC YYYY-MM-DD
    policy_domain TEXT NOT NULL,
    row_key       TEXT NOT NULL,           -- SHA-1 of the row's fields below
    source_ip     TEXT NOT NULL,
    header_from   TEXT NOT NULL,
    envelope_from TEXT NOT NULL,
    disposition   TEXT NOT NULL,
    dkim_aligned  INTEGER NOT NULL,
    spf_aligned   INTEGER NOT NULL,
    reasons       TEXT NOT NULL,           -- JSON array
    auth          TEXT NOT NULL,           -- JSON: dkim[], spf
    count         INTEGER NOT NULL,
    PRIMARY KEY (day, policy_domain, row_key)
  ) WITHOUT ROWID;
  CREATE TABLE dmarc_out_domains (
    day           TEXT NOT NULL,
    policy_domain TEXT NOT NULL,
    record        TEXT NOT NULL,           -- the DMARC record last seen
    rows          INTEGER NOT NULL,
    truncated     INTEGER NOT NULL DEFAULT 0,
    sent          TEXT,                    -- NULL: not yet; else the outcome
    PRIMARY KEY (day, policy_domain)
  ) WITHOUT ROWID;
`;

export interface DmarcOutConfig {
  readonly enabled: boolean;
  /** From: and envelope sender of the reports. */
  readonly from: string;
  /** report_metadata/org_name. */
  readonly org_name: string;
  readonly max_reports_per_day: number;
}

export interface DmarcSendOutcome {
  readonly domain: string;
  /** sent: to at least one destination; no-destination: no usable rua; failed; already-sent; over-limit. */
  readonly status: 'sent' | 'no-destination' | 'failed' | 'already-sent' | 'over-limit';
  readonly destinations: readonly string[];
}

export type DmarcSubmit = (envelope: { from: string; to: readonly string[] }, message: Buffer) => Promise<void>;


export class DmarcReporter {
  private readonly rowsSeen = new Map<string, number>();
  private readonly stmts;

  constructor(private readonly db: Database.Database, private readonly o: {
    config: DmarcOutConfig; hostname: string; resolver: Resolver; logger: Logger; now?: () => number;
  }) {
    this.stmts = {
      insert: db.prepare(`INSERT INTO dmarc_out (day, policy_domain, row_key, source_ip, header_from, envelope_from, disposition, dkim_aligned, spf_aligned, reasons, auth, count)
        VALUES (@day, @domain, @key, @ip, @hf, @ef, @disp, @da, @sa, @reasons, @auth, 1)`),
      bump: db.prepare('UPDATE dmarc_out SET count = count + 1 WHERE day = ? AND policy_domain = ? AND row_key = ?'),
      domain: db.prepare(`INSERT INTO dmarc_out_domains (day, policy_domain, record, rows) VALUES (?, ?, ?, ?)
        ON CONFLICT (day, policy_domain) DO UPDATE SET record = excluded.record, rows = excluded.rows`),
      truncate: db.prepare('UPDATE dmarc_out_domains SET truncated = 1 WHERE day = ? AND policy_domain = ?'),
      rowCount: db.prepare('SELECT rows FROM dmarc_out_domains WHERE day = ? AND policy_domain = ?').pluck(),
      domains: db.prepare('SELECT policy_domain AS domain, record, truncated, sent FROM dmarc_out_domains WHERE day = ? ORDER BY policy_domain'),
      rows: db.prepare('SELECT * FROM dmarc_out WHERE day = ? AND policy_domain = ? ORDER BY count DESC'),
      sentCount: db.prepare('SELECT count(*) FROM dmarc_out_domains WHERE day = ? AND sent LIKE \'sent%\'').pluck(),
      markSent: db.prepare('UPDATE dmarc_out_domains SET sent = ? WHERE day = ? AND policy_domain = ?'),
      purge: db.prepare('DELETE FROM dmarc_out WHERE day < ?'),
      purgeDomains: db.prepare('DELETE FROM dmarc_out_domains WHERE day < ?'),
    };
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Counts one evaluation (synchronous: one SQLite upsert, a few tens of µs). */
  record(x: DmarcObservation): void {
    if (!this.o.config.enabled || !x.policyDomain || !x.record) return;
    const day = utcDay(x.at);
    const auth = JSON.stringify({ dkim: x.dkim.slice(0, 10), ...(x.spf ? { spf: x.spf } : {}) });
    const reasons = JSON.stringify(x.reasons);
    const fields = [x.sourceIp, x.headerFrom, x.envelopeFrom, x.disposition, x.dkimAligned, x.spfAligned, reasons, auth];
    const key = crypto.createHash('sha1').update(JSON.stringify(fields)).digest('base64url');
    const dk = `${day}|${x.policyDomain}`;
    let rows = this.rowsSeen.get(dk);
    if (rows === undefined) {
      rows = (this.stmts.rowCount.get(day, x.policyDomain) as number | undefined) ?? 0;
      if (this.rowsSeen.size > 10_000) this.rowsSeen.clear();
    }
    this.db.transaction(() => {
      if (this.stmts.bump.run(day, x.policyDomain, key).changes > 0) return;
      if (rows! >= MAX_ROWS_PER_DOMAIN_DAY) {
        // Full: existing rows still count; a new row is left out and the report says so.
        this.stmts.truncate.run(day, x.policyDomain);
        return;
      }
      this.stmts.insert.run({
        day, domain: x.policyDomain, key, ip: x.sourceIp, hf: x.headerFrom, ef: x.envelopeFrom, disp: x.disposition,
        da: x.dkimAligned ? 1 : 0, sa: x.spfAligned ? 1 : 0, reasons, auth,
      });
      rows = rows! + 1;
      this.stmts.domain.run(day, x.policyDomain, x.record, rows);
    })();
    this.rowsSeen.set(dk, rows);
  }

  /** Sends the reports of one UTC day (default yesterday) that have not gone out yet. */
  async send(submit: DmarcSubmit, date = utcDay(this.now() - 86_400_000)): Promise<DmarcSendOutcome[]> {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) throw new Error(`"${date}" is not a date of the form YYYY-MM-DD`);
    const cfg = this.o.config;
    const out: DmarcSendOutcome[] = [];
    let sentToday = this.stmts.sentCount.get(date) as number;
    for (const d of this.stmts.domains.all(date) as { domain: string; record: string; truncated: number; sent: string | null }[]) {
      if (d.sent) {
        out.push({ domain: d.domain, status: 'already-sent', destinations: [] });
        continue;
      }
      if (sentToday >= cfg.max_reports_per_day) {
        out.push({ domain: d.domain, status: 'over-limit', destinations: [] });
        continue;
      }
      const outcome = await this.sendOne(submit, date, d.domain, d.record, d.truncated === 1);
      out.push(outcome);
      if (outcome.status === 'sent') sentToday++;
      if (outcome.status !== 'failed') this.stmts.markSent.run(`${outcome.status}: ${outcome.destinations.join(', ')}`.slice(0, 1000), date, d.domain);
      this.o.logger.info({ event: 'dmarc_report_out', date, domain: d.domain, status: outcome.status, destinations: outcome.destinations }, `DMARC aggregate report for ${d.domain}: ${outcome.status}`);
    }
    return out;
  }

  private async sendOne(submit: DmarcSubmit, date: string, domain: string, stored: string, truncated: boolean): Promise<DmarcSendOutcome> {
    // The record as published now (RFC 7489 7.2.1: the rua when the report is sent), else the one seen.
    const txt = await this.o.resolver.lookup(`_dmarc.${domain}`, 'TXT');
    const now = txt.status === 'ok' ? txt.records.map((c) => c.join('')).find((r) => /^v\s*=\s*DMARC1\b/i.test(r)) : undefined;
    const rua = ruaOf(now ?? (txt.status === 'nxdomain' ? '' : stored));
    if (!rua.length) return { domain, status: 'no-destination', destinations: ['no mailto: rua in the DMARC record'] };
    const rows = this.stmts.rows.all(date, domain) as Record<string, unknown>[];
    const report = buildAggregate({ date, domain, record: now ?? stored, rows, truncated, org: this.o.config.org_name, email: this.o.config.from, hostname: this.o.hostname });
    const destinations: string[] = [];
    const usable: string[] = [];
    for (const r of rua.slice(0, MAX_DESTINATIONS)) {
      const why = await this.refusal(domain, r, report.gzip.length);
      if (why) destinations.push(`mailto:${r.address} skipped: ${why}`);
      else usable.push(r.address);
    }
    if (rua.length > MAX_DESTINATIONS) destinations.push(`${rua.length - MAX_DESTINATIONS} further rua destination(s) ignored (at most ${MAX_DESTINATIONS})`);
    if (!usable.length) return { domain, status: 'no-destination', destinations };
    try {
      await submit({ from: this.o.config.from, to: usable }, reportMessage(report, { from: this.o.config.from, to: usable, hostname: this.o.hostname, date: new Date(this.now()) }));
      return { domain, status: 'sent', destinations: [...usable.map((a) => `mailto:${a} queued`), ...destinations] };
    } catch (err) {
      return { domain, status: 'failed', destinations: [...usable.map((a) => `mailto:${a} failed: ${(err as Error).message}`), ...destinations] };
    }
  }

  /** Why a destination is not used, or undefined. */
  private async refusal(domain: string, r: Rua, size: number): Promise<string | undefined> {
    if (r.maxBytes !== undefined && size > r.maxBytes) return `the report (${size} bytes gzip'd) is larger than its limit of ${r.maxBytes}`;
    const destDomain = r.address.slice(r.address.lastIndexOf('@') + 1);
    const org = (d: string) => getDomain(d, { allowPrivateDomains: true }) ?? d;
    if (org(destDomain) === org(domain)) return undefined;
    // RFC 7489 7.1: the external destination must agree to receive reports for this domain.
    const name = `${domain}._report._dmarc.${destDomain}`;
    const v = await this.o.resolver.lookup(name, 'TXT');
    const ok = v.status === 'ok' && v.records.some((c) => /^v\s*=\s*DMARC1\b/i.test(c.join('')));
    return ok ? undefined : `external destination not verified: ${name} has no "v=DMARC1" TXT record (RFC 7489 7.1)`;
  }

  /** Drops the counts of days before `keepDays` ago. */
  purge(keepDays = 7): void {
    const cut = utcDay(this.now() - keepDays * 86_400_000);
    this.stmts.purge.run(cut);
    this.stmts.purgeDomains.run(cut);
  }
}

export interface Rua {
  readonly address: string;
  readonly maxBytes?: number;
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** The mailto: destinations of a DMARC record's rua tag, with their size limits ("!10m"). */
export function ruaOf(record: string): Rua[] {
  const m = /(?:^|;)\s*rua\s*=\s*([^;]*)/i.exec(record);
  if (!m) return [];
  const out: Rua[] = [];
  for (const uri of m[1]!.split(',').map((s) => s.trim()).filter(Boolean)) {
    const u = /^mailto:([^!\s]+)(?:!(\d+)([kmgt]?))?$/i.exec(uri);
    if (!u) continue;
    let address: string;
    try {
      address = decodeURIComponent(u[1]!).toLowerCase();
    } catch {
      continue;
    }
    // One plain address: no query (?subject=…), no second address, a domain with a dot.
    if (!/^[^@\s?&,]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+$/.test(address)) continue;
    out.push({ address, ...(u[2] ? { maxBytes: Number(u[2]) * SIZE_UNITS[(u[3] ?? '').toLowerCase()]! } : {}) });
  }
  return out;
}

export interface BuiltAggregate {
  readonly xml: string;
  readonly gzip: Buffer;
  readonly reportId: string;
  readonly filename: string;
  readonly domain: string;
  readonly org: string;
}

const ENTITIES: Record<string, string> = { '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' };
const esc = (s: string) => s.replace(/[<>&'"]/g, (c) => ENTITIES[c]!);
const tag = (name: string, v: string | number) => `<${name}>${esc(String(v))}</${name}>`;

function recordTags(record: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of record.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq).trim().toLowerCase()] ??= part.slice(eq + 1).trim();
  }
  return out;
}

/** The RFC 7489 appendix C document of one domain's day. */
export function buildAggregate(o: { date: string; domain: string; record: string; rows: readonly Record<string, unknown>[]; truncated: boolean; org: string; email: string; hostname: string }): BuiltAggregate {
  const begin = Date.parse(`${o.date}T00:00:00Z`) / 1000;
  const end = begin + 86_399;
  const t = recordTags(o.record);
  const pol = (v: string | undefined, fallback: string) => (['none', 'quarantine', 'reject'].includes((v ?? '').toLowerCase()) ? v!.toLowerCase() : fallback);
  const p = pol(t.p, 'none');
  const reportId = `${o.date}.${o.domain}.${crypto.createHash('sha1').update(`${o.hostname}|${o.domain}|${o.date}`).digest('hex').slice(0, 12)}`;
  const records = o.rows.map((r) => {
    const auth = JSON.parse(r.auth as string) as { dkim: { domain: string; selector: string; result: string }[]; spf?: { domain: string; result: string } };
    const reasons = JSON.parse(r.reasons as string) as string[];
    return [
      '  <record>',
      '    <row>',
      `      ${tag('source_ip', r.source_ip as string)}`,
      `      ${tag('count', r.count as number)}`,
      '      <policy_evaluated>',
      `        ${tag('disposition', r.disposition as string)}`,
      `        ${tag('dkim', r.dkim_aligned ? 'pass' : 'fail')}`,
      `        ${tag('spf', r.spf_aligned ? 'pass' : 'fail')}`,
      ...reasons.map((x) => `        <reason>${tag('type', x)}</reason>`),
      '      </policy_evaluated>',
      '    </row>',
      '    <identifiers>',
      `      ${tag('header_from', r.header_from as string)}`,
      ...(r.envelope_from ? [`      ${tag('envelope_from', r.envelope_from as string)}`] : []),
      '    </identifiers>',
      '    <auth_results>',
      ...auth.dkim.map((d) => `      <dkim>${tag('domain', d.domain)}${tag('selector', d.selector)}${tag('result', dkimResult(d.result))}</dkim>`),
      `      <spf>${tag('domain', auth.spf?.domain || (r.envelope_from as string) || (r.header_from as string))}${tag('scope', 'mfrom')}${tag('result', spfResult(auth.spf?.result))}</spf>`,
      '    </auth_results>',
      '  </record>',
    ].join('\n');
  });
  const xml = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<feedback>',
    '  <version>1.0</version>',
    '  <report_metadata>',
    `    ${tag('org_name', o.org)}`,
    `    ${tag('email', o.email)}`,
    `    ${tag('report_id', reportId)}`,
    `    <date_range>${tag('begin', begin)}${tag('end', end)}</date_range>`,
    ...(o.truncated ? [`    ${tag('error', `more than ${MAX_ROWS_PER_DOMAIN_DAY} distinct rows: the rest are not included`)}`] : []),
    '  </report_metadata>',
    '  <policy_published>',
    `    ${tag('domain', o.domain)}`,
    `    ${tag('adkim', (t.adkim ?? 'r').toLowerCase() === 's' ? 's' : 'r')}`,
    `    ${tag('aspf', (t.aspf ?? 'r').toLowerCase() === 's' ? 's' : 'r')}`,
    `    ${tag('p', p)}`,
    `    ${tag('sp', pol(t.sp, p))}`,
    `    ${tag('pct', /^\d{1,3}$/.test(t.pct ?? '') && Number(t.pct) <= 100 ? Number(t.pct) : 100)}`,
    '  </policy_published>',
    ...records,
    '</feedback>',
    '',
  ].join('\n');
  const receiver = getDomain(o.hostname) ?? o.hostname;
  return { xml, gzip: zlib.gzipSync(Buffer.from(xml, 'utf8')), reportId, filename: `${receiver}!${o.domain}!${begin}!${end}.xml.gz`, domain: o.domain, org: o.org };
}

const DKIM_RESULTS = new Set(['none', 'pass', 'fail', 'policy', 'neutral', 'temperror', 'permerror']);
const SPF_RESULTS = new Set(['none', 'neutral', 'pass', 'fail', 'softfail', 'temperror', 'permerror']);
const dkimResult = (r: string) => (DKIM_RESULTS.has(r) ? r : 'fail');
const spfResult = (r: string | undefined) => (r && SPF_RESULTS.has(r) ? r : 'none');

/** The report mail (RFC 7489 7.2.1.1): Subject and file name as the RFC gives them, the XML gzip'd. */
export function reportMessage(r: BuiltAggregate, o: { from: string; to: readonly string[]; hostname: string; date: Date }): Buffer {
  const boundary = `----=_dmarc_${crypto.randomBytes(12).toString('hex')}`;
  const lines = [
    `From: ${o.from}`,
    `Date: ${rfc5322Date(o.date)}`,
    `To: ${o.to.join(', ')}`,
    `Subject: Report Domain: ${r.domain} Submitter: ${r.org} Report-ID: <${r.reportId}>`,
    `Message-ID: <${crypto.randomBytes(12).toString('hex')}.dmarc@${o.hostname}>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `This is a DMARC aggregate report for ${r.domain} from ${r.org} (RFC 7489).`,
    '',
    `--${boundary}`,
    `Content-Type: application/gzip; name="${r.filename}"`,
    `Content-Disposition: attachment; filename="${r.filename}"`,
    'Content-Transfer-Encoding: base64',
    '',
    r.gzip.toString('base64').replace(/.{1,76}/g, (l) => `${l}\r\n`).trimEnd(),
    `--${boundary}--`,
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'utf8');
}
