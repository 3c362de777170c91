// The Bayes filter: learns from mail labelled spam or ham (`portcullis train`, autolearn, a user
// moving mail into or out of Junk) and gives every message a spam probability, reported as one
// of SpamAssassin's BAYES_xx symbols. How it works and how well: docs/bayes.md.
import crypto from 'node:crypto';
import type { Check, ConnectionFacts } from '../types.js';
import type { ParsedMessage } from '../../mime/text.js';
import { tokenize, type TokenizeOptions } from './tokenize.js';
import { bayesSymbols, combineTokens, DEFAULT_PARAMS, type ClassifierParams } from './classifier.js';
import { SqliteBayesTokenStore, tokenHash, type BayesClass, type BayesTokenStore, type Hashes } from './store.js';
import { RedisBayesStore } from './redis-store.js';
import { StoreError } from '../../store/store.js';
import type { StoreConfig } from '../../store/config.js';
import type { Logger } from '../../log.js';
import { bayesFile } from './config.js';
import type { BayesConfig } from './config.js';

export { bayesFile };
export { BayesStoreError, type BayesClass } from './store.js';

export { bayesConfigSchema, type BayesConfig } from './config.js';

export interface BayesOptions {
  /** Messages of each class needed before classifying. Default 200. */
  readonly minLearned?: number;
  /** Robinson/Fisher parameters; maxTokens overrides params.maxTokens. */
  readonly params?: Partial<ClassifierParams>;
  readonly maxTokens?: number;
  readonly tokenize?: TokenizeOptions;
  /** Expiry age in days; 0 disables. Default 90. */
  readonly expireDays?: number;
  /** Most tokens `expire()` deletes per call (the next call continues). Default 100 000. */
  readonly expireMaxRows?: number;
  readonly busyTimeoutMs?: number;
  readonly now?: () => number;
}

export interface BayesClue {
  readonly token: string;
  readonly probability: number;
}

export interface BayesResult {
  /** Spam probability (Fisher/Robinson I), absent when Bayes cannot judge yet. */
  readonly probability?: number;
  /** The band symbol (BAYES_00 … BAYES_99). */
  readonly symbol?: string;
  /** Every symbol hit: the band, plus BAYES_999 at ≥ 99.9 %. */
  readonly symbols: readonly string[];
  /** Significant tokens combined. */
  readonly tokensUsed: number;
  /** Strongest tokens first (at most 10), for the reason. */
  readonly clues: readonly BayesClue[];
  readonly reason: string;
  /** The token store could not answer (Redis down): no verdict, and `reason` says why. */
  readonly unavailable?: boolean;
}

/** Where the message came from, for the relay tokens our own Received field would carry. */
export interface ClientFacts {
  readonly ip: string;
  readonly helo?: string;
}

/** How often learning runs expiry at most (it is bounded anyway). */
const EXPIRE_EVERY_S = 86_400;
/** Tokens one opportunistic expiry step deletes at most (a few ms of work). */
const EXPIRE_STEP_ROWS = 2000;
/**
 * Token hashes remembered between messages: most tokens of a message (common words, header
 * tokens) were hashed before, and SHA-1 per token was a fifth of Bayes' cost. Bounded: at this
 * many entries (≈15 MB) the memo starts over.
 */
const HASH_MEMO_MAX = 200_000;

export class Bayes {
  private readonly hashMemo = new Map<string, bigint>();

  private constructor(
    private readonly store: BayesTokenStore,
    private readonly params: ClassifierParams,
    private readonly options: BayesOptions,
  ) {}

  static open(file: string, options: BayesOptions = {}): Bayes {
    const params = { ...DEFAULT_PARAMS, ...options.params, ...(options.maxTokens ? { maxTokens: options.maxTokens } : {}) };
    return Bayes.withStore(SqliteBayesTokenStore.open(file, { busyTimeoutMs: options.busyTimeoutMs, now: options.now }), options);
  }

  /** Bayes over any token store (the SQLite file, or Redis shared by several nodes). */
  static withStore(store: BayesTokenStore, options: BayesOptions = {}): Bayes {
    const params = { ...DEFAULT_PARAMS, ...options.params, ...(options.maxTokens ? { maxTokens: options.maxTokens } : {}) };
    return new Bayes(store, params, options);
  }

  /**
   * The store the configuration names: with `store.backend: redis`, Redis (shared by every
   * node, under store.prefix); otherwise the file (`bayes.file`, default <data_dir>/bayes.sqlite).
   */
  static fromConfig(config: { readonly data_dir: string; readonly bayes?: { readonly file?: string }; readonly store?: StoreConfig }, options: BayesOptions = {}): Bayes {
    const s = config.store;
    if (s?.backend === 'redis') {
      return Bayes.withStore(new RedisBayesStore({ url: s.url, prefix: s.prefix, sentinel: s.sentinel, cluster: s.cluster, timeoutMs: s.timeout, now: options.now }), options);
    }
    return Bayes.open(bayesFile(config), options);
  }

  /** Bayes options from the configuration section. */
  static optionsFrom(cfg: BayesConfig): BayesOptions {
    return { minLearned: cfg.min_learned, maxTokens: cfg.max_tokens, expireDays: cfg.expire_days, params: { s: cfg.unknown_strength, x: cfg.unknown_probability } };
  }

  private readonly hash = (token: string): bigint => {
    let h = this.hashMemo.get(token);
    if (h === undefined) {
      if (this.hashMemo.size >= HASH_MEMO_MAX) this.hashMemo.clear();
      h = tokenHash(token);
      this.hashMemo.set(token, h);
    }
    return h;
  };

  private tokens(msg: ParsedMessage, client?: ClientFacts): string[] {
    return tokenize(msg, { ...this.options.tokenize, client });
  }

  async classify(msg: ParsedMessage, client?: ClientFacts): Promise<BayesResult> {
    try {
      return await this.classifyOrThrow(msg, client);
    } catch (err) {
      // A store that cannot answer gives no verdict: never a guess from partial counts.
      if (!(err instanceof StoreError) || err.code !== 'UNAVAILABLE') throw err;
      return { symbols: [], tokensUsed: 0, clues: [], reason: `Bayes store unavailable: ${err.message}`, unavailable: true };
    }
  }

  private async classifyOrThrow(msg: ParsedMessage, client?: ClientFacts): Promise<BayesResult> {
    const totals = await this.store.totals();
    const min = this.options.minLearned ?? 200;
    if (totals.spam < min || totals.ham < min) {
      return { symbols: [], tokensUsed: 0, clues: [], reason: `not enough learned yet: ${totals.spam} spam and ${totals.ham} ham, ${min} of each needed` };
    }
    const tokens = this.tokens(msg, client);
    const hashes = tokens.map(this.hash);
    const counts = await this.store.lookup(hashes);
    const r = combineTokens(counts, totals, this.params);
    const stale = this.store.staleOf(hashes, counts);
    // Best effort, and not waited for by the message beyond the store's own bound.
    if (stale.length) await this.store.touch(stale).catch(() => undefined);
    const symbols = bayesSymbols(r.probability);
    const clues = r.clues.slice(0, 10).map((c) => ({ token: tokens[c.index]!, probability: c.probability }));
    const shown = clues.slice(0, 5).map((c) => `${JSON.stringify(c.token.slice(0, 40))} ${c.probability.toFixed(3)}`).join(', ');
    return {
      probability: r.probability,
      symbol: symbols[0],
      symbols,
      tokensUsed: r.clues.length,
      clues,
      reason: `spam probability ${formatProbability(r.probability)} from ${r.clues.length} tokens${shown ? `; strongest: ${shown}` : ''}`,
    };
  }

  /** Learns a message; 'already' if it was learned as this class, 'relearned' if it moved. */
  async learn(msg: ParsedMessage, cls: BayesClass, client?: ClientFacts): Promise<'learned' | 'relearned' | 'already'> {
    return (await this.learnMany([{ msg, cls, client }]))[0]!;
  }

  /** Learns several messages in one transaction (bulk training: `portcullis train`). */
  async learnMany(items: readonly { msg: ParsedMessage; cls: BayesClass; client?: ClientFacts }[]): Promise<('learned' | 'relearned' | 'already')[]> {
    for (const it of items) if (it.cls !== 'spam' && it.cls !== 'ham') throw new TypeError(`learn: class must be "spam" or "ham", not ${JSON.stringify(it.cls)}`);
    const work: { sig: Buffer; cls: BayesClass; hashes: Hashes }[] = items.map((it) => ({
      sig: messageSignature(it.msg), cls: it.cls, hashes: () => this.tokens(it.msg, it.client).map(this.hash),
    }));
    // Known already as this class (a rerun of train): skip the tokenizing. Otherwise tokenize
    // now, outside the write lock; the store still decides inside its transaction.
    const known = await Promise.all(work.map((w) => this.store.learnedAs(w.sig)));
    work.forEach((w, i) => {
      if (known[i] !== w.cls && typeof w.hashes === 'function') w.hashes = w.hashes();
    });
    const outcome = await this.store.learnMany(work);
    await this.maybeExpire();
    return outcome;
  }

  /** Unlearns a message; false if it was never learned. */
  async forget(msg: ParsedMessage, client?: ClientFacts): Promise<boolean> {
    return this.store.forget(messageSignature(msg), this.tokens(msg, client).map(this.hash));
  }

  async stats(): Promise<{ spam: number; ham: number; tokens: number }> {
    const [t, tokens] = await Promise.all([this.store.totals(), this.store.tokenCount()]);
    return { spam: t.spam, ham: t.ham, tokens };
  }

  /** Deletes what was not seen for expireDays: a whole run, at most expireMaxRows tokens. */
  async expire(): Promise<{ tokens: number; signatures: number }> {
    const days = this.options.expireDays ?? 90;
    if (!(days > 0)) return { tokens: 0, signatures: 0 };
    const r = await this.store.expire(days, this.options.expireMaxRows ?? 100_000);
    return { tokens: r.tokens, signatures: r.signatures };
  }

  /**
   * Once a day, learning carries expiry along: one small step per learn call until the run is
   * done, so the gateway's event loop (SQLite calls are synchronous) is never held for long.
   */
  private async maybeExpire(): Promise<void> {
    const days = this.options.expireDays ?? 90;
    if (!(days > 0)) return;
    const now = Math.floor((this.options.now ?? Date.now)() / 1000);
    if (now - (await this.store.totals()).lastExpire >= EXPIRE_EVERY_S) await this.store.expire(days, EXPIRE_STEP_ROWS);
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

/** "0.734", and near the ends what toFixed would round away: "1 − 8.5e-7", "3.1e-9". */
function formatProbability(p: number): string {
  if (p >= 0.9995) return p === 1 ? '1' : `1 − ${(1 - p).toExponential(1)}`;
  if (p <= 0.0005) return p === 0 ? '0' : p.toExponential(1);
  return p.toFixed(3);
}

/**
 * A message's identity for "learned already?": its Message-ID and a digest of its body with
 * line ends and trailing blanks normalised, so the copy a user moves over IMAP (stored with our
 * Received and X-Spam fields added, maybe LF instead of CRLF) matches the copy learned at SMTP.
 */
export function messageSignature(msg: ParsedMessage): Buffer {
  const id = (msg.header('message-id')[0] ?? '').trim().toLowerCase();
  const full = msg.full;
  const m = /\r?\n\r?\n/.exec(full);
  const body = m ? full.slice(m.index + m[0].length) : '';
  const norm = body.replace(/[ \t]*\r?\n/g, '\n').replace(/\s+$/, '');
  const digest = crypto.createHash('sha1').update(norm, 'latin1').digest();
  return crypto.createHash('sha1').update(`${id}\n`).update(digest).digest();
}

/**
 * The data-stage check: one BAYES_xx symbol (two at ≥ 99.9 %), weighted in conf/scores.yaml.
 * Nothing until enough mail was learned (min_learned of each class).
 */
export function bayesCheck(bayes: Bayes, log?: Logger): Check<'data'> {
  // A store outage is said once when it starts and once when it ends, not per message.
  let down = false;
  return {
    name: 'bayes',
    stage: 'data',
    timeoutMs: 10_000,
    async run({ conn, message }) {
      const msg = await message.content();
      const r = await bayes.classify(msg, clientFacts(conn));
      if (r.unavailable !== down) {
        down = !!r.unavailable;
        if (down) log?.warn({ event: 'bayes_unavailable', reason: r.reason }, 'Bayes gives no verdict while its store is unavailable');
        else log?.info({ event: 'bayes_available' }, 'Bayes store answers again');
      }
      if (r.probability === undefined) return {};
      return { symbols: r.symbols.map((name) => ({ name, reason: r.reason })), facts: { bayes: { probability: r.probability } } };
    },
  };
}

/** The relay facts our Received field records, so classify and learn see the same tokens. */
export function clientFacts(conn: ConnectionFacts): ClientFacts {
  return { ip: conn.remoteAddress, helo: conn.helo };
}

// A symbol that says a check could not run: its absence lowered the score, so a low total is
// not evidence of ham.
const FAILED = /^CHECK_FAILED$|_(ERROR|TEMPERROR|TEMPFAIL|TIMEOUT|UNAVAILABLE)$/;

/**
 * Whether to autolearn a message: 'spam' at or above autolearn.spam, 'ham' at or below
 * autolearn.ham, judged on the score without Bayes (learning from its own verdict would only
 * confirm its mistakes). Never when a check failed. The caller excludes messages decided by a
 * user's own rules and authenticated submission.
 */
export function autolearnClass(scoreWithoutBayes: number, symbols: readonly string[], cfg: BayesConfig['autolearn']): BayesClass | undefined {
  if (!cfg.enabled || !Number.isFinite(scoreWithoutBayes)) return undefined;
  if (symbols.some((s) => FAILED.test(s))) return undefined;
  if (scoreWithoutBayes >= cfg.spam) return 'spam';
  if (scoreWithoutBayes <= cfg.ham) return 'ham';
  return undefined;
}
