// The dev corpus (../shared/corpus/sa2002-dev.tar.gz) extracted once per test file into a temp
// folder (never into the repository), and a deterministic sample of it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { sharedDir } from '../helpers/paths.js';

export const CORPUS_TARBALL = process.env.PORTCULLIS_CORPUS ?? path.join(sharedDir, 'corpus', 'sa2002-dev.tar.gz');

export interface Corpus {
  readonly dir: string;
  /** [label, file name] in name order. */
  readonly files: readonly (readonly ['spam' | 'ham', string])[];
  path(label: string, name: string): string;
  remove(): void;
}

/** Extracts the corpus; undefined when the tarball is absent. */
export function extractCorpus(): Corpus | undefined {
  if (!fs.existsSync(CORPUS_TARBALL)) return undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rules-corpus-'));
  execFileSync('tar', ['xzf', CORPUS_TARBALL, '-C', dir]);
  const files: ['spam' | 'ham', string][] = [];
  for (const label of ['spam', 'ham'] as const) for (const f of fs.readdirSync(path.join(dir, label)).sort()) files.push([label, f]);
  return {
    dir, files,
    path: (label, name) => path.join(dir, label, name),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** Every nth spam and every mth ham (hard ham included), in order. */
export function sample(c: Corpus, everySpam: number, everyHam: number): (readonly ['spam' | 'ham', string])[] {
  let s = 0, h = 0;
  return c.files.filter(([label]) => (label === 'spam' ? s++ % everySpam === 0 : h++ % everyHam === 0));
}
