// The data-stage analysis of attachments, shared by the pipeline check
// (checks/attachments/attachments.ts) and `portcullis scan` (scan.ts): the message model's one
// walk (src/mime/model.ts mime(), where the inspectors read the decoded parts), the policy
// applied to every leaf part, inspectors' findings folded in, and the result as
// symbols and a rewrite plan for the one rewriter. A finding that would justify refusing the
// message carries its reply (ATTACH_REJECTED, MIME_UNSCANNABLE…); whether it is refused is the
// actions layer's decision (src/pipeline/actions.ts), not this analysis'.
import type { Readable } from 'node:stream';
import type { SymbolHit } from '../types.js';
import { reply, type Reply } from '../../protocol/reply.js';
import { compilePolicy, decidePart, strongerAction, type CompiledPolicy, type PartAction } from './policy.js';
import type { AttachmentsConfig } from './config.js';
import type { Inspector, InspectorFinding } from '../../mime/inspector.js';
import { defangEdit, makePlan, noticeText, stripEdit, type AttachmentChange, type RewriteEdit, type RewritePlan } from '../../mime/rewrite.js';
import type { MimeIssue, PartReport, WalkLimits } from '../../mime/walk.js';
import { walkParts, type MessageModelOptions, type MimeWalk } from '../../mime/model.js';

/** One leaf part and what is done with it (what `scan` prints, one line per part). */
export interface PartVerdict {
  readonly path: string;
  readonly name?: string;
  readonly contentType: string;
  /** What the content really is ("PDF document", "Windows PE executable"). */
  readonly detected: string;
  readonly size: number;
  readonly action: PartAction;
  readonly reason: string;
  /** Symbols found on this part, by the policy and by inspectors. */
  readonly symbols: readonly string[];
  /** Inside an encoded attached message: the path of that message part. */
  readonly container?: string;
}

export interface AttachmentsAnalysis {
  /** One hit per symbol name, reasons joined. */
  readonly symbols: SymbolHit[];
  /** What the rewriter must do once the message is accepted; absent when nothing changes (or nothing can be located). */
  readonly plan?: RewritePlan;
  readonly parts: readonly PartVerdict[];
  readonly issues: readonly MimeIssue[];
  /** The walk saw the whole message as a client would. */
  readonly complete: boolean;
  readonly bytes: number;
}

export interface DecideOptions {
  /** Compiled once by the check; compiled here when absent. */
  readonly policy?: CompiledPolicy;
  /** The message's size when known: a plan is made for it even if the walk stopped early. */
  readonly sourceSize?: number;
}

export interface AnalyseOptions extends DecideOptions {
  readonly inspectors?: readonly Inspector[];
}

/** The walk the attachment policy expects of a message model: its limits, and the inspectors (archives). */
export function attachmentsWalk(config: AttachmentsConfig, inspectors: readonly Inspector[] = []): NonNullable<MessageModelOptions['walk']> {
  return { limits: walkLimits(config), inspectors };
}

export function walkLimits(config: AttachmentsConfig): WalkLimits {
  return {
    maxDepth: config.max_depth,
    maxParts: config.max_parts,
    maxHeaderBytes: config.max_header_size,
    maxTotalHeaderBytes: config.max_total_header_size,
    maxLineBytes: config.max_line_size,
    maxScanBytes: config.max_part_scan_size,
    timeoutMs: config.scan_timeout,
  };
}

const MAX_REASON = 400;

/** Collects symbol hits, one per name, reasons joined ("a; b; and 3 more"). */
class Hits {
  private readonly map = new Map<string, string[]>();
  private readonly replies = new Map<string, Pick<SymbolHit, 'reply' | 'retryReply'>>();
  add(name: string, reason: string, replies?: Pick<SymbolHit, 'reply' | 'retryReply'>): void {
    const list = this.map.get(name) ?? [];
    if (!list.includes(reason)) list.push(reason);
    this.map.set(name, list);
    if (replies?.reply && !this.replies.has(name)) this.replies.set(name, replies);
  }
  list(): SymbolHit[] {
    return [...this.map].map(([name, reasons]) => {
      let reason = '';
      let shown = 0;
      for (const r of reasons) {
        if (reason && reason.length + r.length > MAX_REASON) break;
        reason = reason ? `${reason}; ${r}` : r;
        shown++;
      }
      if (shown < reasons.length) reason += `; and ${reasons.length - shown} more`;
      return { name, reason, ...this.replies.get(name) };
    });
  }
}

/** A part between the walk and the verdict: its decision so far, and what rewriting it needs. */
interface PartState {
  readonly part: PartReport;
  readonly rawHeader: Buffer;
  readonly displayName: string;
  readonly defangedName: string;
  action: PartAction;
  reason: string;
  readonly symbols: Set<string>;
}

/** Walks a message stream once and decides every attachment. Never throws on bad MIME (read errors do throw). */
export async function analyseAttachments(message: Readable, config: AttachmentsConfig, options: AnalyseOptions = {}): Promise<AttachmentsAnalysis> {
  return decideAttachments(await walkParts(message, attachmentsWalk(config, options.inspectors)), config, options);
}

/** Decides every attachment of a walked message (the model's mime() facet). */
export function decideAttachments(walk: MimeWalk, config: AttachmentsConfig, options: DecideOptions = {}): AttachmentsAnalysis {
  const policy = options.policy ?? compilePolicy(config);
  const hits = new Hits();
  const states: PartState[] = [];
  const byPath = new Map<string, PartState>();
  let tempfail: string | undefined;
  let rejectReason: string | undefined;

  const fold = (st: PartState, f: InspectorFinding & { inspector: string }) => {
    for (const s of f.symbols ?? []) {
      hits.add(s.name, s.reason, s);
      st.symbols.add(s.name);
    }
    if (f.action && strongerAction(f.action, st.action) !== st.action) {
      st.action = f.action;
      st.reason = f.reason ?? `${f.inspector} finding`;
    }
  };

  for (const part of walk.parts) {
    const decision = decidePart(part, part.fileType, policy);
    const { rawHeader, ...report } = part;
    const st: PartState = {
      part: report, rawHeader, displayName: decision.displayName, defangedName: decision.defangedName,
      action: decision.action, reason: decision.reason, symbols: new Set(),
    };
    for (const f of decision.findings) {
      hits.add(f.symbol, part.container ? `${f.reason} (in attached message ${part.container})` : f.reason);
      st.symbols.add(f.symbol);
    }
    for (const f of part.findings) {
      if (f.tempfail) tempfail ??= `${f.inspector}: ${f.tempfail}`;
      fold(st, f);
    }
    states.push(st);
    byPath.set(part.path, st);
  }
  for (const i of walk.issues) hits.add(i.symbol, i.reason);
  for (const f of walk.late) {
    if (f.tempfail) tempfail ??= `${f.inspector}: ${f.tempfail}`;
    const st = f.path !== undefined ? byPath.get(f.path) : undefined;
    if (st) fold(st, f);
    else {
      for (const s of f.symbols ?? []) hits.add(s.name, s.reason, s);
      if (f.action === 'reject') rejectReason ??= f.reason ?? `${f.inspector} finding`;
    }
  }

  // Final actions, in walk order: parts of an encoded attached message come before it, and
  // hand their action up to it (only the container can be rewritten).
  const verdicts: PartVerdict[] = [];
  const edits: RewriteEdit[] = [];
  const changes: AttachmentChange[] = [];
  let unmappable = false;
  const act = (st: PartState) => {
    const { part } = st;
    if (st.action === 'pass') return;
    if (st.action === 'reject') {
      rejectReason ??= `attachment "${st.displayName}" is not accepted (${st.reason})`;
      st.symbols.add('ATTACH_REJECTED');
      return;
    }
    if (part.container) {
      const up = byPath.get(part.container);
      if (up && strongerAction(st.action, up.action) !== up.action) {
        up.action = st.action;
        up.reason = `attached message holds "${st.displayName}": ${st.reason}`;
      }
      if (!up) unmappable = true;
      return;
    }
    if (!part.range) {
      unmappable = true;
      return;
    }
    if (st.action === 'strip') {
      edits.push(stripEdit({ range: part.range, rawHeader: st.rawHeader }, noticeText(config.notice, st.displayName, st.reason)));
      changes.push({ path: part.path, action: 'strip', name: st.displayName, reason: st.reason });
      hits.add('ATTACH_EXE_STRIPPED', `"${st.displayName}": ${st.reason}`);
      st.symbols.add('ATTACH_EXE_STRIPPED');
    } else {
      edits.push(defangEdit({ range: part.range, rawHeader: st.rawHeader }, st.defangedName));
      changes.push({ path: part.path, action: 'defang', name: st.displayName, newName: st.defangedName, reason: st.reason });
      hits.add('ATTACH_EXE_DEFANGED', `"${st.displayName}" renamed "${st.defangedName}": ${st.reason}`);
      st.symbols.add('ATTACH_EXE_DEFANGED');
    }
  };
  for (const st of states) {
    const { part } = st;
    act(st);
    verdicts.push({
      path: part.path, name: st.displayName, contentType: part.contentType, detected: part.fileType.description,
      size: part.size, action: st.action, reason: st.reason, symbols: [...st.symbols], container: part.container,
    });
  }
  // The findings that would justify a refusal, each with the reply it would send, strongest first
  // (the actions layer sends the first reject, else the first tempfail).
  if (rejectReason) hits.add('ATTACH_REJECTED', rejectReason, { reply: reply(554, '5.7.1', `Error: message refused: ${rejectReason}`.replace(/[^\x20-\x7e]/g, '?').slice(0, 300)) });
  if (tempfail) hits.add('CHECK_TEMPFAIL', tempfail, { reply: reply(451, '4.3.0', 'Error: attachment scanning unavailable, try again later') });
  const fatal = walk.issues.filter((i) => i.fatal);
  if (fatal.length) {
    const what = fatal.map((i) => i.symbol).join(', ');
    const retryReply = reply(451, '4.6.0', `Error: message structure could not be inspected (${what}), try again later`);
    // Out of time is not the message's fault: MIME_SCAN_TIMEOUT carries a tempfail, and the walk's
    // other findings then wait for the retry too.
    if (fatal.some((i) => i.symbol === 'MIME_SCAN_TIMEOUT')) hits.add('MIME_SCAN_TIMEOUT', fatal.find((i) => i.symbol === 'MIME_SCAN_TIMEOUT')!.reason, { reply: retryReply });
    else hits.add('MIME_UNSCANNABLE', `the walk could not see the message whole: ${what}`, { reply: reply(554, '5.6.0', `Error: message structure cannot be inspected safely (${what})`), retryReply });
  }
  const unremovable = unmappable || (edits.length > 0 && !walk.mapped);
  if (unremovable) {
    // Something must be removed but the parts cannot be located exactly: never deliver it as is.
    hits.add('ATTACH_UNREMOVABLE', 'a part to strip or defang cannot be located exactly', { reply: reply(554, '5.6.0', 'Error: message has attachments that must be removed but cannot be located safely') });
  }
  const plan = unremovable ? undefined : makePlan(walk.complete ? walk.bytes : options.sourceSize ?? walk.bytes, edits, changes);
  return { symbols: hits.list(), plan, parts: verdicts, issues: walk.issues, complete: walk.complete, bytes: walk.bytes };
}
