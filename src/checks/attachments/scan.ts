// What `portcullis scan [--json] FILE...` shows for attachments: the same analysis the SMTP
// path runs at end of data (analyse.ts), on a message file or a message model, with the symbols
// weighed, one line per part, and the summary of the rewrite the gateway would apply. The CLI
// wires it, with the model it hands to the other content checks too (one walk per message).
import fs from 'node:fs';
import { Readable } from 'node:stream';
import type { Demand, ScoredSymbol, SymbolHit } from '../types.js';
import { attachmentsWalk, decideAttachments, type PartVerdict } from './analyse.js';
import { DEFAULT_SCAN_BYTES, messageModel, type MessageModel } from '../../mime/model.js';
import type { AttachmentsConfig } from './config.js';
import type { Inspector } from '../../mime/inspector.js';
import type { MimeIssue } from '../../mime/walk.js';
import { writeRewritten, type AttachmentChange, type RewritePlan } from '../../mime/rewrite.js';

export interface ScanOptions {
  /** The walk's inspectors for scanMessage and scanFile (scanModel reads the model's own walk). */
  readonly inspectors?: readonly Inspector[];
  /**
   * Weighs the hits and applies the actions layer, as the SMTP path does (the CLI passes the
   * runner's judge). Without it, hits keep the weight their check gave them (else 0) and nothing
   * is refused.
   */
  readonly judge?: (hits: readonly SymbolHit[]) => { symbols: ScoredSymbol[]; demand?: Demand };
  /** The message's size, when known (a plan is then made even if the walk stopped early). */
  readonly size?: number;
}

export interface ScanResult {
  /** accept: delivered as is; rewrite: delivered after the rewrite below; reject / tempfail: refused. */
  readonly verdict: 'accept' | 'rewrite' | 'reject' | 'tempfail';
  readonly symbols: ScoredSymbol[];
  /** One entry per leaf part, in message order. */
  readonly actions: readonly PartVerdict[];
  readonly rewrite?: { readonly header: string; readonly changes: readonly AttachmentChange[] };
  readonly demand?: Demand;
  readonly issues: readonly MimeIssue[];
  readonly complete: boolean;
  readonly bytes: number;
}

/** The analysis behind `scan` on one message stream (read once). */
export async function scanMessage(message: Readable, config: AttachmentsConfig, options: ScanOptions = {}): Promise<ScanResult> {
  let used = false;
  const once = () => {
    if (used) throw new Error('scanMessage reads its stream once');
    used = true;
    return message;
  };
  return (await analyse(modelOf(options.size ?? 0, once, config, options), config, options)).result;
}

/** A model for `scan` on its own: the walk the attachment check expects, with the given inspectors. */
function modelOf(size: number, stream: () => Readable, config: AttachmentsConfig, options: ScanOptions): MessageModel {
  return messageModel({ size, stream }, { maxScanBytes: DEFAULT_SCAN_BYTES, walk: attachmentsWalk(config, options.inspectors) });
}

async function analyse(model: MessageModel, config: AttachmentsConfig, options: ScanOptions): Promise<{ result: ScanResult; plan?: RewritePlan }> {
  const a = decideAttachments(await model.mime(), config, { sourceSize: options.size });
  const judged = options.judge ? options.judge(a.symbols) : { symbols: a.symbols.map((s) => ({ ...s, score: s.score ?? 0 })) };
  const { symbols, demand } = judged;
  const verdict = demand ? demand.kind : a.plan ? 'rewrite' : 'accept';
  const result: ScanResult = {
    verdict, symbols, actions: a.parts, demand, issues: a.issues, complete: a.complete, bytes: a.bytes,
    rewrite: a.plan ? { header: a.plan.summaryHeader, changes: a.plan.changes } : undefined,
  };
  return { result, plan: a.plan };
}

/**
 * `scan` on a file; with `rewriteTo`, also writes the message as the gateway would deliver it
 * (the summary header on top), or nothing when it would be left as is or refused.
 */
export async function scanFile(file: string, config: AttachmentsConfig, options: ScanOptions & { rewriteTo?: string } = {}): Promise<ScanResult & { rewritten?: string }> {
  const size = (await fs.promises.stat(file)).size;
  const { result, plan } = await analyse(modelOf(size, () => fs.createReadStream(file), config, options), config, { ...options, size });
  if (!options.rewriteTo || !plan) return result;
  const out = await writeRewritten(fs.createReadStream(file), plan, options.rewriteTo, { fsync: false, prefix: Buffer.from(`${plan.summaryHeader}\r\n`) });
  return { ...result, rewritten: out.path };
}

/**
 * `scan` on a message model (a message in memory from a directory, an mbox or a tarball, its
 * model built by the CLI with the walk of attachmentsWalk and shared with the other checks);
 * `rewriteTo` as for scanFile.
 */
export async function scanModel(model: MessageModel, config: AttachmentsConfig, options: ScanOptions & { rewriteTo?: string } = {}): Promise<ScanResult & { rewritten?: string }> {
  const { result, plan } = await analyse(model, config, { ...options, size: model.size });
  if (!options.rewriteTo || !plan) return result;
  const out = await writeRewritten(model.stream() as Readable, plan, options.rewriteTo, { fsync: false, prefix: Buffer.from(`${plan.summaryHeader}\r\n`) });
  return { ...result, rewritten: out.path };
}

/** Human-readable lines for `scan` without --json. */
export function formatScan(file: string, r: ScanResult): string {
  const lines = [`${file}: ${r.verdict}${r.demand ? ` (${r.demand.reply.code} ${r.demand.reply.enhanced ?? ''} ${r.demand.reply.text})` : ''}`];
  for (const p of r.actions) {
    const name = p.name ?? '';
    lines.push(`  part ${p.path}  ${p.contentType}  ${name}  [${p.detected}, ${p.size} bytes]  ${p.action}${p.reason ? `: ${p.reason}` : ''}`);
  }
  for (const s of r.symbols) lines.push(`  ${s.name} (${s.score}): ${s.reason}`);
  if (r.rewrite) lines.push(`  ${r.rewrite.header}`);
  return lines.join('\n');
}

