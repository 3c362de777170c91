// The symbols of the content rules (src/checks/rules/): RULES_TIMEOUT, and one per loaded .cf rule,
// weighted with its score line and described with its describe line.
import { declare, type SymbolDecl } from '../registry.js';

export const RULES_SYMBOLS = declare('rules', {
  RULES_TIMEOUT: 'the content rules ran out of time; the log names the rule that ran long',
});

/** One declaration per rule that can appear in a result (sub-rules "__…" never do). */
export function ruleSymbols(ruleset: { readonly scores: Readonly<Record<string, number>>; readonly descriptions: Readonly<Record<string, string>> }): SymbolDecl[] {
  return Object.entries(ruleset.scores).map(([name, weight]) => ({
    name, group: 'rules', weight, description: ruleset.descriptions[name] || `content rule ${name}`,
  }));
}
