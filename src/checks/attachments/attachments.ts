// The attachment check (data stage): reads the message model's one MIME walk (message.mime(),
// src/mime/model.ts: built by the caller with attachmentsWalk(config, inspectors) — the limits
// below and the inspectors, such as archives, that read the decoded parts in that walk), applies
// the attachment policy to every part (src/checks/attachments/policy.ts), and returns symbols (those that would justify a refusal carry its
// reply; the actions layer decides) and a rewrite plan. The check never changes the message: the session applies the plan once,
// after the verdict of every check (so DKIM and the rest judge the message as received), and
// only then commits the queue entry (docs/attachments.md).
//
// Symbols: ATTACH_EXE_STRIPPED, ATTACH_EXE_DEFANGED, ATTACH_DOUBLE_EXT, ATTACH_RTLO,
// ATTACH_TYPE_MISMATCH, ATTACH_EXEC_MAGIC, ATTACH_SCRIPT_MAGIC, ATTACH_BAD_NAME, ATTACH_REJECTED,
// ATTACH_UNREMOVABLE, MIME_* (malformed or unscannable structure), INSPECTOR_FAILED, and whatever
// inspectors emit (declared in symbols.ts beside this file).
import type { Readable } from 'node:stream';
import type { Check, CheckResult } from '../types.js';
import { analyseAttachments, decideAttachments, type AttachmentsAnalysis } from './analyse.js';
import { compilePolicy } from './policy.js';
import type { AttachmentsConfig } from './config.js';
import { sniff } from '../../mime/filetype.js';
import { headerValue, type HeaderField } from '../../protocol/headers.js';
import type { Inspector } from '../../mime/inspector.js';
import type { RewritePlan } from '../../mime/rewrite.js';

export interface AttachmentsOptions {
  /** Content inspectors for analyse() on a bare stream; the data stage reads the walk of the message model, with the model's inspectors. */
  readonly inspectors?: readonly Inspector[];
}

/** What the check returns: a CheckResult, plus the plan the session applies after the verdict. */
export interface AttachmentsCheckResult extends CheckResult {
  rewrite?: RewritePlan;
}

export interface AttachmentsCheck extends Check<'data'> {
  run(input: Parameters<Check<'data'>['run']>[0]): Promise<AttachmentsCheckResult>;
  /** The same analysis on any message stream (tests, `scan`). */
  analyse(message: Readable, sourceSize?: number): Promise<AttachmentsAnalysis>;
}

export function attachments(config: AttachmentsConfig, options: AttachmentsOptions = {}): AttachmentsCheck {
  const policy = compilePolicy(config);
  const analyse = (message: Readable, sourceSize?: number) =>
    analyseAttachments(message, config, { inspectors: options.inspectors, policy, sourceSize });
  return {
    name: 'attachments',
    stage: 'data',
    // The walk stops itself at scan_timeout (MIME_SCAN_TIMEOUT, a tempfail); the runner's budget
    // is a backstop above it. A failure of the check itself must not let a message through unseen.
    timeoutMs: config.scan_timeout + 5_000,
    onFailure: 'tempfail',
    analyse,
    async run({ message }) {
      if (!config.enabled) return {};
      if (plainTextOnly(message.headers) && harmlessStart(await bodyStart(message.stream() as Readable, 512))) return {};
      const a = decideAttachments(await message.mime(), config, { policy, sourceSize: message.size });
      const result: AttachmentsCheckResult = { symbols: a.symbols };
      if (a.plan) result.rewrite = a.plan;
      return result;
    },
  };
}

// The fast path. Most mail is a single text part sent as literal text: it has no attachment to
// strip or defang, no encoding to get wrong and no structure to hide anything in, and the MIME
// walk would cost more than the rest of the message's path. Such a message is passed unwalked when its first bytes are text too; anything
// with a name, an attachment disposition, an encoding, several parts, or executable or archive
// bytes at the start of its body gets the full walk. clamd still scans it whole.
const TEXT_TYPE = /^\s*text\/(?:plain|html)\s*(?:;|$)/i;
const NAMED = /(?:^|;)\s*(?:file)?name\*?\s*=/i;

export function plainTextOnly(headers: readonly HeaderField[]): boolean {
  const count = (k: string) => headers.filter((h) => h.key === k).length;
  if (count('content-type') > 1 || count('content-disposition') > 1 || count('content-transfer-encoding') > 1) return false;
  const type = headerValue(headers, 'content-type');
  if (type !== undefined && (!TEXT_TYPE.test(type) || NAMED.test(type))) return false;
  const disposition = headerValue(headers, 'content-disposition');
  if (disposition !== undefined && (!/^\s*inline\s*(?:;|$)/i.test(disposition) || NAMED.test(disposition))) return false;
  const cte = headerValue(headers, 'content-transfer-encoding');
  return cte === undefined || /^\s*(?:7bit|8bit)\s*$/i.test(cte);
}

function harmlessStart(head: Buffer): boolean {
  const t = sniff(head);
  return t.category !== 'executable' && t.category !== 'script' && t.category !== 'archive';
}

/** The first `n` bytes after the header section (the stream is read only that far). */
async function bodyStart(stream: Readable, n: number): Promise<Buffer> {
  let seen = Buffer.alloc(0);
  try {
    for await (const chunk of stream) {
      seen = Buffer.concat([seen, chunk as Buffer]);
      const end = seen.indexOf('\r\n\r\n');
      if (end >= 0 && seen.length >= end + 4 + n) break;
      if (seen.length > 2 * 1024 * 1024) break;
    }
  } finally {
    stream.destroy();
  }
  const end = seen.indexOf('\r\n\r\n');
  return end < 0 ? Buffer.alloc(0) : seen.subarray(end + 4, end + 4 + n);
}
