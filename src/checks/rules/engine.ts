// The rule engine: a compiled ruleset run in worker threads, one message at a time per worker,
// each message within a time budget. A regex that backtracks without end cannot be interrupted
// in JavaScript, so on overrun the worker is terminated (the gateway goes on), the rule that was
// running is named from the shared progress marker, the hits found so far are kept, and a fresh
// worker takes its place. Metas are evaluated here from the regex rules' hit counts.
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../log.js';
import type { ParsedMessage } from '../../mime/text.js';
import type { Expr } from './expression.js';
import { COUNTS_AT, PROGRESS_DONE, PROGRESS_RULE, progressBuffer, timeSlot } from './matcher.js';
import type { CompiledRuleset } from './ruleset.js';
import { scanInput, type ScanInput } from './targets.js';
import type { TrustConfig } from './received.js';
import type { ScanReply, ScanRequest, WorkerInit } from './worker.js';

export interface RuleHit { name: string; score: number; description: string; count: number }
export interface RuleScanResult {
  hits: RuleHit[];
  score: number;
  /** The message overran the time budget: rules from `slowRules[last]` on were not run. */
  timedOut: boolean;
  /** Rules that took at least slowRuleMs on this message (the overrunning one included). */
  slowRules: { name: string; ms: number }[];
}

export interface RuleEngineOptions {
  /** Wall-clock budget of one message's matching, once a worker has taken it. */
  timeBudgetMs: number;
  /** Bytes of each target (body, rawbody, full, each header, each URI list entry) given to rules. */
  maxBytes: number;
  logger?: Logger;
  /** Worker threads (default 1: one core). */
  workers?: number;
  /** A rule that takes this long on one message is reported (default: budget / 20, at least 5 ms). */
  slowRuleMs?: number;
  /**
   * Keep one warmed-up spare worker (default true): a worker replaced after an overrun is
   * replaced at once instead of after the new one has compiled every regex (seconds with a
   * large ruleset), so that a hostile message cannot stall rule scanning for others.
   */
  standby?: boolean;
  /**
   * Networks of the Received trust path (X-Spam-Relays-* pseudo-headers), as SpamAssassin's
   * trusted_networks / internal_networks; none: inferred (private addresses and authenticated hops).
   */
  trust?: TrustConfig;
}

export interface RuleEngineStats {
  scans: number;
  timeouts: number;
  /** Per rule: times reported slow, the longest time seen, overruns it caused. */
  slow: Record<string, { count: number; maxMs: number; timeouts: number }>;
}

interface Slot {
  worker: Worker;
  buf: SharedArrayBuffer;
  progress: Int32Array;
  clock: Float64Array;
  ready: Promise<void>;
  busy: boolean;
  dead: boolean;
}

interface Job {
  input: ScanInput;
  resolve: (r: RuleScanResult) => void;
  reject: (e: Error) => void;
}

type MetaFn = (v: Float64Array) => number;

const WORKER_URL = new URL('./worker.js', import.meta.url);

export class RuleEngine {
  private readonly slots: Slot[] = [];
  private spare: Slot | undefined;
  private readonly queue: Job[] = [];
  private readonly nameIndex = new Map<string, number>();
  private readonly metaFns: MetaFn[];
  private readonly slowRuleMs: number;
  /** Targets some rule reads: the others are not copied to the worker. */
  private readonly needs: { full: boolean; raw: boolean; uri: boolean; body: boolean; headerText: boolean };
  private seq = 0;
  private closed = false;
  private readonly statsData: RuleEngineStats = { scans: 0, timeouts: 0, slow: {} };

  /** `ruleset` is public so the gateway can declare each rule's symbol (src/checks/rules/symbols.ts). */
  constructor(readonly ruleset: CompiledRuleset, private readonly options: RuleEngineOptions) {
    if (!(options.timeBudgetMs > 0)) throw new Error('rules: timeBudgetMs must be positive');
    if (!(options.maxBytes > 0)) throw new Error('rules: maxBytes must be positive');
    this.slowRuleMs = options.slowRuleMs ?? Math.max(5, options.timeBudgetMs / 20);
    // Values: regex rules first (by index), then metas, then local_tests_only (always 1 here).
    ruleset.rules.forEach((r, i) => this.nameIndex.set(r.name, i));
    ruleset.metas.forEach((m, i) => this.nameIndex.set(m.name, ruleset.rules.length + i));
    this.nameIndex.set('local_tests_only', ruleset.rules.length + ruleset.metas.length);
    this.metaFns = ruleset.metas.map((m) => compileMeta(m.expr, this.nameIndex));
    const has = (t: string) => ruleset.rules.some((r) => r.type === t);
    this.needs = {
      full: has('full'), raw: has('rawbody'), uri: has('uri'), body: has('body'),
      headerText: ruleset.rules.some((r) => r.header && /^ALL/.test(r.header.request) && r.header.mods.includes('raw')),
    };
    const n = Math.max(1, Math.min(options.workers ?? 1, 16));
    for (let i = 0; i < n; i++) this.slots.push(this.spawn());
    if (options.standby ?? true) this.spare = this.spawn();
  }

  /** Scans a parsed message; `uris` feed uri rules. Never rejects for a rule's fault. */
  scan(msg: ParsedMessage, uris: readonly string[], envelopeFrom?: string): Promise<RuleScanResult> {
    return this.scanInput(scanInput(msg, uris, envelopeFrom));
  }

  scanInput(input: ScanInput): Promise<RuleScanResult> {
    if (this.closed) return Promise.reject(new Error('rules: the engine is closed'));
    if (this.ruleset.rules.length === 0) return Promise.resolve(this.result(new Float64Array(this.nameIndex.size), [], false));
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.dispatch();
    });
  }

  stats(): RuleEngineStats {
    return structuredClone(this.statsData);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('rules: the engine is closed'));
    await Promise.all([...this.slots, ...(this.spare ? [this.spare] : [])].map((s) => {
      s.dead = true;
      return s.worker.terminate();
    }));
  }

  private spawn(): Slot {
    const buf = progressBuffer(this.ruleset.rules.length);
    const init: WorkerInit = { rules: this.ruleset.rules, progress: buf };
    const worker = new Worker(WORKER_URL, { workerData: init, resourceLimits: { maxOldGenerationSizeMb: 512 } });
    worker.unref();
    const slot: Slot = { worker, buf, progress: new Int32Array(buf), clock: timeSlot(buf), busy: false, dead: false, ready: Promise.resolve() };
    slot.ready = new Promise<void>((resolve, reject) => {
      const onMessage = (m: unknown) => {
        if (m === 'ready') {
          worker.off('message', onMessage);
          resolve();
        }
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
    slot.ready.catch((e: Error) => this.options.logger?.error({ event: 'rules_worker_failed', err: e.message }, 'rules: worker failed to start'));
    // Between scans nobody else listens: an error or exit there must not crash the gateway.
    worker.on('error', (e) => this.options.logger?.error({ event: 'rules_worker_failed', err: e.message }, 'rules: worker error'));
    worker.on('exit', () => {
      if (slot.dead || this.closed || slot.busy) return;
      if (this.spare === slot) {
        slot.dead = true;
        this.spare = this.spawn();
        return;
      }
      const i = this.slots.indexOf(slot);
      if (i >= 0) void this.replace(i, slot).then(() => this.dispatch());
    });
    return slot;
  }

  private dispatch(): void {
    for (let i = 0; i < this.slots.length && this.queue.length; i++) {
      const slot = this.slots[i]!;
      if (slot.busy || slot.dead) continue;
      const job = this.queue.shift()!;
      slot.busy = true;
      void this.run(i, slot, job);
    }
  }

  private async run(index: number, slot: Slot, job: Job): Promise<void> {
    try {
      await slot.ready;
    } catch (e) {
      slot.busy = false;
      this.replace(index, slot);
      job.reject(new Error(`rules: worker failed to start: ${(e as Error).message}`));
      return;
    }
    const seq = ++this.seq;
    const { worker, progress, clock } = slot;
    Atomics.store(progress, PROGRESS_DONE, 0);
    Atomics.store(progress, PROGRESS_RULE, -1);
    worker.ref();
    const outcome = await new Promise<{ reply?: ScanReply; timedOut: boolean; error?: string }>((resolve) => {
      const timer = setTimeout(() => done({ timedOut: true }), this.options.timeBudgetMs);
      const onMessage = (m: ScanReply) => {
        if (m && typeof m === 'object' && m.seq === seq) done({ reply: m, timedOut: false, error: m.error });
      };
      const onExit = (code: number) => done({ timedOut: false, error: `worker exited (code ${code})` });
      const onError = (e: Error) => done({ timedOut: false, error: e.message });
      const done = (o: { reply?: ScanReply; timedOut: boolean; error?: string }) => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        worker.off('error', onError);
        resolve(o);
      };
      worker.on('message', onMessage);
      worker.once('exit', onExit);
      worker.once('error', onError);
      const req: ScanRequest = { seq, input: this.trim(job.input), maxBytes: this.options.maxBytes, slowRuleMs: this.slowRuleMs };
      worker.postMessage(req);
    });
    const n = this.ruleset.rules.length;
    const done = outcome.reply ? n : Atomics.load(progress, PROGRESS_DONE);
    const values = new Float64Array(this.nameIndex.size);
    for (let i = 0; i < n; i++) values[i] = i < done || outcome.reply ? Atomics.load(progress, COUNTS_AT + i) : 0;
    const slow: { name: string; ms: number }[] = (outcome.reply?.slow ?? []).map(([i, ms]) => ({ name: this.ruleset.rules[i]!.name, ms: Math.round(ms * 10) / 10 }));
    let broken = false;
    if (!outcome.reply) {
      broken = true;
      const running = Atomics.load(progress, PROGRESS_RULE);
      const rule = running >= 0 ? this.ruleset.rules[running]?.name : undefined;
      const ms = running >= 0 ? Math.round(Date.now() - clock[0]!) : 0;
      if (rule) slow.push({ name: rule, ms });
      if (outcome.timedOut) {
        this.statsData.timeouts++;
        if (rule) this.noteSlow(rule, ms, true);
        this.options.logger?.warn({ event: 'rules_timeout', rule: rule ?? '(between rules)', ms, budgetMs: this.options.timeBudgetMs, rulesRun: done, rules: n },
          'rules: message overran the time budget; matching stopped and the worker restarted');
      } else {
        this.options.logger?.error({ event: 'rules_worker_failed', err: outcome.error, rule }, 'rules: worker failed; restarted');
      }
    }
    for (const s of outcome.reply ? slow : []) {
      this.noteSlow(s.name, s.ms, false);
      this.options.logger?.info({ event: 'rule_slow', rule: s.name, ms: s.ms }, 'rules: slow rule');
    }
    worker.unref();
    this.statsData.scans++;
    slot.busy = false;
    if (broken) await this.replace(index, slot);
    job.resolve(this.result(values, slow, outcome.timedOut));
    this.dispatch();
  }

  /** The input without the texts no rule reads (the whole message is the largest). */
  private trim(i: ScanInput): ScanInput {
    const n = this.needs;
    return {
      headers: i.headers, envelopeFrom: i.envelopeFrom, subject: i.subject,
      headerText: n.headerText ? i.headerText : '', body: n.body ? i.body : '', rawParts: n.raw ? i.rawParts : [],
      full: n.full ? i.full : '', uris: n.uri ? i.uris : [], trust: i.trust ?? this.options.trust,
    };
  }

  private async replace(index: number, slot: Slot): Promise<void> {
    slot.dead = true;
    const ended = slot.worker.terminate().catch(() => undefined);
    if (!this.closed) {
      if (this.spare && !this.spare.dead) {
        this.slots[index] = this.spare;
        this.spare = this.spawn();
      } else this.slots[index] = this.spawn();
    }
    await ended;
  }

  private noteSlow(name: string, ms: number, timeout: boolean): void {
    const s = (this.statsData.slow[name] ??= { count: 0, maxMs: 0, timeouts: 0 });
    s.count++;
    s.maxMs = Math.max(s.maxMs, ms);
    if (timeout) s.timeouts++;
  }

  /** Metas from the counts, then the scored hits. */
  private result(values: Float64Array, slowRules: { name: string; ms: number }[], timedOut: boolean): RuleScanResult {
    const rs = this.ruleset;
    const base = rs.rules.length;
    values[base + rs.metas.length] = 1; // local_tests_only: no network tests here
    // A meta's value is its result (so a sum can be compared by another meta); a true result
    // that is not positive counts as 1, as in SpamAssassin's got_hit.
    for (let i = 0; i < this.metaFns.length; i++) {
      const r = this.metaFns[i]!(values);
      values[base + i] = r ? (r > 0 ? r : 1) : 0;
    }
    const hits: RuleHit[] = [];
    let score = 0;
    const add = (name: string, count: number) => {
      const s = rs.scores[name];
      if (!count || s === undefined || s === 0) return;
      const total = Math.round(s * count * 1000) / 1000;
      hits.push({ name, score: total, description: rs.descriptions[name] ?? name, count });
      score += total;
    };
    rs.rules.forEach((r, i) => add(r.name, values[i]!));
    rs.metas.forEach((m, i) => add(m.name, values[base + i]! ? 1 : 0));
    hits.sort((a, b) => b.score - a.score || (a.name < b.name ? -1 : 1));
    return { hits, score: Math.round(score * 1000) / 1000, timedOut, slowRules };
  }
}

/** A meta expression as a closure over the value vector (names resolved to indexes once). */
function compileMeta(e: Expr, index: ReadonlyMap<string, number>): MetaFn {
  switch (e.k) {
    case 'num': { const v = e.v; return () => v; }
    case 'ref': {
      const i = index.get(e.name);
      return i === undefined ? () => 0 : (v) => v[i]!;
    }
    case 'not': { const a = compileMeta(e.a, index); return (v) => (a(v) ? 0 : 1); }
    case 'neg': { const a = compileMeta(e.a, index); return (v) => -a(v); }
    case 'bin': {
      const a = compileMeta(e.a, index), b = compileMeta(e.b, index);
      switch (e.op) {
        case '&&': return (v) => { const x = a(v); return x ? b(v) : x; };
        case '||': return (v) => { const x = a(v); return x ? x : b(v); };
        case '+': return (v) => a(v) + b(v);
        case '-': return (v) => a(v) - b(v);
        case '*': return (v) => a(v) * b(v);
        case '/': return (v) => { const d = b(v); return d === 0 ? 0 : a(v) / d; };
        case '>': return (v) => (a(v) > b(v) ? 1 : 0);
        case '>=': return (v) => (a(v) >= b(v) ? 1 : 0);
        case '<': return (v) => (a(v) < b(v) ? 1 : 0);
        case '<=': return (v) => (a(v) <= b(v) ? 1 : 0);
        case '==': return (v) => (a(v) === b(v) ? 1 : 0);
        case '!=': return (v) => (a(v) !== b(v) ? 1 : 0);
      }
    }
  }
  return () => 0;
}
