// The layering of ../shared/DESIGN.md and docs/architecture.md, enforced: every import in src/
// (type imports included: a type is a dependency too) runs down the layers or stays within one,
// and no module reaches itself through its imports. Tests are left out: a test may import
// whatever it exercises.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.js';

/** Higher rank = higher layer. A module may import modules of its own rank or lower. */
const LAYERS: readonly (readonly [rank: number, prefixes: readonly string[]])[] = [
  [8, ['cli/']],
  [7, ['gateway/', 'control/', 'config/schema.ts', 'config/load.ts']],
  [6, ['smtp/', 'mailbox/', 'web/', 'audit/', 'integrations/']],
  [5, ['pipeline/']],
  [4, ['checks/']],
  [3, ['mime/', 'dns/', 'store/', 'auth/', 'queue/', 'delivery/', 'tls/', 'reports/', 'lists/', 'trace/', 'quarantine/']],
  [1, ['net/', 'config/', 'log.ts', 'metrics.ts', 'protocol/']],
];

const srcDir = path.join(repoRoot, 'src');

function rankOf(rel: string): number {
  let best: { rank: number; len: number } | undefined;
  for (const [rank, prefixes] of LAYERS) {
    for (const p of prefixes) if ((rel === p || rel.startsWith(p)) && (!best || p.length > best.len)) best = { rank, len: p.length };
  }
  if (!best) throw new Error(`src/${rel} belongs to no layer: add its folder to LAYERS here and to docs/architecture.md`);
  return best.rank;
}

/**
 * Test code is outside the layers: a unit test (and its shared helpers, test-support.ts) may
 * assemble the whole policy to see what a check's findings lead to.
 */
const isTestCode = (name: string) => name.endsWith('.test.ts') || name === 'test-support.ts';

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !isTestCode(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]/g;

function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const target = path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts'));
    out.push(path.relative(srcDir, target).split(path.sep).join('/'));
  }
  // Dynamic imports count too.
  for (const m of text.matchAll(/import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)) {
    out.push(path.relative(srcDir, path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts'))).split(path.sep).join('/'));
  }
  return out;
}

const graph = new Map<string, string[]>();
for (const f of sources(srcDir)) graph.set(path.relative(srcDir, f).split(path.sep).join('/'), importsOf(f));

test('every module of src/ belongs to a layer', () => {
  for (const file of graph.keys()) assert.doesNotThrow(() => rankOf(file));
});

test('no import runs up the layers', () => {
  const upward: string[] = [];
  for (const [file, deps] of graph) {
    for (const dep of deps) {
      if (rankOf(dep) > rankOf(file)) upward.push(`src/${file} → src/${dep}`);
    }
  }
  assert.deepEqual(upward, [], `imports that run up the layers (docs/architecture.md):\n${upward.join('\n')}`);
});

test('no import cycle', () => {
  // Tarjan's strongly connected components; any component of more than one module is a cycle.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  assert.deepEqual(cycles, [], `import cycles:\n${cycles.map((c) => c.join(' ↔ ')).join('\n')}`);
});

test('every import names a module that exists', () => {
  const missing: string[] = [];
  for (const [file, deps] of graph) for (const dep of deps) if (!fs.existsSync(path.join(srcDir, dep))) missing.push(`src/${file} → src/${dep}`);
  assert.deepEqual(missing, []);
});
