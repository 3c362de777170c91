// Reader of SpamAssassin configuration files (*.cf): the rule directives and what shapes them
// (score, describe, tflags, priority, replace_*), conditionals (if / ifplugin / else / endif)
// and include. Everything else SpamAssassin knows (whitelists, DNS lists, Bayes settings…) is
// counted as ignored; an unknown word or a malformed line is a problem with its file and line,
// and the rest of the file still loads. Files are read as latin1 so that the bytes of a rule
// (UTF-8 or not) are compared with the bytes of the message, as SpamAssassin does.
import fs from 'node:fs';
import path from 'node:path';
import { ExprError, parseExpr, evaluate } from './expression.js';

/**
 * kind: 'syntax' (a malformed line: `rules check` exits 1), 'untranslatable' (a regex JavaScript
 * cannot run the same way), 'unsupported' (eval: rules and other plugin features), 'note'.
 */
export interface RuleProblem { file: string; line: number; rule?: string; reason: string; kind?: 'syntax' | 'untranslatable' | 'unsupported' | 'note' }

export type RuleType = 'header' | 'body' | 'rawbody' | 'full' | 'uri' | 'meta' | 'mimeheader';

export interface RuleDef {
  readonly name: string;
  readonly type: RuleType;
  /** The rule's text after its name. */
  readonly spec: string;
  readonly file: string;
  readonly line: number;
}

export interface ParsedConfig {
  /** Latest definition of each rule, in order of first definition. */
  readonly rules: Map<string, RuleDef>;
  readonly scores: Map<string, number[]>;
  readonly descriptions: Map<string, string>;
  readonly tflags: Map<string, string>;
  readonly priorities: Map<string, number>;
  readonly replace: {
    start: string; end: string;
    tags: Map<string, string>; pre: Map<string, string>; post: Map<string, string>; inter: Map<string, string>;
    rules: Set<string>;
  };
  readonly problems: RuleProblem[];
  /** Recognised SpamAssassin settings we do not act on: directive → count. */
  readonly ignored: Map<string, number>;
  readonly files: string[];
}

/** The SpamAssassin version we answer `if (version >= …)` with: 4.0 syntax is understood. */
export const SA_COMPAT_VERSION = 4.000001;

/** Plugins whose directives this engine implements (`ifplugin` / plugin() are true for them). */
const IMPLEMENTED_PLUGINS = new Set(['Mail::SpamAssassin::Plugin::ReplaceTags']);

/**
 * Features of `if can(Mail::SpamAssassin::Conf::feature_…)` that hold here. Capture rules do not
 * (rules guarded by them are skipped, as with an older SpamAssassin).
 */
const FEATURES = new Set([
  'feature_bug6558_free', 'feature_welcomelist_blocklist', 'perl_min_version_5010000', 'feature_originating_ip_headers',
  'feature_dns_local_ports_permit_avoid', 'feature_registryboundaries', 'feature_yesno_takes_args', 'feature_dns_block_rule',
  'feature_header_address_parser', 'feature_ignore_always_matching_regexps', 'compat_welcomelist_blocklist',
]);

const RULE_TYPES = new Set<RuleType>(['header', 'body', 'rawbody', 'full', 'uri', 'meta', 'mimeheader']);

/** Directives SpamAssassin knows that do not define or shape content rules: ignored quietly. */
const KNOWN_OTHER = new Set([
  'lang', 'test', 'reuse', 'require_version', 'version_tag', 'loadplugin', 'tryplugin',
  'whitelist_from', 'welcomelist_from', 'unwhitelist_from', 'unwelcomelist_from', 'blacklist_from', 'blocklist_from',
  'unblacklist_from', 'unblocklist_from', 'whitelist_from_rcvd', 'welcomelist_from_rcvd', 'def_whitelist_from_rcvd',
  'def_welcomelist_from_rcvd', 'whitelist_allows_relays', 'welcomelist_allows_relays', 'whitelist_to', 'welcomelist_to',
  'more_spam_to', 'all_spam_to', 'blacklist_to', 'blocklist_to', 'def_whitelist_auth', 'def_welcomelist_auth',
  'whitelist_auth', 'welcomelist_auth', 'def_whitelist_from_dkim', 'def_welcomelist_from_dkim', 'whitelist_from_dkim',
  'welcomelist_from_dkim', 'whitelist_from_spf', 'welcomelist_from_spf', 'def_whitelist_from_spf', 'def_welcomelist_from_spf',
  'freemail_domains', 'freemail_whitelist', 'freemail_welcomelist', 'freemail_import_whitelist_auth',
  'freemail_import_def_whitelist_auth', 'freemail_max_body_emails', 'freemail_max_body_freemails', 'freemail_skip_when_over_max',
  'freemail_skip_bulk_envfrom', 'util_rb_tld', 'util_rb_2tld', 'util_rb_3tld', 'url_shortener', 'url_shortener_get',
  'enlist_uri_host', 'delist_uri_host', 'enlist_addrlist', 'uridnsbl', 'uridnsbl_skip_domain', 'urirhsbl', 'urirhssub',
  'uridnssub', 'askdns', 'bayes_ignore_header', 'bayes_ignore_from', 'bayes_ignore_to', 'adsp_override', 'dns_local_ports_avoid',
  'dns_local_ports_permit', 'report', 'clear_report_template', 'report_contact', 'report_safe', 'unsafe_report',
  'clear_unsafe_report_template', 'add_header', 'remove_header', 'clear_headers', 'rewrite_header', 'required_score',
  'required_hits', 'ok_languages', 'ok_locales', 'use_bayes', 'use_bayes_rules', 'bayes_auto_learn', 'bayes_auto_expire',
  'use_auto_whitelist', 'use_auto_welcomelist', 'dns_available', 'skip_rbl_checks', 'use_razor2', 'use_pyzor', 'use_dcc',
  'trusted_networks', 'internal_networks', 'msa_networks', 'clear_trusted_networks', 'clear_internal_networks',
  'envelope_sender_header', 'report_safe_copy_headers', 'uri_detail', 'mimeheader_skip', 'redirector_pattern',
  'clear_redirector_patterns', 'hashcash_accept', 'util_rb_tld', 'shortcircuit', 'normalize_charset', 'body_part_scan_size',
  'rawbody_part_scan_size', 'check_rbl_accreditor', 'dkim_minimum_key_bits', 'textcat_acceptable_languages', 'ok_languages',
  'unwhitelist_from_rcvd', 'unwelcomelist_from_rcvd', 'uri_block_cc', 'uri_block_cont', 'uri_country',
  'bayes_path', 'bayes_file_mode', 'auto_whitelist_path', 'dcc_path', 'pyzor_path', 'razor_config', 'fold_headers',
  'allow_user_rules', 'score_set', 'blacklist_uri_host', 'blocklist_uri_host', 'whitelist_uri_host', 'welcomelist_uri_host',
  'header_ip_link', 'rbl_headers', 'body_part_scan_size', 'dns_server', 'dns_options', 'dns_query_restriction',
  'url_shortener_cache_type', 'subjprefix', 'dmarc_save_reports', 'spf_timeout', 'dkim_timeout',
]);

export class CfParser {
  readonly result: ParsedConfig = {
    rules: new Map(), scores: new Map(), descriptions: new Map(), tflags: new Map(), priorities: new Map(),
    replace: { start: '<', end: '>', tags: new Map(), pre: new Map(), post: new Map(), inter: new Map(), rules: new Set() },
    problems: [], ignored: new Map(), files: [],
  };
  private depth = 0;

  /** Reads files and directories (every *.cf in a directory, in name order). */
  loadPaths(paths: readonly string[]): ParsedConfig {
    for (const p of paths) {
      let stat: fs.Stats;
      try {
        stat = fs.statSync(p);
      } catch (e) {
        this.problem(p, 0, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        continue;
      }
      if (stat.isDirectory()) {
        const names = fs.readdirSync(p).filter((n) => n.endsWith('.cf')).sort();
        for (const n of names) this.loadFile(path.join(p, n));
      } else this.loadFile(p);
    }
    return this.result;
  }

  loadFile(file: string): void {
    let text: string;
    try {
      text = fs.readFileSync(file, 'latin1');
    } catch (e) {
      this.problem(file, 0, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return;
    }
    this.loadText(text, file);
  }

  loadText(text: string, file: string): void {
    this.result.files.push(file);
    // Each level: is this branch active, was any branch of this if taken, was the parent active.
    const stack: { active: boolean; parent: boolean; line: number }[] = [];
    const active = () => stack.every((s) => s.active);
    const lines = text.split(/\r?\n/);
    for (let n = 0; n < lines.length; n++) {
      const lineNo = n + 1;
      // "#" starts a comment unless escaped as "\#".
      let line = lines[n]!.replace(/(?<!\\)#.*$/, '').replace(/\\#/g, '#').trim();
      if (!line) continue;
      const m = /^(\S+)\s*(.*)$/.exec(line)!;
      const word = m[1]!.toLowerCase();
      line = m[2]!;
      // Conditionals are tracked even inside a skipped branch so that endif pairs up.
      if (word === 'if' || word === 'ifplugin') {
        const parent = active();
        let cond = false;
        if (parent) {
          try {
            cond = word === 'ifplugin' ? IMPLEMENTED_PLUGINS.has(line.trim()) : this.condition(line);
          } catch (e) {
            this.problem(file, lineNo, `bad "${word}" condition "${line}": ${(e as Error).message}`);
          }
        }
        stack.push({ active: cond, parent, line: lineNo });
        continue;
      }
      if (word === 'else') {
        const top = stack[stack.length - 1];
        if (!top) this.problem(file, lineNo, '"else" without "if"');
        else top.active = !top.active;
        continue;
      }
      if (word === 'endif') {
        if (!stack.pop()) this.problem(file, lineNo, '"endif" without "if"');
        continue;
      }
      if (!active()) continue;
      this.directive(word, line, file, lineNo);
    }
    for (const s of stack) this.problem(file, s.line, '"if" without "endif"');
  }

  private directive(word: string, rest: string, file: string, line: number): void {
    const r = this.result;
    if (RULE_TYPES.has(word as RuleType)) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)\s+(\S.*)$/.exec(rest);
      if (!m) {
        this.problem(file, line, `${word}: expected "${word} NAME definition"`, /^\S+/.exec(rest)?.[0]);
        return;
      }
      if (m[1]!.length > 100) {
        this.problem(file, line, `rule name longer than 100 characters`, m[1]);
        return;
      }
      // A redefinition replaces the rule but keeps its place.
      r.rules.delete(m[1]!);
      r.rules.set(m[1]!, { name: m[1]!, type: word as RuleType, spec: m[2]!, file, line });
      return;
    }
    switch (word) {
      case 'score': {
        const m = /^(\S+)\s+(.+)$/.exec(rest);
        const values = m ? m[2]!.trim().split(/\s+/).map((v) => Number(v.replace(/^\((.*)\)$/, '$1'))) : [];
        if (!m || (values.length !== 1 && values.length !== 4) || values.some((v) => !Number.isFinite(v))) {
          this.problem(file, line, 'score: expected "score NAME value" or "score NAME s0 s1 s2 s3"', m?.[1]);
          return;
        }
        r.scores.set(m[1]!, values.length === 1 ? [values[0]!, values[0]!, values[0]!, values[0]!] : values);
        return;
      }
      case 'describe': {
        const m = /^(\S+)\s*(.*)$/.exec(rest)!;
        r.descriptions.set(m[1]!, m[2]!);
        return;
      }
      case 'tflags': {
        const m = /^(\S+)\s*(.*)$/.exec(rest)!;
        r.tflags.set(m[1]!, m[2]!.trim());
        return;
      }
      case 'priority': {
        const m = /^(\S+)\s+(-?\d+)$/.exec(rest);
        if (!m) {
          this.problem(file, line, 'priority: expected "priority NAME integer"');
          return;
        }
        r.priorities.set(m[1]!, Number(m[2]));
        return;
      }
      case 'include': {
        const target = path.resolve(path.dirname(file), rest.trim());
        if (this.depth >= 20) {
          this.problem(file, line, `include: nested more than 20 deep (a loop?): ${target}`);
          return;
        }
        this.depth++;
        this.loadFile(target);
        this.depth--;
        return;
      }
      case 'replace_start': r.replace.start = rest.trim(); return;
      case 'replace_end': r.replace.end = rest.trim(); return;
      case 'replace_tag': case 'replace_pre': case 'replace_post': case 'replace_inter': {
        const m = /^(\S+)\s+(.+)$/.exec(rest);
        if (!m) {
          this.problem(file, line, `${word}: expected "${word} NAME value"`);
          return;
        }
        const map = word === 'replace_tag' ? r.replace.tags : word === 'replace_pre' ? r.replace.pre : word === 'replace_post' ? r.replace.post : r.replace.inter;
        map.set(m[1]!, m[2]!.trim());
        return;
      }
      case 'replace_rules':
        for (const n of rest.trim().split(/\s+/)) if (n) r.replace.rules.add(n);
        return;
      default:
    }
    if (KNOWN_OTHER.has(word) || /^(?:util_rb_|dns_|bayes_|auto_|whitelist_|welcomelist_|blacklist_|blocklist_|def_|uri_|dkim_|spf_|dmarc_|dcc_|pyzor_|razor_|txrep_|report_|hashbl_|olevba|extracttext|decode_short|phish|asn_|geodb|askdns|tflags_)/.test(word)) {
      r.ignored.set(word, (r.ignored.get(word) ?? 0) + 1);
      return;
    }
    this.problem(file, line, `unknown directive "${word}" (ignored)`, undefined, 'note');
  }

  /** `if` conditions: version, perl_version, plugin(X), can(X), has(X), numbers and operators. */
  private condition(text: string): boolean {
    const expr = parseExpr(text, (fn, arg) => {
      switch (fn) {
        case 'plugin': return IMPLEMENTED_PLUGINS.has(arg) ? 1 : 0;
        case 'can': case 'has': return FEATURES.has(arg.replace(/^Mail::SpamAssassin::Conf::/, '')) ? 1 : 0;
        default: throw new ExprError(`unknown function ${fn}()`);
      }
    });
    return evaluate(expr, (name) => {
      if (name === 'version') return SA_COMPAT_VERSION;
      if (name === 'perl_version') return 5.036;
      throw new ExprError(`unknown name "${name}"`);
    }) !== 0;
  }

  private problem(file: string, line: number, reason: string, rule?: string, kind: RuleProblem['kind'] = 'syntax'): void {
    this.result.problems.push(rule ? { file, line, rule, reason, kind } : { file, line, reason, kind });
  }
}
