// The actions layer: detection apart from policy (STYLE.md rule 4). Checks emit symbols — a
// finding that would justify a refusal carries the reply it would send — and this is the one
// place that decides what a symbol does: nothing (ignore), its weight (score), a floor for the
// message's folder (tag, junk, quarantine), or a refusal (tempfail, reject). Observe mode is
// applied here, once, for every policy refusal: the refusal is logged and counted as "would
// reject" with its exact reply, and the symbol is only scored. Protocol safety (symbols declared
// `safety`) is not policy and is always enforced.
//
// An operator writes rules in policy.actions: a symbol name, a glob (`DNSBL_*`) or a group
// (`group:av`). The most specific rule wins: a name, then the longest glob, then a group, then
// the symbol's declared default, then "score".
import type { Demand, ScoredSymbol, Stage } from '../checks/types.js';
import { globPattern, isFailureSymbol, isGlob, type SymbolRegistry } from '../checks/registry.js';
import { reply, R, type Reply } from '../protocol/reply.js';

import { SYMBOL_ACTIONS, type SymbolAction } from '../protocol/symbol-actions.js';

export { SYMBOL_ACTIONS, type SymbolAction };

/** What a message's symbols ask of its folder at least (quarantine acts as junk until the quarantine lands). */
export type Floor = 'tag' | 'junk' | 'quarantine';

/** A refusal observe mode held back: logged "would reject" with the reply. */
export interface WouldRefuse extends Demand {
  readonly symbol: string;
}

export interface ActionOutcome {
  /** The symbols that count (those whose action is "ignore" are gone). */
  readonly symbols: ScoredSymbol[];
  /** The refusal to send, if any: the first reject, else the first tempfail. */
  readonly demand?: Demand;
  /** Observe mode: the refusals that were not sent. */
  readonly wouldRefuse: WouldRefuse[];
  /** The strongest folder floor asked for by a symbol (tag < junk < quarantine). */
  readonly floor?: Floor;
}

const FLOOR_RANK: Record<Floor, number> = { tag: 1, junk: 2, quarantine: 3 };

/** The stronger of two folder floors (tag < junk < quarantine). */
export function strongerFloor(a: Floor | undefined, b: Floor | undefined): Floor | undefined {
  if (!a) return b;
  if (!b) return a;
  return FLOOR_RANK[b] > FLOOR_RANK[a] ? b : a;
}

export class ActionTable {
  private readonly names = new Map<string, SymbolAction>();
  private readonly globs: { key: string; re: RegExp; length: number; action: SymbolAction }[] = [];
  private readonly groups = new Map<string, SymbolAction>();
  private readonly cache = new Map<string, { action: SymbolAction; from: string }>();

  /** `rules` must have passed validatePolicy() (the gateway refuses to start otherwise). */
  constructor(private readonly registry: SymbolRegistry, rules: Readonly<Record<string, SymbolAction>> = {}) {
    for (const [key, action] of Object.entries(rules)) {
      if (key.startsWith('group:')) this.groups.set(key.slice(6), action);
      else if (isGlob(key)) this.globs.push({ key, re: globPattern(key), length: key.replace(/\*/g, '').length, action });
      else this.names.set(key, action);
    }
    this.globs.sort((a, b) => b.length - a.length);
  }

  get symbols(): SymbolRegistry {
    return this.registry;
  }

  /** The action of one symbol name. */
  of(name: string): SymbolAction {
    return this.decide(name).action;
  }

  /**
   * Why a symbol has its action: the policy.actions key that matched ("SPF_FAIL", "DNSBL_*",
   * "group:av"), "default" (its declaration, or score) or "safety" (always enforced).
   */
  decidedBy(name: string): string {
    return this.decide(name).from;
  }

  private decide(name: string): { action: SymbolAction; from: string } {
    let d = this.cache.get(name);
    if (!d) {
      d = this.resolve(name);
      this.cache.set(name, d);
    }
    return d;
  }

  private resolve(name: string): { action: SymbolAction; from: string } {
    const decl = this.registry.get(name);
    const declared = { action: decl?.action ?? 'score', from: 'default' } as const;
    if (decl?.safety) return { action: decl.action ?? 'reject', from: 'safety' };
    const exact = this.names.get(name);
    if (exact) return { action: exact, from: name };
    // Globs and groups describe findings; a check's failure keeps its declared action unless named.
    if (isFailureSymbol(name)) return declared;
    const glob = this.globs.find((g) => g.re.test(name));
    if (glob) return { action: glob.action, from: glob.key };
    const group = decl ? this.groups.get(decl.group) : undefined;
    return group ? { action: group, from: `group:${decl!.group}` } : declared;
  }

  /**
   * Applies the actions to one stage's scored symbols. `observe` holds back every refusal that is
   * policy; safety refusals are sent anyway.
   */
  apply(stage: Stage, symbols: readonly ScoredSymbol[], observe: boolean): ActionOutcome {
    const kept: ScoredSymbol[] = [];
    const wouldRefuse: WouldRefuse[] = [];
    let demand: Demand | undefined;
    let floor: Floor | undefined;
    for (const s of symbols) {
      const action = this.of(s.name);
      if (action === 'ignore') continue;
      kept.push(s);
      if (s.scoreOnly || action === 'score') continue;
      if (action === 'tag' || action === 'junk' || action === 'quarantine') {
        floor = strongerFloor(floor, action);
        continue;
      }
      const refusal: WouldRefuse = { kind: action, reply: refusalReply(stage, s, action), symbol: s.name };
      if (observe && !this.registry.get(s.name)?.safety) {
        wouldRefuse.push(refusal);
        continue;
      }
      // A certain "no" is better than "later": the first reject wins over any tempfail.
      if (!demand || (refusal.kind === 'reject' && demand.kind !== 'reject')) demand = refusal;
    }
    return { symbols: kept, demand, wouldRefuse, floor };
  }
}

/** The reply of a refusal: the check's own wording when it gave one, else a generic one naming the symbol. */
export function refusalReply(stage: Stage, s: ScoredSymbol, kind: 'reject' | 'tempfail'): Reply {
  if (kind === 'reject') {
    if (s.reply && s.reply.code >= 500) return s.reply;
    return R.policyReject(`Error: ${stage === 'data' ? 'message' : 'client'} refused by local policy (${s.name})`);
  }
  if (s.retryReply) return s.retryReply;
  if (s.reply && s.reply.code < 500) return s.reply;
  if (s.reply) return reply(451, s.reply.enhanced ? `4${s.reply.enhanced.slice(1)}` : '4.7.1', s.reply.text);
  return R.policyTempfail(`Error: ${s.name}: try again later`);
}

/**
 * What is wrong with the operator's policy.symbols and policy.actions, one line per fault with
 * its key: an unknown symbol or group, a glob that matches nothing, a safety symbol given an action.
 */
export function validatePolicy(policy: { readonly symbols: Readonly<Record<string, number>>; readonly actions: Readonly<Record<string, string>> }, registry: SymbolRegistry): string[] {
  const problems: string[] = [];
  const known = (what: string) => {
    const near = registry.all().map((s) => s.name).filter((n) => n.startsWith(what.slice(0, Math.max(3, what.indexOf('_') + 1))));
    return near.length ? ` (known symbols like it: ${near.slice(0, 5).join(', ')}${near.length > 5 ? ', …' : ''})` : '';
  };
  for (const name of Object.keys(policy.symbols)) {
    if (!registry.has(name)) problems.push(`policy.symbols.${name}: unknown symbol: no check emits it${known(name)}`);
  }
  for (const [key, action] of Object.entries(policy.actions)) {
    const where = `policy.actions."${key}"`;
    if (!(SYMBOL_ACTIONS as readonly string[]).includes(action)) {
      problems.push(`${where}: "${action}" is not an action (one of ${SYMBOL_ACTIONS.join(', ')})`);
      continue;
    }
    if (key.startsWith('group:')) {
      const group = key.slice(6);
      if (!registry.inGroup(group).length) problems.push(`${where}: unknown group "${group}" (groups: ${registry.groups().join(', ')})`);
      continue;
    }
    if (isGlob(key)) {
      if (!/^[A-Za-z0-9_*]+$/.test(key)) problems.push(`${where}: a glob is made of symbol characters (A-Z, 0-9, _) and *`);
      else if (!registry.matching(key).length) problems.push(`${where}: the glob matches no symbol (failure symbols, *_TEMPFAIL and *_TIMEOUT, are matched by their name only)`);
      continue;
    }
    const decl = registry.get(key);
    if (!decl) problems.push(`${where}: unknown symbol: no check emits it${known(key)}`);
    else if (decl.safety) problems.push(`${where}: ${key} is protocol safety, always refused; it takes no action from policy`);
  }
  return problems;
}
