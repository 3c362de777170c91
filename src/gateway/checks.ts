// The built-in checks, in one list. Later defences add themselves here.
import type { AnyCheck } from '../checks/types.js';
import type { Config } from '../config/schema.js';
import type { Resolver } from '../dns/types.js';
import type { Logger } from '../log.js';
import { heloSyntax } from '../checks/helo/helo-syntax.js';
import { heloClaimsOurs, heloNoResolve } from '../checks/helo/helo-dns.js';
import { requiredHeaders } from '../checks/headers/required-headers.js';
import { htmlAttachmentInspector } from '../checks/phish/html-attachment.js';
import { qrInspector } from '../checks/phish/qr.js';
import { fromOwnership } from '../checks/sender/from-ownership.js';
import { bruteForceSource } from '../checks/auth/brute-force-source.js';
import { dnsbl } from '../checks/dnsbl/dnsbl.js';
import { rdns } from '../checks/rdns/rdns.js';
import { spfChecks } from '../checks/spf/spf-check.js';
import { authenticationChecks } from '../checks/dkim/authentication-check.js';
import type { DmarcObservation } from '../reports/dmarc-observation.js';
import type { BruteForce } from '../auth/brute-force.js';
import { attachments } from '../checks/attachments/attachments.js';
import { avChecks, clamdFor, type AvCallbacks } from '../checks/av/av-check.js';
import { archiveInspector } from '../checks/archives/archive-inspector.js';
import type { ClamdClient } from '../checks/av/clamd.js';
import { attachmentsWalk } from '../checks/attachments/analyse.js';
import type { SymbolDecl } from '../checks/registry.js';
import type { MessageModelOptions } from '../mime/model.js';
import { HELO_SYMBOLS } from '../checks/helo/symbols.js';
import { HEADER_SYMBOLS } from '../checks/headers/symbols.js';
import { SENDER_SYMBOLS } from '../checks/sender/symbols.js';
import { AUTH_SYMBOLS } from '../checks/auth/symbols.js';
import { DNSBL_SYMBOLS, dnsListSymbols } from '../checks/dnsbl/symbols.js';
import { RDNS_SYMBOLS } from '../checks/rdns/symbols.js';
import { SPF_SYMBOLS } from '../checks/spf/symbols.js';
import { GREETING_SYMBOLS } from '../checks/greeting/symbols.js';
import { AV_SYMBOLS } from '../checks/av/symbols.js';
import { ARCHIVE_SYMBOLS } from '../checks/archives/symbols.js';
import { ATTACHMENT_SYMBOLS, MIME_SYMBOLS } from '../checks/attachments/symbols.js';
import { DKIM_SYMBOLS } from '../checks/dkim/symbols.js';
import { DMARC_SYMBOLS } from '../checks/dmarc/symbols.js';
import { ARC_SYMBOLS } from '../checks/arc/symbols.js';

/**
 * Every symbol the built-in checks (and the session's greeting defence) can emit: the fixed
 * declarations of each defence and the DNS lists of this configuration. The content spam checks
 * declare theirs in src/checks/spam-engine.ts (spamSymbols).
 */
export function builtinSymbols(config: Pick<Config, 'dnsbl'>): SymbolDecl[] {
  return [
    ...HELO_SYMBOLS, ...HEADER_SYMBOLS, ...SENDER_SYMBOLS, ...AUTH_SYMBOLS, ...DNSBL_SYMBOLS, ...RDNS_SYMBOLS, ...SPF_SYMBOLS,
    ...GREETING_SYMBOLS, ...AV_SYMBOLS, ...ARCHIVE_SYMBOLS, ...ATTACHMENT_SYMBOLS, ...MIME_SYMBOLS, ...DKIM_SYMBOLS, ...DMARC_SYMBOLS,
    ...ARC_SYMBOLS, ...dnsListSymbols(config.dnsbl),
  ];
}

/** What checks may need from the rest of the gateway (passed in: no global state). */
export interface CheckDeps {
  readonly config: Config;
  readonly owns: (user: string, address: string) => boolean;
  /** Absent where there is no running gateway's state (`check-ip`): the source check is left out. */
  readonly bruteForce?: BruteForce;
  readonly resolver: Resolver;
  /** Addresses of our listeners (wildcards left out), for "HELO claims to be us". */
  readonly ownAddresses: readonly string[];
  readonly logger?: Logger;
  /** Counters for the antivirus and archive findings (metrics). */
  readonly avCallbacks?: AvCallbacks;
  /** The gateway's one clamd client (clamdClient), shared with the message model's archive inspector; made here when absent. */
  readonly clamd?: ClamdClient;
  /** The content spam checks (rules, Bayes, URI lists), built once by the gateway (src/checks/spam-engine.ts). */
  readonly spamChecks?: readonly AnyCheck[];
  /** Each DMARC evaluation, for the aggregate reports we send (reports.dmarc_out). */
  readonly onDmarc?: (o: DmarcObservation) => void;
}

/**
 * How the data stage builds each message's model (src/mime/model.ts), the same for the SMTP
 * path and `portcullis scan`: the content checks' scan cap, and the one MIME walk with the
 * attachment limits and the archive inspector (decrypted entries scanned with `clamd`, the
 * client the AV check uses), read by the attachment check and the AV check alike.
 */
export function messageModelOptions(c: Pick<Config, 'spam' | 'attachments' | 'archives' | 'phishing' | 'domains' | 'relay' | 'uri'>, clamd?: ClamdClient): MessageModelOptions {
  const inspectors = [
    ...(c.archives.enabled ? [archiveInspector({ config: c.archives, clamd })] : []),
    ...(c.phishing.enabled ? [
      htmlAttachmentInspector(),
      qrInspector({ ownDomains: [...c.domains, ...c.relay.domains.map((d) => d.domain)], brands: c.phishing.brands, builtinBrands: c.phishing.builtin_brands, shorteners: c.uri.shorteners }),
    ] : []),
  ];
  return { maxScanBytes: c.spam.max_scan_bytes, walk: attachmentsWalk(c.attachments, inspectors) };
}

/** One clamd client for the whole gateway, so antivirus.max_concurrency holds across checks. */
export function clamdClient(config: Pick<Config, 'antivirus'>): ClamdClient {
  return clamdFor(config.antivirus);
}

/** A check's DNS budget: two lookups in sequence, each bounded by the resolver's own retries. */
export function dnsBudgetMs(config: Config, servers: number): number {
  return 2 * config.dns.timeout * config.dns.attempts * Math.max(1, servers) + 1000;
}

export function builtinChecks(deps: CheckDeps, dnsServers = 1): AnyCheck[] {
  const c = deps.config;
  const dnsOptions = { logger: deps.logger, timeoutMs: dnsBudgetMs(c, dnsServers) };
  const checks: AnyCheck[] = [
    ...(deps.bruteForce ? [bruteForceSource(deps.bruteForce)] : []),
    heloSyntax,
    heloClaimsOurs({ hostname: c.hostname, domains: c.domains, addresses: deps.ownAddresses }),
    heloNoResolve(deps.resolver, dnsOptions),
    requiredHeaders,
    fromOwnership(deps.owns),
  ];
  if (c.dnsbl.lists.length) checks.push(dnsbl(deps.resolver, c.dnsbl, dnsOptions));
  if (c.rdns.enabled) checks.push(rdns(deps.resolver, c.rdns, dnsOptions));
  checks.push(...spfChecks({ resolver: deps.resolver, hostname: c.hostname, config: c.spf }));
  checks.push(...authenticationChecks({ resolver: deps.resolver, config: c.authentication, hostname: c.hostname, logger: deps.logger, onDmarc: deps.onDmarc }));
  checks.push(...contentChecks(c, { logger: deps.logger, callbacks: deps.avCallbacks, clamd: deps.clamd }));
  checks.push(...(deps.spamChecks ?? []));
  return checks;
}

/**
 * The malware checks of the data stage: the attachment policy and clamd, both reading the
 * message model's one walk (archives opened there: messageModelOptions). The attachment check
 * comes first: an ARCHIVE_* symbol both report counts once, as the attachment check words it.
 */
export function contentChecks(c: Config, deps: { logger?: Logger; callbacks?: AvCallbacks; clamd?: ClamdClient } = {}): AnyCheck[] {
  const clamd = deps.clamd ?? (c.antivirus.enabled ? clamdClient(c) : undefined);
  const checks: AnyCheck[] = [];
  if (c.attachments.enabled) checks.push(attachments(c.attachments));
  checks.push(...avChecks({ config: c.antivirus, archives: c.archives, clamd, logger: deps.logger, callbacks: deps.callbacks }));
  return checks;
}
