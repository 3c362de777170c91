// The check interface (DESIGN.md): a check looks at one SMTP stage and emits symbols.
// Weights live in configuration (conf/scores.yaml, overlaid by policy.symbols), not in checks.
import type { Reply } from '../protocol/reply.js';
import type { SymbolHit } from '../protocol/symbols.js';
import type { HeaderField } from '../protocol/headers.js';
import type { RewritePlan } from '../mime/rewrite.js';
import type { MessageModel } from '../mime/model.js';

export type Stage = 'connect' | 'helo' | 'mail' | 'rcpt' | 'data';

export type { SymbolHit, ScoredSymbol } from '../protocol/symbols.js';

/** A refusal decided by the actions layer (never by a check): the reply and the symbol behind it. */
export type Demand = { kind: 'reject' | 'tempfail'; reply: Reply; symbol?: string };

/**
 * Typed facts a check hands to the checks after it (declared with `after`), so that no check
 * reads another's findings from symbol names. The runner merges them across stages and levels
 * and passes them read-only in every stage input.
 */
export interface Facts {
  /** The MAIL FROM identity's SPF result (for the null sender, the HELO identity checked instead). */
  readonly spf?: { readonly result: SpfResult; readonly domain: string };
  /** The HELO identity's SPF result, when spf.helo checked it on its own. */
  readonly spfHelo?: { readonly result: SpfResult; readonly domain: string };
  /** DKIM signatures by outcome (valid domains; aligned = a valid signature of a From domain). */
  readonly dkim?: { readonly valid: readonly string[]; readonly aligned: boolean };
  /** The deciding DMARC outcome: result, the From domain's policy as applied, alignment. */
  readonly dmarc?: { readonly result: 'pass' | 'fail' | 'none' | 'temperror' | 'permerror'; readonly policy?: 'none' | 'quarantine' | 'reject'; readonly domain?: string; readonly aligned: boolean };
  /** Bayes: the message's spam probability (0..1), when Bayes had learnt enough to say. */
  readonly bayes?: { readonly probability: number };
}
export type SpfResult = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'temperror' | 'permerror';

export interface CheckResult {
  symbols?: SymbolHit[];
  /** Facts for later checks (declared in Facts; a check reading one declares `after` its writer). */
  facts?: Facts;
  /** Method results for the Authentication-Results header (RFC 8601), e.g. "spf=pass smtp.mailfrom=…". */
  authResults?: string[];
  /** Trace header fields to add, complete and unfolded, without CRLF (e.g. "Received-SPF: pass (…) client-ip=…;"). */
  trace?: string[];
  /** Data stage: changes to the message (strip/defang attachments), applied once after the verdict. */
  rewrite?: RewritePlan;
}

/** Read-only facts about the connection, available to every stage. */
export interface ConnectionFacts {
  readonly sessionId: string;
  readonly listener: string;
  readonly listenerKind: 'mx' | 'submission' | 'submissions';
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly trustedNetwork: boolean;
  readonly tls?: { readonly protocol: string; readonly cipher: string; readonly servername?: string };
  readonly helo?: string;
  readonly esmtp: boolean;
  readonly authUser?: string;
}

export interface EnvelopeFacts {
  readonly sender: string; // '' = null sender
  readonly recipients: readonly string[];
}

/**
 * What a data-stage check sees: the header fields as the session parsed them, and the message
 * model (src/mime/model.ts) built by the caller — size, the message as received through a
 * reader (never all in memory), and its lazily computed facets: content() for the text checks,
 * mime() for the attachment policy and the AV check.
 */
export interface MessageFacts extends MessageModel {
  readonly headers: readonly HeaderField[];
  readonly bareNewlines: number;
}

/** What each stage's checks see; `facts` holds what earlier stages and levels found (read-only). */
export interface StageInput {
  connect: { conn: ConnectionFacts; facts?: Facts };
  helo: { conn: ConnectionFacts; facts?: Facts };
  mail: { conn: ConnectionFacts; sender: string; facts?: Facts };
  rcpt: { conn: ConnectionFacts; sender: string; recipient: string; facts?: Facts };
  data: { conn: ConnectionFacts; envelope: EnvelopeFacts; message: MessageFacts; facts?: Facts };
}

export interface Check<S extends Stage = Stage> {
  readonly name: string;
  readonly stage: S;
  /**
   * Checks that must finish first: of the same stage (the runner orders on it), or of an earlier
   * stage (whose facts are then in the input). A check that reads a fact names its writer here.
   */
  readonly after?: readonly string[];
  /** Per-call budget; a check that runs over it yields its `onTimeout`. Default 10 s. */
  readonly timeoutMs?: number;
  /** What a timeout or a thrown error means: CHECK_FAILED, scored (the default), or CHECK_TEMPFAIL (action tempfail). */
  readonly onFailure?: 'symbol' | 'tempfail' | ((error: string) => SymbolHit);
  run(input: StageInput[S]): CheckResult | Promise<CheckResult>;
}

export type AnyCheck = { [S in Stage]: Check<S> }[Stage];
