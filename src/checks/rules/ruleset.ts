// From parsed configuration to a compiled ruleset: tags replaced (ReplaceTags), regexes
// translated, scores chosen from the score set, rules nobody scores dropped, metas ordered so
// that each comes after the metas it uses (cycles reported). The result is plain data so that
// it can be handed to a worker thread, which builds its RegExps once.
import { CfParser, type ParsedConfig, type RuleDef, type RuleProblem } from './cf-parser.js';
import { parseRegexLiteral, translatePerlRegex } from './perl-regex.js';
import { ExprError, parseExpr, references, type Expr } from './expression.js';

export type { RuleProblem } from './cf-parser.js';

export type TargetType = 'header' | 'body' | 'rawbody' | 'full' | 'uri';

/** What a header rule reads: a field (or pseudo-header) and its modifiers. */
export interface HeaderSpec {
  /** Field name as written, or ALL, ToCc, MESSAGEID, EnvelopeFrom. */
  readonly request: string;
  /** raw, addr, name, host, domain, ip, revip, first, last. */
  readonly mods: readonly string[];
  /** Value used when the field is absent ([if-unset: X]); undefined: absent stays absent. */
  readonly ifUnset?: string;
}

export interface RegexRule {
  readonly name: string;
  readonly type: TargetType;
  readonly source: string;
  readonly flags: string;
  /** Lower-case literals, one of which every match contains (empty: no prefilter). */
  readonly required: readonly string[];
  readonly header?: HeaderSpec;
  /** header NAME X !~ /re/ */
  readonly negate?: boolean;
  /** header NAME exists:X (source is unused). */
  readonly exists?: boolean;
  /** tflags multiple: count every match (up to maxhits, 0 = no limit). */
  readonly multiple: boolean;
  readonly maxhits: number;
  /** tflags nosubject: body rules skip the subject line. */
  readonly nosubject?: boolean;
}

export interface MetaRule {
  readonly name: string;
  readonly expr: Expr;
}

export interface CompiledRuleset {
  readonly scoreSet: 0 | 1 | 2 | 3;
  /** Regex rules in evaluation order (header rules grouped by what they read). */
  readonly rules: readonly RegexRule[];
  /** Meta rules, each after the metas it depends on. */
  readonly metas: readonly MetaRule[];
  /** Score and description of every rule that can appear in a result (not __ sub-rules). */
  readonly scores: Readonly<Record<string, number>>;
  readonly descriptions: Readonly<Record<string, string>>;
}

export interface LoadStats {
  files: number;
  /** Rule definitions read (every type, including eval: rules). */
  rules: number;
  /** Regex and meta rules compiled. */
  translated: number;
  /** Regex or meta rules that could not be compiled (each has a problem with its reason). */
  untranslatable: number;
  /** eval: and mimeheader rules: need SpamAssassin's Perl plugins. */
  unsupported: number;
  /** Compiled rules left out because nothing scores them (score 0, unused __ rules). */
  inactive: number;
}

export interface LoadResult {
  ruleset: CompiledRuleset;
  problems: RuleProblem[];
  stats: LoadStats;
}

const HEADER_MODS = new Set(['raw', 'addr', 'name', 'host', 'domain', 'ip', 'revip', 'first', 'last']);

/** Loads *.cf files and directories into one ruleset (later definitions and scores win). */
export function loadRules(paths: readonly string[], options: { scoreSet?: 0 | 1 | 2 | 3 } = {}): LoadResult {
  const parser = new CfParser();
  parser.loadPaths(paths);
  return compileConfig(parser.result, options.scoreSet ?? 2);
}

/** Compiles rules given as text (tests, `--cf` style snippets). */
export function loadRulesText(text: string, options: { scoreSet?: 0 | 1 | 2 | 3; file?: string } = {}): LoadResult {
  const parser = new CfParser();
  parser.loadText(text, options.file ?? '(inline)');
  return compileConfig(parser.result, options.scoreSet ?? 2);
}

interface Candidate { def: RuleDef; rule?: RegexRule; meta?: MetaRule }

export function compileConfig(conf: ParsedConfig, scoreSet: 0 | 1 | 2 | 3): LoadResult {
  const problems: RuleProblem[] = [...conf.problems];
  const stats: LoadStats = { files: conf.files.length, rules: conf.rules.size, translated: 0, untranslatable: 0, unsupported: 0, inactive: 0 };
  const compiled = new Map<string, Candidate>();
  const unsupported = new Set<string>();
  const replacer = tagReplacer(conf);

  for (const def of conf.rules.values()) {
    const fail = (reason: string, kind: RuleProblem['kind'] = 'untranslatable') => {
      problems.push({ file: def.file, line: def.line, rule: def.name, reason, kind });
      if (kind === 'unsupported') {
        stats.unsupported++;
        unsupported.add(def.name);
      } else stats.untranslatable++;
    };
    if (def.type === 'mimeheader') {
      fail('mimeheader rules need the MIMEHeader plugin (MIME part headers are not scanned)', 'unsupported');
      continue;
    }
    if (/^eval:/.test(def.spec) || (def.type === 'header' && /^\S+\s+eval:/.test(def.spec))) {
      fail(`eval: rules run SpamAssassin Perl code (${/eval:\s*(\w+)/.exec(def.spec)?.[1] ?? 'eval'}): not supported`, 'unsupported');
      continue;
    }
    if (def.type === 'meta') {
      try {
        compiled.set(def.name, { def, meta: { name: def.name, expr: parseExpr(def.spec) } });
      } catch (e) {
        fail(`meta: ${e instanceof ExprError ? e.message : String(e)}`, 'syntax');
      }
      continue;
    }
    const tflags = conf.tflags.get(def.name) ?? '';
    const multiple = /\bmultiple\b/.test(tflags);
    const maxhits = Number(/\bmaxhits=(\d+)/.exec(tflags)?.[1] ?? 0);
    let header: HeaderSpec | undefined;
    let negate = false;
    let literalText = def.spec;
    if (def.type === 'header') {
      const ex = /^exists:([\w.-]+):?$/.exec(def.spec);
      if (ex) {
        compiled.set(def.name, { def, rule: { name: def.name, type: 'header', source: '', flags: '', required: [], header: { request: ex[1]!, mods: [] }, exists: true, multiple: false, maxhits: 0 } });
        continue;
      }
      const m = /^([\w.-]+(?::[a-z]*)*)\s*([=!]~)\s*(.+)$/.exec(def.spec);
      if (!m) {
        fail(`header: expected "Header =~ /re/" or "exists:Header", got "${def.spec.slice(0, 60)}"`, 'syntax');
        continue;
      }
      const [request, ...mods] = m[1]!.replace(/:$/, '').split(':');
      const badMod = mods.find((x) => !HEADER_MODS.has(x));
      if (badMod !== undefined) {
        fail(`header: unknown modifier ":${badMod}"`, 'syntax');
        continue;
      }
      if (/^(ALL-TRUSTED|ALL-INTERNAL)$/.test(request!) || (/^X-Spam-Relays-/i.test(request!) && !/^X-Spam-Relays-(Trusted|Untrusted|Internal|External)$/i.test(request!))) {
        fail(`header ${request}: needs SpamAssassin's trust path computed from Received headers (not provided)`, 'unsupported');
        continue;
      }
      negate = m[2] === '!~';
      literalText = m[3]!;
      header = { request: request!, mods };
    }
    const lit = parseRegexLiteral(literalText);
    if (typeof lit === 'string') {
      fail(lit, 'syntax');
      continue;
    }
    if (header) {
      const unset = /^\[if-unset:\s*(.*)\]$/.exec(lit.rest);
      if (lit.rest && !unset) {
        fail(`unexpected text after the pattern: "${lit.rest.slice(0, 40)}"`, 'syntax');
        continue;
      }
      if (unset) header = { ...header, ifUnset: unset[1]! };
    } else if (lit.rest) {
      fail(`unexpected text after the pattern: "${lit.rest.slice(0, 40)}"`, 'syntax');
      continue;
    }
    const pattern = conf.replace.rules.has(def.name) ? replacer(lit.pattern) : lit.pattern;
    const t = translatePerlRegex(pattern, lit.flags);
    if (!t.ok) {
      fail(t.reason);
      continue;
    }
    for (const note of t.notes) problems.push({ file: def.file, line: def.line, rule: def.name, reason: note, kind: 'note' });
    compiled.set(def.name, {
      def,
      rule: {
        name: def.name, type: def.type as TargetType, source: t.source, flags: t.flags, required: t.required, header, negate, multiple, maxhits,
        nosubject: /\bnosubject\b/.test(tflags),
      },
    });
  }
  stats.translated = compiled.size;

  // Scores: the chosen set, or SpamAssassin's defaults (1, 0.01 for T_, negative when "nice").
  const scoreOf = (name: string): number => {
    if (name.startsWith('__')) return 0;
    const s = conf.scores.get(name);
    if (s) return s[scoreSet]!;
    const base = name.startsWith('T_') ? 0.01 : 1;
    return /\bnice\b/.test(conf.tflags.get(name) ?? '') ? -base : base;
  };

  // Meta order (depth-first topological sort) with cycle detection.
  const metaOrder: MetaRule[] = [];
  const state = new Map<string, 1 | 2>(); // 1 visiting, 2 done
  const inCycle = new Set<string>();
  const visit = (name: string, trail: string[]): void => {
    const c = compiled.get(name);
    if (!c?.meta) return;
    const st = state.get(name);
    if (st === 2) return;
    if (st === 1) {
      const cycle = trail.slice(trail.indexOf(name));
      for (const n of cycle) inCycle.add(n);
      problems.push({ file: c.def.file, line: c.def.line, rule: name, reason: `meta rules depend on each other in a cycle: ${[...cycle, name].join(' -> ')}`, kind: 'syntax' });
      return;
    }
    state.set(name, 1);
    for (const dep of references(c.meta.expr)) visit(dep, [...trail, name]);
    state.set(name, 2);
    metaOrder.push(c.meta);
  };
  for (const [name, c] of compiled) if (c.meta) visit(name, []);

  // Active rules: scored ones and everything an active meta needs.
  const needed = new Set<string>();
  const need = (name: string): void => {
    if (needed.has(name)) return;
    const c = compiled.get(name);
    if (!c || inCycle.has(name)) return;
    needed.add(name);
    if (c.meta) for (const dep of references(c.meta.expr)) need(dep);
  };
  for (const name of compiled.keys()) if (scoreOf(name) !== 0) need(name);

  for (const m of metaOrder) {
    if (!needed.has(m.name)) continue;
    const c = compiled.get(m.name)!;
    const missing = [...references(m.expr)].filter((d) => unsupported.has(d) || (!compiled.has(d) && !conf.rules.has(d) && d !== 'local_tests_only'));
    if (missing.some((d) => unsupported.has(d))) {
      problems.push({ file: c.def.file, line: c.def.line, rule: m.name, reason: `uses ${missing.filter((d) => unsupported.has(d)).join(', ')}, not supported here: counted as 0 (as SpamAssassin does without the plugin)`, kind: 'note' });
    }
  }

  const rules: RegexRule[] = [];
  for (const [name, c] of compiled) if (c.rule && needed.has(name)) rules.push(c.rule);
  stats.inactive = compiled.size - needed.size;
  // Header rules grouped by what they read, so each value is built once per message.
  const typeOrder: Record<TargetType, number> = { header: 0, uri: 1, body: 2, rawbody: 3, full: 4 };
  const hkey = (r: RegexRule) => (r.header ? `${r.header.request.toLowerCase()}:${r.header.mods.join(':')}` : '');
  rules.sort((a, b) => typeOrder[a.type] - typeOrder[b.type] || (hkey(a) < hkey(b) ? -1 : hkey(a) > hkey(b) ? 1 : 0));

  const scores: Record<string, number> = {};
  const descriptions: Record<string, string> = {};
  for (const name of needed) {
    if (name.startsWith('__')) continue;
    scores[name] = scoreOf(name);
    descriptions[name] = conf.descriptions.get(name) ?? name;
  }
  return {
    ruleset: { scoreSet, rules, metas: metaOrder.filter((m) => needed.has(m.name)), scores, descriptions },
    problems,
    stats,
  };
}

/** SpamAssassin's ReplaceTags: <A> → replace_tag A, with <pre X>, <post X>, <inter X>. */
function tagReplacer(conf: ParsedConfig): (re: string) => string {
  const { start, end, tags, pre, post, inter } = conf.replace;
  const take = (re: { s: string }, kind: string): string | undefined => {
    const m = new RegExp(`${start}${kind} (.+?)${end}`).exec(re.s);
    if (!m) return undefined;
    re.s = re.s.slice(0, m.index) + re.s.slice(m.index + m[0].length);
    return m[1];
  };
  return (pattern: string) => {
    const re = { s: pattern };
    for (let pass = 0; pass <= 5; pass++) {
      const preName = take(re, 'pre');
      const postName = take(re, 'post');
      const interName = take(re, 'inter');
      const pieces = re.s.split(/(<[^<>]+>)/);
      while (pieces.length > 1 && pieces[pieces.length - 1] === '') pieces.pop(); // Perl's split drops trailing empties
      const tagRe = new RegExp(`(${start}.+?${end})`);
      const preV = preName ? pre.get(preName) : undefined;
      const postV = postName ? post.get(postName) : undefined;
      const interV = interName ? inter.get(interName) : undefined;
      let again = false;
      for (let i = 0; i < pieces.length; i++) {
        let p = pieces[i]!;
        if (preV) p = p.replace(tagRe, (x) => preV + x);
        if (postV) p = p.replace(new RegExp(tagRe.source, 'g'), (x) => x + postV);
        if (interV && p === '') p = interV;
        const tm = new RegExp(`${start}(.+?)${end}`).exec(p);
        if (tm) {
          const value = tags.get(tm[1]!);
          if (value) {
            p = p.split(`${tm[0].slice(0, 0)}${matchText(start, tm[1]!, end)}`).join(value);
            if (/<[^>]+>/.test(value)) again = true;
          }
        }
        pieces[i] = p;
      }
      re.s = pieces.join('');
      if (!again) break;
    }
    return re.s;
  };
}

/** The literal text of "<NAME>" for the default start/end; for custom ones, the regex sources. */
function matchText(start: string, name: string, end: string): string {
  const unre = (s: string) => s.replace(/\\(.)/g, '$1');
  return `${unre(start)}${name}${unre(end)}`;
}

export function isRuleSubName(name: string): boolean {
  return name.startsWith('__');
}
