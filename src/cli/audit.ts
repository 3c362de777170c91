// `portcullis audit DOMAIN [--host H ...] [--json] [--html FILE] ...`: the command front end of
// src/audit. Exit status: 0 nothing worse than notes, 3 warnings, 4 something critical;
// 2 a usage error, 1 a runtime error (as every portcullis command).
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import type { Config } from '../config/schema.js';
import { loadConfig, ConfigError } from '../config/load.js';
import { parseDuration } from '../config/units.js';
import { createResolver, resolverOptions } from '../dns/resolver.js';
import { AUDIT_DEFAULTS, AuditUsageError, runAudit, type AuditProgress } from '../audit/audit.js';
import { renderHtml } from '../audit/report-html.js';
import { renderText } from '../audit/report-text.js';
import { parsePortOverrides, type ServiceName } from '../audit/services.js';

export const AUDIT_USAGE = `usage: portcullis audit DOMAIN [options]

Scrutinises DOMAIN's mail security from outside: its MX hosts (and --host hosts) on ports 25,
465, 587, 110, 995, 143, 993 — TLS, clear-text logins, open relay, role addresses — and its DNS:
SPF, DMARC, DKIM (selectors given), MTA-STS, TLS-RPT, reverse DNS, DNS blocklists (dnsbl.lists).
No message is ever sent and no real password is ever used.

  --host H                 also probe host H (repeatable)
  --json                   print the report as JSON
  --html FILE              also write a self-contained HTML report to FILE
  --dkim-selector S        check the DKIM key of selector S (repeatable, or S1,S2)
  --port SVC=PORT,...      probe only these services on these ports
                           (smtp, submissions, submission, pop3, pop3s, imap, imaps)
  --ca FILE                also trust the CA certificate(s) in FILE (PEM; repeatable)
  --relay-domain D         the external domain of relay attempts (default ${AUDIT_DEFAULTS.relayDomain})
  --helo NAME              the EHLO name (default: this host's name)
  --timeout DURATION       wait this long for each reply (default ${AUDIT_DEFAULTS.replyTimeoutMs / 1000}s)
  --budget DURATION        give each host and service at most this long (default ${AUDIT_DEFAULTS.probeTimeoutMs / 1000}s)
  --rate N                 at most N new connections per second (default ${AUDIT_DEFAULTS.rate})
  --concurrency N          at most N probes at once (default ${AUDIT_DEFAULTS.concurrency})
  --verbose                show the evidence of passed checks too
  --quiet                  no progress on stderr
  --config FILE            DNS servers and blocklists from this configuration

Exit status: 0 no problem (notes at most), 3 warnings, 4 critical findings, 2 usage error, 1 error.`;

export interface AuditArgs {
  readonly domain: string;
  readonly hosts: readonly string[];
  readonly json: boolean;
  /** Write the HTML report here. */
  readonly html?: string;
  readonly ports?: Partial<Record<ServiceName, number>>;
  readonly dkimSelectors?: readonly string[];
  /** PEM files of extra trusted CAs. */
  readonly ca?: readonly string[];
  readonly relayDomain?: string;
  readonly helo?: string;
  readonly timeoutMs?: number;
  readonly budgetMs?: number;
  readonly rate?: number;
  readonly concurrency?: number;
  readonly verbose?: boolean;
  readonly quiet?: boolean;
}

export interface AuditIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/** Runs the audit with the configuration's DNS settings and blocklists; returns the exit status. */
export async function auditCommand(args: AuditArgs, config: Config, io: AuditIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let ca: string[] | undefined;
  try {
    ca = args.ca?.map((file) => fs.readFileSync(file, 'utf8'));
  } catch (err) {
    io.stderr.write(`portcullis audit: cannot read --ca: ${(err as Error).message}\n`);
    return 2;
  }
  const resolver = createResolver(resolverOptions(config.dns));
  const tty = io.stderr.isTTY === true;
  const progress = (p: AuditProgress) => {
    if (args.quiet) return;
    if (tty) io.stderr.write(`\r\x1b[K[${p.done}/${p.total}] ${p.label}`.slice(0, 200));
    else io.stderr.write(`audit: [${p.done}/${p.total}] ${p.label}\n`);
  };
  let report;
  try {
    report = await runAudit({
      domain: args.domain, hosts: args.hosts, ports: args.ports, dkimSelectors: args.dkimSelectors, resolver,
      dnsbl: config.dnsbl, dynamicPatterns: config.rdns.dynamic_patterns, heloName: args.helo, relayDomain: args.relayDomain, ca,
      replyTimeoutMs: args.timeoutMs, connectTimeoutMs: args.timeoutMs === undefined ? undefined : Math.min(args.timeoutMs, AUDIT_DEFAULTS.connectTimeoutMs),
      probeTimeoutMs: args.budgetMs, rate: args.rate, concurrency: args.concurrency, onProgress: progress,
    });
  } catch (err) {
    if (err instanceof AuditUsageError) {
      io.stderr.write(`portcullis audit: ${err.message}\n`);
      return 2;
    }
    throw err;
  } finally {
    if (tty && !args.quiet) io.stderr.write('\r\x1b[K');
  }
  if (args.html) fs.writeFileSync(args.html, renderHtml(report));
  io.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : renderText(report, { verbose: args.verbose, color: (io.stdout as { isTTY?: boolean }).isTTY === true }));
  if (args.html && !args.quiet) io.stderr.write(`audit: HTML report written to ${args.html}\n`);
  return report.exitStatus;
}

/** Parses `audit` arguments (everything after the word "audit"); throws AuditUsageError. */
export function parseAuditArgs(argv: readonly string[]): { args: AuditArgs; config?: string } {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        host: { type: 'string', multiple: true },
        json: { type: 'boolean' },
        html: { type: 'string' },
        'dkim-selector': { type: 'string', multiple: true },
        port: { type: 'string', multiple: true },
        ca: { type: 'string', multiple: true },
        'relay-domain': { type: 'string' },
        helo: { type: 'string' },
        timeout: { type: 'string' },
        budget: { type: 'string' },
        rate: { type: 'string' },
        concurrency: { type: 'string' },
        verbose: { type: 'boolean' },
        quiet: { type: 'boolean' },
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new AuditUsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) throw new AuditUsageError('');
  if (parsed.positionals.length !== 1) throw new AuditUsageError('give exactly one DOMAIN');
  const number = (name: string, text: string | undefined, min: number): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isFinite(n) || n < min) throw new AuditUsageError(`--${name}: "${text}" is not a number >= ${min}`);
    return n;
  };
  const duration = (name: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const ms = parseDuration(text);
    if (ms === undefined || ms <= 0) throw new AuditUsageError(`--${name}: "${text}" is not a duration (e.g. 10s, 2m)`);
    return ms;
  };
  let ports: Partial<Record<ServiceName, number>> | undefined;
  if (v.port?.length) {
    try {
      ports = parsePortOverrides(v.port.join(','));
    } catch (err) {
      throw new AuditUsageError(`--port: ${(err as Error).message}`);
    }
  }
  const concurrency = number('concurrency', v.concurrency, 1);
  return {
    config: v.config,
    args: {
      domain: parsed.positionals[0]!,
      hosts: v.host ?? [],
      json: !!v.json,
      html: v.html,
      ports,
      dkimSelectors: (v['dkim-selector'] ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean),
      ca: v.ca,
      relayDomain: v['relay-domain'],
      helo: v.helo,
      timeoutMs: duration('timeout', v.timeout),
      budgetMs: duration('budget', v.budget),
      rate: number('rate', v.rate, 0.01),
      concurrency: concurrency === undefined ? undefined : Math.floor(concurrency),
      verbose: !!v.verbose,
      quiet: !!v.quiet,
    },
  };
}

/**
 * The whole `portcullis audit …` command: arguments, configuration (--config or
 * PORTCULLIS_CONFIG, else the embedded defaults), the audit. Returns the exit status.
 */
export async function auditCli(argv: readonly string[], io: AuditIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let parsed;
  try {
    parsed = parseAuditArgs(argv);
  } catch (err) {
    const msg = (err as Error).message;
    io.stderr.write(msg ? `portcullis audit: ${msg}\n\n${AUDIT_USAGE}\n` : `${AUDIT_USAGE}\n`);
    return msg ? 2 : 0;
  }
  let config: Config;
  try {
    config = loadConfig(parsed.config ?? process.env.PORTCULLIS_CONFIG);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
  return auditCommand(parsed.args, config, io);
}
