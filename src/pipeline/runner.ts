// Runs the checks of one stage: in dependency order ("after"), independent checks concurrently,
// each under a time budget. A check that throws or runs late never hangs the session: it yields
// CHECK_FAILED (scored) or CHECK_TEMPFAIL (a tempfail), as the check declared (STYLE.md rule 9).
// The facts checks hand on are merged level by level and passed, read-only, to the next level.
// The stage's symbols are weighed (src/pipeline/weights.ts) and go through the actions layer
// (src/pipeline/actions.ts), which alone turns a finding into a refusal.
import type { AnyCheck, Check, CheckResult, Demand, Facts, ScoredSymbol, Stage, StageInput, SymbolHit } from '../checks/types.js';
import type { Logger } from '../log.js';
import { R } from '../protocol/reply.js';
import { mergePlans, type RewritePlan } from '../mime/rewrite.js';
import type { ActionTable, Floor, WouldRefuse } from './actions.js';
import type { Weigher } from './weights.js';
import { declare } from '../checks/registry.js';

/** The runner's own symbols: a check that failed or ran late. */
export const PIPELINE_SYMBOLS = declare('pipeline', {
  CHECK_FAILED: 'a check failed or timed out; the log says which (scored)',
  CHECK_TEMPFAIL: ['a check that must not be skipped failed or timed out: 451 4.7.1', 'tempfail'],
});

export interface StageOutcome {
  symbols: ScoredSymbol[];
  /** The refusal the actions layer decided (never one observe mode held back). */
  demand?: Demand;
  /** Observe mode: the refusals held back, each with the reply that would have been sent. */
  wouldRefuse: WouldRefuse[];
  /** The strongest folder a symbol asks for (policy.actions tag / junk / quarantine). */
  floor?: Floor;
  /** The facts given in the input, with what this stage's checks found added. */
  facts: Facts;
  authResults: string[];
  trace: string[];
  rewrite?: RewritePlan;
}

export interface RunnerEvents {
  onCheckFailure?(check: string, stage: Stage, error: string): void;
}

/** The policy a runner applies: weights (with their precedence), actions, observe mode. */
export interface RunnerPolicy {
  readonly weights: Weigher;
  readonly actions: ActionTable;
  readonly observe: boolean;
}

export class CheckRunner {
  private readonly levels = new Map<Stage, Check<Stage>[][]>();

  constructor(
    checks: readonly AnyCheck[],
    readonly policy: RunnerPolicy,
    private readonly logger: Logger,
    private readonly events: RunnerEvents = {},
  ) {
    const byStage = new Map<Stage, Check<Stage>[]>();
    for (const c of checks as Check<Stage>[]) {
      const list = byStage.get(c.stage) ?? [];
      list.push(c);
      byStage.set(c.stage, list);
    }
    for (const [stage, list] of byStage) this.levels.set(stage, orderLevels(stage, list));
  }

  /** Weighs a hit: policy.symbols, else the check's own configured weight, else the registry default. */
  score(hit: SymbolHit): ScoredSymbol {
    return { ...hit, score: this.policy.weights.weigh(hit) };
  }

  has(stage: Stage): boolean {
    return this.levels.has(stage);
  }

  /**
   * Weighs hits found outside a check (the session's early-talker finding) and puts them through
   * the actions layer as the stage's checks' hits are.
   */
  judge(stage: Stage, hits: readonly SymbolHit[], facts: Facts = {}): StageOutcome {
    return this.decide(stage, hits.map((h) => this.score(h)), { facts, authResults: [], trace: [] });
  }

  async run<S extends Stage>(stage: S, input: StageInput[S]): Promise<StageOutcome> {
    const symbols: ScoredSymbol[] = [];
    const rest: Pick<StageOutcome, 'facts' | 'authResults' | 'trace' | 'rewrite'> = { facts: { ...input.facts }, authResults: [], trace: [] };
    for (const level of this.levels.get(stage) ?? []) {
      const levelInput = { ...input, facts: Object.freeze({ ...rest.facts }) };
      const results = await Promise.all(level.map((c) => this.runOne(c as Check<S>, levelInput)));
      let refused = false;
      for (const r of results) {
        for (const hit of r.symbols ?? []) {
          const s = this.score(hit);
          symbols.push(s);
          // Later levels are not run once a refusal is certain (it is the same answer, sooner).
          if (!this.policy.observe && this.policy.actions.of(s.name) === 'reject' && !s.scoreOnly) refused = true;
        }
        if (r.facts) rest.facts = { ...rest.facts, ...r.facts };
        rest.authResults.push(...(r.authResults ?? []));
        rest.trace.push(...(r.trace ?? []));
        if (r.rewrite) rest.rewrite = rest.rewrite ? mergePlans(rest.rewrite, r.rewrite) : r.rewrite;
      }
      if (refused) break;
    }
    return this.decide(stage, oncePerName(symbols), rest);
  }

  private decide(stage: Stage, symbols: ScoredSymbol[], rest: Pick<StageOutcome, 'facts' | 'authResults' | 'trace' | 'rewrite'>): StageOutcome {
    const a = this.policy.actions.apply(stage, symbols, this.policy.observe);
    return { ...rest, symbols: a.symbols, wouldRefuse: a.wouldRefuse, ...(a.demand ? { demand: a.demand } : {}), ...(a.floor ? { floor: a.floor } : {}) };
  }

  private async runOne<S extends Stage>(check: Check<S>, input: StageInput[S]): Promise<CheckResult> {
    const budget = check.timeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = check.run(input);
      if (!(result instanceof Promise)) return result;
      return await Promise.race([
        result,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${budget} ms`)), budget);
        }),
      ]);
    } catch (err) {
      const message = (err as Error).message;
      this.logger.warn({ event: 'check_failed', check: check.name, stage: check.stage, err: message }, 'check failed');
      this.events.onCheckFailure?.(check.name, check.stage, message);
      if (typeof check.onFailure === 'function') return { symbols: [check.onFailure(message)] };
      if (check.onFailure === 'tempfail') {
        return { symbols: [{ name: 'CHECK_TEMPFAIL', reason: `${check.name}: ${message}`, reply: R.policyTempfail(`Error: ${check.name} unavailable, try again later`) }] };
      }
      return { symbols: [{ name: 'CHECK_FAILED', reason: `${check.name}: ${message}` }] };
    } finally {
      if (timer) clearTimeout(timer);
    }
  }
}

/**
 * A symbol counts once per stage, as in rspamd: two checks that find the same thing (the archive
 * inspector and the AV check both scanning a decrypted entry) must not add its weight twice.
 * The heaviest hit is kept.
 */
function oncePerName(symbols: ScoredSymbol[]): ScoredSymbol[] {
  const best = new Map<string, ScoredSymbol>();
  for (const s of symbols) {
    const seen = best.get(s.name);
    if (!seen || Math.abs(s.score) > Math.abs(seen.score)) best.set(s.name, s);
  }
  return best.size === symbols.length ? symbols : symbols.filter((s) => best.get(s.name) === s);
}

/** Groups checks into levels: each level depends only on earlier ones. Cycles are config bugs. */
function orderLevels(stage: Stage, checks: Check<Stage>[]): Check<Stage>[][] {
  const names = new Set(checks.map((c) => c.name));
  const done = new Set<string>();
  const levels: Check<Stage>[][] = [];
  let pending = checks;
  while (pending.length) {
    const ready = pending.filter((c) => (c.after ?? []).every((a) => done.has(a) || !names.has(a)));
    if (!ready.length) throw new Error(`checks of stage ${stage} have a dependency cycle: ${pending.map((c) => c.name).join(', ')}`);
    levels.push(ready);
    for (const c of ready) done.add(c.name);
    pending = pending.filter((c) => !ready.includes(c));
  }
  return levels;
}
