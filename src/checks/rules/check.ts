// The content-rules check (data stage): the parsed message through the rule engine; each rule
// that hits is a symbol named after the rule, carrying the rule's own score and description.
import type { Check, SymbolHit } from '../types.js';
import type { ParsedMessage } from '../../mime/text.js';
import { extractUris, uriStrings, type ExtractOptions } from '../uri/extract.js';
import type { RuleEngine, RuleScanResult } from './engine.js';

export interface RulesCheckOptions {
  /** Runner backstop (ms): the engine's own budget plus time waiting for a free worker. Default 15 s. */
  readonly timeoutMs?: number;
  /** The URI check's extraction options, so both share one extraction per message. */
  readonly extract?: ExtractOptions;
}

/**
 * The strings uri rules match: every URI of the message in SpamAssassin's forms, plus each HTML
 * link exactly as written (SpamAssassin keeps e.g. the ?subject= of a mailto: link).
 */
export function messageUris(msg: ParsedMessage, extract?: ExtractOptions): string[] {
  const out = new Set(uriStrings(extractUris(msg, extract)));
  for (const l of msg.links) {
    const u = l.url.trim();
    if (u && out.size < 10_000) out.add(u.length > 8192 ? u.slice(0, 8192) : u);
  }
  return [...out];
}

/** Symbols for a scan result; an overrun adds RULES_TIMEOUT naming the rule that ran long. */
export function ruleSymbols(r: RuleScanResult): SymbolHit[] {
  const symbols: SymbolHit[] = r.hits.map((h) => ({
    name: h.name,
    score: h.score,
    reason: h.count > 1 ? `${h.description} (${h.count} times)` : h.description,
  }));
  if (r.timedOut) {
    const last = r.slowRules[r.slowRules.length - 1];
    symbols.push({
      name: 'RULES_TIMEOUT',
      reason: `content rules stopped at the time budget${last ? ` while running ${last.name} (${last.ms} ms)` : ''}; later rules were not run`,
    });
  }
  return symbols;
}

export function rulesCheck(engine: RuleEngine, options: RulesCheckOptions = {}): Check<'data'> {
  return {
    name: 'rules',
    stage: 'data',
    timeoutMs: options.timeoutMs ?? 15_000,
    async run({ envelope, message }) {
      const msg = await message.content();
      const result = await engine.scan(msg, messageUris(msg, options.extract), envelope.sender);
      return { symbols: ruleSymbols(result) };
    },
  };
}
