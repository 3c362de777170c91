// Judges one message on its own, outside an SMTP conversation: `portcullis scan`, the spamd
// listener and the scan-http listener (src/integrations/) all call this one implementation, with
// the checks, weights and actions the gateway built for its SMTP path. The content checks run
// as in the data stage (the attachment walk, clamd, rules, Bayes, URI lists, the header checks);
// the checks that need the conversation (DNS lists, SPF, DKIM/DMARC) are left out by the caller:
// there is no client to judge, only a message.
import type { AttachmentsConfig } from '../checks/attachments/config.js';
import { scanModel, type ScanResult } from '../checks/attachments/scan.js';
import type { Bayes, BayesClass } from '../checks/bayes/index.js';
import { addressesOf } from '../checks/sender/from-ownership.js';
import type { AnyCheck, ConnectionFacts, Demand, ScoredSymbol, SymbolHit } from '../checks/types.js';
import type { Logger } from '../log.js';
import { bufferModel, type MessageModelOptions } from '../mime/model.js';
import { parseHeaderBlock } from '../protocol/headers.js';
import { decide, type Action, type Thresholds } from './policy.js';
import { CheckRunner, type RunnerEvents, type RunnerPolicy } from './runner.js';
import { recipientPolicy, type UserSettings } from './user-settings.js';

export interface MessageScannerDeps {
  /** The content checks of the data stage (the caller leaves out those needing the conversation). */
  readonly checks: readonly AnyCheck[];
  /** The weights and actions of the SMTP path. */
  readonly policy: RunnerPolicy;
  /**
   * policy.observe for the scan listeners: a refusal is answered as the tag it becomes on the
   * SMTP path (the MTA acts on our answer). `portcullis scan` leaves it off: it shows what the
   * gateway would do outside observe mode.
   */
  readonly observe?: boolean;
  /** policy.thresholds: the site's tag / junk / reject. */
  readonly thresholds: Thresholds;
  readonly attachments: AttachmentsConfig;
  readonly modelOptions: MessageModelOptions;
  readonly logger: Logger;
  readonly events?: RunnerEvents;
  /** Each user's spam settings (`portcullis user set`, opt-out files), as the SMTP path reads them. */
  readonly users?: { settingsFor(address: string): UserSettings | undefined };
  /** Learning (spamd TELL, /learnspam): the gateway's one Bayes store. */
  readonly bayes?: Bayes;
}

/** What a client says about the message besides its bytes (rspamd's From/Rcpt/IP/Helo headers, spamd's User). */
export interface ScanRequest {
  readonly sender?: string;
  readonly recipients?: readonly string[];
  readonly ip?: string;
  readonly helo?: string;
  /** Whose spam settings apply (threshold, opt-out); an address. Absent: the site's. */
  readonly user?: string;
  /** `portcullis scan --rewrite`: the rewritten copy is written here. */
  readonly rewriteTo?: string;
}

export interface MessageScan extends ScanResult {
  readonly symbols: ScoredSymbol[];
  readonly score: number;
  /** The score from which the message is marked as spam (the user's tag threshold, else the site's). */
  readonly required: number;
  /** The user's (or the site's) thresholds the action came from. */
  readonly thresholds: Thresholds;
  /** What the gateway would do for this recipient, outside observe mode. */
  readonly action: Action;
  /** Marked as spam: the action is tag or stronger, or a check refused the message. */
  readonly spam: boolean;
  /** Observe mode held back a refusal: the action would have been reject. */
  readonly wouldReject: boolean;
  readonly demand?: Demand;
  readonly rewritten?: string;
}

export type LearnOutcome = 'learned' | 'relearned' | 'already' | 'forgotten' | 'not-learned';

const CRLF = Buffer.from('\r\n');

/** A message as the SMTP path holds it: CRLF line ends (files on disk and spamc input often have LF). */
export function asReceived(raw: Buffer): Buffer {
  let lf = raw.indexOf(0x0a);
  if (lf < 0 || (lf > 0 && raw[lf - 1] === 0x0d && raw.indexOf('\n', lf + 1) < 0)) return raw;
  const out: Buffer[] = [];
  let start = 0;
  while (lf >= 0) {
    out.push(raw.subarray(start, lf > start && raw[lf - 1] === 0x0d ? lf - 1 : lf), CRLF);
    start = lf + 1;
    lf = raw.indexOf(0x0a, start);
  }
  out.push(raw.subarray(start));
  return Buffer.concat(out);
}

/** The header section, blank line included (all of it when there is no body). */
export function headerBlock(raw: Buffer): Buffer {
  const end = raw.indexOf('\r\n\r\n');
  return raw.subarray(0, end >= 0 ? end + 4 : raw.length);
}

export class MessageScanner {
  private readonly runner: CheckRunner;
  private readonly policy: RunnerPolicy;

  constructor(private readonly deps: MessageScannerDeps) {
    this.policy = { ...deps.policy, observe: deps.observe ?? false };
    this.runner = new CheckRunner(deps.checks, this.policy, deps.logger, deps.events);
  }

  /** Bayes is on: learn() and forget() do something. */
  get canLearn(): boolean {
    return !!this.deps.bayes;
  }

  async scan(original: Buffer, req: ScanRequest = {}): Promise<MessageScan> {
    const raw = asReceived(original);
    const model = bufferModel(raw, this.deps.modelOptions);
    const judge = (hits: readonly SymbolHit[]) => this.runner.judge('data', hits);
    const r = await scanModel(model, this.deps.attachments, { judge, rewriteTo: req.rewriteTo });
    const headers = parseHeaderBlock(headerBlock(raw));
    const conn: ConnectionFacts = {
      sessionId: 'scan', listener: 'scan', listenerKind: 'mx', remoteAddress: req.ip ?? '127.0.0.1', remotePort: 0,
      localAddress: '127.0.0.1', localPort: 0, trustedNetwork: false, esmtp: true, ...(req.helo ? { helo: req.helo } : {}),
    };
    const outcome = await this.runner.run('data', {
      conn,
      envelope: { sender: req.sender ?? '', recipients: [...(req.recipients ?? [])] },
      message: { ...model, headers, bareNewlines: 0 },
    });
    // A symbol counts once, as in the runner: the attachment analysis and the AV check read the
    // same walk, and both report an archive finding (or a virus only a password revealed).
    const seen = new Set(r.symbols.map((s) => s.name));
    const symbols: ScoredSymbol[] = [...r.symbols, ...outcome.symbols.filter((s) => !seen.has(s.name))];
    let demand: Demand | undefined = r.demand;
    if (outcome.demand && (!demand || outcome.demand.kind === 'reject')) demand = outcome.demand;
    const floor = this.policy.actions.apply('data', symbols, false).floor;
    const site = this.deps.thresholds;
    // The user's settings, as the SMTP path applies them per recipient. The allow lists need an
    // authenticated sender, which a scan without the conversation cannot prove: only block entries count.
    const settings = req.user ? this.deps.users?.settingsFor(req.user) : undefined;
    const from = headers.filter((h) => h.key === 'from').flatMap((h) => addressesOf(h.value)).slice(0, 10);
    const rp = recipientPolicy(settings, site, { envelope: req.sender ?? '', from, envelopeAuthenticated: false, fromAuthenticated: false }, false);
    const observe = this.policy.observe;
    const verdict = decide(symbols, [rp], site, observe, floor);
    // In observe mode the runner holds refusals back (wouldRefuse) and decide() tags instead.
    const action: Action = demand?.kind === 'reject' ? 'reject' : verdict.actions[0]!;
    const wouldReject = observe && (verdict.wouldReject || outcome.wouldRefuse.length > 0);
    const thresholds = rp.thresholds ?? site;
    return {
      ...r, symbols, demand, verdict: demand ? demand.kind : r.verdict, score: verdict.score, action, thresholds,
      required: thresholds.tag, spam: action !== 'deliver' || wouldReject, wouldReject,
    };
  }

  /**
   * Learns a message as spam or ham, as `portcullis train` does: the bytes as given (no line-end
   * change), so a file learned here and by `train` is the same message to Bayes.
   */
  async learn(raw: Buffer, cls: BayesClass): Promise<LearnOutcome> {
    const bayes = this.requireBayes();
    return bayes.learn(await bufferModel(raw, { maxScanBytes: this.deps.modelOptions.maxScanBytes }).content(), cls);
  }

  /** Unlearns a message, as `portcullis train --forget` does. */
  async forget(raw: Buffer): Promise<LearnOutcome> {
    const bayes = this.requireBayes();
    const msg = await bufferModel(raw, { maxScanBytes: this.deps.modelOptions.maxScanBytes }).content();
    return (await bayes.forget(msg)) ? 'forgotten' : 'not-learned';
  }

  /** The Bayes store's counts (learned spam, ham, tokens); undefined with Bayes off. */
  async bayesStats(): Promise<{ spam: number; ham: number; tokens: number } | undefined> {
    return this.deps.bayes?.stats();
  }

  private requireBayes(): Bayes {
    if (!this.deps.bayes) throw new Error('Bayes is off (bayes.enabled: false)');
    return this.deps.bayes;
  }
}
