// The antivirus check (data stage): the whole message, as received, goes to clamd through
// zINSTREAM (clamd decodes MIME and opens archives itself: a plain or zipped EICAR is found
// there). Archives clamd cannot open — password-protected zips — are opened once, by the archive
// inspector in the message model's MIME walk (src/checks/archives/archive-inspector.ts, put in
// the model by its builder: src/gateway/checks.ts messageModelOptions), with candidate passwords
// from the message's text, and their decrypted entries scanned with clamd there, one by one:
// this check reads those scans, the virus and the scanner failure from the walk (message.mime()),
// the same walk the attachment check reads.
//
// Outcomes (detection apart from policy, failure as a result):
// - a virus: symbol AV_VIRUS carrying 554 5.7.1 "Error: message contains a virus: <signature>"
//   (refused at end of DATA under its default action, reject); logged, counted
//   (callbacks.onVirus); the SMTP session keeps the refused message in the quarantine when
//   antivirus.quarantine is on (src/quarantine/). Never bounced: the refusal is the SMTP reply.
// - clamd unreachable, failing or too slow: symbol AV_UNAVAILABLE carrying 451 4.7.1 (action
//   tempfail by default; "tag" accepts the message unscanned); either way an error-level log
//   line and callbacks.onUnavailable.
// - too large to scan (antivirus.max_stream, or clamd's StreamMaxLength): symbol AV_SKIPPED.
// - archive findings (src/mime/archive.ts, from the walk) as ARCHIVE_* symbols, one per kind and
//   message; ARCHIVE_EXE and ARCHIVE_ENCRYPTED carry the refusal policy.actions may ask for
//   ("strip" is the attachment rewriter's job: the symbol says what to strip). With the
//   attachment check on, it reports the same findings first; the runner counts a symbol once per
//   stage (the first, heaviest hit), so nothing is counted twice.
import type { Check, CheckResult, SymbolHit } from '../types.js';
import type { Logger } from '../../log.js';
import { R } from '../../protocol/reply.js';
import { headerValue } from '../../protocol/headers.js';
import { ClamdClient, formatClamdAddress, parseClamdAddress, type ScanResult } from './clamd.js';
import { archiveConfigSchema, type ArchiveConfig, type AvConfig } from './config.js';
import type { ArchiveFinding, ArchiveSymbol } from '../../mime/archive.js';
import type { InspectorFinding } from '../../mime/inspector.js';
import type { MimeWalk } from '../../mime/model.js';

/** Counting hooks until src/metrics.ts has AV metrics (see docs/antivirus.md for the proposal). */
export interface AvCallbacks {
  /** Every clamd scan: its result kind and duration. */
  onScan?(result: ScanResult['kind'], seconds: number): void;
  onVirus?(signature: string): void;
  onUnavailable?(reason: string): void;
  onArchiveFinding?(symbol: ArchiveSymbol): void;
}

export interface AvCheckDeps {
  readonly config: AvConfig;
  /** Archive inspection settings; schema defaults when absent. */
  readonly archives?: ArchiveConfig;
  /** A shared client (tests, or one client for several checks); built from config otherwise. */
  readonly clamd?: ClamdClient;
  readonly logger?: Logger;
  readonly callbacks?: AvCallbacks;
}

/** The AV check, or none when antivirus.enabled is false. */
export function avChecks(deps: AvCheckDeps): Check<'data'>[] {
  return deps.config.enabled ? [avCheck(deps)] : [];
}

const clean = (s: string, max = 200) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, max);

export const virusReply = (signature: string) => R.policyReject(`Error: message contains a virus: ${clean(signature)}`);
export const scannerUnavailableReply = R.policyTempfail('Error: virus scanner unavailable, try again later');

export function avCheck(deps: AvCheckDeps): Check<'data'> {
  const config = deps.config;
  const archives = deps.archives ?? archiveConfigSchema.parse({});
  const clamd = deps.clamd ?? clamdFor(config);
  const where = formatClamdAddress(clamd.address);
  const log = deps.logger;
  const cb = deps.callbacks ?? {};

  const scan = async (what: () => Promise<ScanResult>): Promise<ScanResult> => {
    const t0 = performance.now();
    const r = await what();
    cb.onScan?.(r.kind, (performance.now() - t0) / 1000);
    return r;
  };

  return {
    name: 'antivirus',
    stage: 'data',
    // Our own deadlines end first (one message scan, the archive walk, one entry scan in it);
    // the runner's budget is the backstop, with the same failure mode.
    timeoutMs: 2 * config.timeout + archives.time_limit + 5_000,
    onFailure: (err) => ({ name: 'AV_UNAVAILABLE', reason: clean(`check failed: ${err}`, 300), reply: scannerUnavailableReply }),
    async run({ conn, envelope, message }): Promise<CheckResult> {
      const symbols: SymbolHit[] = [];
      let virus: { signature: string; where: string } | undefined;
      let failure: string | undefined;
      let skipped: string | undefined;
      const take = (r: ScanResult, what: string) => {
        switch (r.kind) {
          case 'virus':
            virus ??= { signature: r.signature, where: what };
            break;
          case 'unavailable':
          case 'error':
            failure ??= `${what}: ${r.reason}`;
            break;
          case 'too-large':
            skipped ??= r.limit === 'client'
              ? `${what}: larger than antivirus.max_stream (${config.max_stream} bytes), not scanned`
              : `${what}: larger than clamd's StreamMaxLength, not scanned`;
            if (r.limit === 'clamd') {
              log?.warn({ event: 'av_stream_limit', clamd: where, bytes: r.bytes }, 'clamd refused a stream as too large: its StreamMaxLength is below antivirus.max_stream');
            }
            break;
          case 'clean':
            break;
        }
      };

      // The raw message to clamd and the MIME walk (archives opened, their decrypted entries
      // scanned) at the same time; the walk is the model's, shared with the attachment check.
      const whole = scan(async () => (message.size > config.max_stream
        ? { kind: 'too-large', limit: 'client', bytes: message.size }
        : clamd.scanStream(message.stream())));
      // A text/* message (no MIME structure) carries no attachment: nothing to walk for.
      const topType = (headerValue(message.headers, 'content-type') ?? 'text/plain').trim().toLowerCase();
      const walked: Promise<MimeWalk | undefined> = archives.enabled && !topType.startsWith('text/')
        ? message.mime().catch((err: Error) => {
          log?.warn({ event: 'av_parts_failed', session: conn.sessionId, err: err.message }, 'could not read the message parts for archive inspection');
          return undefined;
        })
        : Promise.resolve(undefined);
      const [wholeResult, walk] = await Promise.all([whole, walked]);
      take(wholeResult, 'message');

      const findings: ArchiveFinding[] = [];
      for (const f of archiveFindings(walk)) {
        for (const s of f.scans ?? []) cb.onScan?.(s.result, s.seconds);
        if (f.virus) virus ??= { signature: f.virus.signature, where: `${f.virus.where} (decrypted)` };
        if (f.scanFailure) failure ??= `${f.scanFailure.where} (decrypted): ${f.scanFailure.reason}`;
        findings.push(...(f.archive ?? []));
      }

      if (virus) {
        const v = virus;
        cb.onVirus?.(v.signature);
        log?.warn({
          event: 'virus', session: conn.sessionId, client: conn.remoteAddress, sender: envelope.sender,
          recipients: envelope.recipients, signature: v.signature, where: v.where, size: message.size,
        }, `virus found: ${v.signature}`);
        symbols.push({ name: 'AV_VIRUS', reason: v.where === 'message' ? v.signature : `${v.signature} in ${v.where}`, reply: virusReply(v.signature) });
        return { symbols };
      }

      if (failure) {
        cb.onUnavailable?.(failure);
        log?.error({
          event: 'av_unavailable', session: conn.sessionId, clamd: where, reason: failure,
        }, `VIRUS SCANNER UNAVAILABLE (${where}): ${failure}; AV_UNAVAILABLE (451 4.7.1 unless policy.actions says otherwise)`);
        symbols.push({ name: 'AV_UNAVAILABLE', reason: clean(failure, 300), reply: scannerUnavailableReply });
      }
      if (skipped) symbols.push({ name: 'AV_SKIPPED', reason: skipped });

      for (const f of findings) cb.onArchiveFinding?.(f.symbol);
      symbols.push(...archiveSymbols(findings, archives, 'av'));
      return { symbols };
    },
  };
}

/** A clamd client from the antivirus section (the gateway shares one: src/gateway/checks.ts clamdClient). */
export function clamdFor(config: AvConfig): ClamdClient {
  return new ClamdClient({
    address: parseClamdAddress(config.clamd), timeoutMs: config.timeout, maxStreamBytes: config.max_stream, maxConcurrency: config.max_concurrency,
  });
}

/**
 * The archive inspector's findings in a walk, in message order: on each part as it was read, and
 * (encrypted zips tried again with every password of the message) after the last part, placed at
 * their part.
 */
function archiveFindings(walk: MimeWalk | undefined): InspectorFinding[] {
  if (!walk) return [];
  const order = new Map(walk.parts.map((p, i) => [p.path, i]));
  const placed: { at: number; f: InspectorFinding }[] = [];
  walk.parts.forEach((p, i) => {
    for (const f of p.findings) if (f.inspector === 'archive') placed.push({ at: i, f });
  });
  for (const f of walk.late) if (f.inspector === 'archive') placed.push({ at: order.get(f.path ?? '') ?? walk.parts.length, f });
  return placed.sort((a, b) => a.at - b.at).map((x) => x.f);
}

const ACTION_NOTE: Partial<Record<ArchiveSymbol, (a: ArchiveConfig) => string>> = {
  ARCHIVE_EXE: (a) => ` (part: ${a.executable_inside})`,
  ARCHIVE_ENCRYPTED: (a) => ` (part: ${a.encrypted})`,
};

/**
 * The refusal an archive finding would justify (sent when policy.actions makes ARCHIVE_EXE or
 * ARCHIVE_ENCRYPTED reject). The attachment walk words it as its other part refusals ("message
 * refused: …"); the AV check alone (attachments off) as it always did.
 */
function archiveReply(f: ArchiveFinding, wording: 'walk' | 'av') {
  const path = clean(f.path, 120);
  if (f.symbol === 'ARCHIVE_EXE') {
    return R.policyReject(wording === 'walk' ? `Error: message refused: archive holds an executable: ${path}` : `Error: archive contains an executable: ${path}`);
  }
  if (f.symbol === 'ARCHIVE_ENCRYPTED') {
    return R.policyReject(wording === 'walk' ? `Error: message refused: encrypted archive that cannot be scanned: ${path}` : `Error: encrypted archive cannot be scanned: ${path}`);
  }
  return undefined;
}

/** One symbol per kind of finding: the first finding's path and reason, and how many more. */
export function archiveSymbols(findings: readonly ArchiveFinding[], archives: ArchiveConfig, wording: 'walk' | 'av' = 'walk'): SymbolHit[] {
  const byKind = new Map<ArchiveSymbol, ArchiveFinding[]>();
  for (const f of findings) byKind.set(f.symbol, [...(byKind.get(f.symbol) ?? []), f]);
  const out: SymbolHit[] = [];
  for (const [symbol, list] of byKind) {
    const first = list[0]!;
    const more = list.length > 1 ? ` (+${list.length - 1} more)` : '';
    const reply = archiveReply(first, wording);
    out.push({ name: symbol, reason: clean(`${first.path}: ${first.reason}${more}${ACTION_NOTE[symbol]?.(archives) ?? ''}`, 300), ...(reply ? { reply } : {}) });
  }
  return out;
}
