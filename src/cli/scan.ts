// `portcullis scan [--json] [--rewrite DIR] PATH...`: what the gateway's content checks decide
// for messages on disk — files, directories, mbox files, tarballs (src/cli/corpus/read.ts) —
// with the same configuration, code and weights as the SMTP path: the attachment walk (archives
// opened), clamd when enabled, and the content spam checks (rules, Bayes, URI lists), all reading
// one message model per message (one parse, one MIME walk), built as the SMTP path builds it. Checks
// that need the SMTP conversation (DNS lists, SPF, DKIM/DMARC, which depends on SPF) are not
// run: there is no client to judge.
// Exit status: 0 no message is spam or refused, 1 one is, 75 (EX_TEMPFAIL) one could not be
// judged (a scanner down), 2 a PATH held no message at all ("no messages found in PATH").
// Skipped files (unreadable, not a message, too large) are named on stderr and counted.
import path from 'node:path';
import type { Config } from '../config/schema.js';
import { formatScan } from '../checks/attachments/scan.js';
import { avChecks } from '../checks/av/av-check.js';
import { builtinSymbols, clamdClient, dnsBudgetMs, messageModelOptions } from '../gateway/checks.js';
import { buildPolicy } from '../gateway/policy.js';
import { MessageScanner, type MessageScan } from '../pipeline/message-scanner.js';
import { createSpamEngine } from '../checks/spam-engine.js';
import { requiredHeaders } from '../checks/headers/required-headers.js';
import { readMessages, type CorpusNotice } from './corpus/read.js';
import { Progress, corpusBytes, type ProgressStream } from './corpus/progress.js';
import { createResolver, resolverOptions } from '../dns/resolver.js';
import { ZoneSet } from '../dns/zones/zone-mirror.js';
import { silentLogger } from '../log.js';

/** One message's verdict (src/pipeline/message-scanner.ts: the site's thresholds, no user's) and where it came from. */
export interface MessageVerdict extends MessageScan {
  readonly file: string;
}

export interface ScanOutput {
  readonly results: MessageVerdict[];
  /** Files that could not be read or were not messages, each with why. */
  readonly skipped: CorpusNotice[];
  /** Input paths that yielded no message at all (an error: "no messages found in PATH"). */
  readonly empty: string[];
}

export interface ScanOptions {
  readonly rewriteDir?: string;
  readonly concurrency?: number;
  /** Where the progress line goes; it is drawn only when this is a terminal. Default stderr. */
  readonly progress?: ProgressStream;
}

export async function scanPaths(cfg: Config, paths: readonly string[], options: ScanOptions = {}): Promise<ScanOutput> {
  const scanner = await openScanner(cfg, options);
  try {
    return await scanner.scan(paths);
  } finally {
    await scanner.close();
  }
}

/** The checks set up once (rules compiled, Bayes opened, lists loaded) for several scans. */
export interface Scanner {
  scan(paths: readonly string[]): Promise<ScanOutput>;
  close(): Promise<void>;
}

/**
 * Sets the content checks up as a starting gateway does, once; each scan() then judges messages
 * with warm caches, as a running gateway does (bench/spam-speed.mjs measures that steady state).
 */
export async function openScanner(cfg: Config, options: ScanOptions = {}): Promise<Scanner> {
  const { rewriteDir, concurrency = 4 } = options;
  const stream = options.progress ?? process.stderr;
  const clamd = cfg.antivirus.enabled ? clamdClient(cfg) : undefined;
  const zones = ZoneSet.fromConfig(cfg.dns.zones.map((z) => ({ ...z })), { logger: silentLogger(), watch: false });
  await zones.load();
  const dns = createResolver(resolverOptions(cfg.dns, cfg.dns.zones.length ? [zones] : undefined));
  const spam = createSpamEngine(cfg, { resolver: dns, dnsTimeoutMs: dnsBudgetMs(cfg, dns.servers.length) });
  // The header checks too: a message without a Date or dated ahead scores as it would over SMTP.
  const checks = [requiredHeaders, ...avChecks({ config: cfg.antivirus, archives: cfg.archives, clamd }), ...spam.checks];
  // The weights and actions of the SMTP path; `scan` shows what the gateway would do outside observe mode.
  const { policy } = buildPolicy(cfg, [...builtinSymbols(cfg), ...spam.symbols]);
  const scanner = new MessageScanner({
    checks, policy, thresholds: cfg.policy.thresholds, attachments: cfg.attachments,
    modelOptions: messageModelOptions(cfg, clamd), logger: silentLogger(),
  });
  const judge = async (name: string, raw: Buffer): Promise<MessageVerdict> => {
    const rewriteTo = rewriteDir ? path.join(rewriteDir, path.basename(name).replace(/[^\w.@+-]/g, '_')) : undefined;
    return { ...(await scanner.scan(raw, { rewriteTo })), file: name };
  };
  const scan = async (paths: readonly string[]): Promise<ScanOutput> => {
    const results: MessageVerdict[] = [];
    const skipped: CorpusNotice[] = [];
    const empty: string[] = [];
    const progress = new Progress('scan', stream.isTTY ? await corpusBytes(paths) : undefined, stream);
    try {
      // A few messages in flight, as on the SMTP path: the rule workers, Bayes and DNS overlap.
      // Results keep the input order.
      const inFlight = new Set<Promise<void>>();
      let failure: unknown;
      for (const p of paths) {
        let found = 0;
        for await (const m of readMessages(p, { maxBytes: cfg.smtp.max_message_size, onSkip: (n) => skipped.push(n) })) {
          found++;
          progress.tick(m.raw.length);
          const slot = results.length;
          results.push(undefined as unknown as MessageVerdict);
          const task: Promise<void> = judge(m.name, m.raw).then((v) => {
            results[slot] = v;
          }, (err: unknown) => {
            failure ??= err;
          }).finally(() => inFlight.delete(task));
          inFlight.add(task);
          if (inFlight.size >= concurrency) await Promise.race(inFlight);
        }
        if (!found) empty.push(p);
      }
      await Promise.all(inFlight);
      if (failure) throw failure;
    } finally {
      progress.finish();
    }
    return { results, skipped, empty };
  };
  return {
    scan,
    async close() {
      await spam.close();
      zones.close();
    },
  };
}

export function scanExitStatus(out: ScanOutput): number {
  // A path with no message is a usage error, whatever the others gave: an empty result would
  // look like "nothing is spam".
  if (out.empty.length) return 2;
  if (out.results.some((r) => r.verdict === 'tempfail')) return 75;
  if (out.results.some((r) => r.spam || r.verdict === 'reject')) return 1;
  return 0;
}

export function describeScan(out: ScanOutput): string {
  const blocks = out.results.map((r) => `${formatScan(r.file, r)}\n  score ${r.score}: ${r.action}${r.spam ? ' (spam)' : ''}`);
  return blocks.join('\n\n');
}

/** What goes to stderr after a scan: each skipped file named, the count, and empty inputs. */
export function scanProblems(out: ScanOutput): string[] {
  const lines = out.skipped.map((s) => `scan: skipped ${s.name}: ${s.reason}`);
  if (out.skipped.length) lines.push(`scan: ${out.skipped.length} file${out.skipped.length === 1 ? '' : 's'} not read`);
  for (const p of out.empty) lines.push(`scan: no messages found in ${p}`);
  return lines;
}
