// The built-in checks, in one list. Later defences add themselves here.
import type { AnyCheck } from '../pipeline/types.js';
import { heloSyntax } from './helo/helo-syntax.js';
import { requiredHeaders } from './headers/required-headers.js';
import { fromOwnership } from './sender/from-ownership.js';
import { bruteForceSource } from './auth/brute-force-source.js';
import type { BruteForce } from '../auth/brute-force.js';

/** What checks may need from the rest of the gateway (passed in: no global state). */
export interface CheckDeps {
  readonly owns: (user: string, address: string) => boolean;
  readonly bruteForce: BruteForce;
}

export function builtinChecks(deps: CheckDeps): AnyCheck[] {
  return [bruteForceSource(deps.bruteForce), heloSyntax, requiredHeaders, fromOwnership(deps.owns)];
}
