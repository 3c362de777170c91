// Shared by the checks' unit tests: an in-memory resolver, connection facts, and the actions
// layer as the gateway builds it (what a check's hits come to). (Integration
// tests use the real resolver against real DNS servers on loopback instead.)
import type { CheckResult, ConnectionFacts, Demand, Stage } from './types.js';
import { SymbolRegistry } from './registry.js';
import { ActionTable, validatePolicy, type SymbolAction } from '../pipeline/actions.js';
import { Weigher, shippedWeights } from '../pipeline/weights.js';
import { PIPELINE_SYMBOLS, type RunnerPolicy } from '../pipeline/runner.js';
import { builtinSymbols } from '../gateway/checks.js';
import { SPAM_FIXED_SYMBOLS } from './spam-engine.js';
import type { Lookup, RecordData, Resolver, RRType } from '../dns/types.js';

/** "TYPE name" → records, or a failure to act out; any other question is NXDOMAIN. */
export type FakeZone = Record<string, unknown[] | 'error' | 'nodata' | 'hang' | 'throw'>;

export class FakeResolver implements Resolver {
  /** "TYPE name" of every question, in order. */
  readonly queries: string[] = [];
  constructor(private readonly zone: FakeZone, private readonly delayMs = 0) {}
  async lookup<T extends RRType>(name: string, type: T): Promise<Lookup<T>> {
    const key = `${type} ${name.toLowerCase()}`;
    this.queries.push(key);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    const v = this.zone[key];
    if (v === undefined) return { status: 'nxdomain', source: 'dns' };
    if (v === 'hang') return new Promise<never>(() => {});
    if (v === 'throw') throw new Error('resolver bug');
    if (v === 'error') return { status: 'error', code: 'timeout', reason: 'timed out after 2 attempts', source: 'dns' };
    if (v === 'nodata') return { status: 'nodata', source: 'dns' };
    return { status: 'ok', records: v as RecordData[T][], ttl: 300, source: 'dns' };
  }
}

/** Facts of an untrusted client on an mx listener; override what a test is about. */
export function conn(over: Partial<ConnectionFacts> = {}): ConnectionFacts {
  return {
    sessionId: 's1', listener: 'mx', listenerKind: 'mx', remoteAddress: '192.0.2.1', remotePort: 40000,
    localAddress: '198.51.100.1', localPort: 25, trustedNetwork: false, esmtp: true, ...over,
  };
}

/** The registry of every built-in symbol (no configured lists, no rules). */
export function testRegistry(): SymbolRegistry {
  return new SymbolRegistry([...PIPELINE_SYMBOLS, ...builtinSymbols({ dnsbl: { lists: [], threshold: 1 } }), ...SPAM_FIXED_SYMBOLS], shippedWeights());
}

/** A runner policy as the gateway builds it, over the built-in symbols (validated: a typo throws). */
export function testPolicy(options: { observe?: boolean; symbols?: Record<string, number>; actions?: Record<string, SymbolAction> } = {}): RunnerPolicy {
  const registry = testRegistry();
  const problems = validatePolicy({ symbols: options.symbols ?? {}, actions: options.actions ?? {} }, registry);
  if (problems.length) throw new Error(problems.join('; '));
  return { weights: new Weigher(registry, options.symbols), actions: new ActionTable(registry, options.actions), observe: options.observe ?? false };
}

/** What the actions layer (default actions unless given) makes of a check's result: the refusal it sends, if any. */
export function refusal(result: CheckResult, options: { stage?: Stage; actions?: Record<string, SymbolAction>; observe?: boolean } = {}): Demand | undefined {
  const policy = testPolicy({ actions: options.actions, observe: options.observe });
  const scored = (result.symbols ?? []).map((h) => ({ ...h, score: policy.weights.weigh(h) }));
  return policy.actions.apply(options.stage ?? 'data', scored, policy.observe).demand;
}
