// Content rules, SpamAssassin-compatible (docs/rules.md): load *.cf files into a compiled
// ruleset, scan messages with it in worker threads within a time budget, and the pipeline check
// and CLI command built on them.
export type { RuleProblem, RuleDef, RuleType } from './cf-parser.js';
export { loadRules, loadRulesText, type CompiledRuleset, type LoadResult, type LoadStats, type RegexRule, type MetaRule, type HeaderSpec } from './ruleset.js';
export { RuleEngine, type RuleHit, type RuleScanResult, type RuleEngineOptions, type RuleEngineStats } from './engine.js';
export { rulesConfigSchema, rulePaths, SHIPPED_RULES, type RulesConfig } from './config.js';
export { rulesCheck, ruleSymbols, messageUris, type RulesCheckOptions } from './check.js';
export { translatePerlRegex, parseRegexLiteral, type Translation } from './perl-regex.js';
export { scanInput, type ScanInput } from './targets.js';
export { trustPath, relayHeaders, parseReceived, type TrustConfig, type TrustPath, type Relay } from './received.js';

import type { Logger } from '../../log.js';
import { RuleEngine } from './engine.js';
import { loadRules } from './ruleset.js';
import { rulePaths, type RulesConfig } from './config.js';
import type { TrustConfig } from './received.js';

/**
 * The engine for a configuration, or undefined when rules are disabled. Problems are logged
 * (syntax errors as warnings, each untranslatable rule once at info) and start-up goes on.
 */
export function rulesEngineFromConfig(c: RulesConfig, logger?: Logger, trust?: TrustConfig): RuleEngine | undefined {
  if (!c.enabled) return undefined;
  const { ruleset, problems, stats } = loadRules(rulePaths(c), { scoreSet: c.score_set });
  for (const p of problems) {
    if (p.kind === 'note') continue;
    const log = p.kind === 'syntax' ? logger?.warn.bind(logger) : logger?.info.bind(logger);
    log?.({ event: 'rule_problem', file: p.file, line: p.line, rule: p.rule, kind: p.kind }, p.reason);
  }
  logger?.info({ event: 'rules_loaded', ...stats, active: ruleset.rules.length + ruleset.metas.length }, 'content rules loaded');
  return new RuleEngine(ruleset, { timeBudgetMs: c.time_budget, maxBytes: c.max_bytes, workers: c.workers, slowRuleMs: c.slow_rule, logger, trust });
}
