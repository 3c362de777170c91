// Runs the regex rules of a compiled ruleset over one message's targets, as SpamAssassin's
// Check plugin does: a body rule is tried line by line (paragraph by paragraph) and stops at
// the first match, unless `tflags multiple` counts every match (up to maxhits). Before any
// regex runs, a rule whose required literal is absent from the (lower-cased) target is skipped:
// the cheap prefilter that makes a large ruleset affordable.
//
// The literals of every body, rawbody, uri and full rule are looked for in ONE pass over each
// target (a LiteralSet: one lookahead alternation, longest literal first, run by the regex
// engine), not one String.includes per literal per rule: with a few hundred literals that was
// most of the matching time (each includes reads the whole body again).
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
  /** The literal set holding this rule's required literals (body, rawbody, uri and full rules). */
  readonly literals?: LiteralSet;
  /** This rule's required literals as ids in `literals`. */
  readonly literalIds?: Int32Array;
}

/** Targets whose text is the same for every rule of its type (headers vary with the rule's spec). */
type WholeTarget = 'body' | 'rawbody' | 'uri' | 'full';

/**
 * The required literals of the rules of one target type, found in one pass per message.
 * `implied[id]`: the ids of the literals that are prefixes of literal `id` (itself included):
 * at a position where the longest literal matches, the shorter ones there are its prefixes.
 */
export interface LiteralSet {
  readonly target: WholeTarget;
  readonly literals: readonly string[];
  readonly ids: ReadonlyMap<string, number>;
  readonly implied: readonly Int32Array[];
  /** Lookahead alternations (several when the set is large, to keep each regex small). */
  readonly scanners: readonly RegExp[];
}

/** Literals per scanning regex: V8 compiles one alternation of this size in well under a ms. */
const LITERALS_PER_SCANNER = 2000;

function escapeLiteral(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

export function literalSet(target: WholeTarget, literals: Iterable<string>): LiteralSet {
  // Longest first: the alternation reports the first alternative that matches at a position.
  const list = [...new Set(literals)].sort((a, b) => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0));
  const ids = new Map(list.map((l, i) => [l, i]));
  const implied = list.map((l, i) => {
    const out = [i];
    for (let n = 1; n < l.length; n++) {
      const j = ids.get(l.slice(0, n));
      if (j !== undefined) out.push(j);
    }
    return Int32Array.from(out);
  });
  const scanners: RegExp[] = [];
  for (let i = 0; i < list.length; i += LITERALS_PER_SCANNER) {
    scanners.push(new RegExp(`(?=(${list.slice(i, i + LITERALS_PER_SCANNER).map(escapeLiteral).join('|')}))`, 'g'));
  }
  return { target, literals: list, ids, implied, scanners };
}

/** Which literals of the set occur in `lower` (1 at their id). */
export function literalsPresent(set: LiteralSet, lower: string): Uint8Array {
  const found = new Uint8Array(set.literals.length);
  for (const re of set.scanners) {
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(lower)) !== null) {
      const id = set.ids.get(m[1]!)!;
      if (!found[id]) for (const j of set.implied[id]!) found[j] = 1;
      re.lastIndex = m.index + 1;
    }
  }
  return found;
}

export function prepareRules(rules: readonly RegexRule[]): PreparedRule[] {
  const byTarget = new Map<WholeTarget, LiteralSet>();
  for (const target of ['body', 'rawbody', 'uri', 'full'] as const) {
    const lits = rules.filter((r) => r.type === target && !r.exists && r.required.length).flatMap((r) => r.required);
    if (lits.length) byTarget.set(target, literalSet(target, lits));
  }
  return rules.map((rule) => {
    if (rule.exists) return { rule, nosubject: false };
    const set = rule.type !== 'header' && rule.required.length ? byTarget.get(rule.type) : undefined;
    return {
      rule,
      re: new RegExp(rule.source, rule.flags),
      reG: rule.multiple ? new RegExp(rule.source, `${rule.flags}g`) : undefined,
      nosubject: !!rule.nosubject,
      ...(set ? { literals: set, literalIds: Int32Array.from(rule.required.map((l) => set.ids.get(l)!)) } : {}),
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

/** The rule's literal prefilter through its target's literal set (one scan per message and target). */
function literalHit(p: PreparedRule, t: Targets, text: () => string): boolean {
  const found = t.literalsFound(p.literals!, () => literalsPresent(p.literals!, t.lower(p.literals!.target, text)));
  const ids = p.literalIds!;
  for (let i = 0; i < ids.length; i++) if (found[ids[i]!]) return true;
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
      if (r.required.length && !hasLiteral(p, t, r.type, () => lines.join(''))) return 0;
      return eachLine(p, lines, p.nosubject && r.type === 'body' ? 1 : 0);
    }
    case 'uri': {
      const uris = t.uris();
      if (r.required.length && !hasLiteral(p, t, 'uri', () => uris.join('\n'))) return 0;
      return eachLine(p, uris, 0);
    }
    case 'full': {
      const full = t.full();
      if (r.required.length && !hasLiteral(p, t, 'full', () => full)) return 0;
      return r.multiple ? countIn(p, full, r.maxhits) : p.re!.test(full) ? 1 : 0;
    }
  }
  return 0;
}

function hasLiteral(p: PreparedRule, t: Targets, key: WholeTarget, text: () => string): boolean {
  return p.literals ? literalHit(p, t, text) : present(t.lower(key, text), p.rule.required);
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
