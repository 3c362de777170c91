// What a check reports, in the vocabulary every layer shares: the check interface
// (src/checks/types.ts), the content inspectors of the MIME walk (src/mime/inspector.ts), the
// policy and the log line all speak of symbols.
import type { Reply } from './reply.js';

/** What a check found: a name (UPPER_CASE, declared in the symbol registry), a short human reason. */
export interface SymbolHit {
  readonly name: string;
  readonly reason: string;
  /**
   * The weight the check's own configuration gives this finding (a DNS list's weight, a .cf
   * score line). The operator's policy.symbols still wins over it (src/pipeline/weights.ts).
   */
  readonly score?: number;
  /**
   * The refusal this finding would justify, exactly as it goes on the wire (DNSBL's 554 5.7.1
   * naming the list, SPF's 550 5.7.23 with the explanation…). Whether it is sent is not the
   * check's call: the actions layer (src/pipeline/actions.ts) decides, and observe mode only logs it.
   */
  readonly reply?: Reply;
  /** The same refusal as a temporary one, when an operator turns the symbol's action into tempfail. */
  readonly retryReply?: Reply;
  /**
   * The check's own configuration exempts this finding from any action beyond its weight
   * (authentication.dmarc.reject_exempt_domains): it is scored, never refused or junked.
   */
  readonly scoreOnly?: boolean;
}

/** A symbol with its weight applied: what the log line and `scan --json` show. */
export interface ScoredSymbol extends SymbolHit {
  readonly score: number;
}
