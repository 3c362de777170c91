// Runs the checks of one stage: in dependency order ("after"), independent checks concurrently,
// each under a time budget. A check that throws or runs late never hangs the session: it yields
// a CHECK_FAILED symbol or a tempfail, as the check declared (STYLE.md rule 9).
import type { AnyCheck, Check, CheckResult, Demand, ScoredSymbol, Stage, StageInput, SymbolHit } from './types.js';
import type { Logger } from '../log.js';
import { R } from '../protocol/reply.js';
import { mergePlans, type RewritePlan } from '../mime/rewrite.js';

export interface StageOutcome {
  symbols: ScoredSymbol[];
  demand?: Demand;
  authResults: string[];
  trace: string[];
  rewrite?: RewritePlan;
}

export type Weights = ReadonlyMap<string, number>;

export interface RunnerEvents {
  onCheckFailure?(check: string, stage: Stage, error: string): void;
}

export class CheckRunner {
  private readonly levels = new Map<Stage, Check<Stage>[][]>();

  constructor(
    checks: readonly AnyCheck[],
    private readonly weights: Weights,
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

  /** Applies the configured weight to a hit (a hit's own score wins when it carries one). */
  score(hit: SymbolHit): ScoredSymbol {
    return { name: hit.name, reason: hit.reason, score: hit.score ?? this.weights.get(hit.name) ?? 0 };
  }

  has(stage: Stage): boolean {
    return this.levels.has(stage);
  }

  async run<S extends Stage>(stage: S, input: StageInput[S]): Promise<StageOutcome> {
    const outcome: StageOutcome = { symbols: [], authResults: [], trace: [] };
    for (const level of this.levels.get(stage) ?? []) {
      const results = await Promise.all(level.map((c) => this.runOne(c as Check<S>, input)));
      for (const r of results) {
        for (const hit of r.symbols ?? []) outcome.symbols.push(this.score(hit));
        outcome.authResults.push(...(r.authResults ?? []));
        outcome.trace.push(...(r.trace ?? []));
        if (r.rewrite) outcome.rewrite = outcome.rewrite ? mergePlans(outcome.rewrite, r.rewrite) : r.rewrite;
        // The first reject wins over a tempfail: a certain "no" is better than "later".
        if (r.demand && (!outcome.demand || (r.demand.kind === 'reject' && outcome.demand.kind !== 'reject'))) {
          outcome.demand = r.demand;
        }
      }
      if (outcome.demand?.kind === 'reject') break;
    }
    outcome.symbols = oncePerName(outcome.symbols);
    return outcome;
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
      if (check.onFailure === 'tempfail') {
        return { demand: { kind: 'tempfail', reply: R.policyTempfail(`Error: ${check.name} unavailable, try again later`) } };
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
