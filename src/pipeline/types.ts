// The check interface (DESIGN.md): a check looks at one SMTP stage and emits symbols.
// Weights live in configuration (conf/scores.yaml, overlaid by policy.symbols), not in checks.
import type { Reply } from '../protocol/reply.js';
import type { HeaderField } from '../smtp/headers.js';
import type { RewritePlan } from '../mime/rewrite.js';

export type Stage = 'connect' | 'helo' | 'mail' | 'rcpt' | 'data';

/** What a check found: a name (UPPER_CASE), a short human reason, optionally a score override. */
export interface SymbolHit {
  readonly name: string;
  readonly reason: string;
  /** Only for symbols whose weight depends on the finding (e.g. Bayes probability). */
  readonly score?: number;
}

/** A symbol with its weight applied: what the log line and `scan --json` show. */
export interface ScoredSymbol extends SymbolHit {
  readonly score: number;
}

/** A check may demand an immediate action: a dependency down (tempfail) or a virus (reject). */
export type Demand = { kind: 'reject'; reply: Reply } | { kind: 'tempfail'; reply: Reply };

export interface CheckResult {
  symbols?: SymbolHit[];
  demand?: Demand;
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
  /**
   * The SPF result the MAIL stage found (src/checks/spf/spf-check.ts), for DMARC: the MAIL FROM
   * identity (for the null sender, the HELO identity that SPF checked instead), and the HELO
   * identity when spf.helo checked it separately. Absent when SPF did not run.
   */
  readonly spf?: { readonly result: string; readonly domain: string; readonly helo?: { result: string; domain: string } };
}

/** What a data-stage check sees: headers parsed, body through a reader (never all in memory). */
export interface MessageFacts {
  readonly size: number;
  readonly headers: readonly HeaderField[];
  readonly bareNewlines: number;
  /** Streams the message as received (headers and body, CRLF). */
  stream(): NodeJS.ReadableStream;
}

export interface StageInput {
  connect: { conn: ConnectionFacts };
  helo: { conn: ConnectionFacts };
  mail: { conn: ConnectionFacts; sender: string };
  rcpt: { conn: ConnectionFacts; sender: string; recipient: string };
  data: { conn: ConnectionFacts; envelope: EnvelopeFacts; message: MessageFacts };
}

export interface Check<S extends Stage = Stage> {
  readonly name: string;
  readonly stage: S;
  /** Checks of the same stage that must finish first. */
  readonly after?: readonly string[];
  /** Per-call budget; a check that runs over it yields its `onTimeout`. Default 10 s. */
  readonly timeoutMs?: number;
  /** What a timeout or a thrown error means: a symbol (the default) or a tempfail. */
  readonly onFailure?: 'symbol' | 'tempfail';
  run(input: StageInput[S]): CheckResult | Promise<CheckResult>;
}

export type AnyCheck = { [S in Stage]: Check<S> }[Stage];
