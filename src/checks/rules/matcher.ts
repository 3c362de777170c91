// Runs the regex rules of a compiled ruleset over one message's targets, as SpamAssassin's
// Check plugin does: a body rule is tried line by line (paragraph by paragraph) and stops at
// the first match, unless `tflags multiple` counts every match (up to maxhits). Before any
// regex runs, a rule whose required literal is absent from the (lower-cased) target is skipped:
// the cheap prefilter that makes a large ruleset affordable.
//
// Progress goes to shared memory so that whoever stops a runaway matcher knows which rule was
// running and what had been found: slot PROGRESS_RULE holds the index of the rule being run
// (-1 between rules), PROGRESS_DONE the number of rules finished, and COUNTS_AT + i the hit
// count of rule i. The clock of the rule being run is in the Float64 view at TIME_SLOT.
import type { RegexRule } from './ruleset.js';
import { Targets, type ScanInput } from './targets.js';

export const PROGRESS_SEQ = 0;
export const PROGRESS_RULE = 1;
export const PROGRESS_DONE = 2;
export const COUNTS_AT = 4;
/** Index in a Float64Array over the same buffer (byte offset 16..23 is Int32 slots 4–5, so use the end). */
export function progressBuffer(ruleCount: number): SharedArrayBuffer {
  // Int32 slots: 4 header + one per rule; then 8-byte aligned room for one Float64 (rule start, ms).
  const ints = COUNTS_AT + ruleCount;
  const bytes = Math.ceil((ints * 4) / 8) * 8 + 8;
  return new SharedArrayBuffer(bytes);
}
export function timeSlot(buf: SharedArrayBuffer): Float64Array {
  return new Float64Array(buf, buf.byteLength - 8, 1);
}

export interface PreparedRule {
  readonly rule: RegexRule;
  /** For single tests (no g flag). */
  readonly re?: RegExp;
  /** For counting (g flag). */
  readonly reG?: RegExp;
  readonly nosubject: boolean;
}

export function prepareRules(rules: readonly RegexRule[]): PreparedRule[] {
  return rules.map((rule) => {
    if (rule.exists) return { rule, nosubject: false };
    return {
      rule,
      re: new RegExp(rule.source, rule.flags),
      reG: rule.multiple ? new RegExp(rule.source, `${rule.flags}g`) : undefined,
      nosubject: !!rule.nosubject,
    };
  });
}

export interface MatchOptions {
  readonly maxBytes: number;
  /** Rules slower than this are reported (ms). */
  readonly slowRuleMs: number;
  /** Rule indexes not to run (e.g. a rule that overran the budget on this message). */
  readonly skip?: ReadonlySet<number>;
}

export interface MatchOutcome {
  /** Rules that took at least slowRuleMs: [index, ms]. */
  readonly slow: [number, number][];
}

/** Runs every rule in order; counts land in `progress` (see the file comment). */
export function matchAll(rules: readonly PreparedRule[], input: ScanInput, options: MatchOptions, progress: Int32Array, clock: Float64Array): MatchOutcome {
  const t = new Targets(input, options.maxBytes);
  const slow: [number, number][] = [];
  for (let i = 0; i < rules.length; i++) {
    Atomics.store(progress, COUNTS_AT + i, 0);
  }
  for (let i = 0; i < rules.length; i++) {
    if (options.skip?.has(i)) continue;
    const started = performance.now();
    clock[0] = Date.now();
    Atomics.store(progress, PROGRESS_RULE, i);
    const n = runRule(rules[i]!, t);
    const ms = performance.now() - started;
    if (ms >= options.slowRuleMs) slow.push([i, ms]);
    Atomics.store(progress, COUNTS_AT + i, n);
    Atomics.store(progress, PROGRESS_DONE, i + 1);
  }
  Atomics.store(progress, PROGRESS_RULE, -1);
  return { slow };
}

function present(lower: string, required: readonly string[]): boolean {
  for (const r of required) if (lower.includes(r)) return true;
  return false;
}

function countIn(p: PreparedRule, text: string, limit: number): number {
  const re = p.reG!;
  re.lastIndex = 0;
  let n = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    n++;
    if (limit && n >= limit) break;
    if (m[0] === '') re.lastIndex++;
  }
  return n;
}

/** Hit count of one rule on this message (0 = no hit). */
export function runRule(p: PreparedRule, t: Targets): number {
  const r = p.rule;
  switch (r.type) {
    case 'header': {
      const spec = r.header!;
      const value = t.header(spec);
      if (r.exists) return value !== undefined ? 1 : 0;
      const text = value ?? spec.ifUnset ?? '';
      const key = `h:${spec.request}:${spec.mods.join(':')}:${value === undefined ? spec.ifUnset ?? '' : ''}`;
      const hit = r.required.length === 0 || present(t.lower(key, () => text), r.required)
        ? (r.multiple && !r.negate ? countIn(p, text, r.maxhits) : p.re!.test(text) ? 1 : 0)
        : 0;
      if (r.negate) return hit ? 0 : 1;
      return hit;
    }
    case 'body': case 'rawbody': {
      const lines = r.type === 'body' ? t.body() : t.rawbody();
      if (r.required.length && !present(t.lower(r.type, () => lines.join('')), r.required)) return 0;
      return eachLine(p, lines, p.nosubject && r.type === 'body' ? 1 : 0);
    }
    case 'uri': {
      const uris = t.uris();
      if (r.required.length && !present(t.lower('uri', () => uris.join('\n')), r.required)) return 0;
      return eachLine(p, uris, 0);
    }
    case 'full': {
      const full = t.full();
      if (r.required.length && !present(t.lower('full', () => full), r.required)) return 0;
      return r.multiple ? countIn(p, full, r.maxhits) : p.re!.test(full) ? 1 : 0;
    }
  }
  return 0;
}

function eachLine(p: PreparedRule, lines: readonly string[], from: number): number {
  const r = p.rule;
  if (!r.multiple) {
    const re = p.re!;
    for (let i = from; i < lines.length; i++) if (re.test(lines[i]!)) return 1;
    return 0;
  }
  let n = 0;
  for (let i = from; i < lines.length; i++) {
    n += countIn(p, lines[i]!, r.maxhits ? r.maxhits - n : 0);
    if (r.maxhits && n >= r.maxhits) break;
  }
  return n;
}
