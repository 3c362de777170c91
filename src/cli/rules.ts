// `portcullis rules check [--json] [--verbose] [PATH...]`: loads rule files the way the gateway
// does and reports what loaded, every rule that could not be translated or is not supported,
// with file, line and reason. Exit status 1 when a file has syntax errors (or cannot be read),
// 2 on a usage error, else 0.
import { parseArgs } from 'node:util';
import { loadRules, type LoadResult } from '../checks/rules/ruleset.js';
import { rulePaths, rulesConfigSchema, type RulesConfig } from '../checks/rules/config.js';

export const RULES_USAGE = `usage: portcullis rules check [--json] [--verbose] [--score-set N] [PATH...]

Loads SpamAssassin-style rule files (*.cf, or folders of them) and reports the rules loaded and
every rule that cannot run here, with its file, line and reason. Without PATH, the configured
rules.paths and rules.local_paths. Exit status: 0 loaded, 1 syntax errors, 2 usage error.`;

/** Text report: counts, then syntax errors, untranslatable and unsupported rules (notes with verbose). */
export function describeRuleProblems(result: LoadResult, options: { verbose?: boolean } = {}): string {
  const { stats, problems } = result;
  const lines: string[] = [];
  const regexTotal = stats.translated + stats.untranslatable;
  const pct = regexTotal ? ((100 * stats.translated) / regexTotal).toFixed(1) : '100.0';
  lines.push(`${stats.files} file(s), ${stats.rules} rule(s): ${stats.translated} compiled (${pct}% of regex and meta rules), ` +
    `${stats.untranslatable} untranslatable, ${stats.unsupported} unsupported (eval:/plugin), ${stats.inactive} inactive (score 0 or unused sub-rules); ` +
    `${result.ruleset.rules.length} regex and ${result.ruleset.metas.length} meta rules active`);
  const where = (p: { file: string; line: number; rule?: string }) => `${p.file}:${p.line}${p.rule ? ` ${p.rule}` : ''}`;
  const section = (title: string, kind: string) => {
    const list = problems.filter((p) => (p.kind ?? 'syntax') === kind);
    if (!list.length) return;
    lines.push('', `${title} (${list.length}):`);
    for (const p of list) lines.push(`  ${where(p)}: ${p.reason}`);
  };
  section('syntax errors', 'syntax');
  section('untranslatable rules', 'untranslatable');
  section('unsupported rules', 'unsupported');
  if (options.verbose) section('notes', 'note');
  else {
    const notes = problems.filter((p) => p.kind === 'note').length;
    if (notes) lines.push('', `${notes} note(s): unknown directives and metas using unsupported rules (--verbose lists them)`);
  }
  return lines.join('\n');
}

export function hasSyntaxErrors(result: LoadResult): boolean {
  return result.problems.some((p) => (p.kind ?? 'syntax') === 'syntax');
}

export async function rulesCommand(argv: string[], config?: { rules?: Partial<RulesConfig> } | undefined): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { json: { type: 'boolean' }, verbose: { type: 'boolean' }, 'score-set': { type: 'string' }, config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    console.error(`${(e as Error).message}\n${RULES_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [sub, ...paths] = positionals;
  if (values.help) {
    console.log(RULES_USAGE);
    return 0;
  }
  if (sub !== 'check') {
    console.error(RULES_USAGE);
    return 2;
  }
  // An already-validated configuration is used as is (parsing it again would read its
  // durations, now milliseconds, as seconds); only paths and the score set matter here.
  const defaults = rulesConfigSchema.parse({});
  const given = config?.rules ?? {};
  const rc = { paths: given.paths ?? defaults.paths, local_paths: given.local_paths ?? defaults.local_paths, score_set: given.score_set ?? defaults.score_set };
  const scoreSet = values['score-set'] !== undefined ? Number(values['score-set']) : rc.score_set;
  if (![0, 1, 2, 3].includes(scoreSet)) {
    console.error(`--score-set must be 0, 1, 2 or 3\n${RULES_USAGE}`);
    return 2;
  }
  const result = loadRules(paths.length ? paths : rulePaths(rc), { scoreSet: scoreSet as 0 | 1 | 2 | 3 });
  if (values.json) {
    console.log(JSON.stringify({
      stats: result.stats,
      active: { regex: result.ruleset.rules.length, meta: result.ruleset.metas.length },
      problems: result.problems.filter((p) => values.verbose || p.kind !== 'note'),
    }, null, 2));
  } else console.log(describeRuleProblems(result, { verbose: values.verbose }));
  return hasSyntaxErrors(result) ? 1 : 0;
}
