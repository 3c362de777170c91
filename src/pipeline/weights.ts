// Symbol weights, with one precedence (docs/pipeline.md):
//   1. the operator's policy.symbols,
//   2. the weight the check's own configuration gives the finding (a DNS list's weight, a .cf
//      score line, a URI list's weight) — or, for a symbol whose weight is the finding itself
//      (none today), that value,
//   3. the registry default (conf/scores.yaml for the fixed symbols).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import type { SymbolHit } from '../checks/types.js';
import type { SymbolRegistry } from '../checks/registry.js';

export const SHIPPED_SCORES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../conf/scores.yaml');

/** The shipped default weights (conf/scores.yaml). */
export function shippedWeights(file = SHIPPED_SCORES): Map<string, number> {
  const shipped = YAML.parse(fs.readFileSync(file, 'utf8')) as Record<string, number> | null;
  const weights = new Map<string, number>();
  for (const [k, v] of Object.entries(shipped ?? {})) {
    if (typeof v !== 'number') throw new Error(`${file}: ${k}: weight must be a number`);
    weights.set(k, v);
  }
  return weights;
}

export class Weigher {
  private readonly operator: ReadonlyMap<string, number>;

  constructor(private readonly registry: SymbolRegistry, overrides: Readonly<Record<string, number>> = {}) {
    this.operator = new Map(Object.entries(overrides));
  }

  weigh(hit: SymbolHit): number {
    return this.operator.get(hit.name) ?? hit.score ?? this.registry.weight(hit.name) ?? 0;
  }

  /** Where a symbol's weight comes from, for `scan --explain` and docs. */
  source(hit: SymbolHit): 'policy.symbols' | 'check' | 'registry' {
    if (this.operator.has(hit.name)) return 'policy.symbols';
    return hit.score !== undefined ? 'check' : 'registry';
  }
}
