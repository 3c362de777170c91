// The one entry point of TLS on the way out, for the gateway: the policy the MX client asks
// (src/delivery/outbound-tls.ts), with the TLS-RPT aggregate behind it and the daily reports.
import type { Resolver } from '../../dns/types.js';
import type { Logger } from '../../log.js';
import type { OutboundTlsPolicy } from '../outbound-tls.js';
import type { OutboundTlsConfig } from './config.js';
import { createTlsPolicy } from './policy.js';
import { createTlsRptStore } from './tlsrpt-aggregate.js';
import { utcDay } from '../../protocol/date.js';
import { sendReports, type ReportEnvelope, type SendOutcome } from './tlsrpt-send.js';

export interface OutboundTlsPolicyOptions {
  /** `outbound.tls`. */
  readonly config: OutboundTlsConfig;
  /** The gateway's resolver; its `secure` answers drive DANE. */
  readonly resolver: Resolver;
  /** `dns.dnssec_validating`: without it DANE never applies. */
  readonly dnssecValidating: boolean;
  /** The gateway's data directory (MTA-STS cache, TLS-RPT aggregates). */
  readonly dataDir: string;
  readonly logger: Logger;
  /** Our host name: TLS-RPT submitter, default organization, contact and report sender. */
  readonly hostname: string;
  /** Extra trust anchors (PEM) for MX certificates, policy hosts and report collectors. */
  readonly ca?: readonly string[];
  readonly now?: () => number;
}

export type Submit = (envelope: ReportEnvelope, message: Buffer) => Promise<void>;

export interface OutboundTls extends OutboundTlsPolicy {
  /** Sends the reports of a UTC day ("YYYY-MM-DD", default yesterday) not yet sent. */
  sendReports(submit: Submit, date?: string): Promise<SendOutcome[]>;
  /** Sends yesterday's reports once an hour until they are out (first try a minute after start). */
  startReportTimer(submit: Submit): void;
  /** Stops the timer and writes the aggregates to disk. */
  close(): void;
}

export function createOutboundTlsPolicy(opts: OutboundTlsPolicyOptions): OutboundTls {
  const now = opts.now ?? Date.now;
  const rpt = opts.config.tls_rpt;
  const log = opts.logger.child({ component: 'outbound-tls' });
  const store = rpt.enabled ? createTlsRptStore({ dataDir: opts.dataDir, logger: log, now }) : undefined;
  const policy = createTlsPolicy({
    config: opts.config, resolver: opts.resolver, dataDir: opts.dataDir, logger: log, dnssecValidating: opts.dnssecValidating,
    ca: opts.ca, sink: store, now,
  });
  const timers: NodeJS.Timeout[] = [];
  let sending: Promise<SendOutcome[]> | undefined;

  async function send(submit: Submit, date = utcDay(now() - 86_400_000)): Promise<SendOutcome[]> {
    if (!store) return [];
    // The date names a file: only a real calendar date (it may come from the control socket).
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) throw new Error(`"${date}" is not a date of the form YYYY-MM-DD`);
    store.flush();
    const outcomes = await sendReports(date, {
      store, resolver: opts.resolver, logger: log, submit, postTimeoutMs: rpt.post_timeout, ca: opts.ca,
      identity: {
        organization: rpt.organization ?? opts.hostname,
        contact: rpt.contact ?? `postmaster@${opts.hostname}`,
        submitter: opts.hostname,
      },
      from: rpt.from ?? `noreply-tlsrpt@${opts.hostname}`,
    });
    // A domain that publishes no TLSRPT record is not asked again for the same day.
    for (const o of outcomes) if (o.status === 'no-record') store.markSent(date, o.domain, 'no-record');
    store.prune(rpt.keep_days);
    return outcomes;
  }

  return {
    forHost: (domain, mxHost) => policy.forHost(domain, mxHost),
    record: (attempt) => policy.record(attempt),
    sendReports: send,
    startReportTimer(submit) {
      if (!store) return;
      const tick = () => {
        if (sending) return;
        sending = send(submit)
          .catch((err) => {
            log.error({ event: 'tls_rpt.send_failed', reason: (err as Error).message }, 'sending TLS-RPT reports failed');
            return [];
          })
          .finally(() => { sending = undefined; });
      };
      timers.push(setTimeout(tick, 60_000).unref(), setInterval(tick, 3_600_000).unref());
    },
    close() {
      for (const t of timers) clearTimeout(t);
      timers.length = 0;
      store?.close();
    },
  };
}
