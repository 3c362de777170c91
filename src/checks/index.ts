// The built-in checks, in one list. Later defences add themselves here.
import type { AnyCheck } from '../pipeline/types.js';
import { heloSyntax } from './helo/helo-syntax.js';
import { requiredHeaders } from './headers/required-headers.js';

export function builtinChecks(): AnyCheck[] {
  return [heloSyntax, requiredHeaders];
}
