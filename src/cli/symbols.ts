// `portcullis symbols [--config FILE] [--json] [--markdown]`: every symbol a configuration can
// emit, with the weight and the action the gateway would apply to it. Built from the same
// registry and policy as `serve` and `config check` (src/gateway/policy.ts buildPolicy over
// builtinSymbols + spamSymbols), so what it prints is what the running gateway does — and an
// unknown name in policy.symbols / policy.actions is refused here the same way, with its key.
// docs/symbols.md is the --markdown output for the default configuration (a test keeps it fresh).
import { parseArgs } from 'node:util';
import type { Config } from '../config/schema.js';
import { buildPolicy } from '../gateway/policy.js';
import { builtinSymbols } from '../gateway/checks.js';
import { spamSymbols } from '../checks/spam-engine.js';
import { globPattern, isGlob } from '../checks/registry.js';
import type { SymbolAction } from '../protocol/symbol-actions.js';

export const SYMBOLS_USAGE = `usage: portcullis symbols [--config FILE] [--json] [--markdown]

Lists every symbol the configuration can emit: its group, its weight as applied (policy.symbols
over the weight the check's own configuration gives, over conf/scores.yaml), its action
(policy.actions, else the declared default, else score) and its description.
--markdown writes the table docs/symbols.md is made of. Exit status: 0 listed, 1 invalid
configuration, 2 usage error.`;

export interface SymbolRow {
  readonly name: string;
  readonly group: string;
  /** The weight a hit gets when the check gives none of its own at run time. */
  readonly weight: number;
  /** Which level of the precedence gave the weight (docs/pipeline.md). */
  readonly weightFrom: 'policy.symbols' | 'check' | 'scores.yaml';
  readonly action: SymbolAction;
  /**
   * Why that action: the policy.actions key that matched ("SPF_FAIL", "DNSBL_*", "group:av"),
   * "default" (the symbol's declaration, or score), or "safety" (protocol safety, always enforced).
   */
  readonly actionFrom: string;
  readonly description: string;
}

/** The rows of a configuration, sorted by group then name. Throws ConfigError as `config check` does. */
export function symbolTable(cfg: Config, file?: string): SymbolRow[] {
  const { registry, policy } = buildPolicy(cfg, [...builtinSymbols(cfg), ...spamSymbols(cfg)], undefined, file);
  const rules = Object.keys(cfg.policy.actions);
  return registry.all()
    .map((s): SymbolRow => {
      // A configured family's weight reaches the weigher as the hit's own score, as at run time.
      const hit = { name: s.name, reason: '', ...(s.weightFrom === 'check' ? { score: s.weight } : {}) };
      const from = policy.weights.source(hit);
      return {
        name: s.name,
        group: s.group,
        weight: policy.weights.weigh(hit),
        weightFrom: from === 'registry' ? 'scores.yaml' : from,
        action: policy.actions.of(s.name),
        actionFrom: s.safety ? 'safety' : matchingRule(rules, s.name, s.group) ?? 'default',
        description: s.description,
      };
    })
    .sort((a, b) => (a.group === b.group ? cmp(a.name, b.name) : cmp(a.group, b.group)));
}

/**
 * The policy.actions key that decides a symbol, for display: the name, else the longest glob,
 * else its group — the order of the actions layer (src/pipeline/actions.ts ActionTable), whose
 * answer is the one shown as the action (the test holds the two together).
 */
function matchingRule(keys: readonly string[], name: string, group: string): string | undefined {
  if (keys.includes(name)) return name;
  const glob = keys.filter((k) => isGlob(k) && globPattern(k).test(name)).sort((a, b) => b.replace(/\*/g, '').length - a.replace(/\*/g, '').length)[0];
  if (glob) return glob;
  return keys.includes(`group:${group}`) ? `group:${group}` : undefined;
}

// Plain code-unit order: the same on every machine and locale, so the markdown never churns.
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const actionText = (r: SymbolRow) => r.actionFrom === 'default' ? r.action : r.actionFrom === 'safety' ? `${r.action} (safety)` : `${r.action} (policy.actions "${r.actionFrom}")`;

/** Aligned columns for a terminal. */
export function describeSymbols(rows: readonly SymbolRow[], observe = false): string {
  const head = ['SYMBOL', 'GROUP', 'WEIGHT', 'FROM', 'ACTION', 'DESCRIPTION'];
  const cells = rows.map((r) => [r.name, r.group, String(r.weight), r.weightFrom, actionText(r), r.description]);
  const widths = head.slice(0, -1).map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i < widths.length ? v.padEnd(widths[i]!) : v)).join('  ').trimEnd();
  const out = [line(head), ...cells.map(line), `-- ${rows.length} symbol(s)`];
  if (observe) out.push('policy.observe is on: reject and tempfail of policy symbols are logged as would_reject, not sent; (safety) ones are still refused');
  return out.join('\n');
}

const cell = (s: string) => s.replace(/\s+/g, ' ').replace(/\|/g, '\\|').trim();

/** docs/symbols.md: one table per group, sorted, with nothing that changes between runs. */
export function symbolsMarkdown(rows: readonly SymbolRow[]): string {
  const groups = [...new Set(rows.map((r) => r.group))];
  const out = [
    '# Symbols',
    '',
    '> Generated by `portcullis symbols --markdown` for the default configuration (the fixed declarations',
    '> of every check and the shipped rules in `conf/rules`); do not edit by hand. Regenerate with',
    '> `npx tsc -p tsconfig.json && node dist/src/cli/main.js symbols --markdown > docs/symbols.md`;',
    '> `src/cli/symbols.test.ts` fails when this page is stale.',
    '',
    'Each row: the symbol, its weight as applied and where that weight comes from (`scores.yaml`: the',
    'registry default in `conf/scores.yaml`; `check`: the check\'s own configuration, here a `.cf` score line),',
    'and its action (`score` unless the symbol declares another; `(safety)`: protocol safety, refused',
    'in observe mode too, not changeable). Families that only exist when configured are not listed here:',
    '`DNSBL_<NAME>` / `DNSWL_<NAME>` per `dnsbl.lists` entry, `URIBL_<NAME>` per `uri.lists` entry, and',
    'one symbol per rule of your own `rules.paths` / `rules.local_paths`. Run `portcullis symbols --config FILE`',
    'for the symbols, weights and actions of your configuration; [pipeline.md](pipeline.md) explains the',
    'precedence and the actions.',
    '',
    `${rows.length} symbols in ${groups.length} groups: ${groups.map((g) => `[${g}](#${g})`).join(', ')}.`,
  ];
  for (const g of groups) {
    out.push('', `## ${g}`, '', '| symbol | weight | from | action | description |', '|---|---:|---|---|---|');
    for (const r of rows.filter((x) => x.group === g)) {
      out.push(`| \`${r.name}\` | ${r.weight} | ${r.weightFrom} | ${cell(actionText(r))} | ${cell(r.description)} |`);
    }
  }
  return `${out.join('\n')}\n`;
}

export async function symbolsCommand(argv: string[], cfg: Config, file?: string): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, markdown: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${SYMBOLS_USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(SYMBOLS_USAGE);
    return 0;
  }
  if (values.json && values.markdown) {
    console.error(`--json and --markdown exclude each other\n\n${SYMBOLS_USAGE}`);
    return 2;
  }
  const rows = symbolTable(cfg, file);
  for (const w of cfg.warnings) console.error(`${file ?? 'configuration'}: warning: ${w}`);
  if (values.json) console.log(JSON.stringify(rows, null, 2));
  else if (values.markdown) process.stdout.write(symbolsMarkdown(rows));
  else console.log(describeSymbols(rows, cfg.policy.observe));
  return 0;
}
