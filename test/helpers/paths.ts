// Where things are, seen from the compiled helpers (dist/test/helpers/*.js) or the sources.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'tsconfig.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the repository root above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** The repository root (holds package.json). */
export const repoRoot = findRepoRoot();
/** The gateway's command line entry point, as built by `npm run build`. */
export const cliEntry = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
/** shared/ beside the repository (read only: never write into it). */
export const sharedDir = path.resolve(repoRoot, '..', 'shared');
/** Python client scripts. */
export const clientsDir = path.join(repoRoot, 'test', 'clients');
