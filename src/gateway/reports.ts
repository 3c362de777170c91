// The reports intake of a running gateway (docs/deliverability.md): reports.db opened, the
// mailboxes that receive reports named, alerts delivered to roles.mailbox. The router tells the
// intake of deliveries (RouterDeps.observe).
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { mailboxPath, type AccountStore } from '../auth/accounts.js';
import type { MaildirDelivery } from '../delivery/maildir.js';
import { reportMessage } from '../audit/self-watch.js';
import { ReportIntake } from '../reports/intake.js';
import { ReportsStore, reportsFile } from '../reports/store.js';
import type { DmarcObservation } from '../reports/dmarc-observation.js';
import type { DmarcSendOutcome, DmarcSubmit } from '../reports/dmarc-out.js';
import type { Resolver } from '../dns/types.js';
import type { ListComplaints } from '../reports/intake.js';

/** How often old complaints, reports and sent-mail records are pruned. */
const PURGE_EVERY_MS = 6 * 3600_000;

export interface RunningReports {
  readonly intake: ReportIntake;
  /** What was received, for the console's reports page (read-only there). */
  readonly store: ReportsStore;
  /** For the dkim_dmarc_arc check: counts each DMARC evaluation when reports.dmarc_out is on. */
  readonly onDmarc?: (o: DmarcObservation) => void;
  /** Sends a day's DMARC aggregate reports now (default yesterday); `portcullis reports send-dmarc`. */
  sendDmarc(date?: string): Promise<DmarcSendOutcome[]>;
  close(): Promise<void>;
}

export function startReportIntake(o: {
  config: Config; dataDir: string; accounts: AccountStore; maildir: MaildirDelivery; logger: Logger; metrics: Metrics;
  resolver: Resolver; submit: DmarcSubmit;
  /** Verified complaints traced to a user go to the outbound limits (OutboundGuard.complaint). */
  onComplaint?: (user: string) => void;
  /** Complaints about list mail: traced to the list and member, who is suppressed (docs/lists.md). */
  lists?: ListComplaints;
}): RunningReports {
  const { config, dataDir, accounts, maildir, metrics } = o;
  const logger = o.logger.child({ component: 'reports' });
  const store = ReportsStore.open(reportsFile(dataDir));
  const isLocal = (d: string) => config.domains.includes(d);
  const mailboxesOf = (address: string) => accounts.expand(address, isLocal)?.users ?? [];
  const reportAddresses = [config.roles.mailbox, ...config.reports.addresses].map((a) => a.toLowerCase());
  const intake = new ReportIntake({
    store, config: config.reports, hostname: config.hostname, logger,
    isReportMailbox: (mailbox) => reportAddresses.some((a) => a === mailbox || mailboxesOf(a).includes(mailbox)),
    localSender: (address) => {
      const a = address.toLowerCase();
      if (accounts.hasUser(a)) return a;
      const users = mailboxesOf(a);
      return users.length === 1 ? users[0] : undefined;
    },
    ownDomains: config.domains,
    ownAddresses: new Set([...config.self_check.addresses, config.outbound.delivery.source_ipv4, config.outbound.delivery.source_ipv6].filter((a): a is string => !!a)),
    onReport: (kind) => metrics.reports.inc({ kind }),
    ...(o.lists ? { lists: o.lists } : {}),
    onComplaint: (user, verified) => {
      if (verified) o.onComplaint?.(user);
    },
    alert: async (subject, body) => {
      const msg = reportMessage({ hostname: config.hostname, to: config.roles.mailbox, subject, body });
      await maildir.deliver(mailboxPath(dataDir, config.roles.mailbox), 'INBOX', { size: msg.length, stream: () => Readable.from([msg]) });
    },
  });
  const out = config.reports.dmarc_out;
  const dmarc = store.dmarcReporter({
    config: { enabled: out.enabled, from: out.from ?? config.roles.mailbox, org_name: out.org_name ?? config.hostname, max_reports_per_day: out.max_reports_per_day },
    hostname: config.hostname, resolver: o.resolver, logger,
  });
  let sending: Promise<DmarcSendOutcome[]> | undefined;
  const sendDmarc = (date?: string) => {
    if (!out.enabled) return Promise.reject(new Error('DMARC aggregate reports are off (reports.dmarc_out.enabled)'));
    sending ??= dmarc.send(o.submit, date).finally(() => { sending = undefined; });
    return sending;
  };
  const purge = () => {
    try {
      const n = store.purge(config.reports.retention);
      dmarc.purge();
      if (n) logger.info({ event: 'reports_purged', rows: n }, `pruned ${n} report rows older than reports.retention`);
    } catch (err) {
      logger.error({ event: 'report_failed', err: (err as Error).message }, 'could not prune reports.db');
    }
  };
  purge();
  const timer = setInterval(purge, PURGE_EVERY_MS).unref();
  // Yesterday's reports, an hour after start and then every hour until they are out (a day is sent once).
  const tick = () => void sendDmarc().catch((err: Error) => logger.error({ event: 'report_failed', err: err.message }, 'sending DMARC aggregate reports failed'));
  const sendTimers = out.enabled ? [setTimeout(tick, 3_600_000).unref(), setInterval(tick, 3_600_000).unref()] : [];
  logger.debug({ event: 'reports_ready', file: path.basename(reportsFile(dataDir)) }, 'reports intake ready');
  return {
    intake,
    store,
    ...(out.enabled ? { onDmarc: (x: DmarcObservation) => {
      try {
        dmarc.record(x);
      } catch (err) {
        logger.error({ event: 'report_failed', err: (err as Error).message }, 'could not count a DMARC evaluation');
      }
    } } : {}),
    sendDmarc,
    close: async () => {
      clearInterval(timer);
      for (const t of sendTimers) clearTimeout(t);
      await sending?.catch(() => undefined);
      await intake.idle();
      store.close();
    },
  };
}
