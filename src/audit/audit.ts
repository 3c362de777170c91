// `portcullis audit DOMAIN`: scrutiny of a mail domain from outside. Resolves the MX hosts (and
// hosts given), then runs, concurrently but bounded and rate-limited:
//   - per host address and service (25, 465, 587, 110, 995, 143, 993): the protocol probe
//     (banner, capabilities, STARTTLS, clear-text login exposure), the TLS probe, on SMTP ports
//     the open-relay battery, on port 25 the role addresses;
//   - per MX address: reverse DNS and the configured DNS blocklists;
//   - for the domain: SPF, DMARC, DKIM selectors given, MTA-STS and TLS-RPT records.
// Each endpoint job has a time budget; when it runs out its connections are destroyed and the
// report says so. Nothing here throws for a bad server or a bad domain: those are findings.
//
// Safety: only the given domain's MX hosts and the given hosts are contacted (plus the DNS
// resolver); no message is ever sent (transactions stop at RCPT and are reset); no real
// credential is ever sent (probe-context.ts probeCredentials); every session ends with
// QUIT/LOGOUT.
import os from 'node:os';
import type { Resolver } from '../dns/types.js';
import { compileLists, type DnsblConfig } from '../checks/dnsbl/dnsbl.js';
import { compileDynamicPatterns } from '../checks/rdns/dynamic-name.js';
import { checkBlocklists, checkReverseDns } from './address-checks.js';
import { checkDkim, checkDmarc, checkMtaSts, checkTlsRpt } from './dns-checks.js';
import { countBySeverity, exitStatusFor, sortFindings, worstSeverity, type Finding, type Severity } from './findings.js';
import { probeImap } from './imap-probe.js';
import { probePop3 } from './pop3-probe.js';
import { endpointLabel, type Endpoint, type ProbeContext } from './probe-context.js';
import { failureFinding } from './probe-findings.js';
import { ProbeError } from './dialogue.js';
import { probeRelay } from './relay-probe.js';
import { probeRoles } from './roles-probe.js';
import { RateLimiter, runPool } from './schedule.js';
import { servicesToProbe, type ServiceName } from './services.js';
import { probeSmtp } from './smtp-probe.js';
import { checkSpf } from './spf-audit.js';
import { resolveTargets, isHostName, type Target } from './targets.js';
import { probeTls, type CertificateSummary } from './tls-probe.js';

export interface AuditOptions {
  readonly domain: string;
  /** Extra hosts to probe besides the MX hosts (names or addresses). */
  readonly hosts?: readonly string[];
  /** Probe exactly these services on these ports (default: all seven on their standard ports). */
  readonly ports?: Partial<Record<ServiceName, number>>;
  readonly dkimSelectors?: readonly string[];
  readonly resolver: Resolver;
  /** The gateway's `dnsbl:` section: the lists MX addresses are checked against. */
  readonly dnsbl?: DnsblConfig;
  /** rdns.dynamic_patterns of the configuration. */
  readonly dynamicPatterns?: readonly string[];
  /** The EHLO name (default: this machine's host name if it has a dot, else "portcullis-audit.invalid"). */
  readonly heloName?: string;
  /** The external domain the relay forms name (default example.com; never contacted). */
  readonly relayDomain?: string;
  /** Extra trusted CA certificates (PEM text). */
  readonly ca?: readonly string[];
  readonly connectTimeoutMs?: number;
  readonly replyTimeoutMs?: number;
  /** Budget of one endpoint (all probes of one host address and service). */
  readonly probeTimeoutMs?: number;
  readonly concurrency?: number;
  /** New connections per second, over the whole audit. */
  readonly rate?: number;
  readonly onProgress?: (p: AuditProgress) => void;
  readonly now?: () => number;
}

export interface AuditProgress {
  readonly done: number;
  readonly total: number;
  readonly label: string;
}

export interface ServiceRecord {
  readonly host: string;
  readonly address: string;
  readonly service: ServiceName;
  readonly port: number;
  readonly reachable: boolean;
  readonly banner?: string;
  readonly capabilities?: readonly string[];
  readonly tls?: { readonly protocol?: string; readonly cipher?: string; readonly certificate?: CertificateSummary };
  readonly relay?: { readonly accepted: number; readonly tested: number };
}

export interface AuditReport {
  readonly version: 1;
  readonly domain: string;
  readonly started: string;
  readonly durationMs: number;
  readonly settings: {
    readonly hosts: readonly string[];
    readonly services: readonly { service: ServiceName; port: number }[];
    readonly dkimSelectors: readonly string[];
    readonly relayDomain: string;
    readonly heloName: string;
    readonly blocklists: readonly string[];
  };
  readonly targets: readonly Target[];
  readonly services: readonly ServiceRecord[];
  readonly findings: readonly Finding[];
  readonly summary: Readonly<Record<Severity, number>>;
  readonly worst: Severity;
  readonly exitStatus: number;
}

export class AuditUsageError extends Error {}

export const AUDIT_DEFAULTS = {
  connectTimeoutMs: 10_000,
  replyTimeoutMs: 30_000,
  probeTimeoutMs: 240_000,
  concurrency: 4,
  rate: 5,
  relayDomain: 'example.com',
} as const;

export function defaultHeloName(): string {
  const h = os.hostname().toLowerCase();
  return h.includes('.') && isHostName(h) ? h : 'portcullis-audit.invalid';
}

export async function runAudit(o: AuditOptions): Promise<AuditReport> {
  const now = o.now ?? Date.now;
  const started = now();
  const domain = o.domain.toLowerCase().replace(/\.$/, '');
  if (!isHostName(domain) || !domain.includes('.')) throw new AuditUsageError(`"${o.domain}" is not a domain name`);
  for (const h of o.hosts ?? []) {
    if (!isHostName(h) && !/^\[?[0-9a-f:.]+\]?$/i.test(h)) throw new AuditUsageError(`"${h}" is not a host name or address`);
  }
  const lists = compileLists(o.dnsbl ?? { lists: [], threshold: 1 });
  const patterns = compileDynamicPatterns(o.dynamicPatterns ?? []);
  const limiter = new RateLimiter(o.rate ?? AUDIT_DEFAULTS.rate, now);
  const heloName = o.heloName ?? defaultHeloName();
  const relayDomain = o.relayDomain ?? AUDIT_DEFAULTS.relayDomain;
  const services = servicesToProbe(o.ports);
  const base: ProbeContext = {
    connectTimeoutMs: o.connectTimeoutMs ?? AUDIT_DEFAULTS.connectTimeoutMs,
    replyTimeoutMs: o.replyTimeoutMs ?? AUDIT_DEFAULTS.replyTimeoutMs,
    heloName, domain, relayDomain, ca: o.ca, now,
  };
  const probeTimeoutMs = o.probeTimeoutMs ?? AUDIT_DEFAULTS.probeTimeoutMs;

  const resolution = await resolveTargets(o.resolver, domain, o.hosts ?? []);
  const findings: Finding[] = [...resolution.findings];
  const records: ServiceRecord[] = [];
  const domainExists = !resolution.findings.some((f) => f.code === 'DOMAIN_MISSING');
  const mxAddresses = resolution.targets.filter((t) => t.source !== 'given').flatMap((t) => t.addresses.map((address) => ({ host: t.host, address })));

  type Job = { label: string; run: () => Promise<Finding[]> };
  const jobs: Job[] = [];
  if (domainExists) {
    jobs.push({ label: `SPF of ${domain}`, run: () => checkSpf(o.resolver, domain, mxAddresses) });
    jobs.push({ label: `DMARC of ${domain}`, run: () => checkDmarc(o.resolver, domain) });
    jobs.push({ label: `DKIM of ${domain}`, run: () => checkDkim(o.resolver, domain, o.dkimSelectors ?? []) });
    jobs.push({ label: `MTA-STS and TLS-RPT of ${domain}`, run: async () => [...await checkMtaSts(o.resolver, domain), ...await checkTlsRpt(o.resolver, domain)] });
  }
  for (const t of resolution.targets) {
    for (const address of t.addresses) {
      jobs.push({
        label: `reverse DNS and blocklists of ${address}`,
        run: async () => [...await checkReverseDns(o.resolver, t.host, address, patterns), ...await checkBlocklists(o.resolver, lists, t.host, address)],
      });
      for (const { spec, port } of services) {
        const e: Endpoint = { host: t.host, address, port, service: spec };
        jobs.push({
          label: endpointLabel(e),
          run: async () => {
            const r = await endpointJob(e, base, limiter, probeTimeoutMs, resolution.acceptsMail);
            records.push(r.record);
            return r.findings;
          },
        });
      }
    }
  }

  let done = 0;
  const results = await runPool(jobs.map((job) => async () => {
    let out: Finding[];
    try {
      out = await job.run();
    } catch (err) {
      // A bug, not a server's fault: still a finding, and the audit goes on.
      out = [{
        code: 'AUDIT_INTERNAL_ERROR', area: 'reachability', severity: 'info', target: job.label, evidence: (err as Error).stack ?? String(err),
        title: 'A check failed inside the audit', fix: 'Report this as a bug in Portcullis.',
      }];
    }
    done++;
    o.onProgress?.({ done, total: jobs.length, label: job.label });
    return out;
  }), o.concurrency ?? AUDIT_DEFAULTS.concurrency);
  for (const r of results) findings.push(...r);

  const unique = dedupe(findings);
  const sorted = sortFindings(unique);
  return {
    version: 1,
    domain,
    started: new Date(started).toISOString(),
    durationMs: now() - started,
    settings: {
      hosts: o.hosts ?? [], services: services.map((s) => ({ service: s.spec.name, port: s.port })), dkimSelectors: o.dkimSelectors ?? [],
      relayDomain, heloName, blocklists: lists.map((l) => l.zone),
    },
    targets: resolution.targets,
    services: records.sort((a, b) => a.host.localeCompare(b.host) || a.address.localeCompare(b.address) || a.port - b.port),
    findings: sorted,
    summary: countBySeverity(sorted),
    worst: worstSeverity(sorted),
    exitStatus: exitStatusFor(sorted),
  };
}

async function endpointJob(e: Endpoint, base: ProbeContext, limiter: RateLimiter, budgetMs: number, roles: boolean): Promise<{ findings: Finding[]; record: ServiceRecord }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), budgetMs);
  const ctx: ProbeContext = { ...base, signal: ac.signal, beforeConnect: () => limiter.take(ac.signal) };
  const findings: Finding[] = [];
  let record: ServiceRecord = { host: e.host, address: e.address, service: e.service.name, port: e.port, reachable: false };
  try {
    const first = e.service.protocol === 'smtp' ? await probeSmtp(e, ctx) : e.service.protocol === 'imap' ? await probeImap(e, ctx) : await probePop3(e, ctx);
    findings.push(...first.findings);
    const facts = first.facts;
    record = {
      ...record, reachable: facts.reachable,
      banner: 'banner' in facts ? facts.banner : 'greeting' in facts ? facts.greeting : undefined,
      capabilities: facts.capabilities,
    };
    if (!facts.reachable) return { findings, record };
    if (facts.tls) {
      const t = await probeTls(e, ctx);
      findings.push(...t.findings);
      const modern = t.facts.attempts.modern;
      record = { ...record, tls: { protocol: modern.kind === 'accepted' ? modern.protocol : undefined, cipher: modern.kind === 'accepted' ? modern.cipher : undefined, certificate: t.facts.certificate } };
    }
    if (e.service.protocol === 'smtp') {
      const bannerName = 'bannerName' in facts ? facts.bannerName : undefined;
      const relay = await probeRelay(e, ctx, bannerName);
      findings.push(...relay.findings);
      record = { ...record, relay: { accepted: relay.results.filter((r) => r.verdict === 'accepted').length, tested: relay.results.filter((r) => r.verdict !== 'untested').length } };
      if (e.service.name === 'smtp' && roles) findings.push(...await probeRoles(e, ctx));
    }
  } catch (err) {
    findings.push(failureFinding(e, err instanceof ProbeError ? err : new ProbeError('error', (err as Error).message)));
  } finally {
    clearTimeout(timer);
  }
  if (ac.signal.aborted && !findings.some((f) => f.code === 'PROBE_TIMEOUT')) {
    findings.push(failureFinding(e, new ProbeError('aborted', `the probes of this service took longer than ${Math.round(budgetMs / 1000)} s and were stopped`)));
  }
  return { findings, record };
}

function dedupe(findings: readonly Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const key = `${f.code}\u0000${f.target}\u0000${f.title}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
