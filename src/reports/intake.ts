// Reading the reports that reach the report addresses, after they were delivered: the router
// tells the intake about each local delivery (and about each message leaving for the world, so
// that a complaint about it can be traced back to the user who sent it). Reports are read one at
// a time, off the SMTP path, with a bounded backlog; nothing here can refuse, bounce or lose a
// message (it is in the mailbox already), and no report is ever answered.
import type { Logger } from '../log.js';
import type { Content } from '../delivery/types.js';
import { classifyReport, headerFields, type ClassifiedReport, type Complaint, type Reporter } from './classify.js';
import { recordPassed } from './dmarc-xml.js';
import type { ReportsConfig } from './config.js';
import type { ReportsStore } from './store.js';

/** Reports waiting to be read at most; past it one is skipped (logged): a flood must not pile up memory. */
const MAX_BACKLOG = 64;
/** ARF feedback types that do not mean the recipient wants no more (a list member is kept). */
const NOT_A_COMPLAINT = new Set(['not-spam', 'auth-failure']);
/** Bytes read of an outgoing message to find its Message-ID. */
const HEAD_BYTES = 64 * 1024;

export interface DeliveredMessage {
  readonly id: string;
  readonly sender: string;
  readonly authenticated: boolean;
  readonly arrived: number;
  readonly meta: Readonly<Record<string, unknown>>;
}

/** The list a reported message was a copy of, and the member (the complainant) when the report shows it. */
export interface ListAttribution {
  readonly list: string;
  readonly member?: string;
  /** How the member was found: the member's own signed unsubscribe token, the VERP return path, or Original-Rcpt-To. */
  readonly by?: 'unsubscribe-token' | 'verp' | 'rcpt-to';
}

/** The mailing lists, as far as complaints concern them (src/gateway/lists.ts). */
export interface ListComplaints {
  attribute(c: Complaint): Promise<ListAttribution | undefined>;
  /** The member gets no more of the list's mail until it subscribes (and confirms) again. */
  suppress(list: string, member: string, why: string): void;
}

export interface ReportIntakeDeps {
  readonly store: ReportsStore;
  readonly config: ReportsConfig;
  /** Our host name: the authserv-id of our Authentication-Results. */
  readonly hostname: string;
  /**
   * Whether a local mailbox receives reports: roles.mailbox and reports.addresses, and the
   * mailboxes their aliases deliver to (the queue holds the mailbox, not the address written).
   */
  readonly isReportMailbox: (mailbox: string) => boolean;
  /** The local account an address belongs to (a user or an address a user owns), if any. */
  readonly localSender: (address: string) => string | undefined;
  /** Our own domains and outbound IP addresses: a DMARC failure of ours from ours is an alert. */
  readonly ownDomains: readonly string[];
  readonly ownAddresses: ReadonlySet<string>;
  readonly logger: Logger;
  readonly onReport?: (kind: string) => void;
  /** A complaint traced to a local user (the outbound limits count the verified ones). */
  readonly onComplaint?: (user: string, verified: boolean) => void;
  /** Complaints about list mail are traced to the list and its member, who is suppressed. */
  readonly lists?: ListComplaints;
  /** Tells postmaster (one message per report); absent: the log line is the alert. */
  readonly alert?: (subject: string, text: string) => Promise<void>;
}

export class ReportIntake {
  private chain: Promise<void> = Promise.resolve();
  private backlog = 0;
  /** Messages read already: an alias to several mailboxes delivers one report several times. */
  private readonly seen = new Set<string>();

  constructor(private readonly deps: ReportIntakeDeps) {}

  /** Whether mail delivered to this local address is read for reports. */
  wants(address: string): boolean {
    return this.deps.config.enabled && this.deps.isReportMailbox(address.toLowerCase());
  }

  /** A message was delivered to a local mailbox; reads it if the address receives reports. */
  delivered(msg: DeliveredMessage, address: string, content: Content): void {
    if (!this.wants(address) || this.seen.has(msg.id)) return;
    this.seen.add(msg.id);
    if (this.seen.size > 1000) this.seen.delete(this.seen.values().next().value!);
    if (this.backlog >= MAX_BACKLOG) {
      this.deps.logger.warn({ event: 'report_skipped', id: msg.id, to: address }, 'report backlog full: message not read for reports (it was delivered)');
      return;
    }
    this.backlog++;
    this.chain = this.chain.then(() => this.read(msg, address, content)).catch((err: Error) => {
      this.deps.logger.error({ event: 'report_failed', id: msg.id, err: err.message }, 'could not read a report');
    }).finally(() => void this.backlog--);
  }

  /** A message of a local user is leaving for the world: remembered for attribution. */
  leaving(msg: DeliveredMessage, content: Content): void {
    const user = typeof msg.meta.user === 'string' ? msg.meta.user : undefined;
    if (!this.deps.config.enabled || (!msg.authenticated && !user)) return;
    void readHead(content, HEAD_BYTES).then((head) => {
      const id = headerFields(head).find((f) => f.key === 'message-id')?.value;
      const m = id ? /<([^<>]+)>/.exec(id) : null;
      this.deps.store.recordSent({
        queueId: msg.id, sender: msg.sender, at: msg.arrived, ...(user ? { user: user.toLowerCase() } : {}),
        ...(typeof msg.meta.client === 'string' ? { client: msg.meta.client } : {}),
        ...(m || id ? { messageId: (m ? m[1]! : id!).trim().toLowerCase() } : {}),
      });
    }).catch((err: Error) => this.deps.logger.error({ event: 'report_failed', id: msg.id, err: err.message }, 'could not record sent mail'));
  }

  /** Resolves when every report handed over so far has been read (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.backlog > 0) await this.chain;
  }

  private async read(msg: DeliveredMessage, address: string, content: Content): Promise<void> {
    const max = this.deps.config.max_message_size;
    const raw = await readHead(content, max + 1);
    const opts = { hostname: this.deps.hostname, maxReportBytes: this.deps.config.max_report_size };
    let r: ClassifiedReport;
    if (raw.length > max) {
      const c = await classifyReport(raw.subarray(0, Math.min(raw.length, HEAD_BYTES)), opts);
      if (c.kind === 'none') return;
      r = { kind: 'unparsed', reporter: c.reporter, type: c.kind === 'unparsed' ? c.type : c.kind, reason: `message of ${content.size} bytes is larger than reports.max_message_size (${max})` };
    } else {
      r = await classifyReport(raw, opts);
    }
    this.store(msg, address, r, content.size, r.kind === 'complaint' ? await this.listOf(msg, r.complaint) : undefined);
  }

  /** The list a complaint is about; a failure here costs the attribution, never the complaint. */
  private async listOf(msg: DeliveredMessage, c: Complaint): Promise<ListAttribution | undefined> {
    try {
      return await this.deps.lists?.attribute(c);
    } catch (err) {
      this.deps.logger.error({ event: 'report_failed', id: msg.id, err: (err as Error).message }, 'could not trace a complaint to a mailing list');
      return undefined;
    }
  }

  private store(msg: DeliveredMessage, address: string, r: ClassifiedReport, size: number, listed?: ListAttribution): void {
    const { store, logger } = this.deps;
    const base = { id: msg.id, to: address, reporter: r.reporter.address, verified: r.reporter.verified };
    switch (r.kind) {
      case 'none':
        return;
      case 'unparsed':
        store.addUnparsed(r.reporter, r.type, size, r.reason);
        logger.warn({ event: 'report_unparsed', ...base, type: r.type, reason: r.reason }, 'report could not be read; kept as unparsed');
        break;
      case 'complaint': {
        // A list's copy is the list's mail, not its author's: a local author (From) is not the
        // one who sent it to the complainant, so only our queue id or Message-ID name a user.
        const traced = store.attribute(r.complaint, listed ? () => undefined : this.deps.localSender);
        const who = listed ? { ...traced, list: listed.list, ...(listed.member ? { member: listed.member, listBy: listed.by } : {}) } : traced;
        const complaint = store.addComplaint(r.reporter, r.complaint, who);
        logger.warn({
          event: 'complaint', ...base, complaint, feedback_type: r.complaint.feedbackType, format: r.complaint.format,
          user: who.user, attributed_by: who.attributedBy, queue_id: who.queueId, message_id: r.complaint.original.messageId,
          ...(listed ? { list: listed.list, member: listed.member, list_by: listed.by } : {}),
        }, who.user ? `complaint about mail of ${who.user}` : listed ? `complaint about mail of the list ${listed.list}` : 'complaint about mail not traced to a local user');
        if (who.user) this.deps.onComplaint?.(who.user, r.reporter.verified);
        // "not-spam" (RFC 6430) and "auth-failure" (RFC 6591) are no wish of the recipient's to stop.
        if (listed?.member && !NOT_A_COMPLAINT.has(r.complaint.feedbackType)) this.suppressMember(listed, r.reporter, complaint);
        break;
      }
      case 'dmarc': {
        const stored = store.addDmarc(r.reporter, r.report, false);
        logger.info({ event: 'dmarc_report', ...base, org: r.report.orgName, report_id: r.report.reportId, domain: r.report.domain, records: r.report.records.length, duplicate: stored === undefined }, 'DMARC aggregate report stored');
        if (stored !== undefined) this.checkOwnFailures(r.report, r.reporter.verified);
        break;
      }
      case 'tlsrpt': {
        const stored = store.addTlsRpt(r.reporter, r.report);
        const failed = r.report.policies.reduce((n, p) => n + p.failure, 0);
        logger.info({ event: 'tlsrpt_report', ...base, org: r.report.orgName, report_id: r.report.reportId, failed, duplicate: stored === undefined }, 'TLS-RPT report stored');
        break;
      }
    }
    this.deps.onReport?.(r.kind === 'unparsed' ? 'unparsed' : r.kind);
  }

  /**
   * The complainant gets no more of the list's mail when the report proves it is about that
   * member's copy: it carries the member's own signed unsubscribe token (only its recipient had
   * it), or our MX authenticated the reporter (DMARC pass). Anyone can write an ARF report naming
   * a member's VERP address; a forged one must not unsubscribe people.
   */
  private suppressMember(listed: ListAttribution, reporter: Reporter, complaint: number): void {
    const why = `complaint ${complaint} from ${reporter.address || 'an unknown reporter'} (found by ${listed.by})`;
    if (listed.by === 'unsubscribe-token' || reporter.verified) {
      this.deps.lists!.suppress(listed.list, listed.member!, why);
      return;
    }
    this.deps.logger.warn({ event: 'list_complaint_unproven', list: listed.list, member: listed.member, complaint, reporter: reporter.address, list_by: listed.by },
      `${why}: not suppressed (the report is not authenticated and does not carry the member's unsubscribe token)`);
  }

  /** Our domain failing DMARC from our own addresses: misconfiguration (or a key gone), not spoofing. */
  private checkOwnFailures(report: { domain: string; orgName: string; reportId: string; records: readonly { sourceIp: string; count: number; dkim: string; spf: string; headerFrom: string }[] }, verified: boolean): void {
    const ours = this.deps.ownDomains.some((d) => report.domain === d || report.domain.endsWith(`.${d}`));
    if (!ours) return;
    const failing = report.records.filter((x) => this.deps.ownAddresses.has(x.sourceIp) && !recordPassed(x as Parameters<typeof recordPassed>[0]));
    if (!failing.length) return;
    const total = failing.reduce((n, x) => n + x.count, 0);
    const lines = failing.map((x) => `  ${x.sourceIp}: ${x.count} message(s) From ${x.headerFrom || report.domain}, DKIM ${x.dkim || '?'}, SPF ${x.spf || '?'} (aligned results)`);
    this.deps.logger.warn({ event: 'dmarc_own_failure', domain: report.domain, org: report.orgName, report_id: report.reportId, messages: total, addresses: failing.map((x) => x.sourceIp), verified },
      `${report.orgName} reports ${total} message(s) of ${report.domain} from our own addresses failing DMARC`);
    void this.deps.alert?.(
      `DMARC: ${report.domain} fails alignment from our own addresses (${report.orgName})`,
      `${report.orgName}'s aggregate report ${report.reportId}${verified ? '' : ' (NOT authenticated: the report could be forged)'} shows mail\n` +
      `From ${report.domain} sent from our own addresses that failed DMARC:\n\n${lines.join('\n')}\n\n` +
      'Check that the mail is DKIM-signed with a published key (portcullis dkim list) and that SPF names these addresses\n' +
      '(docs/deliverability.md, "DMARC aggregate reports").\n',
    ).catch((err: Error) => this.deps.logger.error({ event: 'report_failed', err: err.message }, 'could not send the DMARC alert'));
  }
}

/** Up to `max` bytes of the message. */
async function readHead(content: Content, max: number): Promise<Buffer> {
  if (content.buffers) {
    const whole = Buffer.concat(content.buffers as Buffer[]);
    return whole.length > max ? whole.subarray(0, max) : whole;
  }
  const chunks: Buffer[] = [];
  let n = 0;
  const stream = content.stream();
  try {
    for await (const c of stream) {
      const b = c as Buffer;
      chunks.push(b);
      n += b.length;
      if (n >= max) break;
    }
  } finally {
    stream.destroy();
  }
  const all = Buffer.concat(chunks);
  return all.length > max ? all.subarray(0, max) : all;
}
