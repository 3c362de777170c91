// The built-in checks, in one list. Later defences add themselves here.
import type { AnyCheck } from '../pipeline/types.js';
import { heloSyntax } from './helo/helo-syntax.js';
import { requiredHeaders } from './headers/required-headers.js';
import { fromOwnership } from './sender/from-ownership.js';

/** What checks may need from the rest of the gateway (passed in: no global state). */
export interface CheckDeps {
  readonly owns: (user: string, address: string) => boolean;
}

export function builtinChecks(deps: CheckDeps): AnyCheck[] {
  return [heloSyntax, requiredHeaders, fromOwnership(deps.owns)];
}
