// The gateway watching its own public identity: every `self_check.interval`, each of our
// outbound addresses (configured, and those of our host names) is looked up in the configured
// DNS blocklists and its reverse DNS checked — the audit's own checks (address-checks.ts). A problem
// that appears is logged (event "self_check_problem"), counted in metrics, and reported once
// through the `report` callback (the gateway delivers it to postmaster@); one that goes away is
// logged ("self_check_cleared"). A check never throws into the gateway and never overlaps the
// previous one.
import crypto from 'node:crypto';
import net from 'node:net';
import client from 'prom-client';
import type { Resolver } from '../dns/types.js';
import type { Logger } from '../log.js';
import { compileLists, type DnsblConfig, type DnsList } from '../checks/dnsbl/dnsbl.js';
import { compileDynamicPatterns } from '../checks/rdns/dynamic-name.js';
import type { SelfCheckConfig } from './config.js';
import { blocklistFindings, checkReverseDns, queryLists } from './address-checks.js';
import type { Finding } from './findings.js';

export interface SelfWatchOptions {
  readonly config: SelfCheckConfig;
  /** The gateway's `hostname`: checked when self_check.hostnames is empty. */
  readonly hostname: string;
  readonly dnsbl: DnsblConfig;
  readonly resolver: Resolver;
  readonly logger: Logger;
  /** rdns.dynamic_patterns. */
  readonly dynamicPatterns?: readonly string[];
  /** Where the metrics go (the gateway's registry); none: no metrics. */
  readonly registry?: client.Registry;
  /** Sends a report to postmaster@ (the gateway wires local delivery); errors are logged. */
  readonly report?: (subject: string, body: string) => Promise<void>;
}

export interface SelfCheckResult {
  readonly at: string;
  readonly addresses: readonly string[];
  readonly findings: readonly Finding[];
  /** Warnings and critical findings. */
  readonly problems: readonly Finding[];
  /** Problems not present in the previous check. */
  readonly appeared: readonly Finding[];
  /** Problems of the previous check that are gone. */
  readonly cleared: readonly Finding[];
}

const key = (f: Finding) => `${f.code} ${f.target} ${f.title}`;

export class SelfWatch {
  private readonly lists: DnsList[];
  private readonly patterns: RegExp[];
  private readonly metrics?: { listed: client.Gauge; problems: client.Gauge; runs: client.Counter };
  private timer?: NodeJS.Timeout;
  private running?: Promise<SelfCheckResult>;
  private previous = new Map<string, Finding>();
  private stopped = false;
  last?: SelfCheckResult;

  /** Throws (at start-up) on an invalid dnsbl.lists or rdns.dynamic_patterns entry. */
  constructor(private readonly opts: SelfWatchOptions) {
    this.lists = compileLists(opts.dnsbl).filter((l) => l.weight > 0);
    this.patterns = compileDynamicPatterns(opts.dynamicPatterns ?? []);
    if (opts.registry) {
      const registers = [opts.registry];
      this.metrics = {
        listed: new client.Gauge({ name: 'portcullis_self_check_listed', help: 'Our address is listed on this DNS blocklist (1) or not (0), at the last self-check', labelNames: ['address', 'list'], registers }),
        problems: new client.Gauge({ name: 'portcullis_self_check_problems', help: 'Problems found by the last self-check (blocklistings, reverse DNS)', registers }),
        runs: new client.Counter({ name: 'portcullis_self_check_runs_total', help: 'Self-checks run, by outcome (clean, problems, failed)', labelNames: ['outcome'], registers }),
      };
    }
  }

  /** Schedules the checks (nothing when self_check.enabled is false). */
  start(): void {
    if (!this.opts.config.enabled || this.timer || this.stopped) return;
    const schedule = (ms: number) => {
      this.timer = setTimeout(() => {
        void this.runOnce().finally(() => {
          if (!this.stopped) schedule(this.opts.config.interval);
        });
      }, ms);
      this.timer.unref();
    };
    schedule(this.opts.config.first_delay);
  }

  /** Stops scheduling and waits for a check in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One check now (or the one already running). */
  runOnce(): Promise<SelfCheckResult> {
    this.running ??= this.check().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async check(): Promise<SelfCheckResult> {
    const log = this.opts.logger;
    try {
      const { addresses, findings } = await this.look();
      const problems = findings.filter((f) => f.severity === 'warning' || f.severity === 'critical');
      const now = new Map(problems.map((f) => [key(f), f]));
      const appeared = problems.filter((f) => !this.previous.has(key(f)));
      const cleared = [...this.previous.values()].filter((f) => !now.has(key(f)));
      this.previous = now;
      for (const f of appeared) log.warn({ event: 'self_check_problem', code: f.code, target: f.target, evidence: f.evidence }, `self-check: ${f.title}`);
      for (const f of cleared) log.info({ event: 'self_check_cleared', code: f.code, target: f.target }, `self-check: no longer: ${f.title}`);
      if (!problems.length) log.info({ event: 'self_check', addresses }, 'self-check: no problem');
      this.metrics?.problems.set(problems.length);
      this.metrics?.runs.inc({ outcome: problems.length ? 'problems' : 'clean' });
      const result: SelfCheckResult = { at: new Date().toISOString(), addresses, findings, problems, appeared, cleared };
      this.last = result;
      if (appeared.length && this.opts.report) await this.send(appeared, problems);
      return result;
    } catch (err) {
      this.metrics?.runs.inc({ outcome: 'failed' });
      log.error({ event: 'self_check_failed', err: (err as Error).message }, 'self-check failed');
      const result: SelfCheckResult = { at: new Date().toISOString(), addresses: [], findings: [], problems: [], appeared: [], cleared: [] };
      this.last = result;
      return result;
    }
  }

  private async look(): Promise<{ addresses: string[]; findings: Finding[] }> {
    const { config, resolver } = this.opts;
    const hostnames = config.hostnames.length ? config.hostnames : [this.opts.hostname];
    const named: { host: string; address: string }[] = config.addresses.map((a) => ({ host: a, address: a }));
    const findings: Finding[] = [];
    await Promise.all(hostnames.filter((h) => !net.isIP(h)).map(async (host) => {
      const [a, aaaa] = await Promise.all([resolver.lookup(host, 'A'), resolver.lookup(host, 'AAAA')]);
      const found = [...(a.status === 'ok' ? a.records : []), ...(aaaa.status === 'ok' ? aaaa.records : [])];
      if (!found.length) {
        const why = [a, aaaa].map((l) => (l.status === 'error' ? l.reason : l.status)).join(', ');
        findings.push({ code: 'SELF_HOST_NO_ADDRESS', area: 'reachability', severity: 'info', target: host, evidence: `${host}: A/AAAA ${why}`, title: `${host} has no address in the DNS` });
      }
      for (const address of found) named.push({ host, address });
    }));
    const seen = new Set<string>();
    const unique = named.filter((n) => !seen.has(n.address) && seen.add(n.address));
    await Promise.all(unique.map(async ({ host, address }) => {
      const results = await queryLists(resolver, this.lists, address);
      for (const r of results) this.metrics?.listed.set({ address, list: r.list.zone }, r.status === 'listed' ? 1 : 0);
      findings.push(...blocklistFindings(host, address, results));
      findings.push(...await checkReverseDns(resolver, host === address ? address : host, address, this.patterns));
    }));
    return { addresses: unique.map((u) => u.address), findings };
  }

  private async send(appeared: readonly Finding[], problems: readonly Finding[]): Promise<void> {
    const listed = appeared.filter((f) => f.code === 'DNSBL_LISTED');
    const subject = listed.length
      ? `Portcullis self-check: ${listed.map((f) => f.title).join('; ')}`.slice(0, 200)
      : `Portcullis self-check: ${appeared.length} new problem(s) with ${this.opts.hostname}`;
    const body = [
      `The periodic self-check of ${this.opts.hostname} found ${appeared.length} new problem(s):`,
      '',
      ...appeared.flatMap((f) => [`* ${f.title}`, `  at ${f.target}`, ...f.evidence.split('\n').map((l) => `  | ${l}`), ...(f.fix ? [`  fix: ${f.fix}`] : []), '']),
      problems.length > appeared.length ? `${problems.length - appeared.length} other problem(s) found earlier are still there.` : '',
      'Run `portcullis audit <your domain>` for the whole picture.',
    ].join('\n');
    try {
      await this.opts.report!(subject, body);
    } catch (err) {
      this.opts.logger.error({ event: 'self_check_report_failed', err: (err as Error).message }, 'self-check: cannot report to postmaster');
    }
  }
}

/**
 * The report as a message for the postmaster's mailbox (RFC 5322, text/plain, UTF-8,
 * Auto-Submitted: auto-generated per RFC 3834 so that no vacation responder answers it), for
 * the gateway to deliver locally: `maildir.deliver(mailboxPath(dataDir, roles.mailbox), 'INBOX', …)`.
 */
export function reportMessage(o: { hostname: string; to: string; subject: string; body: string; date?: Date }): Buffer {
  const ascii = (t: string) => t.replace(/[^\x20-\x7e]/g, '?');
  const date = (o.date ?? new Date()).toUTCString().replace(/GMT$/, '+0000');
  const id = `<self-check.${Date.now().toString(36)}.${crypto.randomBytes(6).toString('hex')}@${ascii(o.hostname)}>`;
  const headers = [
    `From: "Portcullis self-check" <MAILER-DAEMON@${ascii(o.hostname)}>`,
    `To: <${ascii(o.to)}>`,
    `Subject: ${ascii(o.subject).slice(0, 900)}`,
    `Date: ${date}`,
    `Message-ID: ${id}`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
  ];
  // RFC 5322 s2.1.1: lines of at most 998 octets; a lone "." is harmless in a file, but keep it out.
  const body = o.body.replace(/\r/g, '').split('\n').flatMap((l) => l.match(/.{1,900}/gu) ?? ['']).map((l) => (l === '.' ? '..' : l));
  return Buffer.from(`${headers.join('\r\n')}\r\n\r\n${body.join('\r\n')}\r\n`, 'utf8');
}
