// TLS-RPT aggregates (RFC 8460 4): every outbound TLS attempt counted per recipient domain, per
// policy behind it and per UTC day, with failure details grouped as section 4.4 reports them
// (result type, sending IP, receiving MX and IP, reason). Kept in memory and written to
// <data_dir>/tls-rpt/<YYYY-MM-DD>.json shortly after each change and at close, so a restart does
// not lose the day. Bounded: a cap on domains per day and on distinct failure details per policy
// (beyond it, failures still count in the summary, only without a detail line of their own).
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../log.js';
import { utcDay } from '../../protocol/date.js';
import type { TlsAttempt, TlsResultType } from '../outbound-tls.js';
import type { AttemptSink, PolicyDetails } from './policy.js';

export interface ReportPolicy {
  readonly type: 'sts' | 'tlsa' | 'no-policy-found';
  readonly strings: readonly string[];
  readonly policyDomain: string;
  readonly mxHost: readonly string[];
}

export interface FailureDetail {
  readonly resultType: TlsResultType;
  readonly sendingMtaIp?: string;
  readonly receivingMxHostname?: string;
  readonly receivingIp?: string;
  readonly reason?: string;
  count: number;
}

export interface PolicyAggregate {
  readonly policy: ReportPolicy;
  success: number;
  failure: number;
  details: Record<string, FailureDetail>;
}

export interface DayAggregate {
  readonly date: string;
  /** Recipient domain → policy key → counts. */
  domains: Record<string, Record<string, PolicyAggregate>>;
  /** Domains whose report for the day went out (not sent twice). */
  sent: Record<string, string>;
}

export interface TlsRptStore extends AttemptSink {
  /** The aggregate of a UTC day ("YYYY-MM-DD"), from memory or disk; empty when none. */
  day(date: string): DayAggregate;
  markSent(date: string, domain: string, how: string): void;
  flush(): void;
  /** Flushes and stops the write timer. */
  close(): void;
  /** Removes day files older than keepDays. */
  prune(keepDays: number): void;
}

const MAX_DOMAINS_PER_DAY = 20_000;
const MAX_DETAILS_PER_POLICY = 200;
const WRITE_DELAY_MS = 5_000;

export function createTlsRptStore(opts: { dataDir: string; logger: Logger; now?: () => number }): TlsRptStore {
  const now = opts.now ?? Date.now;
  const dir = path.join(opts.dataDir, 'tls-rpt');
  const days = new Map<string, DayAggregate>();
  const dirty = new Set<string>();
  let timer: NodeJS.Timeout | undefined;

  const fileOf = (date: string) => path.join(dir, `${date}.json`);

  function day(date: string): DayAggregate {
    let d = days.get(date);
    if (d) return d;
    d = load(fileOf(date), date, opts.logger) ?? { date, domains: {}, sent: {} };
    days.set(date, d);
    // Only today and the day being reported stay in memory.
    for (const k of days.keys()) if (days.size > 3 && k !== date && !dirty.has(k)) days.delete(k);
    return d;
  }

  function changed(date: string): void {
    dirty.add(date);
    timer ??= setTimeout(() => {
      timer = undefined;
      flush();
    }, WRITE_DELAY_MS).unref();
  }

  function flush(): void {
    for (const date of [...dirty]) {
      dirty.delete(date);
      const d = days.get(date);
      if (!d) continue;
      try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const tmp = `${fileOf(date)}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, JSON.stringify(d));
        fs.renameSync(tmp, fileOf(date));
      } catch (err) {
        opts.logger.warn({ event: 'tls_rpt.write_failed', date, reason: (err as Error).message }, 'could not write the TLS-RPT aggregate');
      }
    }
  }

  function bucket(domain: string, policy: ReportPolicy): PolicyAggregate | undefined {
    const date = utcDay(now());
    const d = day(date);
    let perDomain = d.domains[domain];
    if (!perDomain) {
      if (Object.keys(d.domains).length >= MAX_DOMAINS_PER_DAY) return undefined;
      perDomain = d.domains[domain] = {};
    }
    const key = JSON.stringify([policy.type, policy.policyDomain, policy.strings, policy.mxHost]);
    perDomain[key] ??= { policy, success: 0, failure: 0, details: {} };
    changed(date);
    return perDomain[key];
  }

  function fail(agg: PolicyAggregate, detail: Omit<FailureDetail, 'count'>): void {
    agg.failure++;
    const key = JSON.stringify([detail.resultType, detail.sendingMtaIp, detail.receivingMxHostname, detail.receivingIp, detail.reason]);
    const existing = agg.details[key];
    if (existing) existing.count++;
    else if (Object.keys(agg.details).length < MAX_DETAILS_PER_POLICY) agg.details[key] = { ...detail, count: 1 };
  }

  return {
    record(attempt: TlsAttempt, details: PolicyDetails) {
      // Attempts under an operator's override have no published policy to report on.
      if (attempt.policy.policyType === 'config') return;
      const agg = bucket(attempt.domain.toLowerCase(), {
        type: attempt.policy.policyType, strings: details.policyString, policyDomain: details.policyDomain, mxHost: details.mxHost,
      });
      if (!agg) return;
      if (attempt.result === 'success') {
        agg.success++;
        return;
      }
      fail(agg, {
        resultType: attempt.result, sendingMtaIp: attempt.sendingIp || undefined, receivingMxHostname: attempt.mxHost.replace(/\.$/, ''),
        receivingIp: attempt.receivingIp || undefined, reason: attempt.detail?.slice(0, 200),
      });
    },
    policyFailure(domain: string, result: TlsResultType, reason: string) {
      const agg = bucket(domain.toLowerCase(), { type: 'sts', strings: [], policyDomain: domain.toLowerCase(), mxHost: [] });
      if (agg) fail(agg, { resultType: result, reason: reason.slice(0, 200) });
    },
    day,
    markSent(date, domain, how) {
      day(date).sent[domain] = how;
      changed(date);
    },
    flush,
    close() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      flush();
    },
    prune(keepDays) {
      const oldest = utcDay(now() - keepDays * 86_400_000);
      let names: string[];
      try {
        names = fs.readdirSync(dir);
      } catch {
        return;
      }
      for (const n of names) {
        const m = /^(\d{4}-\d{2}-\d{2})\.json$/.exec(n);
        if (m && m[1]! < oldest) fs.rmSync(path.join(dir, n), { force: true });
      }
    },
  };
}

function load(file: string, date: string, logger: Logger): DayAggregate | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const d = JSON.parse(text) as DayAggregate;
    if (d.date !== date || typeof d.domains !== 'object' || d.domains === null) throw new Error('not an aggregate');
    return { date, domains: d.domains, sent: d.sent ?? {} };
  } catch (err) {
    logger.warn({ event: 'tls_rpt.unreadable', file, reason: (err as Error).message }, 'ignoring an unreadable TLS-RPT aggregate');
    return undefined;
  }
}
