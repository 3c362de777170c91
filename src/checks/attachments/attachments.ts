// The attachment check (data stage): walks the message once (src/mime/walk.ts), applies the
// attachment policy to every part (src/mime/attachment-policy.ts), lets inspectors (archives,
// AV) read the decoded parts, and returns symbols, a demand when the message must be refused,
// and a rewrite plan. The check never changes the message: the session applies the plan once,
// after the verdict of every check (so DKIM and the rest judge the message as received), and
// only then commits the queue entry (docs/attachments.md).
//
// Symbols: ATTACH_EXE_STRIPPED, ATTACH_EXE_DEFANGED, ATTACH_DOUBLE_EXT, ATTACH_RTLO,
// ATTACH_TYPE_MISMATCH, ATTACH_EXEC_MAGIC, ATTACH_SCRIPT_MAGIC, ATTACH_BAD_NAME, ATTACH_REJECTED,
// MIME_* (malformed or unscannable structure), INSPECTOR_FAILED, and whatever inspectors emit.
import type { Readable } from 'node:stream';
import type { Check, CheckResult } from '../../pipeline/types.js';
import { analyseAttachments, type AttachmentsAnalysis } from '../../mime/analyse.js';
import { compilePolicy } from '../../mime/attachment-policy.js';
import type { AttachmentsConfig } from '../../mime/config.js';
import type { Inspector } from '../../mime/inspector.js';
import type { RewritePlan } from '../../mime/rewrite.js';

export interface AttachmentsOptions {
  /** Content inspectors (archive listing, clamd…), run on every part they want. */
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
      const a = await analyse(message.stream() as Readable, message.size);
      const result: AttachmentsCheckResult = { symbols: a.symbols };
      if (a.demand) result.demand = a.demand;
      if (a.plan) result.rewrite = a.plan;
      return result;
    },
  };
}
