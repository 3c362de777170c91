// Symbol weights: the shipped conf/scores.yaml overlaid by the operator's policy.symbols.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

export const SHIPPED_SCORES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../conf/scores.yaml');

export function loadWeights(overrides: Readonly<Record<string, number>>, file = SHIPPED_SCORES): Map<string, number> {
  const shipped = YAML.parse(fs.readFileSync(file, 'utf8')) as Record<string, number> | null;
  const weights = new Map<string, number>();
  for (const [k, v] of Object.entries(shipped ?? {})) {
    if (typeof v !== 'number') throw new Error(`${file}: ${k}: weight must be a number`);
    weights.set(k, v);
  }
  for (const [k, v] of Object.entries(overrides)) weights.set(k, v);
  return weights;
}
