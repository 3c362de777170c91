// The content spam defences as one unit (docs/spam.md): the rule engine, Bayes and the URI
// check, built from the configuration for the SMTP path and for `portcullis scan` alike, plus
// the learning entry points (autolearn after a verdict, a user's Junk moves over IMAP).
import type { StoreConfig } from '../store/config.js';
import type { RulesConfig } from './rules/config.js';
import type { BayesConfig } from './bayes/config.js';
import type { UriConfig } from './uri/config.js';
import type { Resolver } from '../dns/types.js';
import type { Logger } from '../log.js';
import type { AnyCheck, MessageFacts, ScoredSymbol } from './types.js';
import type { SymbolDecl } from './registry.js';
import { bufferModel } from '../mime/model.js';
import { loadRules, rulePaths, rulesCheck, rulesEngineFromConfig, type CompiledRuleset } from './rules/index.js';
import { RULES_SYMBOLS, ruleSymbols } from './rules/symbols.js';
import { BAYES_SYMBOLS } from './bayes/symbols.js';
import { URI_SYMBOLS, uriListSymbols } from './uri/symbols.js';
import { autolearnClass, Bayes, bayesCheck, type BayesClass, type ClientFacts } from './bayes/index.js';
import { uriCheck } from './uri/uri-check.js';
import type { PhishingConfig } from './phish/config.js';
import { impersonationCheck } from './phish/impersonation.js';
import { PHISH_SYMBOLS } from './phish/symbols.js';
import { GTUBE_SYMBOLS, gtubeCheck } from './gtube/gtube.js';

export interface SpamEngine {
  readonly checks: AnyCheck[];
  /** Every symbol these checks can emit: Bayes bands, URI heuristics and lists, each loaded rule. */
  readonly symbols: SymbolDecl[];
  readonly bayes?: Bayes;
  /** After a verdict: learns the message when the other checks were sure (bayes.autolearn). Never throws. */
  autolearn(message: MessageFacts, symbols: readonly ScoredSymbol[], id: string, client: ClientFacts): void;
  /** A user's judgement (a message moved into or out of Junk): learned whatever the score. */
  learnFromUser(raw: Buffer, cls: BayesClass, user: string): Promise<void>;
  close(): Promise<void>;
}

export interface SpamEngineDeps {
  readonly resolver: Resolver;
  readonly logger?: Logger;
  /** The runner budget for the URI check's DNS lookups. */
  readonly dnsTimeoutMs?: number;
}

/**
 * The symbols of the content spam checks for a configuration. Without a ruleset the rule files
 * are read (for `config check`, which starts no engine).
 */
/** The sections the content spam checks read (a full Config fits): each check gets only its own. */
export interface SpamEngineConfig {
  readonly data_dir: string;
  readonly domains: readonly string[];
  /** relay.trusted_networks are SpamAssassin's trusted_networks for the rules' Received trust path. */
  readonly relay: { readonly domains: readonly { readonly domain: string }[]; readonly trusted_networks: readonly string[] };
  readonly spam: { readonly max_scan_bytes: number };
  readonly rules: RulesConfig;
  readonly bayes: BayesConfig;
  readonly uri: UriConfig;
  readonly phishing: PhishingConfig;
  /** With `backend: redis`, Bayes tokens are shared through Redis (docs/store.md). */
  readonly store?: StoreConfig;
}

/** The content checks' fixed declarations (the configured families come from the lists and rules). */
export const SPAM_FIXED_SYMBOLS: readonly SymbolDecl[] = [...GTUBE_SYMBOLS, ...PHISH_SYMBOLS, ...RULES_SYMBOLS, ...BAYES_SYMBOLS, ...URI_SYMBOLS];

export function spamSymbols(c: SpamEngineConfig, ruleset?: CompiledRuleset): SymbolDecl[] {
  const rules = ruleset ?? (c.rules.enabled ? loadRules(rulePaths(c.rules), { scoreSet: c.rules.score_set }).ruleset : undefined);
  // Fixed declarations first: a rule named like one of them (URI_NUMERIC_IP) stays the URI check's.
  return [...SPAM_FIXED_SYMBOLS, ...uriListSymbols(c.uri), ...(rules ? ruleSymbols(rules) : [])];
}

/** The Bayes symbols, by name: what autolearn leaves out of the score it judges on. */
const BAYES_NAMES = new Set(BAYES_SYMBOLS.map((s) => s.name));

export function createSpamEngine(c: SpamEngineConfig, deps: SpamEngineDeps): SpamEngine {
  const log = deps.logger;
  const closers: (() => unknown)[] = [];
  const checks: AnyCheck[] = [];
  let bayes: Bayes | undefined;
  let ruleset: CompiledRuleset | undefined;
  const ownDomains = [...c.domains, ...c.relay.domains.map((d) => d.domain)];
  checks.push(gtubeCheck);
  if (c.phishing.enabled) {
    checks.push(impersonationCheck({ ownDomains, brands: c.phishing.brands, builtinBrands: c.phishing.builtin_brands }));
  }
  try {
    const engine = rulesEngineFromConfig(c.rules, log, { trusted: c.relay.trusted_networks });
    if (engine) {
      ruleset = engine.ruleset;
      closers.push(() => engine.close());
      checks.push(rulesCheck(engine, { extract: { maxUris: c.uri.max_uris, redirectors: c.uri.redirectors } }));
    }
    if (c.bayes.enabled) {
      const b = Bayes.fromConfig(c, Bayes.optionsFrom(c.bayes));
      bayes = b;
      closers.push(() => b.close());
      checks.push(bayesCheck(b, log));
    }
    if (c.uri.enabled) {
      const u = uriCheck({ resolver: deps.resolver, config: c.uri, ownDomains, logger: log, timeoutMs: deps.dnsTimeoutMs });
      closers.push(() => u.close());
      checks.push(u);
    }
  } catch (err) {
    for (const close of [...closers].reverse()) void Promise.resolve().then(close).catch(() => undefined);
    throw err;
  }

  return {
    checks,
    symbols: spamSymbols(c, ruleset ?? { scores: {}, descriptions: {}, scoreSet: c.rules.score_set, rules: [], metas: [] }),
    bayes,
    autolearn(message, symbols, id, client) {
      if (!bayes) return;
      const names = symbols.map((s) => s.name);
      const score = symbols.filter((s) => !BAYES_NAMES.has(s.name)).reduce((n, s) => n + s.score, 0);
      const cls = autolearnClass(score, names, c.bayes.autolearn);
      if (!cls) return;
      const b = bayes;
      void message.content()
        .then((msg) => b.learn(msg, cls, client))
        .then((outcome) => log?.info({ event: 'bayes_autolearn', id, class: cls, outcome, score: Math.round(score * 100) / 100 }, `autolearned as ${cls}`))
        .catch((err) => log?.warn({ event: 'bayes_autolearn_failed', id, err: (err as Error).message }, 'autolearn failed'));
    },
    async learnFromUser(raw, cls, user) {
      if (!bayes) return;
      const outcome = await bayes.learn(await bufferModel(raw, { maxScanBytes: c.spam.max_scan_bytes }).content(), cls);
      log?.info({ event: 'bayes_user_learn', user, class: cls, outcome }, `learned as ${cls} from ${user}'s Junk move`);
    },
    async close() {
      for (const close of [...closers].reverse()) await Promise.resolve().then(close).catch(() => undefined);
    },
  };
}
