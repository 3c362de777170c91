// The policy a runner applies, built from the configuration and every symbol declaration: the
// registry, the weights with their precedence, the actions table and observe mode. This is
// where a policy.symbols or policy.actions key that names nothing is refused, at start.
import type { Config } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import { SymbolRegistry, type SymbolDecl } from '../checks/registry.js';
import { ActionTable, validatePolicy } from '../pipeline/actions.js';
import { Weigher, shippedWeights } from '../pipeline/weights.js';
import { PIPELINE_SYMBOLS, type RunnerPolicy } from '../pipeline/runner.js';

export interface BuiltPolicy {
  readonly registry: SymbolRegistry;
  readonly policy: RunnerPolicy;
}

/** Throws ConfigError naming each policy key that names an unknown symbol, group or empty glob. */
export function buildPolicy(config: Pick<Config, 'policy'>, decls: readonly SymbolDecl[], shipped: ReadonlyMap<string, number> = shippedWeights(), file?: string): BuiltPolicy {
  const registry = new SymbolRegistry([...PIPELINE_SYMBOLS, ...decls], shipped);
  const problems = validatePolicy(config.policy, registry);
  if (problems.length) throw new ConfigError(problems, file);
  return {
    registry,
    policy: {
      weights: new Weigher(registry, config.policy.symbols),
      actions: new ActionTable(registry, config.policy.actions),
      observe: config.policy.observe,
    },
  };
}
